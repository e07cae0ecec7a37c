"""Checks shared by every backend, so all of them accept and refuse exactly the same input.

A record that the memory backend accepts but PostgreSQL refuses would make tests lie about
production, so normalisation happens here once: statuses become :class:`Status`, datetimes
must be timezone-aware (and are stored as UTC), ``extra`` must survive a JSON round trip.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from collections.abc import Mapping
from datetime import datetime
from datetime import timezone
from typing import Any

from ..records import RECORD_FIELDS
from ..records import Record
from ..records import Status

#: Fields :meth:`Storage.update` may change. ``id`` is the key and never changes.
UPDATABLE_FIELDS: frozenset[str] = frozenset(RECORD_FIELDS) - {"id"}

DATETIME_FIELDS: tuple[str, ...] = ("created_at", "updated_at", "last_described_at")


def utc(value: datetime, field: str) -> datetime:
    """``value`` converted to UTC; naive datetimes are refused because their zone is a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be a timezone-aware datetime, got a naive one")
    return value.astimezone(timezone.utc)


def as_utc_loaded(value: datetime) -> datetime:
    """A datetime read back from a store that may have dropped tzinfo (SQLite); it was UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def plain_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as it will come back from any backend (tuples become lists, and so on)."""
    loaded = json.loads(json.dumps(dict(value), ensure_ascii=False, allow_nan=False))
    assert isinstance(loaded, dict)
    return loaded


def statuses(expect: Collection[Status | str]) -> frozenset[Status]:
    """``expect`` as Status members; a string that is no status raises ValueError."""
    if isinstance(expect, (str, Status)):
        expect = [expect]
    return frozenset(Status(s) for s in expect)


def normalise_value(field: str, value: Any) -> Any:
    if field == "status":
        return Status(value)
    if field in DATETIME_FIELDS:
        if value is None and field == "last_described_at":
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"{field} must be a datetime, got {type(value).__name__}")
        return utc(value, field)
    if field == "extra":
        if not isinstance(value, Mapping):
            raise TypeError(f"extra must be a mapping, got {type(value).__name__}")
        return plain_json(value)
    if field == "describe_count":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"describe_count must be an int, got {type(value).__name__}")
        return value
    if field == "passed":
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"passed must be a bool or None, got {type(value).__name__}")
        return value
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{field} must be a str or None, got {type(value).__name__}")
    return value


def normalise_record(record: Record) -> Record:
    """``record`` with UTC datetimes, a Status and JSON-plain ``extra``, or an error."""
    if not isinstance(record, Record):
        raise TypeError(f"expected a Record, got {type(record).__name__}")
    if not record.id:
        raise ValueError("a record needs a non-empty id")
    changes = {name: normalise_value(name, getattr(record, name)) for name in UPDATABLE_FIELDS}
    return record.replace(**changes)


def normalise_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Checked ``update()`` keyword arguments; unknown names raise TypeError like a bad kwarg."""
    unknown = sorted(set(changes) - UPDATABLE_FIELDS)
    if unknown:
        raise TypeError(f"update() got unknown record field(s): {', '.join(unknown)}")
    return {name: normalise_value(name, value) for name, value in changes.items()}
