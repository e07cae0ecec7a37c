"""The processes and databases the served figures (P3, P6) run against, all on loopback.

* :func:`gunicorn`: ``bench.p3_wsgi:app`` (the example backend) under gunicorn with threaded
  (``gthread``) workers, as the example's README deploys it; waits until it answers.
* :func:`postgres_database`: a fresh PostgreSQL database of the benchmark's own, dropped after.
* :func:`load`: one run of the load generator (:mod:`bench.loadgen`) in its own process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from .common import PYTHON
from .common import ROOT

#: The benchmarks' PostgreSQL server (trust authentication on loopback); ``BENCH_POSTGRES_URL`` overrides.
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: The benchmarks' Redis server and database; ``BENCH_REDIS_URL`` overrides.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/bench/bare", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {timeout:g} s")


def _start(env: Mapping[str, str], *, workers: int, threads: int) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    full_env = {**os.environ, **env}
    full_env.pop("ALICERTIFY_SANDBOX", None)
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--backlog",
            "2048",
            # Idle keep-alive connections stay open (as behind a reverse proxy): with the default 2 s,
            # a client reusing a connection the server is closing that instant sees a ReadError.
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
            "bench.p3_wsgi:app",
        ],
        cwd=ROOT,
        env=full_env,
    )
    return f"http://127.0.0.1:{port}", process


@contextmanager
def gunicorns(env: Mapping[str, str], *, count: int = 1, workers: int, threads: int) -> Iterator[list[str]]:
    """``count`` servers of the example backend (started side by side) on free loopback ports;
    yields their base URLs."""
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(count):
            started.append(_start(env, workers=workers, threads=threads))
        for base, process in started:
            _wait_ready(base, process)
        yield [base for base, _ in started]
    finally:
        for _, process in started:
            process.terminate()
        for _, process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def gunicorn(env: Mapping[str, str], *, workers: int, threads: int) -> Iterator[str]:
    """One server of the example backend; yields its base URL."""
    with gunicorns(env, workers=workers, threads=threads) as bases:
        yield bases[0]


def postgres_available() -> str | None:
    """None when the benchmarks' PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as e:  # noqa: BLE001 - any failure means "not available", reported as is
        return f"PostgreSQL unreachable at {POSTGRES_URL}: {type(e).__name__}: {e}"
    return None


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A fresh database ``name`` on the benchmarks' server (dropped after); yields its libpq URL."""
    import psycopg

    def admin(statement: str) -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(statement)

    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load(spec: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
    """Run the load generator once in its own process; its JSON summary."""
    out = subprocess.run(
        [PYTHON, "-m", "bench.loadgen", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
