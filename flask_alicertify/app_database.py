"""Where the records live by default: the app's own database when it has Flask-SQLAlchemy.

An app with Flask-SQLAlchemy already has a database, shared by all its hosts and managed by its
migrations. Records written to a SQLite file beside it would split between hosts (and so would
the attempt limit), and a table outside ``db.metadata`` is one that ``flask db migrate``
proposes to drop. So, with Flask-SQLAlchemy on the app and no ``{prefix}DATABASE_URL``, the
records table joins the app's metadata (of the default bind, or of ``{prefix}SQLALCHEMY_BIND``)
and is written through the app's engine; migrations own its schema.

Either extension may be initialised first. When AliCertify comes first, the choice waits for
the first app context (every request and every ``flask`` command pushes one, so the table is in
the metadata before Flask-Migrate's ``env.py`` reads it) or the first storage call, whichever
comes first. Without Flask-SQLAlchemy the records go to ``alicertify.sqlite3`` in the instance
folder, which is created only when the storage is first used: an ``init_app`` that fails
later leaves nothing on disk.

This is the Flask layer: it reads ``app.extensions`` and imports nothing from Flask-SQLAlchemy.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask import appcontext_pushed
from flask import current_app
from flask import has_app_context
from flask.globals import app_ctx

from .errors import ConfigurationError
from .records import Record
from .records import Status
from .storage.base import Cursor
from .storage.base import Storage
from .storage.loader import table_name_for
from .storage.sqlalchemy import SQLAlchemyStorage

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["DeferredStorage", "app_database_storage", "default_storage", "sqlite_file_url"]

logger = logging.getLogger("flask_alicertify")

#: The ``app.extensions`` keys of Flask-SQLAlchemy and Flask-Migrate.
SQLALCHEMY_EXTENSION = "sqlalchemy"
MIGRATE_EXTENSION = "migrate"
#: The default SQLite file's name in the instance folder.
SQLITE_FILE = "alicertify.sqlite3"


def default_storage(app: Flask, settings: Settings, *, instance: str) -> Storage:
    """The storage for ``{prefix}STORAGE`` = ``"sqlalchemy"`` (or unset) without a database URL.

    With Flask-SQLAlchemy already on ``app``: :func:`app_database_storage`. Otherwise a
    :class:`DeferredStorage` that decides at the first app context or storage call. Nothing
    here connects to a database or touches the disk.

    :raises ConfigurationError: ``{prefix}SQLALCHEMY_BIND`` names no bind of the app's database.
    """
    db = app.extensions.get(SQLALCHEMY_EXTENSION)
    if db is not None:
        return app_database_storage(app, db, settings, table_name=table_name_for(instance))
    return DeferredStorage(app, settings, table_name=table_name_for(instance))


def app_database_storage(app: Flask, db: Any, settings: Settings, *, table_name: str) -> SQLAlchemyStorage:
    """Records in the app's Flask-SQLAlchemy database, their table in that bind's metadata.

    The storage never creates the table by itself (``db.create_all()``, ``flask db upgrade``
    or ``flask alicertify init-db`` do), and its ``create_all`` refuses while Flask-Migrate is
    on the app, since a table created behind Alembic's back fails the next upgrade.
    """
    bind: str | None = settings.sqlalchemy_bind
    engines = _engines(app, db)
    if bind not in engines:
        if bind is None:
            raise ConfigurationError(
                settings.key("SQLALCHEMY_BIND"),
                "is unset and the app's Flask-SQLAlchemy has no default engine "
                "(SQLALCHEMY_DATABASE_URI): name one of its SQLALCHEMY_BINDS "
                f"({', '.join(sorted(str(k) for k in engines)) or 'none'}) or set a database URL",
            )
        raise ConfigurationError(
            settings.key("SQLALCHEMY_BIND"),
            f"is {bind!r}, which is not a bind of the app's Flask-SQLAlchemy (SQLALCHEMY_BINDS: "
            f"{', '.join(sorted(str(k) for k in engines if k is not None)) or 'none'})",
        )
    app_ref = weakref.ref(app)
    storage = SQLAlchemyStorage(
        engines[bind],
        table_name=table_name,
        metadata=_metadata(db, bind),
        create=False,
        migrations=lambda: _has_migrations(app_ref),
    )
    logger.debug(
        "flask-alicertify: records in the app's Flask-SQLAlchemy database (bind %r), table %r",
        bind,
        table_name,
    )
    return storage


def sqlite_file_url(app: Flask) -> str:
    """The default SQLite file of ``app``: ``alicertify.sqlite3`` in its instance folder."""
    return "sqlite:///" + os.path.join(app.instance_path, SQLITE_FILE)


def _has_migrations(app_ref: weakref.ref[Flask]) -> bool:
    app = app_ref()
    return app is not None and MIGRATE_EXTENSION in app.extensions


def _engines(app: Flask, db: Any) -> Mapping[str | None, sa.Engine]:
    """``db.engines`` for ``app`` (Flask-SQLAlchemy reads it from the current app context)."""
    if has_app_context() and current_app._get_current_object() is app:  # type: ignore[attr-defined]
        return dict(db.engines)
    with app.app_context():
        return dict(db.engines)


def _metadata(db: Any, bind: str | None) -> sa.MetaData:
    """The ``MetaData`` of ``bind`` that Flask-SQLAlchemy's ``create_all`` and Flask-Migrate's
    ``env.py`` read (``db.metadatas[bind]``), made the way Flask-SQLAlchemy makes it when the
    bind has no model yet."""
    metadatas: dict[str | None, sa.MetaData] = db.metadatas
    if bind in metadatas:
        return metadatas[bind]
    make = getattr(db, "_make_metadata", None)
    if make is not None:
        made: sa.MetaData = make(bind)
        return made
    metadata = sa.MetaData(naming_convention=dict(db.metadata.naming_convention), info={"bind_key": bind})
    metadatas[bind] = metadata
    return metadata


class DeferredStorage:
    """A storage that picks its database when the app is complete, then delegates to it.

    It resolves at the first app context of ``app`` when Flask-SQLAlchemy is on the app by
    then (so the table joins ``db.metadata`` before any ``flask db`` command reads it), or else
    at the first storage call: the app's database if Flask-SQLAlchemy has arrived, the SQLite
    file of the instance folder (created then) if not.
    """

    def __init__(self, app: Flask, settings: Settings, *, table_name: str) -> None:
        self._app = weakref.ref(app)
        self._settings = settings
        self._table_name = table_name
        self._lock = threading.Lock()
        self._storage: SQLAlchemyStorage | None = None
        # A bound method is held weakly: dropping this storage drops the receiver too.
        appcontext_pushed.connect(self._on_app_context, sender=app)

    def __repr__(self) -> str:
        return f"<DeferredStorage table={self._table_name!r} resolved={self._storage!r}>"

    @property
    def resolved(self) -> SQLAlchemyStorage | None:
        """The storage it delegates to, or None while undecided."""
        return self._storage

    def _on_app_context(self, app: Flask, **_: Any) -> None:
        if self._storage is None and SQLALCHEMY_EXTENSION in app.extensions:
            try:
                self._resolve()
            except BaseException:
                # Flask makes the context current before it sends appcontext_pushed, so an
                # error raised here would leave it pushed, and every later call in this
                # thread would see this app as current_app. Undo the push, then fail loudly.
                if has_app_context() and app_ctx.app is app:
                    app_ctx._get_current_object().pop()  # type: ignore[attr-defined]
                raise

    def _resolve(self) -> SQLAlchemyStorage:
        with self._lock:
            if self._storage is not None:
                return self._storage
            app = self._app()
            if app is None:
                raise RuntimeError("the Flask app of this storage no longer exists")
            # Before anything that may push an app context (which would call us again).
            appcontext_pushed.disconnect(self._on_app_context, sender=app)
            db = app.extensions.get(SQLALCHEMY_EXTENSION)
            if db is not None:
                storage = app_database_storage(app, db, self._settings, table_name=self._table_name)
            else:
                os.makedirs(app.instance_path, exist_ok=True)
                url = self._settings.database_url if self._settings.database_url_is_default else None
                storage = SQLAlchemyStorage(url or sqlite_file_url(app), table_name=self._table_name)
            self._storage = storage
            return storage

    def _target(self) -> SQLAlchemyStorage:
        storage = self._storage
        return storage if storage is not None else self._resolve()

    def __getattr__(self, name: str) -> Any:
        # ``engine``, ``table``, ``managed_by_migrations``...: the resolved storage's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._target(), name)

    def create_all(self) -> None:
        self._target().create_all()

    def drop_all(self) -> None:
        self._target().drop_all()

    def create(self, record: Record) -> None:
        self._target().create(record)

    def get(self, record_id: str) -> Record | None:
        return self._target().get(record_id)

    def get_by_certify_id(self, certify_id: str) -> Record | None:
        return self._target().get_by_certify_id(certify_id)

    def update(self, record_id: str, *, expect: Collection[Status], **changes: Any) -> Record | None:
        return self._target().update(record_id, expect=expect, **changes)

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
        return self._target().claim_describe(
            record_id, now=now, not_since=not_since, certify_id=certify_id, match=match, changes=changes
        )

    def latest_for_user(
        self,
        user_id: str,
        *,
        instance: str,
        status: Status | str | None = None,
        include_sandbox: bool = True,
    ) -> Record | None:
        return self._target().latest_for_user(
            user_id, instance=instance, status=status, include_sandbox=include_sandbox
        )

    def stale(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._target().stale(updated_before=updated_before, limit=limit, after=after)

    def undelivered(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._target().undelivered(updated_before=updated_before, limit=limit, after=after)

    def undeleted(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._target().undeleted(updated_before=updated_before, limit=limit, after=after)

    def unpurged(
        self, *, created_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._target().unpurged(created_before=created_before, limit=limit, after=after)

    def count_inits(self, user_id: str, *, since: datetime) -> int:
        return self._target().count_inits(user_id, since=since)

    def close(self) -> None:
        """Close the storage it resolved to (if any) and stop waiting for an app context."""
        app = self._app()
        if app is not None:
            appcontext_pushed.disconnect(self._on_app_context, sender=app)
        with self._lock:
            if self._storage is not None:
                self._storage.close()
