"""The conditional ``UPDATE`` statements of the SQLAlchemy backend, one builder per kind.

The storage builds each shape once and keeps it (building a statement and its cache key costs
more than executing it on SQLite); these functions only say what the statements are.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..records import NON_TERMINAL

_NON_TERMINAL = sorted(s.value for s in NON_TERMINAL)


def update_statement(table: sa.Table, columns: tuple[str, ...], expected: int, returning: bool) -> sa.Update:
    """``UPDATE t SET <columns> WHERE id = :match_id AND status IN (<expected> values)``.

    The IN list has one bound parameter per expected status (not an "expanding" parameter,
    which SQLAlchemy re-renders on every execution). Only the named columns are written, so
    two updates naming different columns (a purge and a transition) never undo each other.
    """
    t = table
    values: dict[str, Any] = {name: sa.bindparam(f"new_{name}", type_=t.c[name].type) for name in columns}
    if not values:
        # Still a CAS (and a row lock) with nothing to change: an UPDATE needs a SET clause.
        values = {"status": t.c.status}
    statuses_in = [sa.bindparam(f"match_status_{i}", type_=t.c.status.type) for i in range(expected)]
    statement = (
        t.update().where(t.c.id == sa.bindparam("match_id"), t.c.status.in_(statuses_in)).values(values)
    )
    return statement.returning(*t.c) if returning else statement


def claim_statement(
    table: sa.Table,
    by: str,
    match: tuple[tuple[str, bool], ...],
    columns: tuple[str, ...],
    returning: bool,
) -> sa.Update:
    """The describe claim: one ``UPDATE … WHERE`` with the interval in it.

    ``by`` is the column that finds the record (``id`` or ``certify_id``, bound as
    ``match_key``); ``match`` the fields that must hold a value (``match_<name>``), each with
    whether it must be NULL instead; ``columns`` the changes written with the claim (``new_<name>``).
    """
    t = table
    last = t.c.last_described_at
    conditions = [
        t.c[by] == sa.bindparam("match_key"),
        t.c.status.in_(_NON_TERMINAL),
        sa.or_(last.is_(None), last <= sa.bindparam("not_since", type_=last.type)),
    ]
    for name, is_null in match:
        column = t.c[name]
        conditions.append(
            column.is_(None) if is_null else column == sa.bindparam(f"match_{name}", type_=column.type)
        )
    values: dict[str, Any] = {
        "last_described_at": sa.bindparam("now", type_=last.type),
        "describe_count": t.c.describe_count + 1,
    }
    values.update((name, sa.bindparam(f"new_{name}", type_=t.c[name].type)) for name in columns)
    statement = t.update().where(*conditions).values(values)
    return statement.returning(*t.c) if returning else statement
