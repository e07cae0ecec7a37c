"""The record's own helpers: user-id text and type, the purge's changes, the declared field types."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from datetime import timezone
from typing import Any

import pytest

from flask_alicertify import records
from flask_alicertify.records import Record
from flask_alicertify.records import Status
from flask_alicertify.storage._common import FIELD_TYPES

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice", ("alice", "str")),
        ("42", ("42", "str")),
        (42, ("42", "int")),
        (-7, ("-7", "int")),
        (0, ("0", "int")),
    ],
)
def test_user_id_text(value: object, expected: tuple[str, str]) -> None:
    assert records.user_id_text(value) == expected


@pytest.mark.parametrize("value", [True, False, 4.0, None, b"42", object(), ["42"]])
def test_user_id_text_refuses_other_types(value: object) -> None:
    with pytest.raises(TypeError, match=type(value).__name__):
        records.user_id_text(value)


def test_typed_user_id_gives_back_what_the_loader_produced() -> None:
    for value in ("alice", "42", 42, 10**20):
        text, kind = records.user_id_text(value)
        record = Record(
            id="r", status=Status.PENDING, created_at=T0, updated_at=T0, user_id=text, user_id_type=kind
        )
        assert record.typed_user_id == value
        assert type(record.typed_user_id) is type(value)
    anonymous = Record(id="r", status=Status.PENDING, created_at=T0, updated_at=T0, user_id_type="int")
    assert anonymous.typed_user_id is None


def test_purge_changes_name_only_identity_fields_and_the_mark() -> None:
    changes = records.purge_changes(T0)
    assert changes == {"cert_no_digest": "", "cert_no_masked": "", "cert_name_masked": "", "purged_at": T0}
    # Nothing a transition writes, so a purge cannot undo one.
    assert not set(changes) & {"status", "passed", "sub_code", "updated_at", "error_code", "delivered_at"}


def test_field_types_follow_the_record_annotations() -> None:
    """Nullable exactly where the dataclass allows None, so every backend refuses the same Nones."""
    fields: list[Any] = list(dataclasses.fields(Record))
    assert [f.name for f in fields] == list(FIELD_TYPES)
    for f in fields:
        assert FIELD_TYPES[f.name].nullable == ("None" in str(f.type)), f.name
