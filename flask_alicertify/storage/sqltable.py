"""The records table and the engines the SQLAlchemy backend opens: schema, not behaviour.

Kept apart from :mod:`.sqlalchemy` so the table can be put into an application's own
``MetaData`` (Flask-SQLAlchemy's ``db.metadata``, an Alembic project) without the storage.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from ..records import RECORD_FIELDS
from ._common import FIELD_TYPES

#: Seconds a SQLite connection waits for another writer before "database is locked".
SQLITE_BUSY_TIMEOUT = 30.0


def _datetime() -> sa.types.TypeEngine[Any]:
    # MySQL's DATETIME drops fractions of a second unless asked; keep microseconds everywhere.
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _column_types() -> dict[str, sa.types.TypeEngine[Any]]:
    return {
        "id": sa.String(64),
        "status": sa.String(16),
        "created_at": _datetime(),
        "updated_at": _datetime(),
        "user_id": sa.String(255),
        "api": sa.String(32),
        "certify_id": sa.String(128),
        "cert_no_digest": sa.String(128),
        "cert_no_masked": sa.String(64),
        "cert_name_masked": sa.Text(),
        "callback_token_digest": sa.String(128),
        "client_status": sa.Text(),
        "client_error_code": sa.Text(),
        "passed": sa.Boolean(),
        "sub_code": sa.Text(),
        "error_code": sa.Text(),
        "describe_count": sa.Integer(),
        "last_described_at": _datetime(),
        "extra": sa.JSON(),
        "instance": sa.String(64),
        "sandbox": sa.Boolean(),
        "user_id_type": sa.String(8),
        "delivered_at": _datetime(),
        "deleted_at": _datetime(),
        "purged_at": _datetime(),
    }


def make_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """The records table in ``metadata``: one column per :class:`~flask_alicertify.records.Record`
    field (nullable exactly where the field may be None) and the indexes the storage queries use.

    Each listing the jobs page through has an index led by the column that says "still to do"
    (``delivered_at``/``deleted_at``/``purged_at`` IS NULL) followed by its sort key and the id,
    so a page is an index range scan however many finished records the table holds.
    """
    types = _column_types()
    assert tuple(types) == RECORD_FIELDS, "records table out of step with Record"
    table = sa.Table(
        name,
        metadata,
        *(
            sa.Column(field, types[field], primary_key=field == "id", nullable=FIELD_TYPES[field].nullable)
            for field in RECORD_FIELDS
        ),
    )
    c = table.c
    sa.Index(f"ix_{name}_certify_id", c.certify_id, unique=True)
    # count_inits (user, created range) and latest_for_user (user, newest first).
    sa.Index(f"ix_{name}_user_created", c.user_id, c.created_at)
    sa.Index(f"ix_{name}_status_updated", c.status, c.updated_at)
    sa.Index(f"ix_{name}_delivered", c.delivered_at, c.updated_at, c.id)
    sa.Index(f"ix_{name}_deleted", c.deleted_at, c.updated_at, c.id)
    sa.Index(f"ix_{name}_purged", c.purged_at, c.created_at, c.id)
    return table


def table_in(metadata: sa.MetaData, name: str) -> sa.Table:
    """The records table named ``name`` in ``metadata``: the one already there (an app factory
    called twice with one module-level ``db``, or the app's own :func:`make_table` call), else
    a new one. A different table of that name is an error, not something to write records to."""
    existing = metadata.tables.get(name)
    if existing is None:
        return make_table(metadata, name)
    if set(existing.c.keys()) != set(RECORD_FIELDS):
        raise ValueError(
            f"the metadata already has a table {name!r} that is not a records table "
            f"(columns {sorted(existing.c.keys())}); choose another table name"
        )
    return existing


def is_memory_sqlite(url: sa.URL) -> bool:
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in str(url)


def _sqlite_wal(dbapi_connection: Any, _connection_record: Any) -> None:
    """Put each new connection to a SQLite file in WAL mode with ``synchronous=NORMAL``.

    Why: in the default rollback-journal mode a writer blocks every reader, across threads and
    worker processes, and each commit waits for several fsyncs. In WAL mode readers never block
    the writer nor the writer the readers, and a commit appends to the log without an fsync.

    The durability trade-off (SQLite's documented behaviour for WAL + NORMAL): the database stays
    consistent after a crash or power loss, and a committed transaction survives an application
    crash; only the last transactions committed before a power loss or OS crash may be rolled
    back. For these records that means at worst a claim or a verdict stored moments before the
    machine died is missing; the record itself was written before Init and stays non-terminal,
    so the next result post, callback or ``reconcile`` describes it again and stores the verdict
    (describe is idempotent at Alibaba). WAL needs shared memory, so the file must live on a
    local filesystem (not NFS/SMB), which a SQLite file shared by workers needs anyway.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_engine(url: str | sa.URL) -> Engine:
    """An engine set up for this workload; the SQLite specifics are why this exists.

    A file database gets a long busy timeout so that many threads or processes queue for the
    write lock instead of failing with "database is locked", and WAL mode (see
    :func:`_sqlite_wal`). An in-memory database gets one shared connection (otherwise every
    thread would see its own empty database).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT}
        if is_memory_sqlite(parsed):
            return sa.create_engine(parsed, connect_args=connect_args, poolclass=StaticPool)
        engine = sa.create_engine(parsed, connect_args=connect_args)
        sa.event.listen(engine, "connect", _sqlite_wal)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)
