"""Exactly once under concurrency, on every storage backend (PostgreSQL/Redis skip unless CI=true)."""

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
        harness(storage=storage, wrap_gateway=racing, ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h,
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
    with open_storage(kind, tmp_path) as storage, harness(storage=storage, wrap_gateway=racing) as h:
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
