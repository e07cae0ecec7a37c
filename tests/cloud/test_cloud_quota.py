"""The quota guard holds every process's calls under the account's QPS: threads, processes, real Redis."""

from __future__ import annotations

import logging
import multiprocessing
import secrets
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from support import skip_or_fail
from support.storage import REDIS_URL

from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.errors import CloudThrottled
from flask_alicertify.cloud.gateways import make_gateway
from flask_alicertify.cloud.quota import QuotaGuard
from flask_alicertify.cloud.quota import admitted_per_window

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
    assert (admitted_per_window(50).amount, admitted_per_window(50).get_expiry()) == (47, 1)
    assert admitted_per_window(10).amount == 9
    assert (admitted_per_window(0.5).amount, admitted_per_window(0.5).get_expiry()) == (1, 3)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            admitted_per_window(bad)


def test_deletes_are_held_at_their_own_quota_even_with_the_guard_off() -> None:
    off = QuotaGuard(None)
    assert off.item_for("InitFaceVerify") is None
    assert off.item_for("DeleteFaceVerifyResult").amount == 9  # type: ignore[union-attr]
    low = QuotaGuard(5)
    assert low.item_for("DeleteFaceVerifyResult").amount == 4  # type: ignore[union-attr]
    assert QuotaGuard(50).item_for("DescribeFaceVerify").amount == 47  # type: ignore[union-attr]


def test_a_call_waits_for_a_slot_then_is_refused_with_retry_after() -> None:
    guard = QuotaGuard(20, wait=0.0)  # no waiting: the 19 slots of the window go at once
    scope = f"t-{secrets.token_hex(4)}"
    started = time.monotonic()
    for _ in range(19):
        guard.acquire(scope, "DescribeFaceVerify")
    assert time.monotonic() - started < 0.3
    with pytest.raises(CloudThrottled) as info:
        guard.acquire(scope, "DescribeFaceVerify", until=time.monotonic() + 0.1)
    assert time.monotonic() - started < 0.4  # refused without sleeping past its wait
    assert info.value.retry_after is not None and info.value.retry_after >= 1.0
    assert info.value.code == "Throttling.QuotaGuard"
    guard.acquire(scope, "InitFaceVerify")  # another action has its own window
    guard.acquire(scope, "DescribeFaceVerify", until=time.monotonic() + 1.5)  # waits for the oldest
    assert 0.9 < time.monotonic() - started < 1.4


def test_a_burst_is_paced_not_released_at_once() -> None:
    guard = QuotaGuard(20, wait=2.0)
    scope = f"t-{secrets.token_hex(4)}"
    times = []
    for _ in range(10):
        guard.acquire(scope, "InitFaceVerify")
        times.append(time.monotonic())
    # Slots are 1/19 s apart; a late wake-up shortens the next gap, never the total.
    assert times[-1] - times[0] >= 9 / 19 - 0.01


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
    assert outcomes == ["ok"] * 4 + ["throttled"] * 6
    assert len(calls) == 4


def test_many_threads_of_one_process_stay_under_the_quota() -> None:
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
    assert len(arrivals) >= 0.85 * 47 * 3  # the quota is used, not just respected


# -- shared through Redis, across processes ------------------------------------------------------


Spans = list[tuple[float, float]]


def _hammer(
    url: str,
    scope: str,
    qps: float,
    seconds: float,
    threads: int,
    out: multiprocessing.Queue[tuple[Spans, int]],
) -> None:
    guard = QuotaGuard(qps, wait=2.0, storage_url=url)
    spans: list[tuple[float, float]] = []
    refused = 0
    lock = threading.Lock()
    stop = time.time() + seconds

    def worker() -> None:
        nonlocal refused
        while time.time() < stop:
            before = time.time()
            try:
                guard.acquire(scope, "DescribeFaceVerify")
            except CloudThrottled:
                with lock:
                    refused += 1
                continue
            # The admission happened inside acquire's last hit: at most one sleep before "after".
            with lock:
                spans.append((before, time.time()))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((spans, refused))


@pytest.fixture
def scope() -> Iterator[str]:
    token = f"test-{secrets.token_hex(6)}"
    yield token
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"*{token}*"))
        if keys:
            client.delete(*keys)
    except Exception:  # pragma: no cover - cleanup only
        pass


@pytest.mark.redis
def test_three_processes_share_one_window_in_redis(scope: str) -> None:
    url = redis_url()
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[tuple[Spans, int]] = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(url, scope, 20.0, 3.0, 4, out)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    spans = [s for spans, _ in results for s in spans]
    amount = admitted_per_window(20.0).amount  # 19
    # Each admission's instant lies in its span; the precise moments are the limiter's.
    precise = [after for _, after in spans]
    assert certain_violations(spans, amount) == 0
    assert busiest_window(precise, 0.9) <= amount
    assert len(spans) >= 0.8 * amount * 3  # shared: the three together get one quota, not three
    assert len(spans) <= amount * 4 + amount  # ...and not more


@pytest.mark.redis
def test_without_redis_each_process_has_its_own_window(scope: str) -> None:
    guard_a, guard_b = QuotaGuard(20), QuotaGuard(20)
    for _ in range(19):
        guard_a.acquire(scope, "InitFaceVerify")
        guard_b.acquire(scope, "InitFaceVerify")
    assert not guard_a.shared
    url = redis_url()
    shared_a, shared_b = QuotaGuard(20, wait=0, storage_url=url), QuotaGuard(20, wait=0, storage_url=url)
    for i in range(19):
        (shared_a if i % 2 else shared_b).acquire(scope, "InitFaceVerify")
    with pytest.raises(CloudThrottled):
        shared_a.acquire(scope, "InitFaceVerify")
    assert shared_a.shared


def test_a_dead_redis_falls_back_to_the_process_window(caplog: pytest.LogCaptureFixture) -> None:
    guard = QuotaGuard(20, wait=0, storage_url="redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="flask_alicertify.cloud"):
        started = time.monotonic()
        for _ in range(19):
            guard.acquire("dead", "InitFaceVerify")
        with pytest.raises(CloudThrottled):
            guard.acquire("dead", "InitFaceVerify")
        assert time.monotonic() - started < 2.0
    assert "rate-limit storage failed" in caplog.text
    assert "127.0.0.1:1" not in caplog.text


def test_an_unusable_storage_url_is_a_start_up_error() -> None:
    with pytest.raises(ValueError, match="rate_limit_url") as info:
        QuotaGuard(50, storage_url="nosuch://user:pw@host/0")
    assert "pw" not in str(info.value)


def test_gateways_can_share_one_guard() -> None:
    guard = QuotaGuard(5, wait=0)
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=OK))
    first = _gateway(transport, limiter=guard)
    second = _gateway(transport, limiter=guard)
    for gw in (first, second, first, second):
        gw.describe("c1")  # type: ignore[attr-defined]
    with pytest.raises(CloudThrottled):
        second.describe("c1")  # type: ignore[attr-defined]
