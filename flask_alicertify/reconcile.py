"""The reconcile job: re-describe stale records, expire dead ones (``flask alicertify reconcile``).

A result post or a callback can be lost; reconcile is the safety net that pages through records
not updated for a while and asks Alibaba again. A record still unfinished
``CERTIFY_ID_LIFETIME + expire_grace`` after it was created can never finish (its certify id is
dead), so it becomes ``expired``; an ``initiating`` record that old never got its certify id
(the process died during Init) becomes ``init_failed``.

The job decides *what* to do per record; every state change is one of the service's
transitions (:class:`ReconcileTarget`), so the exactly-once signal rule holds here too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Protocol

from .cloud.base import Verdict
from .cloud.errors import CloudError
from .records import Record
from .records import Status
from .settings import Settings
from .storage.base import Storage


@dataclass(frozen=True)
class ReconcileItem:
    record_id: str
    certify_id: str | None
    before: Status
    after: Status
    #: ``"verdict"``, ``"expired"``, ``"interrupted"``, ``"unchanged"``, ``"error"`` or ``"skipped"``.
    outcome: str


@dataclass
class ReconcileReport:
    """What one reconcile run did, for the CLI's summary table."""

    items: list[ReconcileItem] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return len(self.items)

    def by_status(self) -> Counter[str]:
        return Counter(item.after.value for item in self.items)

    def by_outcome(self) -> Counter[str]:
        return Counter(item.outcome for item in self.items)


class ReconcileTarget(Protocol):
    """What the job needs from :class:`~flask_alicertify.service.CertifyService`."""

    @property
    def settings(self) -> Settings: ...

    @property
    def storage(self) -> Storage: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    def describe(self, record: Record) -> Verdict: ...

    def describe_failed(self, record: Record, now: datetime, **changes: object) -> Record: ...

    def interrupt(self, record: Record, now: datetime) -> Record | None: ...

    def expire(self, record: Record, now: datetime) -> Record | None: ...

    def settle(self, record: Record, verdict: Verdict, *, client_status: str | None) -> Record: ...

    def reload(self, record: Record) -> Record: ...


def reconcile(
    service: ReconcileTarget,
    *,
    older_than: timedelta,
    limit: int | None = None,
    progress: Callable[[ReconcileItem], None] | None = None,
    batch_size: int = 100,
) -> ReconcileReport:
    """Re-describe non-terminal records not updated for ``older_than``; expire dead ones.

    Every processed record is touched, so paging through ``stale()`` ends.
    """
    report = ReconcileReport()
    cutoff = service.clock() - older_than
    seen: set[str] = set()
    while limit is None or report.checked < limit:
        size = batch_size if limit is None else min(batch_size, limit - report.checked)
        fresh = [r for r in service.storage.stale(updated_before=cutoff, limit=size) if r.id not in seen]
        if not fresh:
            break
        for record in fresh:
            seen.add(record.id)
            item = reconcile_one(service, record)
            report.items.append(item)
            if progress is not None:
                progress(item)
    return report


def reconcile_one(service: ReconcileTarget, record: Record) -> ReconcileItem:
    """Bring one stale record up to date and say what happened to it."""
    now = service.clock()
    dead = (now - record.created_at).total_seconds() >= service.settings.expire_after

    def item(after: Record, outcome: str) -> ReconcileItem:
        return ReconcileItem(record.id, record.certify_id, record.status, after.status, outcome)

    if record.status == Status.INITIATING or record.certify_id is None:
        if not dead:
            return item(record, "skipped")
        failed = service.interrupt(record, now)
        return item(failed or service.reload(record), "interrupted" if failed else "unchanged")
    try:
        verdict = service.describe(record)
    except CloudError:
        # updated_at moves too, so this run's paging ends and the next run retries it.
        return item(service.describe_failed(record, now, updated_at=now), "error")
    if not verdict.finished and dead:
        expired = service.expire(record, now)
        if expired is not None:
            return item(expired, "expired")
        return item(service.reload(record), "unchanged")
    after = service.settle(record, verdict, client_status=record.client_status)
    return item(after, "verdict" if verdict.finished else "unchanged")
