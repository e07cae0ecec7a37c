"""The quota guard holds every process's calls under the account's QPS: threads, processes, real Redis."""

from __future__ import annotations

import logging
import multiprocessing
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import skip_or_fail
from support.storage import REDIS_URL

from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.errors import CloudThrottled
from flask_alicertify.cloud.gateways import make_gateway
from flask_alicertify.cloud.options import guard_for
from flask_alicertify.cloud.quota import HEADROOM
from flask_alicertify.cloud.quota import KEY_PREFIX
from flask_alicertify.cloud.quota import QuotaGuard
from flask_alicertify.cloud.quota import admitted_rate

CREDS = StaticCredentials("LTAI5tQuotaTest000001", "quota-secret")
OK = {"Code": "424", "Message": "not finished", "RequestId": "R"}


def busiest_window(times: list[float], width: float = 1.0) -> int:
    """The most timestamps in any half-open interval of ``width`` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def certain_violations(spans: list[tuple[float, float]], amount: int) -> int:
    """Admissions beyond ``amount`` that certainly fell within one second.

    Each admission is known only to lie within ``(before, after)`` of the ``hit`` call; a set of
    admissions whose spans all fit in one second is a violation whatever the exact instants were.
    """
    spans = sorted(spans)
    worst = 0
    for i, (start, _) in enumerate(spans):
        inside = sum(1 for before, after in spans[i:] if before >= start and after < start + 1.0)
        worst = max(worst, inside - amount)
    return worst


def redis_url() -> str:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # pragma: no cover - environment
        skip_or_fail(f"Redis unreachable at {REDIS_URL}: {exc}")
    return str(REDIS_URL)


# -- the limit itself ----------------------------------------------------------------------------


def test_the_admitted_rate_keeps_headroom_below_the_quota() -> None:
    assert admitted_rate(50) == pytest.approx(47.0)
    assert admitted_rate(10) == pytest.approx(9.4)
    assert admitted_rate(0.5) == pytest.approx(0.47)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            admitted_rate(bad)


def test_deletes_are_held_at_their_own_quota_even_with_the_guard_off() -> None:
    off = QuotaGuard(None)
    assert off.rate_for("InitFaceVerify") is None
    assert off.rate_for("DeleteFaceVerifyResult") == pytest.approx(9.4)
    assert QuotaGuard(5).rate_for("DeleteFaceVerifyResult") == pytest.approx(4.7)
    assert QuotaGuard(50).rate_for("DescribeFaceVerify") == pytest.approx(47.0)


def test_a_call_waits_for_its_slot_or_is_refused_with_retry_after() -> None:
    guard = QuotaGuard(20, wait=0.0)  # 18.8/s: one slot every 53 ms
    scope = f"t-{secrets.token_hex(4)}"
    started = time.monotonic()
    guard.acquire(scope, "DescribeFaceVerify")  # an idle schedule: at once
    with pytest.raises(CloudThrottled) as info:
        guard.acquire(scope, "DescribeFaceVerify")  # the next slot is 53 ms away, the wait 0
    assert time.monotonic() - started < 0.03  # refused without sleeping
    assert info.value.retry_after is not None and info.value.retry_after >= 1.0
    assert info.value.code == "Throttling.QuotaGuard"
    guard.acquire(scope, "InitFaceVerify")  # another action has its own schedule
    guard.acquire(scope, "DescribeFaceVerify", until=time.monotonic() + 0.5)  # waits for its slot
    assert 1 / 18.8 - 0.005 < time.monotonic() - started < 0.15


def test_a_burst_is_paced_not_released_at_once() -> None:
    guard = QuotaGuard(20, wait=2.0)
    scope = f"t-{secrets.token_hex(4)}"
    times = []
    for _ in range(10):
        guard.acquire(scope, "InitFaceVerify")
        times.append(time.monotonic())
    # Slots are 1/18.8 s apart; a late wake-up shortens the next gap, never the total.
    assert times[-1] - times[0] >= 9 / 18.8 - 0.01
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) > 0.5 / 18.8  # even: no two calls together


def test_a_thread_waking_late_gives_up_its_slot_once() -> None:
    """A starved process wakes its sleepers after their slots: they would start together with
    the calls scheduled after them, so each takes a new slot (once; never more than two)."""
    oversleep = 0.3  # a process without the CPU for 300 ms, 5-6 intervals at 18.8/s
    guard = QuotaGuard(20, wait=2.0, sleep=lambda seconds: time.sleep(seconds + oversleep))
    scope = f"t-{secrets.token_hex(4)}"
    takes: list[float] = []
    take = guard._take

    def counting(key: str, interval: float, budget: float) -> tuple[bool, float]:
        taken, delay = take(key, interval, budget)
        takes.append(delay)
        return taken, delay

    guard._take = counting  # type: ignore[method-assign]
    guard.acquire(scope, "DescribeFaceVerify")  # an idle schedule: at once, on time
    assert len(takes) == 1
    guard.acquire(scope, "DescribeFaceVerify")  # 53 ms to wait, woke 200 ms late: a new slot
    assert len(takes) == 3 and takes[1] > 0
    # The new slot is the schedule's next one, after the slot given up: the call leaves the
    # crowd of calls scheduled meanwhile instead of joining it.
    assert takes[2] >= 0.0
    # Late again at the second slot: it goes anyway (the wait is bounded, and a slot given up
    # is quota nobody uses).
    takes.clear()
    guard._take = lambda key, interval, budget: (counting(key, interval, budget)[0], 0.05)  # type: ignore[method-assign]
    guard.acquire(scope, "InitFaceVerify")
    assert len(takes) == 2
    # On time, one slot per call.
    punctual = QuotaGuard(20, wait=2.0)
    slots: list[float] = []
    punctual_take = punctual._take
    punctual._take = lambda *a: slots.append(0.0) or punctual_take(*a)  # type: ignore[method-assign,func-returns-value]
    for _ in range(3):
        punctual.acquire(scope, "InitFaceVerify")
    assert len(slots) == 3


def test_slots_wait_up_to_the_budget_then_refuse_with_the_time_to_the_next() -> None:
    slept: list[float] = []
    guard = QuotaGuard(1 / HEADROOM, wait=2.5, sleep=slept.append)  # exactly 1 call per second
    for _ in range(3):
        guard.acquire("s", "InitFaceVerify")  # slots at 0, 1 and 2 s: all within 2.5 s
    assert slept == pytest.approx([1.0, 2.0], abs=0.01)
    with pytest.raises(CloudThrottled) as info:
        guard.acquire("s", "InitFaceVerify")  # 3 s away
    assert info.value.retry_after == pytest.approx(3.0, abs=0.01)


def _gateway(handler: httpx.MockTransport, **kw: object) -> object:
    config = GatewayConfig(scene_id="1", credentials=CREDS, endpoints=("a.test",), **kw)  # type: ignore[arg-type]
    return make_gateway("cloudauth", config, transport=handler)


def test_a_refused_call_never_reaches_alibaba() -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        return httpx.Response(200, json=OK)

    gateway = _gateway(httpx.MockTransport(handler), upstream_qps=5, upstream_wait=0.0)
    outcomes = []
    for _ in range(10):
        try:
            gateway.describe("c1")  # type: ignore[attr-defined]
            outcomes.append("ok")
        except CloudThrottled:
            outcomes.append("throttled")
    # 4.7/s and no waiting: the first goes, the next slot is 213 ms away.
    assert outcomes == ["ok"] + ["throttled"] * 9
    assert len(calls) == 1


def usage(times: list[float], qps: float, seconds: float) -> float:
    """Share of ``qps`` used in the ``seconds`` after the first call."""
    first = min(times)
    return sum(1 for t in times if t < first + seconds) / (qps * seconds)


def test_many_threads_of_one_process_stay_under_the_quota_and_use_it() -> None:
    arrivals: list[float] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            arrivals.append(time.monotonic())
        return httpx.Response(200, json=OK)

    gateway = _gateway(httpx.MockTransport(handler), upstream_qps=50, upstream_wait=1.0)
    stop = time.monotonic() + 3.0
    refused = 0

    def worker() -> None:
        nonlocal refused
        while time.monotonic() < stop:
            try:
                gateway.describe("c1")  # type: ignore[attr-defined]
            except CloudThrottled:
                with lock:
                    refused += 1

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert busiest_window(arrivals) <= 50
    assert usage(arrivals, 50, 3.0) >= 0.9  # the quota is used, not just respected


# -- shared through Redis, across processes ------------------------------------------------------


def _hammer(
    url: str,
    prefix: str,
    qps: float,
    seconds: float,
    threads: int,
    go: Any,
    ready: multiprocessing.Queue[str],
    out: multiprocessing.Queue[tuple[list[float], int]],
) -> None:
    guard = QuotaGuard(qps, wait=1.0, storage_url=url, key_prefix=prefix)
    times: list[float] = []
    refused = 0
    lock = threading.Lock()
    ready.put("ready")
    go.wait(30)
    stop = time.time() + seconds

    def worker() -> None:
        nonlocal refused
        while time.time() < stop:
            try:
                guard.acquire("cloudauth", "DescribeFaceVerify")
            except CloudThrottled:
                with lock:
                    refused += 1
                time.sleep(0.01)  # a refused client comes back a little later
                continue
            with lock:
                times.append(time.time())  # when the call would leave for Alibaba

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((times, refused))


@pytest.fixture
def prefix() -> Iterator[str]:
    token = f"alicertify-test-{secrets.token_hex(6)}"
    yield token
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{token}*"))
        if keys:
            client.delete(*keys)
    except Exception:  # pragma: no cover - cleanup only
        pass


def _three_processes(url: str, prefix: str, qps: float, seconds: float) -> tuple[list[float], int]:
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[tuple[list[float], int]] = ctx.Queue()
    ready: multiprocessing.Queue[str] = ctx.Queue()
    go = ctx.Event()
    procs = [
        ctx.Process(target=_hammer, args=(url, prefix, qps, seconds, 24, go, ready, out)) for _ in range(3)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    go.set()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return [t for times, _ in results for t in times], sum(refused for _, refused in results)


@pytest.mark.redis
@pytest.mark.parametrize("qps", [20.0, 50.0])
def test_three_processes_share_one_even_schedule_in_redis(prefix: str, qps: float) -> None:
    times, refused = _three_processes(redis_url(), prefix, qps, 3.0)
    # 72 threads ask for far more than the quota; together they get one quota, evenly spaced.
    measured = (busiest_window(times), usage(times, qps, 3.0), refused)
    assert refused > 0, measured
    assert busiest_window(times) <= qps, measured
    assert usage(times, qps, 3.0) >= 0.9, measured


@pytest.mark.redis
def test_without_redis_each_process_has_its_own_schedule(prefix: str) -> None:
    guard_a, guard_b = QuotaGuard(20, wait=0), QuotaGuard(20, wait=0)
    guard_a.acquire("s", "InitFaceVerify")
    guard_b.acquire("s", "InitFaceVerify")  # its own schedule: at once too
    assert not guard_a.shared
    url = redis_url()
    shared_a = QuotaGuard(20, wait=0, storage_url=url, key_prefix=prefix)
    shared_b = QuotaGuard(20, wait=0, storage_url=url, key_prefix=prefix)
    shared_a.acquire("s", "InitFaceVerify")
    with pytest.raises(CloudThrottled):
        shared_b.acquire("s", "InitFaceVerify")  # the slot after a's is 53 ms away
    assert shared_a.shared
    # Another account on the same Redis has its own schedule.
    other = QuotaGuard(20, wait=0, storage_url=url, key_prefix=prefix, account="other")
    other.acquire("s", "InitFaceVerify")


@pytest.mark.redis
def test_the_redis_schedule_expires_and_holds_no_secret(prefix: str) -> None:
    import redis

    guard = QuotaGuard(20, wait=0, storage_url=redis_url(), key_prefix=prefix, account="acct")
    guard.acquire("cloudauth", "InitFaceVerify")
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{prefix}:acct:cloudauth:InitFaceVerify"
    assert guard.key_for("cloudauth", "InitFaceVerify") == key
    assert 0 < client.pttl(key) <= 1100  # gone soon after the schedule is idle
    assert abs(float(client.get(key) or 0) - (client.time()[0] + 1 / 18.8)) < 1.5  # server time


def test_each_access_key_gets_its_own_namespace() -> None:
    def key(credentials: StaticCredentials) -> str:
        config = GatewayConfig(scene_id="1", credentials=credentials)
        guard = guard_for(config)
        assert guard is not None
        return guard.key_for("cloudauth", "InitFaceVerify")

    first = key(CREDS)
    assert first.startswith(f"{KEY_PREFIX}:") and first.endswith(":cloudauth:InitFaceVerify")
    assert CREDS.get().access_key_id not in first  # a hash, not the id
    assert key(StaticCredentials("LTAI5tQuotaTest000001", "other-secret")) == first
    assert key(StaticCredentials("LTAI5tQuotaTest000002", "x")) != first
    # A rotating (STS) key id would split the account's schedule: the default namespace.
    assert key(StaticCredentials("STS.abc", "x", "token")) == f"{KEY_PREFIX}:default:cloudauth:InitFaceVerify"


def test_a_dead_redis_falls_back_to_the_process_schedule(caplog: pytest.LogCaptureFixture) -> None:
    guard = QuotaGuard(20, wait=0, storage_url="redis://127.0.0.1:1/0")
    assert guard.shared
    with caplog.at_level(logging.WARNING, logger="flask_alicertify.cloud"):
        started = time.monotonic()
        guard.acquire("dead", "InitFaceVerify")
        with pytest.raises(CloudThrottled):
            guard.acquire("dead", "InitFaceVerify")
        assert time.monotonic() - started < 2.0
    assert "rate-limit storage failed" in caplog.text
    assert "127.0.0.1:1" not in caplog.text


def test_an_unusable_storage_url_is_a_start_up_error() -> None:
    for url in ("nosuch://user:pw@host/0", "memcached://user:pw@host:11211"):
        with pytest.raises(ValueError, match="rate_limit_url") as info:
            QuotaGuard(50, storage_url=url)
        assert "pw" not in str(info.value)
    assert not QuotaGuard(50, storage_url="memory://").shared


def test_gateways_can_share_one_guard() -> None:
    guard = QuotaGuard(5, wait=0)
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=OK))
    first = _gateway(transport, limiter=guard)
    second = _gateway(transport, limiter=guard)
    first.describe("c1")  # type: ignore[attr-defined]
    with pytest.raises(CloudThrottled):
        second.describe("c1")  # type: ignore[attr-defined]
    _gateway(transport).describe("c1")  # type: ignore[attr-defined]  # its own guard
