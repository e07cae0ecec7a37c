"""P6 quota guard: three processes share Alibaba's 50 QPS per API through Redis, under a 4× burst.

Processes, all on loopback: the fake cloud (:mod:`bench.fake_server`) enforcing Alibaba's limit
(:data:`QPS` calls per API in any sliding second; the rest answered HTTP 429 ``Throttling.User``,
as Alibaba does) and adding the 60 ms round trip of P3; :data:`PROCESSES` servers, each gunicorn
with one ``gthread`` worker of :data:`THREADS` threads (three hosts, in effect) serving the example
backend on one PostgreSQL database, with the quota guard at its defaults (``ALICERTIFY_UPSTREAM_QPS``
50, ``ALICERTIFY_UPSTREAM_WAIT`` 1 s) and one shared limiter, ``ALICERTIFY_RATE_LIMIT_URL`` on the
benchmarks' Redis database; and an open-loop load generator (:mod:`bench.loadgen`) sending
``POST /alicertify/init`` and ``POST /alicertify/result`` at :data:`BURST` × the quota each, spread
evenly over the servers, for :data:`BURST_SECONDS` s, whatever the answers.
``ALICERTIFY_DESCRIBE_MIN_INTERVAL`` is 0, so every result post asks for a describe (with the
default 2 s, a session describes at most every 2 s and the burst would not reach the quota).

The fake logs every call's arrival time (``time.time()``, shared by the processes of one host):
calls it throttled, the busiest sliding second per API, and the share of the quota used while
the burst was being sent. The load generator checks every answer: a 200, or a 429/503 with
``Retry-After``.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx

from .common import CERT_NAME
from .common import CERT_NO
from .common import Check
from .common import Figure
from .common import Size
from .common import command
from .fake_server import FakeServers
from .p3_throughput import LATENCY
from .p3_throughput import base_env
from .p3_throughput import login
from .servers import REDIS_URL
from .servers import gunicorns
from .servers import load
from .servers import postgres_available
from .servers import postgres_database

QPS = 50
BURST = 4
BURST_SECONDS = 5.0
PROCESSES = 3
THREADS = 64
SESSIONS = 60
ACTIONS = {"init": "InitFaceVerify", "result": "DescribeFaceVerify"}


def busiest_second(times: list[float]) -> int:
    """The most calls in any one-second span [t, t + 1) (a sliding window, the strictest reading)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def redis_available() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as e:  # noqa: BLE001 - any failure means "not available", reported as is
        return f"Redis unreachable at {REDIS_URL}: {type(e).__name__}: {e}"
    return None


def forget_windows(prefix: str) -> None:
    """Delete the guard's windows in the benchmarks' Redis database (keys containing ``prefix``)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def sessions(base: str, headers: dict[str, str], count: int) -> list[str]:
    """Verifications for the result posts, started well under the quota (two at a time)."""
    with httpx.Client(base_url=base, timeout=30.0, headers=headers) as client:

        def one(_: int) -> str:
            answer = client.post(
                "/alicertify/init", json={"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}}
            )
            if answer.status_code != 200:
                raise RuntimeError(f"init answered {answer.status_code}: {answer.text[:200]}")
            return str(answer.json()["certifyId"])

        first = one(0)  # alone: the first request may create the table
        with ThreadPoolExecutor(2) as pool:
            return [first, *pool.map(one, range(count - 1))]


def burst_spec(bases: list[str], headers: dict[str, str], ids: list[str], seconds: float) -> dict[str, Any]:
    init_body = {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}}
    streams = [
        {
            "name": "init",
            "rate": BURST * QPS,
            "requests": [
                {"url": f"{b}/alicertify/init", "method": "POST", "headers": headers, "json": init_body}
                for b in bases
            ],
        },
        {
            "name": "result",
            "rate": BURST * QPS,
            "requests": [
                {
                    "url": f"{bases[i % len(bases)]}/alicertify/result",
                    "method": "POST",
                    "headers": headers,
                    "json": {"certifyId": c, "resultStatus": "9000", "result": None},
                }
                for i, c in enumerate(ids * len(bases))
            ],
        },
    ]
    return {"mode": "open", "seconds": seconds, "streams": streams, "timeout": 60.0, "max_in_flight": 2000}


def analyse(arrivals: list[tuple[float, str, int]], burst: dict[str, Any]) -> dict[str, Any]:
    start, end = burst["started_at"], burst["sent_until"]
    out: dict[str, Any] = {}
    for name, action in ACTIONS.items():
        times = [t for t, a, _ in arrivals if a == action and t >= start - 0.001]
        during = sum(1 for t in times if t <= end)
        span = (max(times) - min(times)) if len(times) > 1 else 0.0
        out[name] = {
            "calls": len(times),
            "throttled_by_fake": sum(1 for t, a, s in arrivals if a == action and s == 429 and t >= start),
            "busiest_second": busiest_second(times),
            "calls_while_sending": during,
            "quota_used": during / (QPS * (end - start)),
            # the same over the span from the first to the last call the fake saw (the tail included)
            "quota_used_span": len(times) / (QPS * span) if span else 0.0,
        }
        answers = burst[name]
        statuses = {int(k): v for k, v in answers["statuses"].items()}
        out[name]["answers"] = statuses
        out[name]["bad_answers"] = (
            sum(v for k, v in statuses.items() if k not in (200, 429, 503))
            + answers["no_retry_after"]
            + answers["errors"]
        )
        out[name]["client"] = {
            k: answers[k] for k in ("median_latency_ms", "p99_latency_ms", "max_send_lag_ms", "error_samples")
        }
    return out


def run(size: Size = "full") -> Figure:
    started = time.perf_counter()
    seconds = BURST_SECONDS if size == "full" else 1.0
    for missing in (postgres_available(), redis_available()):
        if missing is not None:
            raise RuntimeError(f"P6 needs PostgreSQL and Redis: {missing}")
    prefix = "alicertify-quota"  # the guard's key prefix, in the benchmarks' own Redis database
    with ExitStack() as stack:
        instance = stack.enter_context(tempfile.TemporaryDirectory(prefix="alicertify-bench-p6-"))
        fake = stack.enter_context(FakeServers(1, latency=LATENCY, qps=QPS))
        url = stack.enter_context(postgres_database("alicertify_bench_p6"))
        env = {
            **base_env(instance, fake.urls[0]),
            "BENCH_DB": "postgresql",
            "ALICERTIFY_DATABASE_URL": url.replace("postgresql://", "postgresql+psycopg://", 1),
            "ALICERTIFY_RATE_LIMIT_URL": REDIS_URL,
            "ALICERTIFY_UPSTREAM_QPS": str(QPS),
            "ALICERTIFY_UPSTREAM_WAIT": "1",
            "ALICERTIFY_DESCRIBE_MIN_INTERVAL": "0",
        }
        forget_windows(prefix)
        stack.callback(forget_windows, prefix)
        bases = stack.enter_context(gunicorns(env, count=PROCESSES, workers=1, threads=THREADS))
        headers = login(bases[0])  # one user table in the shared instance folder: valid everywhere
        ids = sessions(bases[0], headers, SESSIONS if size == "full" else 6)
        time.sleep(1.5)  # let the sliding windows of the set-up calls empty
        burst = load(burst_spec(bases, headers, ids, seconds), timeout=180.0)
        arrivals = fake.arrivals()[0]
    stats = analyse(arrivals, burst)
    throttled = sum(stats[n]["throttled_by_fake"] for n in ACTIONS)
    busiest = max(stats[n]["busiest_second"] for n in ACTIONS)
    used = min(stats[n]["quota_used"] for n in ACTIONS)
    bad = sum(stats[n]["bad_answers"] for n in ACTIONS)
    setup = f"{PROCESSES} processes, {BURST}× the quota for {seconds:g} s"
    per_api = "; ".join(f"{n}: {stats[n]['busiest_second']}" for n in ACTIONS)
    checks = [
        Check(
            "P6",
            f"calls the fake (Alibaba's {QPS} QPS per API) throttled, {setup}, one limiter in Redis",
            float(throttled),
            "==",
            0.0,
            unit="calls",
            detail=f"{throttled} of {sum(stats[n]['calls'] for n in ACTIONS)} calls",
        ),
        Check(
            "P6window",
            "the busiest sliding second at the fake, per API",
            float(busiest),
            "<=",
            float(QPS),
            unit="calls",
            detail=f"{busiest} calls ({per_api})",
        ),
        Check(
            "P6usage",
            "share of the quota used while the burst was sent (the lower API)",
            used,
            ">=",
            0.9,
            unit="",
            detail="; ".join(f"{n}: {stats[n]['quota_used']:.0%}" for n in ACTIONS),
        ),
        Check(
            "P6answers",
            "client answers other than a 200 or a 429/503 with `Retry-After` (incl. transport errors)",
            float(bad),
            "==",
            0.0,
            unit="answers",
            detail="; ".join(f"{n}: {stats[n]['answers']}" for n in ACTIONS),
        ),
    ]
    values = {
        "qps": QPS,
        "burst_factor": BURST,
        "burst_seconds": seconds,
        "processes": PROCESSES,
        "threads": THREADS,
        "upstream_latency_ms": LATENCY * 1000,
        "sending_seconds": burst["sent_until"] - burst["started_at"],
        "draining_seconds": burst["ended_at"] - burst["sent_until"],
        **stats,
    }
    return Figure(
        "P6",
        "Quota guard across processes",
        checks,
        values,
        command("p6"),
        seconds=time.perf_counter() - started,
    )
