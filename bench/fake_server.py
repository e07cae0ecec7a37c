"""The fake cloud on loopback in its own process, so it never shares a GIL with what is measured.

``python -m bench.fake_server SPEC_JSON`` starts ``count`` servers (one :class:`FakeCloud` each,
same keys), prints one JSON line ``{"urls": [...]}``, then answers commands read from stdin, one
per line; end of input (or ``quit``) stops every server:

* ``stats``: ``{"connections", "calls", "failed_calls", "throttled_calls", "cpu_seconds"}`` (lists
  per server, ``cpu_seconds`` for the whole process: user + system time so far);
* ``arrivals``: ``{"arrivals": [[[time, action, status], ...] per server]}``, every call in arrival
  order (``time.time()`` when the request reached the fake, shared by every process on the host).

SPEC (all optional): ``count`` (1); ``latency``: seconds added to every answer, after the fake
decided it, so a call is counted when it arrives, as Alibaba's gateway would (the server is
threaded, one thread per connection, so the delay never queues other calls); ``qps``: Alibaba's
per-API limit, a call arriving when ``qps`` calls of the same action were accepted in the last
second is answered HTTP 429 ``Throttling.User``, as Alibaba answers (the fake's own limit, its
``qps`` argument, when it has one, else this module's, which counts the same way).
:class:`FakeServers` drives it from the bench process.
"""

from __future__ import annotations

import inspect
import json
import resource
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import ExitStack
from typing import IO
from typing import Any

import httpx

from .common import KEY_ID
from .common import KEY_SECRET
from .common import PYTHON
from .common import ROOT

#: The actions the QPS limit applies to (each its own window, as Alibaba counts per API).
LIMITED_ACTIONS = ("InitFaceVerify", "DescribeFaceVerify")


class Served:
    """What the loopback server serves: the fake, plus latency, a QPS limit and an arrival log."""

    def __init__(self, cloud: Any, *, latency: float, qps: float | None, own_limit: bool) -> None:
        self.cloud = cloud
        self.timeout_seconds: float = cloud.timeout_seconds
        self.latency = latency
        self.qps = qps if own_limit else None
        self.arrivals: list[tuple[float, str, int]] = []
        self._accepted: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def connection_accepted(self) -> None:
        self.cloud.connection_accepted()

    def _over_limit(self, action: str, now: float) -> bool:
        if self.qps is None:
            return False
        window = self._accepted.setdefault(action, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.qps:
            return True
        window.append(now)
        return False

    def handle(self, request: httpx.Request) -> httpx.Response:
        from flask_alicertify.sandbox import protocol

        now = time.time()
        action = request.headers.get("x-acs-action", "")
        with self._lock:
            throttled = self._over_limit(action, now)
        if throttled:
            response = protocol.gateway_error(
                429,
                "Throttling.User",
                "Request was denied due to user flow control.",
                "BENCH-THROTTLED",
                request.url.host,
            )
            response.request = request
        else:
            response = self.cloud.handle(request)
        with self._lock:
            self.arrivals.append((now, action, response.status_code))
        if self.latency > 0:
            time.sleep(self.latency)
        return response


def _cloud(seed: int, qps: float | None) -> tuple[Any, bool]:
    """A fake cloud, with its own QPS limit when it has one; says whether this module must add it."""
    from flask_alicertify.sandbox.fake import FakeCloud

    if qps is not None and "qps" in inspect.signature(FakeCloud).parameters:
        limits = dict.fromkeys(LIMITED_ACTIONS, qps)
        return FakeCloud(KEY_ID, KEY_SECRET, seed=seed, qps=limits), False
    return FakeCloud(KEY_ID, KEY_SECRET, seed=seed), qps is not None


def main(spec: dict[str, Any]) -> None:
    from flask_alicertify.sandbox import server

    count = int(spec.get("count", 1))
    latency = float(spec.get("latency", 0.0))
    qps = None if spec.get("qps") is None else float(spec["qps"])
    served = []
    for i in range(count):
        cloud, own = _cloud(i, qps)
        served.append(Served(cloud, latency=latency, qps=qps, own_limit=own))
    with ExitStack() as stack:
        urls = [stack.enter_context(server.serve(s)) for s in served]
        print(json.dumps({"urls": urls}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                stats = {
                    "connections": [s.cloud.connections_opened for s in served],
                    "calls": [len(s.arrivals) for s in served],
                    "failed_calls": [sum(1 for a in s.arrivals if a[2] >= 400) for s in served],
                    "throttled_calls": [sum(1 for a in s.arrivals if a[2] == 429) for s in served],
                    "cpu_seconds": usage.ru_utime + usage.ru_stime,
                }
                print(json.dumps(stats), flush=True)
            elif command == "arrivals":
                print(json.dumps({"arrivals": [list(s.arrivals) for s in served]}), flush=True)
            elif command == "quit":
                break


class FakeServers:
    """``with FakeServers(2, latency=0.06) as servers: servers.urls; servers.stats()`` — a child process."""

    def __init__(self, count: int = 1, *, latency: float = 0.0, qps: float | None = None) -> None:
        self.spec = {"count": count, "latency": latency, "qps": qps}
        self.urls: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> FakeServers:
        self._process = subprocess.Popen(
            [PYTHON, "-m", "bench.fake_server", json.dumps(self.spec)],
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

    def stats(self) -> dict[str, Any]:
        self._send("stats")
        return self._read()

    def arrivals(self) -> list[list[tuple[float, str, int]]]:
        """Per server, every call as ``(time.time() at arrival, action, HTTP status)``."""
        self._send("arrivals")
        return [[(float(t), str(a), int(s)) for t, a, s in per] for per in self._read()["arrivals"]]

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
    main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
