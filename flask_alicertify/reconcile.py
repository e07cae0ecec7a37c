"""The reconcile job (``flask alicertify reconcile``): settle stale records, re-send lost signals.

A result post or a callback can be lost; reconcile is the safety net. In one run, each pass
paging with a cursor (:func:`~flask_alicertify.jobs.walk`) and each record on its own, so one
poisoned record is an ``error`` row and never the end of the run:

1. **describe**: non-terminal records not updated for ``older_than`` are described again (under
   the same per-record describe budget as requests). A record still unfinished
   ``CERTIFY_ID_LIFETIME + expire_grace`` after it was created can never finish (its certify id
   is dead), so it becomes ``expired``; so does such a record whose describe fails with a
   business error in two runs in a row (Alibaba will not answer for it: after a scene change,
   say), while transport faults only leave it for the next run. An ``initiating`` record that
   old never got its certify id (the process died during Init) becomes ``init_failed``;
2. **deliver**: terminal records whose outcome signal was never delivered (the worker died after
   the transition, or a receiver raised) and that changed more than ``redeliver_after`` ago get
   it again (:mod:`.delivery`);
3. **delete**: with ``ALICERTIFY_DELETE_AT_ALIBABA``, terminal records' results are deleted at
   Alibaba (:mod:`.deletion`).

The job decides *what* to do per record; every state change is one of the service's
transitions (:class:`~flask_alicertify.jobs.JobTarget`), so the exactly-once signal rule holds
here too. Records of another extension instance (or of the other sandbox mode) sharing the
store are not touched.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from . import deletion
from .cloud.errors import CloudBusinessError
from .cloud.errors import CloudError
from .delivery import REDELIVER_AFTER
from .jobs import JobTarget as ReconcileTarget
from .jobs import ReconcileItem as ReconcileItem
from .jobs import ReconcileReport as ReconcileReport
from .jobs import failed
from .jobs import updated
from .jobs import walk
from .records import Record
from .records import Status

#: The ``error_code`` prefix a failed describe leaves on a dead record: the first strike.
STRIKE = "describe_"


def reconcile(
    service: ReconcileTarget,
    *,
    older_than: timedelta,
    limit: int | None = None,
    progress: Callable[[ReconcileItem], None] | None = None,
    batch_size: int = 100,
    redeliver_after: timedelta = REDELIVER_AFTER,
) -> ReconcileReport:
    """Run the three passes (describe, deliver, delete); ``limit`` bounds the rows of all three."""
    report = ReconcileReport()

    def budget() -> int | None:
        return None if limit is None else limit - report.checked

    storage = service.storage
    cutoff = service.clock() - older_than
    for record in walk(
        lambda after, n: storage.stale(updated_before=cutoff, limit=n, after=after),
        key=updated,
        batch_size=batch_size,
        budget=budget,
    ):
        item = _guarded(reconcile_one, service, record, "describe") if service.owns(record) else None
        if item is not None:
            report.add(item, progress)

    # Measured after the first pass: what it just settled was announced by it, not lost.
    cutoff = service.clock() - redeliver_after
    for record in walk(
        lambda after, n: storage.undelivered(updated_before=cutoff, limit=n, after=after),
        key=updated,
        batch_size=batch_size,
        budget=budget,
    ):
        item = _guarded(redeliver_one, service, record, "deliver") if service.owns(record) else None
        if item is not None:
            report.add(item, progress)

    if service.settings.delete_at_alibaba:
        deletion.delete_terminal(
            service,
            older_than=redeliver_after,
            report=report,
            progress=progress,
            batch_size=batch_size,
            budget=budget,
        )
    return report


def _guarded(
    step: Callable[[ReconcileTarget, Record], ReconcileItem | None],
    service: ReconcileTarget,
    record: Record,
    name: str,
) -> ReconcileItem | None:
    try:
        return step(service, record)
    except Exception as e:  # noqa: BLE001 - one record's failure is its row, not the run's end
        return failed(record, name, e)


def reconcile_one(service: ReconcileTarget, record: Record) -> ReconcileItem:
    """Bring one stale record up to date and say what happened to it."""
    now = service.clock()
    dead = (now - record.created_at).total_seconds() >= service.settings.expire_after

    def item(after: Record, outcome: str) -> ReconcileItem:
        return ReconcileItem(record.id, record.certify_id, record.status, after.status, outcome)

    if record.status == Status.INITIATING or record.certify_id is None:
        if not dead:
            return item(record, "skipped")
        failed_init = service.interrupt(record, now)
        return item(failed_init or service.reload(record), "interrupted" if failed_init else "unchanged")
    claimed = service.claim(record, now)
    if claimed is None:  # a request is describing it at this moment, or it just settled
        return item(service.reload(record), "skipped")
    try:
        verdict = service.describe(claimed)
    except CloudBusinessError as e:
        if not dead:
            return item(claimed, "error")
        # Past its lifetime, Alibaba refusing to answer for this certify id is not going to
        # change: expire it at the second such run (the first leaves the strike), so one bad
        # deploy (a wrong scene id for a few minutes) cannot expire verdicts by itself.
        code = (STRIKE + (e.code or "error"))[:64]
        if (claimed.error_code or "").startswith(STRIKE):
            expired = service.expire(claimed, now, error_code=code)
            return item(expired or service.reload(claimed), "expired" if expired else "unchanged")
        return item(service.note(claimed, now, error_code=code, updated_at=now), "error")
    except CloudError:
        return item(claimed, "error")
    if not verdict.finished and dead:
        expired = service.expire(claimed, now)
        if expired is not None:
            return item(expired, "expired")
        return item(service.reload(claimed), "unchanged")
    after = service.settle(claimed, verdict, client_status=claimed.client_status)
    return item(after, "verdict" if verdict.finished else "unchanged")


def redeliver_one(service: ReconcileTarget, record: Record) -> ReconcileItem | None:
    """Send a terminal record's undelivered outcome signal again; None for a record that has no
    signal to send (``init_failed``: it is only marked)."""
    announced = service.announcer.announce(record)
    if record.status == Status.INIT_FAILED:
        return None
    outcome = "redelivered" if announced.delivered_at is not None else "error"
    return ReconcileItem(record.id, record.certify_id, record.status, announced.status, outcome, "deliver")
