"""An in-process storage backend: the default under ``app.testing``.

Everything lives in dicts guarded by one lock, which makes :meth:`MemoryStorage.update` a true
compare-and-set between threads. It is not shared between processes, so it is only for tests
and single-process development servers.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..records import Record
from ..records import Status
from ._common import normalise_changes
from ._common import normalise_record
from ._common import statuses
from ._common import utc
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

    def stale(self, *, updated_before: datetime, limit: int = 100) -> Sequence[Record]:
        cutoff = utc(updated_before, "updated_before")
        if limit <= 0:
            return []
        with self._lock:
            found = [r for r in self._records.values() if not r.terminal and r.updated_at < cutoff]
        found.sort(key=lambda r: (r.updated_at, r.id))
        return found[:limit]

    def count_inits(self, user_id: str, *, since: datetime) -> int:
        start = utc(since, "since")
        with self._lock:
            return sum(1 for r in self._records.values() if r.user_id == user_id and r.created_at >= start)

    def close(self) -> None:
        """Nothing to release; the records stay readable (tests inspect them after teardown)."""
