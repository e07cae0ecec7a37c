"""The retention purge (``ALICERTIFY_RETENTION``, ``flask alicertify purge [--dry-run]``).

A record older than the retention keeps what an audit needs (id, user, status, verdict,
SubCode, certify id, dates, ``sandbox``) and loses what was derived from the person's identity:
the keyed ID-number digest and the masked name and number (:data:`~flask_alicertify.records.
PURGED_FIELDS`); ``purged_at`` says when. Records of every status are purged: one that old and
still unfinished is long dead, and its status is not what the purge changes.

Safe beside reconcile (or a second purge): the purge's update names only the identity fields
and ``purged_at``, as a compare-and-set on the status it read, so it can never undo a
transition; when a transition moved the record meanwhile, the purge reads it again and retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from .jobs import JobTarget
from .jobs import ReconcileItem
from .jobs import ReconcileReport
from .jobs import created
from .jobs import failed
from .jobs import walk
from .records import Record
from .records import purge_changes

logger = logging.getLogger("flask_alicertify")

#: Compare-and-set attempts per record before its row says ``error`` (each lost one means a
#: transition happened in between, and a record has at most a handful of those).
_TRIES = 5


def purge(
    service: JobTarget,
    *,
    retention: timedelta,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Callable[[ReconcileItem], None] | None = None,
    batch_size: int = 100,
) -> ReconcileReport:
    """Purge every record of ours created more than ``retention`` ago and not purged yet."""
    report = ReconcileReport()
    storage = service.storage
    cutoff = service.clock() - retention
    for record in walk(
        lambda after, n: storage.unpurged(created_before=cutoff, limit=n, after=after),
        key=created,
        batch_size=batch_size,
        budget=lambda: None if limit is None else limit - report.checked,
    ):
        if not service.owns(record):
            continue
        if dry_run:
            item = ReconcileItem(
                record.id, record.certify_id, record.status, record.status, "would purge", "purge"
            )
        else:
            try:
                item = purge_one(service, record)
            except Exception as e:  # noqa: BLE001 - one record's failure is its row, not the run's end
                item = failed(record, "purge", e)
        report.add(item, progress)
    if not dry_run:
        logger.info("purge: %d records past the retention cleared", report.by_outcome()["purged"])
    return report


def purge_one(service: JobTarget, record: Record) -> ReconcileItem:
    """Clear one record's identity fields (compare-and-set on its status, retried if it moved)."""
    current: Record | None = record
    for _ in range(_TRIES):
        if current is None or current.purged_at is not None:
            break
        done = service.storage.update(current.id, expect={current.status}, **purge_changes(service.clock()))
        if done is not None:
            return ReconcileItem(record.id, record.certify_id, record.status, done.status, "purged", "purge")
        current = service.storage.get(record.id)
    after = current or record
    outcome = "purged" if current is not None and current.purged_at is not None else "error"
    if outcome == "error":
        logger.warning("record %s: purge gave up (the record kept changing, or vanished)", record.id)
    return ReconcileItem(record.id, record.certify_id, record.status, after.status, outcome, "purge")
