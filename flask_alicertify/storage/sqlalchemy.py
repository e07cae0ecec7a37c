"""A SQLAlchemy 2.x Core backend: SQLite for one host, PostgreSQL or MySQL for several.

The compare-and-set in :meth:`SQLAlchemyStorage.update` is a single
``UPDATE ... WHERE id = :id AND status IN (...)`` whose row count says who won, and
:meth:`SQLAlchemyStorage.claim_describe` is one ``UPDATE`` with the interval in its ``WHERE``.
The database's own row locking makes both atomic across threads, processes and hosts, with no
``SELECT ... FOR UPDATE`` (which SQLite lacks) and no isolation-level requirements. Where the
dialect supports ``UPDATE ... RETURNING`` (SQLite 3.35+, PostgreSQL) the winner gets the new
row from that same statement; elsewhere (MySQL) a ``SELECT`` in the same transaction follows.

Statements are built once per storage and reused with bound parameters: building a SQLAlchemy
statement (and its cache key) costs more than executing it on SQLite, and the state machine
only ever runs a handful of shapes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ..errors import SchemaManagedByMigrations
from ..records import NON_TERMINAL
from ..records import RECORD_FIELDS
from ..records import TERMINAL
from ..records import Record
from ..records import Status
from ._common import DATETIME_FIELDS
from ._common import as_utc_loaded
from ._common import claim_arguments
from ._common import fields_of_kind
from ._common import normalise_changes
from ._common import normalise_record
from ._common import page_cursor
from ._common import statuses
from ._common import utc
from .base import Cursor
from .base import RecordExists
from .sqltable import SQLITE_BUSY_TIMEOUT
from .sqltable import create_engine
from .sqltable import is_memory_sqlite
from .sqltable import make_table
from .sqltable import table_in
from .sqlwrites import claim_statement
from .sqlwrites import update_statement

__all__ = ["SQLITE_BUSY_TIMEOUT", "SQLAlchemyStorage", "create_engine", "make_table"]

_BOOL_FIELDS = fields_of_kind("bool")
_JSON_FIELDS = fields_of_kind("json")
_STATUS_FIELDS = fields_of_kind("status")
_NON_TERMINAL = sorted(s.value for s in NON_TERMINAL)
_TERMINAL = sorted(s.value for s in TERMINAL)
#: Dialects whose CREATE TABLE and CREATE INDEX both take IF NOT EXISTS (MySQL's index does not).
_IF_NOT_EXISTS_DIALECTS = frozenset({"sqlite", "postgresql"})


class SQLAlchemyStorage:
    """Records in one SQL table.

    :param url: a database URL or an existing :class:`~sqlalchemy.Engine` (which is then not
        disposed by :meth:`close`, since its owner may still use it).
    :param table_name: lets several apps (or extension instances) share a database.
    :param create: create the table (if missing) on first use; otherwise call :meth:`create_all`
        (``flask alicertify init-db``) or manage the schema yourself.
    :param metadata: put the table into this ``MetaData`` (an app's ``db.metadata``) instead of
        a private one, so the app's migrations see it; a records table of that name already
        there is reused.
    :param migrations: True (or a callable answering it when asked) when the app's migrations
        own the table: :meth:`create_all` then refuses with
        :class:`~flask_alicertify.errors.SchemaManagedByMigrations`.
    """

    def __init__(
        self,
        url: str | sa.URL | Engine,
        *,
        table_name: str = "alicertify_records",
        create: bool = True,
        metadata: sa.MetaData | None = None,
        migrations: bool | Callable[[], bool] = False,
    ) -> None:
        if isinstance(url, Engine):
            self.engine = url
            self._owns_engine = False
        else:
            self.engine = create_engine(url)
            self._owns_engine = True
        self.metadata = sa.MetaData() if metadata is None else metadata
        self.table = table_in(self.metadata, table_name)
        self._create = create
        self._migrations = migrations
        self._created = False
        self._create_lock = threading.Lock()
        # One shared in-memory connection cannot interleave transactions from several threads.
        self._serial: threading.Lock | None = threading.Lock() if is_memory_sqlite(self.engine.url) else None
        # SQLite and MySQL DATETIME columns hold no zone: store naive UTC, restore tzinfo on read.
        self._aware = self.engine.dialect.name == "postgresql"
        self._returning = bool(self.engine.dialect.update_returning)
        t = self.table
        self._select_by_id = sa.select(t).where(t.c.id == sa.bindparam("match_id"))
        self._select_by_certify_id = sa.select(t).where(t.c.certify_id == sa.bindparam("match_certify_id"))
        #: Describe claims by shape: found by, matched fields (and whether NULL), changed columns.
        self._claims: dict[tuple[Any, ...], sa.Update] = {}
        #: Compare-and-set statements by the sorted names of the columns they set.
        self._updates: dict[tuple[str, ...], sa.Update] = {}
        #: Reads built on first use, by shape.
        self._selects: dict[tuple[Any, ...], sa.Select[Any]] = {}

    def __repr__(self) -> str:
        return f"<SQLAlchemyStorage {self.engine.url!r} table={self.table.name!r}>"

    # -- schema ----------------------------------------------------------------------------------

    @property
    def managed_by_migrations(self) -> bool:
        """Whether the app's migrations own the table (then :meth:`create_all` refuses)."""
        owned = self._migrations
        return bool(owned() if callable(owned) else owned)

    def create_all(self) -> None:
        """Create the table and its indexes when missing. Safe to call repeatedly and concurrently.

        :raises SchemaManagedByMigrations: when the app's migrations own the table; a table
            created here would make their ``flask db upgrade`` fail with "already exists".
        """
        if self.managed_by_migrations:
            raise SchemaManagedByMigrations(self.table.name)
        with self._maybe_serial():
            try:
                self._create_table()
            except sa.exc.DBAPIError:
                # Another connection created it between our check and our CREATE (PostgreSQL's
                # IF NOT EXISTS can still collide in its catalogue); the second pass sees it.
                # If the error was something else, it is raised again.
                self._create_table()
        self._created = True

    def _create_table(self) -> None:
        if self.engine.dialect.name not in _IF_NOT_EXISTS_DIALECTS:
            self.table.create(self.engine, checkfirst=True)
            return
        # A check-then-create races other connections, and SQLite's check can read a schema
        # its connection cached before another one committed the table: let the database
        # decide with IF NOT EXISTS, in one transaction.
        with self.engine.begin() as conn:
            conn.execute(sa.schema.CreateTable(self.table, if_not_exists=True))
            for index in sorted(self.table.indexes, key=lambda i: i.name or ""):
                conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))

    def drop_all(self) -> None:
        """Drop the table (tests and uninstalls); other tables of a shared metadata stay."""
        with self._maybe_serial():
            self.table.drop(self.engine, checkfirst=True)
        self._created = False

    def _ensure_table(self) -> None:
        if self._created or not self._create:
            return
        with self._create_lock:
            if not self._created:
                self.create_all()

    @contextmanager
    def _maybe_serial(self) -> Iterator[None]:
        if self._serial is None:
            yield
        else:
            with self._serial:
                yield

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        self._ensure_table()
        with self._maybe_serial(), self.engine.begin() as conn:
            yield conn

    # -- conversion ------------------------------------------------------------------------------

    def _dt_out(self, value: datetime | None, name: str = "datetime") -> datetime | None:
        if value is None:
            return None
        value = utc(value, name)
        return value if self._aware else value.replace(tzinfo=None)

    def _to_row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        row = dict(values)
        for name in DATETIME_FIELDS:
            if name in row:
                row[name] = self._dt_out(row[name])
        for name in _STATUS_FIELDS:
            if name in row:
                row[name] = Status(row[name]).value
        for name in _JSON_FIELDS:
            if name in row:
                row[name] = dict(row[name])
        return row

    @staticmethod
    def _to_record(row: sa.Row[Any]) -> Record:
        data = dict(row._mapping)
        for name in DATETIME_FIELDS:
            if data[name] is not None:
                data[name] = as_utc_loaded(data[name])
        for name in _STATUS_FIELDS:
            data[name] = Status(data[name])
        for name in _BOOL_FIELDS:  # MySQL answers 0/1
            if data[name] is not None:
                data[name] = bool(data[name])
        for name in _JSON_FIELDS:
            data[name] = dict(data[name] or {})
        return Record(**data)

    def _one(self, statement: sa.Executable, params: Mapping[str, Any]) -> Record | None:
        with self._begin() as conn:
            row = conn.execute(statement, params).first()
        return None if row is None else self._to_record(row)

    def _all(self, statement: sa.Executable, params: Mapping[str, Any]) -> list[Record]:
        with self._begin() as conn:
            rows = conn.execute(statement, params).all()
        return [self._to_record(row) for row in rows]

    # -- Storage ---------------------------------------------------------------------------------

    def create(self, record: Record) -> None:
        record = normalise_record(record)
        row = self._to_row({name: getattr(record, name) for name in RECORD_FIELDS})
        try:
            with self._begin() as conn:
                conn.execute(self.table.insert().values(**row))
        except IntegrityError as e:
            raise RecordExists(f"record {record.id!r} (or its certify id) already exists") from e

    def get(self, record_id: str) -> Record | None:
        return self._one(self._select_by_id, {"match_id": record_id})

    def get_by_certify_id(self, certify_id: str) -> Record | None:
        return self._one(self._select_by_certify_id, {"match_certify_id": certify_id})

    def _update_statement(self, columns: tuple[str, ...], expected: int) -> sa.Update:
        key = (*columns, str(expected))
        statement = self._updates.get(key)
        if statement is None:
            statement = self._updates[key] = update_statement(self.table, columns, expected, self._returning)
        return statement

    def _write(self, statement: sa.Update, params: Mapping[str, Any], *, by: str, key: str) -> Record | None:
        """Run a conditional ``UPDATE``; the new row when it matched, else None. Without
        ``RETURNING`` (MySQL) the row is read back by ``by`` (``id`` or ``certify_id``) = ``key``."""
        with self._begin() as conn:
            result = conn.execute(statement, params)
            if self._returning:
                row = result.first()
            else:
                if result.rowcount != 1:
                    return None
                if by == "id":
                    row = conn.execute(self._select_by_id, {"match_id": key}).one()
                else:
                    row = conn.execute(self._select_by_certify_id, {"match_certify_id": key}).one()
        return None if row is None else self._to_record(row)

    def update(self, record_id: str, *, expect: Collection[Status], **changes: Any) -> Record | None:
        wanted = sorted(s.value for s in statuses(expect))
        values: dict[str, Any] = self._to_row(normalise_changes(changes))
        if not wanted:
            return None
        columns = tuple(sorted(values))
        params = {f"new_{name}": values[name] for name in columns}
        params["match_id"] = record_id
        params.update((f"match_status_{i}", value) for i, value in enumerate(wanted))
        try:
            return self._write(self._update_statement(columns, len(wanted)), params, by="id", key=record_id)
        except IntegrityError as e:
            raise RecordExists("another record already has this certify id") from e

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
        values = self._to_row(checked)
        matched = self._to_row({k: v for k, v in wanted.items() if v is not None})
        shape = tuple((name, wanted[name] is None) for name in sorted(wanted))
        columns = tuple(sorted(values))
        by, found = ("id", record_id) if record_id is not None else ("certify_id", certify_id or "")
        shape_key = (by, shape, columns)
        statement = self._claims.get(shape_key)
        if statement is None:
            statement = self._claims[shape_key] = claim_statement(
                self.table, by, shape, columns, self._returning
            )
        params: dict[str, Any] = {
            "match_key": found,
            "now": self._dt_out(now, "now"),
            "not_since": self._dt_out(not_since, "not_since"),
        }
        params.update((f"match_{name}", value) for name, value in matched.items())
        params.update((f"new_{name}", value) for name, value in values.items())
        return self._write(statement, params, by=by, key=found)

    def latest_for_user(
        self,
        user_id: str,
        *,
        instance: str,
        status: Status | str | None = None,
        include_sandbox: bool = True,
    ) -> Record | None:
        wanted = None if status is None else Status(status).value
        key = ("latest", wanted is not None, include_sandbox)
        query = self._selects.get(key)
        if query is None:
            t = self.table
            query = sa.select(t).where(
                t.c.user_id == sa.bindparam("user_id"), t.c.instance == sa.bindparam("instance")
            )
            if wanted is not None:
                query = query.where(t.c.status == sa.bindparam("status"))
            if not include_sandbox:
                query = query.where(t.c.sandbox.is_(False))
            query = query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(1)
            self._selects[key] = query
        params = {"user_id": user_id, "instance": instance}
        if wanted is not None:
            params["status"] = wanted
        return self._one(query, params)

    def _page(
        self,
        kind: str,
        before: datetime,
        limit: int,
        after: Cursor | None,
    ) -> list[Record]:
        """One page of a listing: ``kind``'s filter, ``sort < before``, ``(sort, id) > after``."""
        cursor = page_cursor(after)
        cutoff = self._dt_out(before, "before")
        if limit <= 0:
            return []
        key = (kind, cursor is not None)
        query = self._selects.get(key)
        if query is None:
            t = self.table
            sort = t.c.created_at if kind == "unpurged" else t.c.updated_at
            filters = {
                "stale": [t.c.status.in_(_NON_TERMINAL)],
                "undelivered": [t.c.delivered_at.is_(None), t.c.status.in_(_TERMINAL)],
                "undeleted": [
                    t.c.deleted_at.is_(None),
                    t.c.status.in_(_TERMINAL),
                    t.c.certify_id.is_not(None),
                ],
                "unpurged": [t.c.purged_at.is_(None)],
            }[kind]
            query = sa.select(t).where(*filters, sort < sa.bindparam("before", type_=sort.type))
            if cursor is not None:
                query = query.where(
                    sa.tuple_(sort, t.c.id)
                    > sa.tuple_(sa.bindparam("after_key", type_=sort.type), sa.bindparam("after_id"))
                )
            query = query.order_by(sort, t.c.id).limit(sa.bindparam("limit", type_=sa.Integer()))
            self._selects[key] = query
        params: dict[str, Any] = {"before": cutoff, "limit": limit}
        if cursor is not None:
            params.update(after_key=self._dt_out(cursor[0]), after_id=cursor[1])
        return self._all(query, params)

    def stale(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page("stale", updated_before, limit, after)

    def undelivered(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page("undelivered", updated_before, limit, after)

    def undeleted(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page("undeleted", updated_before, limit, after)

    def unpurged(
        self, *, created_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page("unpurged", created_before, limit, after)

    def count_inits(self, user_id: str, *, since: datetime) -> int:
        t = self.table
        query = (
            sa.select(sa.func.count())
            .select_from(t)
            .where(t.c.user_id == user_id, t.c.created_at >= self._dt_out(since, "since"))
        )
        with self._begin() as conn:
            return int(conn.execute(query).scalar_one())

    def close(self) -> None:
        """Dispose of the engine's pool, unless the engine was handed to us."""
        if self._owns_engine:
            self.engine.dispose()
