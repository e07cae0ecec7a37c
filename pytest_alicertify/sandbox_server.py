"""The shared sandbox server as a test resource: start it, talk to its control API, stop it.

:class:`SandboxServer` runs ``python -m flask_alicertify.sandbox --port 0`` in a subprocess
(the real command, so a live-server test exercises what operators run), reads the URL from its
first stdout line, and stops it with SIGTERM. The ``alicertify_sandbox`` fixture yields one for
the whole session; ``alicertify_sandbox_url`` yields its URL, to put in ``ALICERTIFY_SANDBOX``
of the app under test (gunicorn, a Node client, a browser).

Standard library only: the kit's plugin module must stay cheap to import.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

PREFIX = "sandbox listening on "


class SandboxServerError(RuntimeError):
    """The sandbox server did not start, or its control API refused a request."""


class SandboxServer:
    """A running shared sandbox server (a subprocess) and a client of its control API."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        args: Sequence[str] = (),
        python: str = sys.executable,
        start_timeout: float = 20.0,
    ) -> None:
        self.control_token = secrets.token_urlsafe(24)
        env = dict(os.environ)
        env.pop("ALICERTIFY_SANDBOX_CONTROL_TOKEN", None)
        self.process = subprocess.Popen(
            [python, "-m", "flask_alicertify.sandbox", "--host", host, "--port", str(port)]
            + ["--control-token", self.control_token, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = self._first_line(start_timeout)
        if not line.startswith(PREFIX):
            self.process.kill()
            _, errors = self.process.communicate(timeout=10)
            raise SandboxServerError(f"the sandbox server did not start: {line!r} {errors.strip()}")
        #: ``http://HOST:PORT``: the value of ``ALICERTIFY_SANDBOX`` for apps under test.
        self.url = line[len(PREFIX) :].strip()

    def _first_line(self, timeout: float) -> str:
        found: list[str] = []
        stdout = self.process.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: found.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise SandboxServerError(f"the sandbox server printed nothing within {timeout} s")
        return found[0]

    def __repr__(self) -> str:
        return f"<SandboxServer {getattr(self, 'url', '?')} pid={self.process.pid}>"

    # -- control API ----------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.control_token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            with e:
                detail = e.read().decode("utf-8", "replace")
            raise SandboxServerError(f"{method} {path}: HTTP {e.code} {detail}") from None

    def sessions(self) -> list[dict[str, Any]]:
        """Every session the server issued, oldest first (masked identity, no secrets)."""
        found: list[dict[str, Any]] = self._request("GET", "/_sandbox/sessions")["sessions"]
        return found

    def session(self, certify_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._request("GET", f"/_sandbox/sessions/{certify_id}")["session"]
        return found

    def decide(self, certify_id: str, outcome: str = "pass", **fields: str) -> dict[str, Any]:
        """What the user does on the certify page (``pass``, ``fail`` with ``subCode=``, ``cancel``...).

        Answers the ``verifyResult`` the mini-program would receive.
        """
        body = {"outcome": outcome, **fields}
        answer = self._request("POST", f"/_sandbox/sessions/{certify_id}/outcome", body)
        verify_result: dict[str, Any] = answer["verifyResult"]
        return verify_result

    def reset(self) -> None:
        """Forget every session and call (between tests that must not see each other's)."""
        self._request("POST", "/_sandbox/reset")

    # -- lifetime -------------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then wait; SIGKILL if it does not stop in ``timeout`` s. Answers the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
