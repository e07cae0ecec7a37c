"""Durable outcome signals: delivered_at, raising receivers, and reconcile's re-sends."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from blinker import Signal
from support.ext import BACKENDS
from support.ext import CERT_NAME
from support.ext import CERT_NO
from support.ext import Harness
from support.ext import harness
from support.ext import open_storage

from flask_alicertify import signals
from flask_alicertify.records import Record
from flask_alicertify.records import Status
from flask_alicertify.sandbox.fake import Outcome


class Flaky:
    """A receiver that raises while ``broken`` (with personal data in its message, as app code
    might), and records every delivery it completed."""

    def __init__(self, broken: bool = True) -> None:
        self.broken = broken
        self.calls: list[dict[str, Any]] = []
        self.done: list[str] = []

    def __call__(self, sender: Any, record: Record, **kwargs: Any) -> None:
        self.calls.append({"sender": sender, "record": record, **kwargs})
        if self.broken:
            raise ValueError(f"user profile {CERT_NAME} {CERT_NO} not found")
        self.done.append(record.id)


@contextmanager
def connected(signal: Signal, receiver: Flaky, sender: Any) -> Iterator[Flaky]:
    signal.connect(receiver, sender=sender, weak=False)
    try:
        yield receiver
    finally:
        signal.disconnect(receiver, sender=sender)


def reconcile(h: Harness) -> Any:
    return h.app.test_cli_runner().invoke(args=["alicertify", "reconcile"])


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_raising_receiver_gets_the_verdict_answered_and_reconcile_delivers_later(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        open_storage(kind, tmp_path) as storage,
        harness(storage=storage) as h,
        connected(signals.certify_passed, Flaky(), h.app) as receiver,
        caplog.at_level(logging.DEBUG, logger="flask_alicertify"),
    ):
        h.cloud.script_next(Outcome.passes())
        cid = h.start()
        response = h.result(cid, "9000")
        assert response.status_code == 200
        assert response.get_json()["status"] == "passed"  # the stored verdict, not a 500
        record = h.record(cid)
        assert record.status == Status.PASSED and record.delivered_at is None
        assert len(receiver.calls) == 1
        # Logged with the exception's type and place, never its message (personal data here).
        (line,) = [r for r in caplog.records if "receiver raised" in r.getMessage()]
        assert line.levelno == logging.ERROR
        assert record.id in line.getMessage() and "ValueError" in line.getMessage()
        assert "test_ext_signals.py" in line.getMessage()
        assert line.exc_info is None
        for r in caplog.records:
            assert CERT_NO not in r.getMessage() and CERT_NAME not in r.getMessage()

        # Too young for reconcile: its worker might still be running the receivers.
        assert "redelivered" not in reconcile(h).output
        assert len(receiver.calls) == 1
        h.clock.advance(61)
        receiver.broken = False
        result = reconcile(h)
        assert result.exit_code == 0, result.output
        assert "outcome: redelivered  1" in result.output
        assert receiver.done == [record.id]  # the same record.id: receivers can be idempotent
        assert h.record(cid).delivered_at is not None
        # Delivered: never sent again.
        h.clock.advance(3600)
        assert "redelivered" not in reconcile(h).output
        assert receiver.done == [record.id]


def test_a_receiver_that_keeps_raising_is_retried_by_every_run_until_it_returns() -> None:
    with harness() as h, connected(signals.certify_failed, Flaky(), h.app) as receiver:
        h.cloud.script_next(Outcome.fails("205"))
        cid = h.start()
        assert h.result(cid, "9000").get_json()["status"] == "failed"
        for run in range(3):
            h.clock.advance(61)
            result = reconcile(h)
            assert "outcome: error" in result.output
            assert len(receiver.calls) == run + 2
        receiver.broken = False
        h.clock.advance(61)
        assert "outcome: redelivered" in reconcile(h).output
        assert h.record(cid).delivered_at is not None


def test_in_normal_operation_each_outcome_is_sent_exactly_once() -> None:
    with harness() as h:
        cids = []
        for outcome in (Outcome.passes(), Outcome.fails("201"), Outcome.passes()):
            h.cloud.script_next(outcome)
            cids.append(h.start())
            h.result(cids[-1], "9000")
        expiring = h.start()
        h.clock.advance(3600)
        reconcile(h)  # expires the last one, and sends its signal once
        h.clock.advance(3600)
        reconcile(h)
        assert sorted(h.names()) == sorted(
            ["certify_initiated"] * 4
            + ["certify_passed", "certify_failed", "certify_passed", "certify_expired"]
        )
        for cid in [*cids, expiring]:
            assert h.record(cid).delivered_at is not None


def test_an_expiry_whose_receiver_raised_is_redelivered() -> None:
    with harness() as h, connected(signals.certify_expired, Flaky(), h.app) as receiver:
        cid = h.start()
        h.clock.advance(3600)
        reconcile(h)
        assert h.record(cid).status == Status.EXPIRED and h.record(cid).delivered_at is None
        receiver.broken = False
        h.clock.advance(61)
        reconcile(h)
        assert receiver.done == [h.record(cid).id]


def test_a_raising_initiated_receiver_does_not_cost_the_certify_url() -> None:
    with harness() as h, connected(signals.certify_initiated, Flaky(), h.app):
        response = h.init()
        assert response.status_code == 200
        assert response.get_json()["certifyUrl"]


def test_a_raising_abandoned_receiver_answers_the_stored_state() -> None:
    with harness() as h, connected(signals.certify_abandoned, Flaky(), h.app):
        cid = h.start()
        assert h.result(cid, "6001", None).get_json()["status"] == "abandoned"


def test_receivers_get_sender_extension_and_the_typed_user_id() -> None:
    with harness() as h, connected(signals.certify_passed, Flaky(broken=False), h.app) as receiver:
        h.cloud.script_next(Outcome.passes())
        cid = h.start()
        h.result(cid, "9000")
        (call,) = receiver.calls
        assert call["sender"] is h.app
        assert call["extension"] is h.ext
        assert call["user_id"] == "alice"
        assert call["record"].id == h.record(cid).id


def test_legacy_terminal_records_without_a_signal_are_only_marked() -> None:
    with harness() as h:
        now = h.clock()
        legacy = Record(
            id="e" * 32,
            status=Status.INIT_FAILED,
            created_at=now,
            updated_at=now,
            user_id="alice",
            error_code="interrupted",
        )
        h.storage.create(legacy)
        h.clock.advance(120)
        report = h.ext.service(h.app).reconcile(older_than=timedelta(minutes=10))
        assert report.checked == 0
        stored = h.storage.get(legacy.id)
        assert stored is not None and stored.delivered_at is not None
        assert h.names() == []
