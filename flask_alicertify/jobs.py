"""What the batch jobs (reconcile, redact, purge) share: their report rows and cursor paging.

Each job walks one storage listing page by page with a cursor (the sort key and id of the last
record seen), never an offset: a job changes the records it lists (a settled record leaves
``stale()``), which would make an offset skip records, and records it passes over (too young,
another instance's) must not hold it on one page forever. One record's failure is one ``error``
row of the report, never the end of the run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Protocol

from .cloud.base import Gateway
from .cloud.base import Verdict
from .delivery import Announcer
from .records import Record
from .records import Status
from .settings import Settings
from .storage.base import Cursor
from .storage.base import Storage

logger = logging.getLogger("flask_alicertify")

#: ``listing(after=cursor, limit=n)``: one page of a storage listing method, bound to its filter.
Listing = Callable[[Cursor | None, int], Sequence[Record]]


@dataclass(frozen=True)
class ReconcileItem:
    """One record a job looked at, and what became of it."""

    record_id: str
    certify_id: str | None
    before: Status
    after: Status
    #: reconcile: ``"verdict"``, ``"expired"``, ``"interrupted"``, ``"unchanged"``,
    #: ``"skipped"``, ``"redelivered"``, ``"deleted"`` or ``"error"``; redact: ``"deleted"`` or
    #: ``"error"``; purge: ``"purged"``, ``"would purge"`` or ``"error"``.
    outcome: str
    #: The job that produced the row: ``"describe"``, ``"deliver"``, ``"delete"`` or ``"purge"``.
    step: str = "describe"


@dataclass
class ReconcileReport:
    """What one job run did, for the CLI's summary table."""

    items: list[ReconcileItem] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return len(self.items)

    def by_status(self) -> Counter[str]:
        return Counter(item.after.value for item in self.items)

    def by_outcome(self) -> Counter[str]:
        return Counter(item.outcome for item in self.items)

    def add(self, item: ReconcileItem, progress: Callable[[ReconcileItem], None] | None) -> None:
        self.items.append(item)
        if progress is not None:
            progress(item)


class JobTarget(Protocol):
    """What the jobs need from :class:`~flask_alicertify.service.CertifyService`."""

    @property
    def settings(self) -> Settings: ...

    @property
    def storage(self) -> Storage: ...

    @property
    def gateway(self) -> Gateway: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def announcer(self) -> Announcer: ...

    def owns(self, record: Record) -> bool: ...

    def claim(self, record: Record, now: datetime) -> Record | None: ...

    def describe(self, record: Record) -> Verdict: ...

    def interrupt(self, record: Record, now: datetime) -> Record | None: ...

    def expire(self, record: Record, now: datetime, *, error_code: str | None = None) -> Record | None: ...

    def settle(self, record: Record, verdict: Verdict, *, client_status: str | None) -> Record: ...

    def note(self, record: Record, now: datetime, **changes: object) -> Record: ...

    def reload(self, record: Record) -> Record: ...


def walk(
    listing: Listing,
    *,
    key: Callable[[Record], datetime],
    batch_size: int = 100,
    budget: Callable[[], int | None] = lambda: None,
) -> Iterator[Record]:
    """Every record of ``listing``, page after page, each once.

    ``key`` is the listing's sort key (``updated_at`` or ``created_at``); ``budget()`` how many
    more records the caller wants (None: all), checked before each page.
    """
    cursor: Cursor | None = None
    seen: set[str] = set()
    while True:
        left = budget()
        if left is not None and left <= 0:
            return
        size = batch_size if left is None else max(1, min(batch_size, left))
        page = listing(cursor, size)
        fresh = [record for record in page if record.id not in seen]
        for record in fresh:
            seen.add(record.id)
            yield record
        # A short page is the last; a page of nothing new means a backend ignoring the cursor,
        # which must not keep the job on one page for ever.
        if len(page) < size or not fresh:
            return
        cursor = (key(page[-1]), page[-1].id)


def failed(record: Record, step: str, e: Exception) -> ReconcileItem:
    """The ``error`` row for a record whose step raised, logged with its traceback: a job only
    handles records and certify ids, which hold no clear personal data, so neither can the
    traceback's text (frame locals are never logged)."""
    logger.error("record %s: %s failed (%s)", record.id, step, type(e).__name__, exc_info=True)
    return ReconcileItem(record.id, record.certify_id, record.status, record.status, "error", step)


def updated(record: Record) -> datetime:
    return record.updated_at


def created(record: Record) -> datetime:
    return record.created_at
