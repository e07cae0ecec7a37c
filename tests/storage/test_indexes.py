"""Every query the storage runs is served by an index, on SQLite and PostgreSQL.

The jobs (reconcile, redelivery, deletion, purge) page through tables that only grow; a listing
that scans the table would get slower every day. The plans are read from the database itself
(``EXPLAIN``) for the exact statements the storage sends, captured as it runs them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from collections.abc import Iterator
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import pytest
from support.storage import BACKENDS
from support.storage import Backend
from support.storage import open_test_backend

from flask_alicertify.records import Record
from flask_alicertify.records import Status

sa = pytest.importorskip("sqlalchemy")

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
SQL_BACKENDS = [p for p in BACKENDS if p.values[0] in ("sqlite", "postgresql")]

#: What each call must use: the index name (table name substituted), or "pkey" for the key.
QUERIES: dict[str, tuple[Callable[[Any], Any], str]] = {
    "get": (lambda s: s.get("x" * 32), "pkey"),
    "get_by_certify_id": (lambda s: s.get_by_certify_id("cid"), "ix_{t}_certify_id"),
    "update": (lambda s: s.update("x" * 32, expect={Status.PENDING}, status=Status.PASSED), "pkey"),
    "claim_describe": (lambda s: s.claim_describe("x" * 32, now=T0, not_since=T0), "pkey"),
    "count_inits": (lambda s: s.count_inits("u", since=T0), "ix_{t}_user_created"),
    "latest_for_user": (
        lambda s: s.latest_for_user("u", instance="alicertify", status="passed", include_sandbox=False),
        "ix_{t}_user_created",
    ),
    "stale": (lambda s: s.stale(updated_before=T0, after=(T0, "x")), "ix_{t}_status_updated"),
    "undelivered": (lambda s: s.undelivered(updated_before=T0, after=(T0, "x")), "ix_{t}_delivered"),
    "undeleted": (lambda s: s.undeleted(updated_before=T0, after=(T0, "x")), "ix_{t}_deleted"),
    "unpurged": (lambda s: s.unpurged(created_before=T0, after=(T0, "x")), "ix_{t}_purged"),
}


@pytest.fixture(params=SQL_BACKENDS, scope="module")
def sql_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with open_test_backend(request.param, tmp_path_factory.mktemp("indexes")) as opened:
        storage: Any = opened.storage
        # Enough finished records that a scan would be the worse plan.
        for i in range(300):
            at = T0 - timedelta(days=1, minutes=i)
            storage.create(
                Record(
                    id=secrets.token_hex(16),
                    status=Status.PASSED,
                    created_at=at,
                    updated_at=at,
                    user_id=f"user-{i}",
                    certify_id=f"cid-{i}",
                    delivered_at=at,
                    deleted_at=at,
                    purged_at=at,
                )
            )
        with storage.engine.begin() as conn:
            conn.exec_driver_sql(f"ANALYZE {storage.table.name}")
        yield opened


def captured(storage: Any, call: Callable[[Any], Any]) -> tuple[str, Any]:
    """The one SQL statement (and its parameters) the storage sends for ``call``."""
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
            seen.append((statement, parameters))

    sa.event.listen(storage.engine, "before_cursor_execute", listen)
    try:
        call(storage)
    finally:
        sa.event.remove(storage.engine, "before_cursor_execute", listen)
    assert len(seen) == 1, seen
    return seen[0]


def plan(storage: Any, statement: str, parameters: Any) -> str:
    with storage.engine.begin() as conn:
        if storage.engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            return "\n".join(str(row[-1]) for row in rows)
        # On a small table PostgreSQL may still prefer a scan; forbidding it shows whether an
        # index *can* serve the query, which is what the test is about.
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
        return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_each_query_uses_its_index(sql_backend: Backend, name: str) -> None:
    storage: Any = sql_backend.storage
    call, index = QUERIES[name]
    table = storage.table.name
    statement, parameters = captured(storage, call)
    text = plan(storage, statement, parameters)
    if index == "pkey":
        # A lookup by id may use the key or, where the planner prefers it, the status index
        # (PostgreSQL, when its statistics say no row is ``pending``): any index, no scan.
        wanted = ["sqlite_autoindex", f"{table}_pkey", "Index Scan using ix_"]
    else:
        wanted = [index.format(t=table)]
    assert any(w in text for w in wanted), text
    assert "SCAN " + table not in text.replace("USING INDEX", "")  # SQLite: no full-table scan
    assert "Seq Scan" not in text
