"""R8 durability: an outcome signal survives a killed worker and a raising receiver.

* killed worker: a spawned worker process stores ``pending -> passed`` and dies inside the
  ``certify_passed`` send (``os._exit``, or the parent's SIGKILL while the receiver runs), so
  the transition is stored and the signal never delivered. ``flask alicertify reconcile`` in
  another process then delivers it, once, with the same record id; a second run sends nothing.
  On SQLite (a file), PostgreSQL and Redis;
* raising receiver: the first delivery of every outcome raises; each result post still answers
  200 with the verdict (never a 500), and one reconcile run later every outcome is delivered,
  and never again. On every backend;
* normal operation: flows whose receivers return are delivered exactly once, however many
  reconcile runs follow.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
import support.workers as workers
from support.reliability import Clock
from support.reliability import fake_app
from support.reliability import report
from support.reliability import size
from support.storage import BACKENDS
from support.storage import open_test_backend

from flask_alicertify import signals
from flask_alicertify.records import Record
from flask_alicertify.records import Status
from flask_alicertify.sandbox.fake import Outcome

KILL_ROUNDS = size(10, 1)
RAISE_FLOWS = size(100, 10)
NORMAL_FLOWS = size(100, 10)
SHARED = [p for p in BACKENDS if p.values[0] in ("sqlite", "postgresql", "redis")]

#: name -> (good, total) per part: "killed/<kind>", "raising/<kind>", "normal/<kind>", "http500/<kind>".
RESULTS: dict[str, tuple[int, int]] = {}


def _sum(part: str) -> tuple[int, int]:
    rows = [v for k, v in RESULTS.items() if k.startswith(part + "/")]
    return sum(g for g, _ in rows), sum(n for _, n in rows)


def _report() -> None:
    killed = ", ".join(
        f"{k.split('/')[1]} {g}/{n}" for k, (g, n) in sorted(RESULTS.items()) if k.startswith("killed/")
    )
    raising, normal, fine = _sum("raising"), _sum("normal"), _sum("answered")
    backends = sorted({k.split("/")[1] for k in RESULTS if not k.startswith("killed/")})
    line = (
        f"workers killed inside certify_passed (os._exit / SIGKILL), outcome delivered once by the next "
        f"reconcile: {killed or '-'}; receivers raising on {raising[1]} outcomes "
        f"({', '.join(backends) or '-'}): {fine[0]}/{fine[1]} posts answered 200 with the verdict "
        f"(0 HTTP 500), {raising[0]}/{raising[1]} delivered by reconcile; {normal[0]}/{normal[1]} normal "
        "outcomes sent exactly once after 3 reconcile runs"
    )
    met = all(g == n for g, n in RESULTS.values())
    report(
        "R8",
        "durability",
        line,
        target="every lost or failed outcome signal delivered by reconcile, once; none sent twice otherwise",
        met=met,
        size=f"{KILL_ROUNDS} killed workers × shared backend, {RAISE_FLOWS} + {NORMAL_FLOWS} flows × backend",
    )


def _later() -> Clock:
    """A clock for the reconciling process: the real time plus the redelivery delay and more."""
    clock = Clock()
    clock.now = datetime.now(timezone.utc) + timedelta(minutes=2)
    return clock


@pytest.mark.parametrize("kind", SHARED)
def test_r8_a_killed_worker_loses_no_signal(kind: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    delivered_once = 0
    exits: list[int | None] = []
    with open_test_backend(kind, tmp_path) as backend:
        backend.storage.get("warm-up")  # the table exists before the worker writes to it
        record_ids = []
        # Both ways of dying even at the reduced size (one round per backend): alternate by backend.
        offset = [p.values[0] for p in SHARED].index(kind)
        for i in range(KILL_ROUNDS):
            how = "exit" if (i + offset) % 2 == 0 else "sigkill"
            receive, send = ctx.Pipe(duplex=False)
            worker = ctx.Process(target=workers.die_after_transition, args=(kind, backend.spec, how, send))
            worker.start()
            try:
                assert receive.poll(120), "the worker never reached the signal"
                record_id = receive.recv()
                assert not record_id.startswith(("error:", "survived")), record_id
                if how == "sigkill":
                    os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]  # our own child
                worker.join(timeout=60)
            finally:
                if worker.is_alive():
                    worker.kill()
                    worker.join(timeout=10)
                receive.close()
                send.close()
            exits.append(worker.exitcode)
            record = backend.storage.get(record_id)
            assert record is not None
            assert record.status == Status.PASSED and record.delivered_at is None, record
            record_ids.append(record_id)

        with fake_app(storage=backend.storage, clock=_later()) as h:
            first = h.cli("reconcile")
            assert first.exit_code == 0, first.output
            second = h.cli("reconcile")
            assert second.exit_code == 0, second.output
            for record_id in record_ids:
                stored = backend.storage.get(record_id)
                delivered_once += h.count("certify_passed", record_id) == 1 and (
                    stored is not None and stored.delivered_at is not None
                )
    RESULTS[f"killed/{kind}"] = (delivered_once, KILL_ROUNDS)
    _report()
    assert delivered_once == KILL_ROUNDS
    assert all(code in (17, -signal.SIGKILL) for code in exits), exits


@pytest.mark.parametrize("kind", BACKENDS)
def test_r8_raising_receivers_and_normal_operation(kind: str, tmp_path: Path) -> None:
    clock = Clock()
    raised: set[str] = set()
    statuses: list[int] = []
    verdicts_answered = 0

    def flaky(sender: Any, record: Record, **extra: Any) -> None:
        if record.id not in raised and record.user_id == "flaky":
            raised.add(record.id)
            raise RuntimeError("receiver bug")

    with (
        open_test_backend(kind, tmp_path) as backend,
        fake_app(storage=backend.storage, clock=clock, ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None) as h,
    ):
        signals.certify_passed.connect(flaky, sender=h.app, weak=False)
        signals.certify_failed.connect(flaky, sender=h.app, weak=False)
        try:
            flows: dict[str, list[str]] = {"flaky": [], "alice": []}
            for user, n in (("flaky", RAISE_FLOWS), ("alice", NORMAL_FLOWS)):
                for i in range(n):
                    h.cloud.script_next(Outcome.passes() if i % 3 else Outcome.fails("205"))
                    cid = h.start(user)
                    response = h.post_result(cid, "9000", user=user)
                    statuses.append(response.status_code)
                    verdicts_answered += response.get_json().get("status") in ("passed", "failed")
                    flows[user].append(h.record(cid).id)
            undelivered = sum(1 for rid in flows["flaky"] if backend.storage.get(rid).delivered_at is None)  # type: ignore[union-attr]
            clock.advance(61)
            runs = [h.cli("reconcile") for _ in range(3)]
            assert all(r.exit_code == 0 for r in runs), runs[0].output
        finally:
            signals.certify_passed.disconnect(flaky, sender=h.app)
            signals.certify_failed.disconnect(flaky, sender=h.app)

        def sends(record_id: str) -> int:
            return h.count("certify_passed", record_id) + h.count("certify_failed", record_id)

        # The recording receiver ran on the raising first send too (blinker called it first).
        flaky_ok = sum(1 for rid in flows["flaky"] if sends(rid) == 2)
        normal_once = sum(1 for rid in flows["alice"] if sends(rid) == 1)
        all_marked = all(
            backend.storage.get(rid).delivered_at is not None  # type: ignore[union-attr]
            for rid in flows["flaky"] + flows["alice"]
        )
    answered = sum(1 for status in statuses if status == 200) if verdicts_answered == len(statuses) else 0
    RESULTS[f"answered/{kind}"] = (answered, len(statuses))
    RESULTS[f"raising/{kind}"] = (flaky_ok if undelivered == RAISE_FLOWS and all_marked else 0, RAISE_FLOWS)
    RESULTS[f"normal/{kind}"] = (normal_once, NORMAL_FLOWS)
    _report()
    assert statuses == [200] * len(statuses)
    assert verdicts_answered == len(statuses)
    assert undelivered == RAISE_FLOWS
    assert flaky_ok == RAISE_FLOWS
    assert normal_once == NORMAL_FLOWS
    assert all_marked
