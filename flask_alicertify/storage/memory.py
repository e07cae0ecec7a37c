"""An in-process storage backend: the default under ``app.testing``.

Everything lives in dicts guarded by one lock, which makes :meth:`MemoryStorage.update` a true
compare-and-set between threads. It is not shared between processes, so it is only for tests
and single-process development servers; its listings scan every record, which is fine at that
scale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..records import Record
from ..records import Status
from ._common import claim_arguments
from ._common import normalise_changes
from ._common import normalise_record
from ._common import page_cursor
from ._common import statuses
from ._common import utc
from .base import Cursor
from .base import RecordExists


class MemoryStorage:
    """Records in a dict. Records are frozen, so handing out the stored objects is safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        self._by_certify_id: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<MemoryStorage records={len(self._records)}>"

    def create(self, record: Record) -> None:
        record = normalise_record(record)
        with self._lock:
            if record.id in self._records:
                raise RecordExists(f"record {record.id!r} already exists")
            if record.certify_id is not None and record.certify_id in self._by_certify_id:
                raise RecordExists("another record already has this certify id")
            self._records[record.id] = record
            if record.certify_id is not None:
                self._by_certify_id[record.certify_id] = record.id

    def get(self, record_id: str) -> Record | None:
        with self._lock:
            return self._records.get(record_id)

    def get_by_certify_id(self, certify_id: str) -> Record | None:
        with self._lock:
            record_id = self._by_certify_id.get(certify_id)
            return None if record_id is None else self._records.get(record_id)

    def update(self, record_id: str, *, expect: Collection[Status], **changes: Any) -> Record | None:
        wanted = statuses(expect)
        checked = normalise_changes(changes)
        with self._lock:
            current = self._records.get(record_id)
            if current is None or current.status not in wanted:
                return None
            new = current.replace(**checked)
            if new.certify_id != current.certify_id and new.certify_id is not None:
                owner = self._by_certify_id.get(new.certify_id)
                if owner is not None and owner != record_id:
                    raise RecordExists("another record already has this certify id")
            if current.certify_id is not None and current.certify_id != new.certify_id:
                del self._by_certify_id[current.certify_id]
            if new.certify_id is not None:
                self._by_certify_id[new.certify_id] = record_id
            self._records[record_id] = new
            return new

    def claim_describe(
        self,
        record_id: str | None = None,
        *,
        now: datetime,
        not_since: datetime,
        certify_id: str | None = None,
        match: Mapping[str, Any] | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> Record | None:
        wanted, checked = claim_arguments(record_id, certify_id, match, changes)
        now = utc(now, "now")
        cutoff = utc(not_since, "not_since")
        with self._lock:
            if record_id is None:
                record_id = self._by_certify_id.get(certify_id or "")
            current = self._records.get(record_id) if record_id is not None else None
            if current is None or current.terminal:
                return None
            if any(getattr(current, name) != value for name, value in wanted.items()):
                return None
            if current.last_described_at is not None and current.last_described_at > cutoff:
                return None
            new = current.replace(last_described_at=now, describe_count=current.describe_count + 1, **checked)
            self._records[current.id] = new
            return new

    def latest_for_user(
        self,
        user_id: str,
        *,
        instance: str,
        status: Status | str | None = None,
        include_sandbox: bool = True,
    ) -> Record | None:
        wanted = None if status is None else Status(status)
        with self._lock:
            found = [
                r
                for r in self._records.values()
                if r.user_id == user_id
                and r.instance == instance
                and (wanted is None or r.status is wanted)
                and (include_sandbox or not r.sandbox)
            ]
        return max(found, key=lambda r: (r.created_at, r.id), default=None)

    def _page(
        self,
        keep: Callable[[Record], bool],
        key: Callable[[Record], datetime],
        before: datetime,
        limit: int,
        after: Cursor | None,
    ) -> list[Record]:
        cutoff = utc(before, "before")
        cursor = page_cursor(after)
        if limit <= 0:
            return []
        with self._lock:
            found = [
                r
                for r in self._records.values()
                if keep(r) and key(r) < cutoff and (cursor is None or (key(r), r.id) > cursor)
            ]
        found.sort(key=lambda r: (key(r), r.id))
        return found[:limit]

    def stale(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page(lambda r: not r.terminal, _updated, updated_before, limit, after)

    def undelivered(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page(
            lambda r: r.terminal and r.delivered_at is None, _updated, updated_before, limit, after
        )

    def undeleted(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page(
            lambda r: r.terminal and r.certify_id is not None and r.deleted_at is None,
            _updated,
            updated_before,
            limit,
            after,
        )

    def unpurged(
        self, *, created_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page(lambda r: r.purged_at is None, _created, created_before, limit, after)

    def count_inits(self, user_id: str, *, since: datetime) -> int:
        start = utc(since, "since")
        with self._lock:
            return sum(1 for r in self._records.values() if r.user_id == user_id and r.created_at >= start)

    def close(self) -> None:
        """Nothing to release; the records stay readable (tests inspect them after teardown)."""


def _updated(record: Record) -> datetime:
    return record.updated_at


def _created(record: Record) -> datetime:
    return record.created_at
