"""Fixtures of the real-client tests; the helpers live in ``support.clients``.

Two set-ups of the demo backend, shared by the Node and Chromium tests:

* ``demo_backend``: one process (werkzeug's threaded server) with the in-process fake;
* ``gunicorn_backend``: gunicorn with 3 worker processes on one SQL database (PostgreSQL when it
  is reachable, else an SQLite file), every worker on the shared sandbox server that the kit's
  ``alicertify_sandbox_url`` fixture starts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from support.clients import Backend
from support.clients import serve_demo_backend
from support.clients import serve_gunicorn_backend
from support.storage import POSTGRES_URL
from support.storage import check_postgres

from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage


@pytest.fixture(scope="session")
def demo_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """examples/backend in sandbox mode on a free loopback port, shared by Node and Chromium tests."""
    with serve_demo_backend(tmp_path_factory.mktemp("demo-instance")) as backend:
        yield backend


@pytest.fixture(scope="session")
def shared_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQL database for every gunicorn worker: a fresh PostgreSQL database, or an SQLite file."""
    if check_postgres() is not None:
        yield f"sqlite:///{tmp_path_factory.mktemp('gunicorn-db') / 'records.sqlite3'}"
        return
    import sqlalchemy as sa

    name = f"alicertify_e2e_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def gunicorn_backend(
    alicertify_sandbox_url: str, shared_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """examples/backend under gunicorn (3 workers), on the shared sandbox server and one database."""
    storage = SQLAlchemyStorage(shared_database)
    storage.create_all()  # `flask alicertify init-db`, before the workers start
    storage.close()
    with serve_gunicorn_backend(
        sandbox_url=alicertify_sandbox_url,
        database_url=shared_database,
        instance_path=tmp_path_factory.mktemp("gunicorn-instance"),
    ) as backend:
        yield backend
