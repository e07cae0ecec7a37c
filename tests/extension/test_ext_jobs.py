"""The jobs: reconcile's robustness, deletion at Alibaba, the retention purge, instance isolation."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.ext import BACKENDS
from support.ext import CERT_NAME
from support.ext import CERT_NO
from support.ext import Harness
from support.ext import harness
from support.ext import open_storage

from flask_alicertify.cloud.base import Gateway
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.base import InitResult
from flask_alicertify.deletion import Pacer
from flask_alicertify.records import Record
from flask_alicertify.records import Status
from flask_alicertify.sandbox.fake import Fault
from flask_alicertify.sandbox.fake import Outcome
from flask_alicertify.service import CertifyService
from flask_alicertify.storage import MemoryStorage


def cli(h: Harness, *args: str) -> Any:
    return h.app.test_cli_runner().invoke(args=["alicertify", *args])


def row(output: str, label: str) -> str | None:
    """The value of one row of a CLI summary table (None when the row is absent)."""
    match = re.search(rf"^{re.escape(label)}\s+(\S+)$", output, re.MULTILINE)
    return match.group(1) if match else None


def old_record(h: Harness, status: Status = Status.INITIATING, **fields: Any) -> Record:
    now = h.clock()
    record = Record(
        id=fields.pop("id", None) or uuid.uuid4().hex,
        status=status,
        created_at=now,
        updated_at=now,
        user_id=fields.pop("user_id", "filler"),
        cert_no_digest="d" * 64,
        cert_no_masked="1****************X",
        cert_name_masked="张*",
        **fields,
    )
    h.storage.create(record)
    return record


# -- reconcile never stalls and never stops -------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_reconcile_pages_past_records_it_skips(kind: str, tmp_path: Path) -> None:
    """150 young ``initiating`` records (older than --older-than, younger than the lifetime) come
    first; the passed verification behind them is settled in the same run."""
    with open_storage(kind, tmp_path) as storage, harness(storage=storage) as h:
        for _ in range(150):
            old_record(h)
        h.clock.advance(60)
        h.cloud.script_next(Outcome.passes())
        cid = h.start()
        h.clock.advance(11 * 60)
        report = h.ext.service(h.app).reconcile(older_than=timedelta(minutes=10))
        assert report.by_outcome() == {"skipped": 150, "verdict": 1}
        assert h.record(cid).status == Status.PASSED
        assert h.names().count("certify_passed") == 1


class PoisonGateway:
    """Describe of one certify id raises what the upstream's garbage did to a JSON parser."""

    def __init__(self, inner: Gateway) -> None:
        self.inner, self.api, self.poisoned = inner, inner.api, set[str]()

    def init(self, request: InitRequest) -> InitResult:
        return self.inner.init(request)

    def describe(self, certify_id: str) -> Any:
        if certify_id in self.poisoned:
            raise RecursionError("maximum recursion depth exceeded")
        return self.inner.describe(certify_id)

    def delete(self, certify_id: str) -> Any:
        return self.inner.delete(certify_id)

    def close(self) -> None:
        self.inner.close()


class PoisonStorage(MemoryStorage):
    """One record's updates fail, as a row the database refuses."""

    poisoned: str = ""

    def update(self, record_id: str, *, expect: Any, **changes: Any) -> Record | None:
        if record_id == self.poisoned and "status" in changes:
            raise RuntimeError("could not serialize access due to concurrent update")
        return super().update(record_id, expect=expect, **changes)


def test_one_poisoned_record_is_an_error_row_and_the_run_goes_on() -> None:
    storage = PoisonStorage()
    gateways: list[PoisonGateway] = []

    def wrap(g: Gateway) -> Gateway:
        gateways.append(PoisonGateway(g))
        return gateways[0]  # type: ignore[return-value]

    with harness(storage=storage, wrap_gateway=wrap) as h:
        cids = []
        for _ in range(4):
            h.cloud.script_next(Outcome.passes())
            cids.append(h.start())
        gateways[0].poisoned.add(cids[0])  # the oldest: first in reconcile's order
        storage.poisoned = h.record(cids[1]).id
        h.clock.advance(11 * 60)
        result = cli(h, "reconcile")
        assert result.exit_code == 0, result.output
        assert row(result.output, "outcome: error") == "2"
        assert row(result.output, "outcome: verdict") == "2"
        assert [h.record(c).status for c in cids] == [
            Status.PENDING,
            Status.PENDING,
            Status.PASSED,
            Status.PASSED,
        ]


def test_a_dead_record_whose_describe_keeps_failing_with_a_business_error_is_expired() -> None:
    with harness() as h:
        dead = h.start()
        h.clock.advance(20 * 60)
        young = h.start(user="bob")
        h.clock.advance(20 * 60)  # dead: 40 minutes old; young: 20 minutes (not past its lifetime)
        h.cloud.inject(Fault.error("406"), times=2, action="DescribeFaceVerify")
        report = h.ext.service(h.app).reconcile(older_than=timedelta(minutes=10))
        assert report.by_outcome() == {"error": 2}
        assert h.record(young).status == Status.PENDING and h.record(young).error_code is None
        assert h.record(dead).status == Status.PENDING and h.record(dead).error_code == "describe_406"
        # Alibaba keeps refusing (after a scene change, say): the next run expires it.
        h.clock.advance(11 * 60)
        h.cloud.inject(Fault.error("406"), times=2, action="DescribeFaceVerify")
        report = h.ext.service(h.app).reconcile(older_than=timedelta(minutes=10))
        assert h.record(dead).status == Status.EXPIRED
        assert h.record(dead).error_code == "describe_406"
        assert report.by_outcome()["expired"] == 1
        assert h.names().count("certify_expired") == 1


def test_transport_faults_never_expire_a_record_by_themselves() -> None:
    with harness() as h:
        cid = h.start()
        h.clock.advance(3600)
        h.cloud.endpoint_down("cloudauth.cn-shanghai.aliyuncs.com")
        for _ in range(3):
            report = h.ext.service(h.app).reconcile(older_than=timedelta(0))
            assert report.by_outcome() == {"error": 1}
            h.clock.advance(600)
        assert h.record(cid).status == Status.PENDING
        h.cloud.endpoint_up("cloudauth.cn-shanghai.aliyuncs.com")
        h.ext.service(h.app).reconcile(older_than=timedelta(0))
        assert h.record(cid).status == Status.EXPIRED


# -- deletion at Alibaba ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_reconcile_deletes_finished_verifications_at_alibaba(kind: str, tmp_path: Path) -> None:
    with (
        open_storage(kind, tmp_path) as storage,
        harness(storage=storage, ALICERTIFY_DELETE_AT_ALIBABA=True) as h,
    ):
        h.cloud.script_next(Outcome.passes())
        passed = h.start()
        h.result(passed, "9000")
        h.cloud.script_next(Outcome.fails("205"))
        failed = h.start()
        h.result(failed, "9000")
        pending = h.start()
        # Just settled: left alone by this run (its request may still be running receivers).
        assert "deleted" not in cli(h, "reconcile").output
        h.clock.advance(61)
        result = cli(h, "reconcile")
        assert result.exit_code == 0, result.output
        assert row(result.output, "outcome: deleted") == "2"
        for cid in (passed, failed):
            assert h.record(cid).deleted_at is not None
            assert h.cloud.sessions[cid].deleted_at is not None
            assert h.record(cid).status in (Status.PASSED, Status.FAILED)  # the verdict stays
        assert h.record(pending).deleted_at is None and h.cloud.sessions[pending].deleted_at is None
        deletes = len(h.cloud.calls_for("DeleteFaceVerifyResult"))
        h.clock.advance(61)
        cli(h, "reconcile")
        assert len(h.cloud.calls_for("DeleteFaceVerifyResult")) == deletes  # each once


def test_redact_handles_alibabas_fail_reasons() -> None:
    with harness(ALICERTIFY_DELETE_AT_ALIBABA=True) as h:
        gateway = h.ext.state(h.app).gateway
        h.cloud.script_next(Outcome.passes())
        already = h.start()
        h.result(already, "9000")
        assert gateway.delete(already).deleted  # deleted behind our back: NOT_DELETE_REPEATEDLY next
        never_described = h.start()
        record = h.record(never_described)
        h.storage.update(record.id, expect={Status.PENDING}, status=Status.EXPIRED, updated_at=h.clock())
        h.clock.advance(1)
        result = cli(h, "redact")
        assert result.exit_code == 0, result.output
        assert row(result.output, "outcome: deleted") == "2"
        assert "redact: 2 checked" in result.stderr  # the progress lines
        assert h.record(already).deleted_at is not None
        assert h.record(never_described).deleted_at is not None
        # NEED_QUERY_VERIFY_RESULT: described once, then deleted.
        describes = [c for c in h.cloud.calls_for("DescribeFaceVerify") if c.certify_id == never_described]
        assert len(describes) == 1
        assert h.cloud.sessions[never_described].deleted_at is not None


def test_redact_is_refused_without_the_setting(h: Harness) -> None:
    result = cli(h, "redact")
    assert result.exit_code == 1
    assert "ALICERTIFY_DELETE_AT_ALIBABA is off" in result.output


def test_deletion_errors_are_rows_and_the_job_goes_on() -> None:
    with harness(ALICERTIFY_DELETE_AT_ALIBABA=True) as h:
        cids = []
        for _ in range(3):
            h.cloud.script_next(Outcome.passes())
            cids.append(h.start())
            h.result(cids[-1], "9000")
        h.cloud.inject(Fault.http(503), times=1, action="DeleteFaceVerifyResult")
        h.clock.advance(61)
        report = h.ext.service(h.app).redact()
        assert report.by_outcome() == {"error": 1, "deleted": 2}


def test_the_pacer_keeps_deletes_under_ten_per_second() -> None:
    clock = {"t": 0.0}
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["t"] += seconds

    pacer = Pacer(10, sleep=sleep, monotonic=lambda: clock["t"])
    for _ in range(35):
        pacer.wait()
    assert clock["t"] == pytest.approx(2.5)  # 10 at once, then 25 at 10 per second
    assert max(slept) <= 0.1 + 1e-9


# -- retention ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_purge_clears_identity_fields_past_the_retention(kind: str, tmp_path: Path) -> None:
    with (
        open_storage(kind, tmp_path) as storage,
        harness(storage=storage, ALICERTIFY_RETENTION="30d") as h,
    ):
        h.cloud.script_next(Outcome.fails("204"))
        old = h.start()
        h.result(old, "9000")
        old_pending = h.start()
        h.clock.advance(31 * 86400)
        young = h.start()
        before = h.record(old)

        dry = cli(h, "purge", "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert row(dry.output, "outcome: would purge") == "2"
        assert h.record(old).cert_no_digest == before.cert_no_digest  # nothing changed

        result = cli(h, "purge")
        assert result.exit_code == 0, result.output
        assert row(result.output, "outcome: purged") == "2"
        assert "purge: 2 checked" in result.stderr
        purged = h.record(old)
        assert (purged.cert_no_digest, purged.cert_no_masked, purged.cert_name_masked) == ("", "", "")
        assert purged.purged_at is not None
        # What an audit needs stays.
        for name in ("id", "user_id", "status", "passed", "sub_code", "certify_id", "created_at", "sandbox"):
            assert getattr(purged, name) == getattr(before, name), name
        assert h.record(old_pending).purged_at is not None
        assert h.record(young).cert_no_masked == "1****************X" and h.record(young).purged_at is None
        assert "outcome: purged" not in cli(h, "purge").output  # nothing left to do
        assert CERT_NO not in result.output and CERT_NAME not in result.output


def test_purge_needs_a_retention(h: Harness) -> None:
    result = cli(h, "purge")
    assert result.exit_code == 1
    assert "ALICERTIFY_RETENTION is not set" in result.output


@pytest.mark.parametrize("kind", BACKENDS)
def test_purge_and_reconcile_run_together_safely(kind: str, tmp_path: Path) -> None:
    with (
        open_storage(kind, tmp_path) as storage,
        harness(storage=storage, ALICERTIFY_RETENTION="1h", ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None) as h,
    ):
        cids = []
        for i in range(40):
            h.cloud.script_next(Outcome.passes() if i % 2 else Outcome.fails("205"))
            cids.append(h.start())
        h.clock.advance(2 * 3600)
        service = h.ext.service(h.app)
        barrier = threading.Barrier(2)
        reports: dict[str, Any] = {}

        def run(name: str, job: Any) -> None:
            barrier.wait(timeout=30)
            reports[name] = job()

        threads = [
            threading.Thread(target=run, args=("purge", lambda: service.purge(batch_size=7))),
            threading.Thread(
                target=run,
                args=("reconcile", lambda: service.reconcile(older_than=timedelta(0), batch_size=7)),
            ),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert reports["purge"].by_outcome() == {"purged": 40}
        for cid in cids:
            record = h.record(cid)
            assert record.purged_at is not None and record.cert_no_digest == ""
            # Dead by now: each either got its verdict or expired; the purge undid no transition.
            assert record.terminal, record.status
        assert len([n for n in h.names() if n != "certify_initiated"]) == 40


# -- instances and sandbox mode never mix --------------------------------------------------------------


def test_another_instance_never_reads_or_changes_these_records() -> None:
    storage = MemoryStorage()
    with harness(storage=storage, ALICERTIFY_CALLBACK_URL="https://app.example.com/cb") as h:
        mine = h.ext.service(h.app)
        # Another instance on the same store and the same (fake) Alibaba account.
        other = CertifyService(mine.settings, storage, mine.gateway, clock=h.clock, instance="kyc")
        h.cloud.script_next(Outcome.passes())
        cid = h.start()
        h.cloud.complete(cid, passed=True)
        token = h.cloud.sessions[cid].callback_token
        for call in (
            lambda: other.submit_result(user_id="alice", certify_id=cid, client_status="9000"),
            lambda: other.current(user_id="alice", certify_id=cid),
            lambda: other.handle_callback(certify_id=cid, token=token),
        ):
            with pytest.raises(Exception) as info:
                call()
            assert getattr(info.value, "code", None) == "unknown_certify_id"
        assert other.inspect(cid)[0] is None
        h.clock.advance(3600)
        assert other.reconcile(older_than=timedelta(0)).checked == 0
        assert h.record(cid).status == Status.PENDING and h.record(cid).describe_count == 0
        assert mine.reconcile(older_than=timedelta(0)).by_outcome() == {"verdict": 1}


def test_sandbox_records_are_marked_and_a_live_service_ignores_them() -> None:
    with harness() as h:
        live = h.ext.service(h.app)
        sandbox = CertifyService(
            live.settings.__class__(**{**vars(live.settings), "sandbox": True}),
            h.storage,
            h.ext.state(h.app).gateway,
            clock=h.clock,
        )
        started = sandbox.start(user_id="alice", cert_no=CERT_NO, cert_name=CERT_NAME)
        assert started.record.sandbox is True
        cid = started.record.certify_id
        assert cid is not None
        with pytest.raises(Exception) as info:
            live.current(user_id="alice", certify_id=cid)
        assert getattr(info.value, "code", None) == "unknown_certify_id"
        assert h.start() and h.storage.get_by_certify_id(h.start()).sandbox is False  # type: ignore[union-attr]


# -- init-db ----------------------------------------------------------------------------------------------


def test_init_db_refuses_a_table_that_migrations_manage(h: Harness) -> None:
    from flask_alicertify.errors import SchemaManagedByMigrations

    class Managed(MemoryStorage):
        def create_all(self) -> None:
            raise SchemaManagedByMigrations("alicertify_records")

    h.ext.state(h.app).storage = Managed()
    result = cli(h, "init-db")
    assert result.exit_code == 1
    assert "flask db upgrade" in result.output
    assert "Traceback" not in result.output
