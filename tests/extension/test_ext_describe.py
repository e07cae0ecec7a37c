"""Every describe of a record goes one way: one gateway call, one "describe failed" log line.

Four callers describe a record (the result post, the poll, the callback and reconcile); they
differ only in what a failure means for the client (503, or the stored state).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from support.ext import Harness

from flask_alicertify.sandbox.fake import Fault
from flask_alicertify.sandbox.fake import Outcome
from flask_alicertify.state import get_state


def failure_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "describe failed" in r.getMessage()]


def test_a_failed_describe_is_logged_once_whoever_asked(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h.cloud.script_next(Outcome.passes())
    cid = h.start()
    service = get_state("alicertify", h.app).service
    callers = {
        "result post": lambda: h.result(cid, "9000").status_code,
        "poll": lambda: h.client().get(f"/alicertify/result/{cid}").status_code,
        "reconcile": lambda: service.reconcile(older_than=timedelta(0)).by_outcome()["error"],
    }
    answers = {}
    for caller, call in callers.items():
        h.clock.advance(120)
        caplog.clear()
        h.cloud.inject(Fault.http(503), times=1, action="DescribeFaceVerify")
        with caplog.at_level(logging.WARNING, logger="flask_alicertify"):
            answers[caller] = call()
        lines = failure_lines(caplog)
        assert len(lines) == 1, (caller, lines)
        assert lines[0].startswith(f"record {h.record(cid).id}: describe failed (CloudUnavailable"), caller
    assert answers == {"result post": 503, "poll": 200, "reconcile": 1}
    # The record is untouched by the failures and settles on the next describe (one interval on).
    h.clock.advance(get_state("alicertify", h.app).settings.describe_min_interval)
    assert h.result(cid, "9000").get_json()["status"] == "passed"
    assert h.cloud.unconsumed() == []
