"""Deletion at Alibaba (``ALICERTIFY_DELETE_AT_ALIBABA``): DeleteFaceVerifyResult after the verdict.

Alibaba keeps each verification's data (console records, for 180 days) until it is asked to
delete it. With the setting on, reconcile's last pass and ``flask alicertify redact`` call
``gateway.delete(certify_id)`` for every terminal record with a certify id that is not deleted
yet, and store :attr:`~flask_alicertify.records.Record.deleted_at`. Alibaba's documented
``FailReason`` values
(https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/deletefaceverifyresult):

* ``NOT_DELETE_REPEATEDLY``: already deleted; the record is marked as if we had just done it;
* ``NEED_QUERY_VERIFY_RESULT``: Alibaba deletes only a verification whose result was queried;
  it is described once (the answer changes nothing: the record is terminal), then deleted again.

The action has its own quota of 10 calls per second per account, so the job paces itself with
a token bucket (:class:`Pacer`), and waits out a throttled answer before the next call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from .cloud.errors import CloudError
from .cloud.errors import CloudThrottled
from .jobs import JobTarget
from .jobs import ReconcileItem
from .jobs import ReconcileReport
from .jobs import failed
from .jobs import updated
from .jobs import walk
from .records import Record

logger = logging.getLogger("flask_alicertify")

#: DeleteFaceVerifyResult's quota: calls per second per account.
DELETE_QPS = 10.0
ALREADY_DELETED = "NOT_DELETE_REPEATEDLY"
NEEDS_QUERY = "NEED_QUERY_VERIFY_RESULT"
#: The longest a throttled answer makes the job wait before its next call, in seconds.
MAX_THROTTLE_WAIT = 5.0


class Pacer:
    """A token bucket: bursts of up to ``rate`` calls, then ``rate`` per second."""

    def __init__(
        self,
        rate: float = DELETE_QPS,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.sleep = sleep
        self.monotonic = monotonic
        self._tokens = rate
        self._last = monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until one more call fits in the quota."""
        with self._lock:
            now = self.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1.0:
                self.sleep((1.0 - self._tokens) / self.rate)
                self._tokens = 1.0
                self._last = self.monotonic()
            self._tokens -= 1.0

    def hold(self, seconds: float) -> None:
        """After a throttled answer: wait before the next call, and start with an empty bucket."""
        with self._lock:
            self.sleep(max(0.0, min(seconds, MAX_THROTTLE_WAIT)))
            self._tokens = 0.0
            self._last = self.monotonic()


def delete_terminal(
    service: JobTarget,
    *,
    older_than: timedelta,
    report: ReconcileReport,
    progress: Callable[[ReconcileItem], None] | None = None,
    batch_size: int = 100,
    budget: Callable[[], int | None] = lambda: None,
    pacer: Pacer | None = None,
) -> ReconcileReport:
    """Delete at Alibaba every terminal record of ours that changed ``older_than`` ago."""
    pacer = pacer or Pacer()
    storage = service.storage
    cutoff = service.clock() - older_than
    for record in walk(
        lambda after, n: storage.undeleted(updated_before=cutoff, limit=n, after=after),
        key=updated,
        batch_size=batch_size,
        budget=budget,
    ):
        if not service.owns(record) or record.certify_id is None:
            continue
        try:
            item = delete_one(service, record, pacer)
        except Exception as e:  # noqa: BLE001 - one record's failure is its row, not the run's end
            item = failed(record, "delete", e)
        report.add(item, progress)
    return report


def delete_one(service: JobTarget, record: Record, pacer: Pacer) -> ReconcileItem:
    """Delete one record's result at Alibaba and mark it; an ``error`` row when Alibaba refused."""
    assert record.certify_id is not None

    def item(outcome: str) -> ReconcileItem:
        return ReconcileItem(record.id, record.certify_id, record.status, record.status, outcome, "delete")

    try:
        pacer.wait()
        result = service.gateway.delete(record.certify_id)
        if not result.deleted and result.reason == NEEDS_QUERY:
            service.describe(record)
            pacer.wait()
            result = service.gateway.delete(record.certify_id)
    except CloudThrottled as e:
        pacer.hold(e.retry_after or 1.0)
        return _refused(record, type(e).__name__, e.code, item)
    except CloudError as e:
        return _refused(record, type(e).__name__, e.code, item)
    if not (result.deleted or result.reason == ALREADY_DELETED):
        return _refused(record, "refused", result.reason, item)
    service.storage.update(record.id, expect={record.status}, deleted_at=service.clock())
    logger.info("record %s: deleted at Alibaba (%s)", record.id, result.reason or "deleted")
    return item("deleted")


def _refused(
    record: Record, what: str, code: str | None, item: Callable[[str], ReconcileItem]
) -> ReconcileItem:
    logger.warning("record %s: deletion at Alibaba failed (%s code=%s)", record.id, what, code)
    return item("error")


def redact(
    service: JobTarget,
    *,
    older_than: timedelta = timedelta(0),
    limit: int | None = None,
    progress: Callable[[ReconcileItem], None] | None = None,
    batch_size: int = 100,
    pacer: Pacer | None = None,
) -> ReconcileReport:
    """``flask alicertify redact``: the deletion pass alone."""
    report = ReconcileReport()
    return delete_terminal(
        service,
        older_than=older_than,
        report=report,
        progress=progress,
        batch_size=batch_size,
        budget=lambda: None if limit is None else limit - report.checked,
        pacer=pacer,
    )
