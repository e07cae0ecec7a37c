"""The fake cloud on loopback in its own process, so it never shares a GIL with what is measured.

``python -m bench.fake_server N`` starts N servers (one :class:`FakeCloud` each, same keys), prints
one JSON line ``{"urls": [...]}``, then answers commands read from stdin, one per line:
``stats`` prints ``{"connections": [...], "calls": [...]}`` (per server); ``quit`` or end of input
stops every server. :class:`FakeServers` drives it from the bench process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from typing import IO
from typing import Any

from .common import KEY_ID
from .common import KEY_SECRET
from .common import PYTHON
from .common import ROOT


def main(count: int) -> None:
    from flask_alicertify.sandbox.fake import FakeCloud

    clouds = [FakeCloud(KEY_ID, KEY_SECRET, seed=i) for i in range(count)]
    with ExitStack() as stack:
        urls = [stack.enter_context(cloud.serve()) for cloud in clouds]
        print(json.dumps({"urls": urls}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                stats = {
                    "connections": [cloud.connections_opened for cloud in clouds],
                    "calls": [len(cloud.calls) for cloud in clouds],
                    "failed_calls": [
                        sum(1 for c in cloud.calls if c.status_code is not None and c.status_code >= 400)
                        for cloud in clouds
                    ],
                }
                print(json.dumps(stats), flush=True)
            elif command == "quit":
                break


class FakeServers:
    """``with FakeServers(2) as servers: servers.urls; servers.stats()`` — a child process."""

    def __init__(self, count: int = 1) -> None:
        self.count = count
        self.urls: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> FakeServers:
        self._process = subprocess.Popen(
            [PYTHON, "-m", "bench.fake_server", str(self.count)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.urls = list(self._read()["urls"])
        return self

    def _read(self) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the fake cloud server process exited")
        data: dict[str, Any] = json.loads(line)
        return data

    def _send(self, command: str) -> None:
        assert self._process is not None
        stdin: IO[str] | None = self._process.stdin
        assert stdin is not None
        stdin.write(command + "\n")
        stdin.flush()

    def stats(self) -> dict[str, list[int]]:
        self._send("stats")
        return self._read()

    def __exit__(self, *exc: object) -> None:
        if self._process is None:
            return
        try:
            self._process.communicate("quit\n", timeout=10)
        except (BrokenPipeError, OSError, ValueError):
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
