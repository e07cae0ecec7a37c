"""Checks shared by every backend, so all of them accept and refuse exactly the same input.

A record that the memory backend accepts but PostgreSQL refuses would make tests lie about
production, so normalisation happens here once: statuses become :class:`Status`, datetimes
must be timezone-aware (and are stored as UTC), ``extra`` must survive a JSON round trip.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
from typing import Any
from typing import Literal

from ..records import RECORD_FIELDS
from ..records import USER_ID_TYPES
from ..records import Record
from ..records import Status

#: Fields :meth:`Storage.update` may change. ``id`` is the key and never changes.
UPDATABLE_FIELDS: frozenset[str] = frozenset(RECORD_FIELDS) - {"id"}

Kind = Literal["text", "status", "datetime", "bool", "int", "json"]


@dataclass(frozen=True)
class FieldType:
    """How one :class:`Record` field is checked and encoded: declared once, read by every backend.

    ``kind`` picks the check and each backend's encoding (a Redis hash value, an SQL column
    value); ``nullable`` says whether None is allowed; ``choices`` limits a text field.
    """

    kind: Kind
    nullable: bool = False
    choices: tuple[str, ...] | None = None


_TEXT = FieldType("text")
_OPTIONAL_TEXT = FieldType("text", nullable=True)
_WHEN = FieldType("datetime")
_OPTIONAL_WHEN = FieldType("datetime", nullable=True)

#: Every :class:`Record` field's type.
FIELD_TYPES: Mapping[str, FieldType] = {
    "id": _TEXT,
    "status": FieldType("status"),
    "created_at": _WHEN,
    "updated_at": _WHEN,
    "user_id": _OPTIONAL_TEXT,
    "api": _TEXT,
    "certify_id": _OPTIONAL_TEXT,
    "cert_no_digest": _TEXT,
    "cert_no_masked": _TEXT,
    "cert_name_masked": _TEXT,
    "callback_token_digest": _OPTIONAL_TEXT,
    "client_status": _OPTIONAL_TEXT,
    "client_error_code": _OPTIONAL_TEXT,
    "passed": FieldType("bool", nullable=True),
    "sub_code": _OPTIONAL_TEXT,
    "error_code": _OPTIONAL_TEXT,
    "describe_count": FieldType("int"),
    "last_described_at": _OPTIONAL_WHEN,
    "extra": FieldType("json"),
    "instance": _TEXT,
    "sandbox": FieldType("bool"),
    "user_id_type": FieldType("text", choices=USER_ID_TYPES),
    "delivered_at": _OPTIONAL_WHEN,
    "deleted_at": _OPTIONAL_WHEN,
    "purged_at": _OPTIONAL_WHEN,
}
assert tuple(FIELD_TYPES) == RECORD_FIELDS, "FIELD_TYPES out of step with Record"


def fields_of_kind(kind: Kind) -> tuple[str, ...]:
    """The Record fields of one kind, in declaration order."""
    return tuple(name for name, t in FIELD_TYPES.items() if t.kind == kind)


DATETIME_FIELDS: tuple[str, ...] = fields_of_kind("datetime")


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
    """``value`` checked against ``field``'s :data:`FIELD_TYPES` entry, in its stored form."""
    spec = FIELD_TYPES[field]
    if value is None:
        if spec.nullable:
            return None
        raise TypeError(f"{field} must not be None")
    kind = spec.kind
    if kind == "status":
        return Status(value)
    if kind == "datetime":
        if not isinstance(value, datetime):
            raise TypeError(f"{field} must be a datetime, got {type(value).__name__}")
        return utc(value, field)
    if kind == "json":
        if not isinstance(value, Mapping):
            raise TypeError(f"{field} must be a mapping, got {type(value).__name__}")
        return plain_json(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{field} must be an int, got {type(value).__name__}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{field} must be a bool, got {type(value).__name__}")
        return value
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, got {type(value).__name__}")
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"{field} must be one of {', '.join(spec.choices)}, got {value!r}")
    return value


def normalise_record(record: Record) -> Record:
    """``record`` with UTC datetimes, a Status and JSON-plain ``extra``, or an error."""
    if not isinstance(record, Record):
        raise TypeError(f"expected a Record, got {type(record).__name__}")
    if not isinstance(record.id, str) or not record.id:
        raise ValueError("a record needs a non-empty str id")
    changes = {name: normalise_value(name, getattr(record, name)) for name in UPDATABLE_FIELDS}
    return record.replace(**changes)


def normalise_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Checked ``update()`` keyword arguments; unknown names raise TypeError like a bad kwarg."""
    unknown = sorted(set(changes) - UPDATABLE_FIELDS)
    if unknown:
        raise TypeError(f"update() got unknown record field(s): {', '.join(unknown)}")
    return {name: normalise_value(name, value) for name, value in changes.items()}


#: Fields a describe claim sets itself, or finds the record by: never in its ``changes``.
_CLAIM_OWNED = frozenset({"status", "certify_id", "last_described_at", "describe_count"})


def claim_arguments(
    record_id: str | None,
    certify_id: str | None,
    match: Mapping[str, Any] | None,
    changes: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``claim_describe``'s ``match`` and ``changes`` checked (values normalised like ``update``'s).

    Exactly one of ``record_id`` and ``certify_id`` finds the record. ``match`` names fields that
    must hold these values (None: unset) for the claim to succeed; ``changes`` are written with it.
    """
    if (record_id is None) == (certify_id is None):
        raise TypeError("claim_describe() takes exactly one of record_id and certify_id")
    match = dict(match or {})
    changes = dict(changes or {})
    unknown = sorted(set(match) - UPDATABLE_FIELDS)
    if unknown:
        raise TypeError(f"claim_describe() got unknown match field(s): {', '.join(unknown)}")
    owned = sorted(set(changes) & _CLAIM_OWNED)
    if owned:
        raise TypeError(f"claim_describe() cannot change {', '.join(owned)}")
    checked_match = {name: None if v is None else normalise_value(name, v) for name, v in match.items()}
    return checked_match, normalise_changes(changes)


def page_cursor(after: tuple[datetime, str] | None) -> tuple[datetime, str] | None:
    """A listing cursor checked and in UTC (or None for the first page)."""
    if after is None:
        return None
    if not isinstance(after, tuple) or len(after) != 2 or not isinstance(after[1], str):
        raise TypeError("after must be a (datetime, record id) tuple or None")
    if not isinstance(after[0], datetime):
        raise TypeError(f"after[0] must be a datetime, got {type(after[0]).__name__}")
    return utc(after[0], "after"), after[1]
