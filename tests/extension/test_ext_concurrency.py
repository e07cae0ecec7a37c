"""Exactly once under concurrency, and the describe budget, on every storage backend.

PostgreSQL and Redis skip locally when absent (never under CI=true). The budget tests run the
default ``ALICERTIFY_DESCRIBE_MIN_INTERVAL`` (2 s) with a clock that does not move, so every
request is "in one interval": one describe, however many requests, threads or processes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import pytest
from support.ext import BACKENDS
from support.ext import CERT_NAME
from support.ext import CERT_NO
from support.ext import harness
from support.ext import open_storage

from flask_alicertify.cloud.base import Gateway
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.base import InitResult
from flask_alicertify.cloud.base import Verdict
from flask_alicertify.records import Status
from flask_alicertify.sandbox.fake import Outcome

CALLBACK_URL = "https://app.example.com/alicertify/callback"


class RacingGateway:
    """Holds every describe until ``parties`` of them are in flight, then lets all answer at once.

    Nobody can store a verdict before all workers have read the record as non-terminal and asked
    Alibaba, so every one of them reaches the compare-and-set: a real race, not a lucky order.
    """

    def __init__(self, inner: Gateway, parties: int) -> None:
        self.inner = inner
        self.api = inner.api
        self.barrier = threading.Barrier(parties)

    def init(self, request: InitRequest) -> InitResult:
        return self.inner.init(request)

    def describe(self, certify_id: str) -> Verdict:
        verdict = self.inner.describe(certify_id)
        self.barrier.wait(timeout=60)
        return verdict

    def close(self) -> None:
        self.inner.close()


def run_together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run every job in its own thread, released at the same instant; re-raise any failure."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    failures: list[BaseException] = []

    def run(i: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = job()
        except BaseException as e:  # surfaced in the main thread below
            failures.append(e)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    if failures:
        raise failures[0]
    return results


@pytest.mark.parametrize("kind", BACKENDS)
def test_16_result_posts_and_3_callbacks_pass_exactly_once(kind: str, tmp_path: Path) -> None:
    racing = functools.partial(RacingGateway, parties=19)
    with (
        open_storage(kind, tmp_path) as storage,
        # Interval 0: every request may describe, so all 19 reach the compare-and-set together.
        harness(
            storage=storage,
            wrap_gateway=racing,
            ALICERTIFY_CALLBACK_URL=CALLBACK_URL,
            ALICERTIFY_DESCRIBE_MIN_INTERVAL=0,
        ) as h,
    ):
        h.cloud.script_next(Outcome.passes())
        cid = h.start()
        h.cloud.complete(cid, passed=True, sub_code="200")
        url = h.cloud.callback_url(cid)
        assert url is not None
        query = dict(parse_qsl(urlsplit(url).query))

        def post_result() -> tuple[int, Any]:
            client = h.client("alice")
            body = {"certifyId": cid, "resultStatus": "9000", "result": {"certifyId": cid}}
            response = client.post("/alicertify/result", json=body)
            return response.status_code, response.get_json()

        def callback() -> tuple[int, Any]:
            response = h.client(None).get("/alicertify/callback", query_string=query)
            return response.status_code, response.get_json()

        results = run_together([post_result] * 16 + [callback] * 3)

        assert [status for status, _ in results] == [200] * 19
        assert all(body["status"] == "passed" for _, body in results[:16])
        assert all(body == {"ok": True} for _, body in results[16:])
        assert h.describes() == 19  # all of them raced to the compare-and-set
        assert h.names().count("certify_passed") == 1
        assert h.names() == ["certify_initiated", "certify_passed"]
        record = h.record(cid)
        assert record.status == Status.PASSED and record.passed is True
        # Late arrivals after the verdict do not describe again.
        before = h.describes()
        assert h.result(cid, "9000").get_json()["status"] == "passed"
        assert h.describes() == before


@pytest.mark.parametrize("kind", BACKENDS)
def test_concurrent_cancels_abandon_exactly_once(kind: str, tmp_path: Path) -> None:
    racing = functools.partial(RacingGateway, parties=12)
    with (
        open_storage(kind, tmp_path) as storage,
        harness(storage=storage, wrap_gateway=racing, ALICERTIFY_DESCRIBE_MIN_INTERVAL=0) as h,
    ):
        cid = h.start()

        def cancel() -> int:
            return h.result(cid, "6001", None).status_code  # type: ignore[no-any-return]

        assert run_together([cancel] * 12) == [200] * 12
        assert h.describes() == 12
        assert h.names() == ["certify_initiated", "certify_abandoned"]
        assert h.record(cid).status == Status.ABANDONED


@pytest.mark.parametrize("kind", BACKENDS)
def test_20_parallel_inits_with_limit_5_let_exactly_5_through(kind: str, tmp_path: Path) -> None:
    with (
        open_storage(kind, tmp_path) as storage,
        harness(storage=storage, ALICERTIFY_MAX_ATTEMPTS_PER_DAY=5) as h,
    ):

        def init() -> int:
            client = h.client("alice")
            body = {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}}
            return client.post("/alicertify/init", json=body).status_code  # type: ignore[no-any-return]

        statuses = run_together([init] * 20)
        assert sorted(statuses) == [200] * 5 + [429] * 15
        assert len(h.cloud.calls_for("InitFaceVerify")) == 5
        assert h.names() == ["certify_initiated"] * 5
        # Refused attempts left no records behind to eat into tomorrow's window.
        assert storage.count_inits("alice", since=h.clock() - timedelta(days=1)) == 5


# -- the describe budget ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_200_result_posts_in_one_interval_describe_once(kind: str, tmp_path: Path) -> None:
    with open_storage(kind, tmp_path) as storage, harness(storage=storage) as h:
        cid = h.start()
        statuses = [h.result(cid, "9000").status_code for _ in range(100)]
        statuses += run_together([lambda: h.result(cid, "6001", None).status_code] * 100)
        assert statuses == [200] * 200
        assert h.describes() == 1
        record = h.record(cid)
        assert record.describe_count == 1
        # Every later post still recorded its claim (the last one wins), and answered the stored state.
        assert record.status == Status.PENDING and record.client_status == "6001"
        # The next interval may describe again, once.
        h.clock.advance(2)
        assert h.result(cid, "6001", None).get_json()["status"] == "abandoned"
        assert h.describes() == 2


@pytest.mark.parametrize("kind", BACKENDS)
def test_64_concurrent_polls_in_one_interval_describe_once(kind: str, tmp_path: Path) -> None:
    with open_storage(kind, tmp_path) as storage, harness(storage=storage) as h:
        cid = h.start()
        h.clock.advance(120)  # past unclaimed_describe_after: polls may describe
        h.cloud.complete(cid, passed=True)

        def poll() -> Any:
            response = h.client("alice").get(f"/alicertify/result/{cid}")
            return response.status_code, response.get_json()["status"]

        results = run_together([poll] * 64)
        assert [status for status, _ in results] == [200] * 64
        assert h.describes() == 1
        # The one that described answered the verdict; the others the state they read.
        assert {state for _, state in results} <= {"passed", "pending"}
        assert h.record(cid).status == Status.PASSED
        assert h.names().count("certify_passed") == 1


def test_callbacks_respect_the_budget_and_skip_terminal_records() -> None:
    with harness(ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h:
        cid = h.start()
        assert h.result(cid, "9000").status_code == 200  # described: not finished yet
        assert h.describes() == 1
        h.cloud.complete(cid, passed=True)
        url = h.cloud.callback_url(cid)
        assert url is not None
        query = dict(parse_qsl(urlsplit(url).query))

        def callback() -> Any:
            return h.client(None).get("/alicertify/callback", query_string=query).get_json()

        assert callback() == {"ok": True}  # within the interval: answered without describing
        assert h.describes() == 1
        h.clock.advance(2)
        assert callback() == {"ok": True}
        assert h.describes() == 2 and h.record(cid).status == Status.PASSED
        h.clock.advance(60)
        for _ in range(5):
            assert callback() == {"ok": True}  # terminal: never described again
        assert h.describes() == 2


SHARED = [p for p in BACKENDS if p.values[0] in ("postgresql", "redis")]


@pytest.mark.parametrize("kind", SHARED)
def test_the_budget_holds_across_worker_processes(kind: str, tmp_path: Path) -> None:
    """Three WSGI worker processes on one PostgreSQL table / Redis prefix, one shared fake cloud:
    60 polls and 30 result posts at once, spread over the workers -> one describe."""
    import multiprocessing

    import httpx
    import support.workers as workers
    from support.reliability import ACCESS_KEY_ID
    from support.reliability import ACCESS_KEY_SECRET
    from support.reliability import CERT_NOS
    from support.reliability import NAMES
    from support.reliability import run_together as run_all
    from support.storage import open_test_backend

    from flask_alicertify.sandbox.fake import FakeCloud

    cloud = FakeCloud(access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET)
    ctx = multiprocessing.get_context("spawn")
    config = {"ALICERTIFY_DESCRIBE_MIN_INTERVAL": 3600, "ALICERTIFY_UNCLAIMED_DESCRIBE_AFTER": 0}
    with open_test_backend(kind, tmp_path) as backend, cloud.serve() as base_url:
        backend.storage.get("warm-up")
        with workers.running(ctx, kind, backend.spec, base_url, count=3, config=config) as urls:
            with httpx.Client(timeout=60, headers={"X-User": "alice"}) as http:
                body = {"serviceParameters": {"certNo": CERT_NOS[0], "certName": NAMES[0]}}
                started = http.post(urls[0] + "/alicertify/init", json=body)
                assert started.status_code == 200, started.text
                cid = started.json()["certifyId"]
                cloud.complete(cid, passed=True)
                jobs: list[Callable[[], Any]] = []
                for i in range(60):
                    jobs.append(lambda u=urls[i % 3]: http.get(f"{u}/alicertify/result/{cid}").status_code)
                payload = {"certifyId": cid, "resultStatus": "9000", "result": None}
                for i in range(30):
                    jobs.append(
                        lambda u=urls[i % 3]: http.post(f"{u}/alicertify/result", json=payload).status_code
                    )
                assert run_all(jobs) == [200] * 90
        record = backend.storage.get_by_certify_id(cid)
        assert record is not None and record.status == Status.PASSED
    assert len(cloud.calls_for("DescribeFaceVerify")) == 1
    assert record.describe_count == 1
