"""P3 served throughput, as users deploy it: the example backend under gunicorn, a 60 ms upstream.

Processes, all on loopback: the fake cloud (:mod:`bench.fake_server`, threaded, one thread per
connection, adding :data:`LATENCY` to every answer: a round trip to cn-shanghai plus Alibaba's
work), gunicorn with :data:`WORKERS` ``gthread`` workers × :data:`THREADS` threads serving
:mod:`bench.p3_wsgi` (the example backend, ``ALICERTIFY_ENDPOINTS`` pointing at the fake), and the
closed-loop load generator (:mod:`bench.loadgen`, :data:`LOAD_THREADS` keep-alive clients: more
than the server's threads, so the server is never idle).

Phases alternate between ``POST /bench/minimal`` (the minimal view in the same app) and
``POST /alicertify/result``, both with a signed-in user's bearer token, over sessions that never
finish, so every request looks up the login, describes over HTTP (60 ms) and writes once. Run on
PostgreSQL (the extension's table and the minimal view's in one fresh database) and on SQLite (the
example's default file in the instance folder; the minimal view's own file with the same settings).
The quota guard is off here (``ALICERTIFY_UPSTREAM_QPS=off``): the minimal view has none, and P6
measures it. ``ALICERTIFY_DESCRIBE_MIN_INTERVAL`` is 0, so every post describes, as a session's
first result post does (with the default 2 s, repeated posts within 2 s answer the stored
state). The fake's own CPU time per phase is reported: it must not be what limits the rate.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from .common import CERT_NAME
from .common import CERT_NO
from .common import KEY_ID
from .common import KEY_SECRET
from .common import SCENE_ID
from .common import Check
from .common import Figure
from .common import Size
from .common import command
from .common import median
from .fake_server import FakeServers
from .p3_minimal import MINIMAL_TABLE
from .p3_minimal import connect_minimal
from .servers import gunicorn
from .servers import load
from .servers import postgres_available
from .servers import postgres_database

WORKERS = 2
THREADS = 16
LOAD_THREADS = 48
LATENCY = 0.060
SESSIONS = 100
#: Above this share of one CPU, the fake (one Python process) could be what limits the rate.
FAKE_CPU_LIMIT = 0.8


def base_env(instance: str, fake_url: str) -> dict[str, str]:
    """The example backend's environment, as in production (except the endpoint and the keys)."""
    return {
        "BENCH_INSTANCE": instance,
        "SECRET_KEY": "bench-p3",
        "ALICERTIFY_SCENE_ID": SCENE_ID,
        "ALICERTIFY_ACCESS_KEY_ID": KEY_ID,
        "ALICERTIFY_ACCESS_KEY_SECRET": KEY_SECRET,
        "ALICERTIFY_ENDPOINTS": fake_url,
        "ALICERTIFY_MAX_ATTEMPTS_PER_DAY": "100000",
    }


def login(base: str, username: str = "bench") -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30.0) as client:
        answer = client.post("/login", json={"username": username})
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['token']}"}


def start_sessions(base: str, headers: dict[str, str], count: int, parallel: int = 16) -> list[str]:
    """``count`` verifications started through ``/init`` (in parallel: each costs the latency)."""
    with httpx.Client(base_url=base, timeout=30.0, headers=headers) as client:
        first = _init(client)  # alone: the first request may create the table

        def one(_: int) -> str:
            return _init(client)

        with ThreadPoolExecutor(parallel) as pool:
            return [first, *pool.map(one, range(count - 1))]


def _init(client: httpx.Client) -> str:
    started = client.post(
        "/alicertify/init", json={"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}}
    )
    if started.status_code != 200:
        raise RuntimeError(f"init answered {started.status_code}: {started.text[:200]}")
    return str(started.json()["certifyId"])


def seed_minimal(kind: str, dsn: str, ids: list[str], user_id: str) -> None:
    conn = connect_minimal(kind, dsn)
    try:
        conn.execute(MINIMAL_TABLE)
        for certify_id in ids:
            conn.execute(
                "INSERT INTO bench_minimal (certify_id, user_id, status) VALUES "
                + ("(%s, %s, 'pending')" if kind == "postgresql" else "(?, ?, 'pending')"),
                (certify_id, user_id),
            )
        conn.commit()
    finally:
        conn.close()


def user_of(base: str, headers: dict[str, str]) -> str:
    answer = httpx.get(f"{base}/me", headers=headers, timeout=10.0)
    answer.raise_for_status()
    return str(answer.json()["user"]["id"])


@contextmanager
def database(kind: str, instance: str) -> Iterator[tuple[dict[str, str], str]]:
    """The environment for ``kind`` and the minimal view's DSN."""
    if kind == "sqlite":
        yield {"BENCH_DB": "sqlite"}, str(Path(instance) / "minimal.sqlite3")
        return
    with postgres_database("alicertify_bench_p3") as url:
        from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

        sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        storage = SQLAlchemyStorage(sa_url)
        try:
            storage.create_all()  # here, not in two workers racing at their first request
        finally:
            storage.close()
        yield {"BENCH_DB": "postgresql", "ALICERTIFY_DATABASE_URL": sa_url}, url


def measure(kind: str, rounds: int, per_phase: float, sessions: int = SESSIONS) -> dict[str, Any]:
    """Alternating phases of the minimal view and the extension's ``/result`` on one database."""
    phases: dict[str, list[dict[str, Any]]] = {"minimal": [], "result": []}
    with ExitStack() as stack:
        instance = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"alicertify-bench-p3-{kind}-"))
        fake = stack.enter_context(FakeServers(1, latency=LATENCY))
        db_env, dsn = stack.enter_context(database(kind, instance))
        env = {
            **base_env(instance, fake.urls[0]),
            **db_env,
            "BENCH_MINIMAL_DSN": dsn,
            "ALICERTIFY_UPSTREAM_QPS": "off",
            "ALICERTIFY_DESCRIBE_MIN_INTERVAL": "0",
        }
        base = stack.enter_context(gunicorn(env, workers=WORKERS, threads=THREADS))
        headers = login(base)
        ids = start_sessions(base, headers, sessions)
        seed_minimal(kind, dsn, ids, user_of(base, headers))
        bodies = [{"certifyId": i, "resultStatus": "9000", "result": {"certifyId": i}} for i in ids]
        specs = {
            "minimal": {"url": f"{base}/bench/minimal"},
            "result": {"url": f"{base}/alicertify/result"},
        }
        common = {"method": "POST", "headers": headers, "bodies": bodies, "threads": LOAD_THREADS}
        for name in specs:  # warm-up: imports, connection pools, caches
            load({**specs[name], **common, "seconds": per_phase / 4})
        for i in range(rounds):
            for name in ("minimal", "result") if i % 2 == 0 else ("result", "minimal"):
                before = fake.stats()
                outcome = load({**specs[name], **common, "seconds": per_phase})
                after = fake.stats()
                outcome["fake_cpu_share"] = (after["cpu_seconds"] - before["cpu_seconds"]) / outcome[
                    "seconds"
                ]
                outcome["upstream_calls"] = after["calls"][0] - before["calls"][0]
                outcome["upstream_failed"] = after["failed_calls"][0] - before["failed_calls"][0]
                phases[name].append(outcome)
    rps = {name: median([p["rps"] for p in ps]) for name, ps in phases.items()}
    return {
        "minimal_rps": rps["minimal"],
        "result_rps": rps["result"],
        "ratio": rps["result"] / rps["minimal"],
        "errors": sum(p["errors"] + p["upstream_failed"] for ps in phases.values() for p in ps),
        "fake_cpu_share_max": max(p["fake_cpu_share"] for ps in phases.values() for p in ps),
        "phases": phases,
    }


def _detail(m: dict[str, Any]) -> str:
    return (
        f"{m['ratio']:.2f} ({m['result_rps']:.0f} vs {m['minimal_rps']:.0f} req/s, {m['errors']} errors, "
        f"fake ≤ {m['fake_cpu_share_max']:.0%} of a CPU)"
    )


def run(size: Size = "full") -> Figure:
    started = time.perf_counter()
    rounds, per_phase, sessions = (3, 4.0, SESSIONS) if size == "full" else (1, 0.5, 10)
    missing = postgres_available()
    if missing is not None:
        raise RuntimeError(f"P3 runs on PostgreSQL: {missing}")
    results = {kind: measure(kind, rounds, per_phase, sessions) for kind in ("postgresql", "sqlite")}
    pg, lite = results["postgresql"], results["sqlite"]
    served = f"gunicorn {WORKERS} × {THREADS} threads, fake upstream +{LATENCY * 1000:.0f} ms"

    def conditions(m: dict[str, Any]) -> dict[str, bool]:
        return {
            "zero errors": m["errors"] == 0,
            "fake not the bottleneck": m["fake_cpu_share_max"] < FAKE_CPU_LIMIT,
        }

    checks = [
        Check(
            "P3",
            f"`POST /alicertify/result` req/s ÷ the minimal view's, example backend on PostgreSQL ({served})",
            pg["ratio"],
            ">=",
            0.9,
            unit="",
            detail=_detail(pg),
            conditions=conditions(pg),
        ),
        Check(
            "P3quota",
            "`POST /alicertify/result` req/s, same set-up: one 2-CPU host saturates Alibaba's 50 QPS",
            pg["result_rps"],
            ">=",
            50.0,
            unit="req/s",
            detail=f"{pg['result_rps']:.0f} req/s (each one DescribeFaceVerify)",
            conditions={"zero errors": pg["errors"] == 0},
        ),
        Check(
            "P3sqlite",
            "the P3 ratio with the example's default storage (SQLite in the instance folder)",
            lite["ratio"],
            ">=",
            0.9,
            unit="",
            detail=_detail(lite),
            conditions=conditions(lite),
            required=False,
        ),
    ]
    values: dict[str, Any] = {
        "workers": WORKERS,
        "threads": THREADS,
        "load_threads": LOAD_THREADS,
        "upstream_latency_ms": LATENCY * 1000,
        "seconds_per_phase": per_phase,
        "rounds": rounds,
        "sessions": sessions,
        **results,
    }
    return Figure(
        "P3",
        "Served throughput under gunicorn",
        checks,
        values,
        command("p3"),
        seconds=time.perf_counter() - started,
    )
