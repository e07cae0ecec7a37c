"""The reference app (``refapp``) on its own PostgreSQL database, migrated by Flask-Migrate.

One database per test session, created here and dropped at the end. Its schema comes from
``flask db init`` / ``migrate`` / ``upgrade`` run through the ``flask`` command in a subprocess,
exactly as a developer runs them (in-process, Alembic's logging set-up would disable the
suite's loggers). The app comes from its own factory and ``FLASK_*`` environment variables:
``app`` is one per test module (records deleted after each test), ``make_app`` one per test
for tests that change settings or add instances. Users 42 and 7 exist for the whole session.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_login import FlaskLoginClient
from support import skip_or_fail
from support.integration import BASE_ENV
from support.integration import LATER_COMMANDS
from support.integration import OTHER_CERT_NAME
from support.integration import OTHER_CERT_NO
from support.integration import OUR_PREFIXES
from support.integration import RECORD_TABLES
from support.integration import Database
from support.integration import Migrations
from support.integration import command_env
from support.integration import flask_command
from support.storage import POSTGRES_URL
from support.storage import check_postgres

from pytest_alicertify.flow import DEFAULT_CERT_NAME
from pytest_alicertify.flow import DEFAULT_CERT_NO
from pytest_alicertify.options import DEFAULTS

#: Our databases are named ``alicertify_it_<pid>_<random>``.
DATABASE_PREFIX = "alicertify_it_"


def _drop_abandoned(conn: sa.Connection) -> None:
    """Drop the databases of earlier sessions whose process is gone (killed before cleaning up)."""
    names = conn.execute(
        sa.text("SELECT datname FROM pg_database WHERE datname LIKE :pattern"),
        {"pattern": DATABASE_PREFIX + "%"},
    ).scalars()
    for name in list(names):
        pid = name[len(DATABASE_PREFIX) :].split("_", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def database() -> Iterator[Database]:
    """A PostgreSQL database of our own for the session, dropped at the end."""
    problem = check_postgres()
    if problem:
        skip_or_fail(problem)
    name = f"{DATABASE_PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
    server = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            _drop_abandoned(conn)
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        database = Database(
            sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        )
        yield database
        database.engine.dispose()
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture(scope="session")
def migrations(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrations]:
    """The schema as ``flask db init``, ``flask db migrate`` and ``flask db upgrade`` made it."""
    project = tmp_path_factory.mktemp("refapp-project")
    env = command_env(database)
    outputs = {}
    for step in (["db", "init"], ["db", "migrate", "-m", "initial"], ["db", "upgrade"]):
        outputs[" ".join(step[:2])] = flask_command(*step, env=env, cwd=project)
    generated = sorted((project / "migrations" / "versions").glob("*.py"))
    assert len(generated) == 1, f"flask db migrate generated {generated}"
    with ThreadPoolExecutor(len(LATER_COMMANDS)) as pool:
        later = {
            name: pool.submit(flask_command, *args, env=env, cwd=project, check=False)
            for name, args in LATER_COMMANDS.items()
        }
        yield Migrations(project, generated[0], outputs, later)


def _our_environment(monkeypatch: pytest.MonkeyPatch, database: Database) -> None:
    for key in list(os.environ):
        if key.startswith(OUR_PREFIXES):
            monkeypatch.delenv(key)
    for key, value in {**BASE_ENV, "FLASK_SQLALCHEMY_DATABASE_URI": database.url}.items():
        monkeypatch.setenv(key, value)


def _build(config: dict[str, Any] | None, instance_path: Path) -> Flask:
    import refapp

    app = refapp.create_app(config, instance_path=str(instance_path))
    app.test_client_class = FlaskLoginClient
    return app


def _close(app: Flask) -> None:
    import refapp

    for state in app.extensions.get("alicertify", {}).values():
        state.finalizer()
    with app.app_context():
        refapp.db.engine.dispose()


@pytest.fixture(scope="session")
def residents(database: Database, migrations: Migrations) -> None:
    """Users 42 and 7 for the whole session, each holding their own identity for ``kyc``."""
    with database.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (id, email, legal_name, id_number) VALUES (:id, :email, :name, :number)"
            ),
            [
                {
                    "id": 42,
                    "email": "zhang@example.com",
                    "name": DEFAULT_CERT_NAME,
                    "number": DEFAULT_CERT_NO,
                },
                {"id": 7, "email": "li@example.com", "name": OTHER_CERT_NAME, "number": OTHER_CERT_NO},
            ],
        )


@pytest.fixture(scope="module")
def shared_app(
    database: Database, residents: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """One reference app for a module's tests that leave it as they found it (records aside).

    Built before any test's ``alicertify_cloud``, so the kit's key pair is put in the
    environment here: the extension reads it at ``init_app``.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        _our_environment(monkeypatch, database)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULTS.access_key_id)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULTS.access_key_secret)
        monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
        app = _build(None, tmp_path_factory.mktemp("shared") / "instance")
        try:
            yield app
        finally:
            _close(app)
            database.empty(RECORD_TABLES.values())


@pytest.fixture
def app(shared_app: Flask, alicertify_cloud: Any, database: Database) -> Iterator[Flask]:
    """The module's reference app with users 42 and 7; the test's records are deleted after it.

    A test that changes the app itself (adds an instance, other settings) uses ``make_app``.
    """
    yield shared_app
    database.empty(RECORD_TABLES.values())


@pytest.fixture
def make_app(
    database: Database,
    residents: None,
    alicertify_cloud: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Callable[..., Flask]]:
    """``make_app(FLASK_X="...")``: a reference app of the test's own, built from the
    ``FLASK_*`` environment plus these variables (None drops one).

    Built after ``alicertify_cloud``, whose key pair the extension reads from the environment.
    """
    _our_environment(monkeypatch, database)
    built: list[Flask] = []

    def make(config: dict[str, Any] | None = None, **env: str | None) -> Flask:
        for key, value in env.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        app = _build(config, tmp_path / "instance")
        built.append(app)
        return app

    yield make
    for app in built:
        _close(app)
    database.empty(RECORD_TABLES.values())
