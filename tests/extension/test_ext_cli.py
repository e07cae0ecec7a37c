"""``flask alicertify init-db | describe | reconcile`` through ``app.test_cli_runner()``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from support.ext import CERT_NAME
from support.ext import CERT_NO
from support.ext import Harness
from support.ext import base_config
from support.ext import cloud_gateway
from support.ext import header_user
from support.ext import new_cloud

from flask_alicertify import AliCertify
from flask_alicertify.cli import parse_duration
from flask_alicertify.records import Record
from flask_alicertify.records import Status
from flask_alicertify.sandbox.fake import Fault
from flask_alicertify.sandbox.fake import Outcome


def test_init_db_creates_the_table(tmp_path: Path) -> None:
    sa = pytest.importorskip("sqlalchemy")
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(base_config(TESTING=False))
    ext = AliCertify(user_loader=header_user)
    ext.init_app(app, gateway=cloud_gateway(new_cloud()))
    try:
        result = app.test_cli_runner().invoke(args=["alicertify", "init-db"])
        assert result.exit_code == 0, result.output
        assert "Created the records table" in result.output
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'instance' / 'alicertify.sqlite3'}")
        try:
            assert "alicertify_records" in sa.inspect(engine).get_table_names()
        finally:
            engine.dispose()
        # Idempotent.
        assert app.test_cli_runner().invoke(args=["alicertify", "init-db"]).exit_code == 0
    finally:
        ext.close(app)


def test_init_db_on_memory_storage_says_nothing_to_do(h: Harness) -> None:
    result = h.app.test_cli_runner().invoke(args=["alicertify", "init-db"])
    assert result.exit_code == 0
    assert "needs no schema" in result.output


def test_describe_prints_verdict_and_masked_identity_only(h: Harness) -> None:
    h.cloud.script_next(Outcome.fails("204"))
    cid = h.start()
    result = h.app.test_cli_runner().invoke(args=["alicertify", "describe", cid])
    assert result.exit_code == 0, result.output
    assert "1****************X" in result.output and "张*" in result.output
    assert CERT_NO not in result.output and CERT_NAME not in result.output
    assert "sub code" in result.output and "204" in result.output
    assert "pending" in result.output
    # describe inspects; it does not change the record
    assert h.record(cid).status == Status.PENDING
    assert h.names() == ["certify_initiated"]


def test_describe_unknown_certify_id_fails_cleanly(h: Harness) -> None:
    result = h.app.test_cli_runner().invoke(args=["alicertify", "describe", "f" * 32])
    assert result.exit_code == 1
    assert "describe failed" in result.output
    assert "Traceback" not in result.output


def test_reconcile_settles_and_expires(h: Harness) -> None:
    storage, service = h.storage, h.ext.service(h.app)
    # Old records (created 51 minutes before the run).
    h.cloud.script_next(Outcome.passes())
    old_passing = h.start()
    old_pending = h.start()
    old_abandoned = h.start()
    h.result(old_abandoned, "6001", None)
    stuck = Record(
        id="f" * 32,
        status=Status.INITIATING,
        created_at=h.clock(),
        updated_at=h.clock(),
        user_id="alice",
        cert_no_digest="x",
    )
    storage.create(stuck)
    h.clock.advance(40 * 60)
    # Young records (11 minutes before the run).
    young = h.start(user="bob")
    h.cloud.script_next(Outcome.fails("205"))
    young_failing = h.start(user="bob")
    h.clock.advance(11 * 60)
    h.events.clear()

    result = h.app.test_cli_runner().invoke(args=["alicertify", "reconcile", "--older-than", "10m"])
    assert result.exit_code == 0, result.output

    def status(cid: str) -> Status:
        return h.record(cid).status

    assert status(old_passing) == Status.PASSED
    assert status(old_pending) == Status.EXPIRED
    assert status(old_abandoned) == Status.EXPIRED
    assert status(young) == Status.PENDING
    assert status(young_failing) == Status.FAILED
    interrupted = storage.get(stuck.id)
    assert interrupted is not None and interrupted.status == Status.INIT_FAILED
    assert sorted(h.names()) == ["certify_expired", "certify_expired", "certify_failed", "certify_passed"]
    assert "reconcile: 6 checked" in result.stderr  # the progress lines
    assert CERT_NO not in result.output and CERT_NAME not in result.output
    assert "outcome: expired" in result.output and "checked" in result.output
    assert "status now: expired      2" in result.output
    assert "status now: init_failed  1" in result.output

    # A second run finds only the young pending record (once it is stale again) and expires nothing else.
    h.events.clear()
    describes = h.describes()
    report = service.reconcile(older_than=timedelta(minutes=10))
    assert report.checked == 0
    h.clock.advance(30 * 60)  # the young record is now 41 minutes old: dead
    report = service.reconcile(older_than=timedelta(minutes=10))
    assert [item.record_id for item in report.items] == [h.record(young).id]
    assert h.describes() == describes + 1
    assert h.names() == ["certify_expired"]


def test_reconcile_keeps_records_when_upstream_fails(h: Harness) -> None:
    cid = h.start()
    h.clock.advance(3600)
    h.cloud.inject(Fault.http(503), times=1, action="DescribeFaceVerify")
    result = h.app.test_cli_runner().invoke(args=["alicertify", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "outcome: error" in result.output
    assert h.record(cid).status == Status.PENDING
    assert h.names() == ["certify_initiated"]
    assert h.cloud.unconsumed() == []


def test_reconcile_limit_and_bad_duration(h: Harness) -> None:
    for _ in range(3):
        h.start()
    h.clock.advance(3600)
    runner = h.app.test_cli_runner()
    result = runner.invoke(args=["alicertify", "reconcile", "--older-than", "30s", "--limit", "2"])
    assert result.exit_code == 0
    assert h.describes() == 2
    bad = runner.invoke(args=["alicertify", "reconcile", "--older-than", "soon"])
    assert bad.exit_code == 2
    assert "not a duration" in bad.output


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10m", 600), ("90s", 90), ("2h", 7200), ("1d", 86400), ("45", 45), ("1.5m", 90), (" 3M ", 180)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_reconcile_noop_prints_empty_summary(h: Harness) -> None:
    result = h.app.test_cli_runner().invoke(args=["alicertify", "reconcile"])
    assert result.exit_code == 0
    assert "checked" in result.output and "0" in result.output


def test_describe_shows_the_sandbox_flag_and_the_delivery(h: Harness) -> None:
    h.cloud.script_next(Outcome.passes())
    cid = h.start()
    h.result(cid, "9000")
    result = h.app.test_cli_runner().invoke(args=["alicertify", "describe", cid])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split() == ["sandbox", "no"] for line in lines), result.output
    assert any(line.startswith("signal delivered ") for line in lines), result.output


def test_reconcile_redeliver_after_is_an_option(h: Harness) -> None:
    runner = h.app.test_cli_runner()
    assert runner.invoke(args=["alicertify", "reconcile", "--redeliver-after", "5m"]).exit_code == 0
    bad = runner.invoke(args=["alicertify", "reconcile", "--redeliver-after", "later"])
    assert bad.exit_code == 2 and "not a duration" in bad.output
