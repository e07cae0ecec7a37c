"""P3 served throughput: the example backend under gunicorn (2 sync workers), loaded from outside.

Processes, all on loopback: the fake cloud (:mod:`bench.fake_server`), gunicorn serving
:mod:`bench.p3_wsgi` (the example backend with its default SQLite storage in a temporary
instance folder, ``ALICERTIFY_ENDPOINTS`` pointing at the fake, matching credentials), and the
load generator (:mod:`bench.loadgen`: several threads, one keep-alive httpx client each).

Phases alternate: ``GET /bench/bare`` (a bare Flask JSON view in the same app) and
``POST /alicertify/result`` with a signed-in user's bearer token over sessions that never finish,
so every request records the claim, describes over HTTP and stores what it saw. Each phase is a
fixed duration; the median requests per second of each kind are compared.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from typing import Any

import httpx

from .common import CERT_NAME
from .common import CERT_NO
from .common import KEY_ID
from .common import KEY_SECRET
from .common import PYTHON
from .common import ROOT
from .common import SCENE_ID
from .common import Check
from .common import Figure
from .common import Size
from .common import command
from .common import median
from .fake_server import FakeServers

WORKERS = 2
THREADS = 4
SESSIONS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/bench/bare", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer within 30 s")


def _load(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, "-m", "bench.loadgen", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _prepare(base: str) -> tuple[dict[str, str], list[str]]:
    """Log in (the demo login) and start the sessions the result posts will confirm."""
    with httpx.Client(base_url=base, timeout=30.0) as client:
        login = client.post("/login", json={"username": "bench"})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        ids = []
        for _ in range(SESSIONS):
            started = client.post(
                "/alicertify/init",
                json={"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}},
                headers=headers,
            )
            if started.status_code != 200:
                raise RuntimeError(f"init answered {started.status_code}: {started.text[:200]}")
            ids.append(started.json()["certifyId"])
    return headers, ids


def run(size: Size = "full") -> Figure:
    started = time.perf_counter()
    rounds, per_phase = (3, 4.0) if size == "full" else (1, 0.5)
    results: dict[str, list[dict[str, Any]]] = {"bare": [], "result": []}
    with tempfile.TemporaryDirectory(prefix="alicertify-bench-p3-") as instance, FakeServers(1) as fake:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "BENCH_INSTANCE": instance,
            "SECRET_KEY": "bench-p3",
            "ALICERTIFY_SCENE_ID": SCENE_ID,
            "ALICERTIFY_ACCESS_KEY_ID": KEY_ID,
            "ALICERTIFY_ACCESS_KEY_SECRET": KEY_SECRET,
            "ALICERTIFY_ENDPOINTS": fake.urls[0],
            "ALICERTIFY_MAX_ATTEMPTS_PER_DAY": "100000",
        }
        env.pop("ALICERTIFY_SANDBOX", None)
        server = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gunicorn",
                "--workers",
                str(WORKERS),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "bench.p3_wsgi:app",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            _wait_ready(base, server)
            headers, ids = _prepare(base)
            bodies = [{"certifyId": i, "resultStatus": "9000", "result": {"certifyId": i}} for i in ids]
            specs = {
                "bare": {"url": f"{base}/bench/bare", "method": "GET", "seconds": per_phase},
                "result": {
                    "url": f"{base}/alicertify/result",
                    "method": "POST",
                    "seconds": per_phase,
                    "headers": headers,
                    "bodies": bodies,
                },
            }
            for spec in specs.values():  # warm-up: imports, connection pools, SQLite caches
                _load({**spec, "threads": THREADS, "seconds": per_phase / 4})
            for i in range(rounds):
                order = ["bare", "result"] if i % 2 == 0 else ["result", "bare"]
                for name in order:
                    results[name].append(_load({**specs[name], "threads": THREADS}))
            upstream = fake.stats()
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    bare_rps = median([r["rps"] for r in results["bare"]])
    result_rps = median([r["rps"] for r in results["result"]])
    errors = sum(r["errors"] for rs in results.values() for r in rs) + upstream["failed_calls"][0]
    ratio = result_rps / bare_rps
    check = Check(
        "P3",
        f"`POST /alicertify/result` requests/s ÷ a bare Flask JSON endpoint, example backend under "
        f"gunicorn ({WORKERS} workers), fake cloud on loopback, load from another process",
        ratio,
        ">=",
        0.6,
        detail=f"{ratio:.2f} ({result_rps:.0f} vs {bare_rps:.0f} req/s, {errors} errors)",
        conditions={"zero errors": errors == 0},
    )
    values: dict[str, Any] = {
        "workers": WORKERS,
        "load_threads": THREADS,
        "seconds_per_phase": per_phase,
        "rounds": rounds,
        "bare_rps": bare_rps,
        "result_rps": result_rps,
        "ratio": ratio,
        "errors": errors,
        "upstream_calls": upstream["calls"][0],
        "upstream_connections": upstream["connections"][0],
        "phases": results,
    }
    return Figure(
        "P3",
        "Served throughput under gunicorn",
        [check],
        values,
        command("p3"),
        seconds=time.perf_counter() - started,
    )
