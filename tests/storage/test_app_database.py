"""Records in the app's own database: Flask-SQLAlchemy's engine and metadata, Flask-Migrate's schema.

The unit tests run on SQLite files; the migration tests run the real ``flask db init / migrate /
upgrade`` commands against a PostgreSQL database of their own, once per initialisation order.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from datetime import timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import has_app_context
from support import skip_or_fail
from support.storage import POSTGRES_URL
from support.storage import check_postgres

from flask_alicertify.errors import ConfigurationError
from flask_alicertify.errors import SchemaManagedByMigrations
from flask_alicertify.records import Record
from flask_alicertify.records import Status
from flask_alicertify.settings import Settings
from flask_alicertify.storage import Storage

flask = pytest.importorskip("flask")
flask_sqlalchemy = pytest.importorskip("flask_sqlalchemy")
sa = pytest.importorskip("sqlalchemy")

from flask_alicertify.app_database import DeferredStorage  # noqa: E402
from flask_alicertify.app_database import default_storage  # noqa: E402
from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage  # noqa: E402

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


def record(**fields: Any) -> Record:
    return Record(id=secrets.token_hex(16), status=Status.PENDING, created_at=T0, updated_at=T0, **fields)


def make_app(tmp_path: Path, **config: Any) -> Any:
    app = flask.Flask("records_app", instance_path=str(tmp_path / "instance"))
    app.config.update(config)
    return app


def settings_for(app: Any, *, bind: str | None = None, prefix: str = "ALICERTIFY_") -> Settings:
    url = "sqlite:///" + os.path.join(app.instance_path, "alicertify.sqlite3")
    return Settings(prefix=prefix, database_url=url, database_url_is_default=True, sqlalchemy_bind=bind)


@pytest.fixture
def closing() -> Iterator[list[Storage]]:
    opened: list[Storage] = []
    yield opened
    for storage in opened:
        storage.close()


# -- without Flask-SQLAlchemy: the SQLite file, and no folder before first use ------------------


def test_without_flask_sqlalchemy_the_sqlite_file_is_made_on_first_use(
    tmp_path: Path, closing: list[Storage]
) -> None:
    app = make_app(tmp_path)
    storage = default_storage(app, settings_for(app), instance="alicertify")
    closing.append(storage)
    assert isinstance(storage, DeferredStorage) and isinstance(storage, Storage)
    with app.app_context():  # a context alone decides nothing without Flask-SQLAlchemy
        pass
    assert not (tmp_path / "instance").exists()
    mine = record()
    storage.create(mine)
    assert storage.get(mine.id) == mine
    assert (tmp_path / "instance" / "alicertify.sqlite3").is_file()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'instance' / 'alicertify.sqlite3'}")
    assert sa.inspect(engine).get_table_names() == ["alicertify_records"]
    engine.dispose()


def test_an_unused_storage_leaves_no_instance_folder(tmp_path: Path) -> None:
    """What a failed init_app does: build the storage, then close it without using it."""
    app = make_app(tmp_path)
    storage = default_storage(app, settings_for(app), instance="alicertify")
    storage.close()
    assert not (tmp_path / "instance").exists()


def test_instances_get_their_own_tables_in_one_file(tmp_path: Path, closing: list[Storage]) -> None:
    app = make_app(tmp_path)
    default = default_storage(app, settings_for(app), instance="alicertify")
    kyc = default_storage(app, settings_for(app, prefix="KYC_"), instance="kyc")
    closing += [default, kyc]
    mine = record()
    default.create(mine)
    assert kyc.get(mine.id) is None
    assert (default.table.name, kyc.table.name) == ("alicertify_records", "kyc_records")


# -- with Flask-SQLAlchemy: the app's engine and metadata, whichever is initialised first -------


def _sqlalchemy_app(tmp_path: Path, **config: Any) -> tuple[Any, Any]:
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.sqlite3'}", **config)
    return app, flask_sqlalchemy.SQLAlchemy()


@pytest.mark.parametrize("order", ["db-first", "alicertify-first"])
def test_records_live_in_the_apps_database(tmp_path: Path, order: str, closing: list[Storage]) -> None:
    app, db = _sqlalchemy_app(tmp_path)
    if order == "db-first":
        db.init_app(app)
    storage = default_storage(app, settings_for(app), instance="alicertify")
    closing.append(storage)
    if order == "alicertify-first":
        assert isinstance(storage, DeferredStorage) and storage.resolved is None
        db.init_app(app)
    with app.app_context():
        # The table is in db.metadata as soon as a context exists, so db.create_all makes it.
        assert "alicertify_records" in db.metadata.tables
        db.create_all()
        engine = db.engine
    target = storage.resolved if isinstance(storage, DeferredStorage) else storage
    assert isinstance(target, SQLAlchemyStorage)
    assert target.engine is engine and target.table is db.metadata.tables["alicertify_records"]
    mine = record()
    storage.create(mine)
    assert storage.get(mine.id) == mine
    assert not (tmp_path / "instance").exists()  # nothing went to the SQLite file
    # The app's engine belongs to the app: closing the storage leaves it usable.
    storage.close()
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alicertify_records")).scalar_one() == 1


def test_the_storage_never_creates_the_table_itself(tmp_path: Path, closing: list[Storage]) -> None:
    app, db = _sqlalchemy_app(tmp_path)
    db.init_app(app)
    storage = default_storage(app, settings_for(app), instance="alicertify")
    closing.append(storage)
    with pytest.raises(sa.exc.OperationalError, match="no such table"):
        storage.get("x")
    # Without Flask-Migrate, init-db (create_all) may create it.
    storage.create_all()  # type: ignore[attr-defined]
    assert storage.get("x") is None


def test_create_all_refuses_under_flask_migrate(tmp_path: Path, closing: list[Storage]) -> None:
    flask_migrate = pytest.importorskip("flask_migrate")
    app, db = _sqlalchemy_app(tmp_path)
    db.init_app(app)
    storage = default_storage(app, settings_for(app), instance="alicertify")
    closing.append(storage)
    flask_migrate.Migrate(app, db)  # after the storage: asked when create_all runs
    with pytest.raises(SchemaManagedByMigrations, match="flask db upgrade"):
        storage.create_all()  # type: ignore[attr-defined]
    with app.app_context():
        assert not sa.inspect(db.engine).has_table("alicertify_records")


@pytest.mark.parametrize("order", ["db-first", "alicertify-first"])
def test_a_named_bind(tmp_path: Path, order: str, closing: list[Storage]) -> None:
    app, db = _sqlalchemy_app(tmp_path, SQLALCHEMY_BINDS={"audit": f"sqlite:///{tmp_path / 'audit.sqlite3'}"})
    if order == "db-first":
        db.init_app(app)
    storage = default_storage(app, settings_for(app, bind="audit"), instance="alicertify")
    closing.append(storage)
    if order == "alicertify-first":
        db.init_app(app)
    with app.app_context():
        assert "alicertify_records" in db.metadatas["audit"].tables
        assert "alicertify_records" not in db.metadata.tables
        db.create_all()
        assert sa.inspect(db.engines["audit"]).has_table("alicertify_records")
        assert not sa.inspect(db.engine).has_table("alicertify_records")
    mine = record()
    storage.create(mine)
    assert storage.get(mine.id) == mine


@pytest.mark.parametrize("order", ["db-first", "alicertify-first"])
def test_an_unknown_bind_names_the_key(tmp_path: Path, order: str, closing: list[Storage]) -> None:
    app, db = _sqlalchemy_app(tmp_path, SQLALCHEMY_BINDS={"audit": "sqlite://"})
    settings = settings_for(app, bind="nope", prefix="KYC_")
    if order == "db-first":
        db.init_app(app)
        with pytest.raises(ConfigurationError) as info:
            default_storage(app, settings, instance="kyc")
    else:
        storage = default_storage(app, settings, instance="kyc")
        closing.append(storage)
        db.init_app(app)
        with pytest.raises(ConfigurationError) as info, app.app_context():
            pass
        assert not has_app_context()  # the failed push left no context behind
    assert info.value.key == "KYC_SQLALCHEMY_BIND"
    assert "'nope'" in str(info.value) and "audit" in str(info.value)


def test_an_app_factory_run_twice_shares_one_table(tmp_path: Path, closing: list[Storage]) -> None:
    db = flask_sqlalchemy.SQLAlchemy()  # module-level in a real app
    tables = []
    for n in range(2):
        app = make_app(tmp_path / str(n), SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / f'{n}.sqlite3'}")
        db.init_app(app)
        storage = default_storage(app, settings_for(app), instance="alicertify")
        closing.append(storage)
        with app.app_context():
            db.create_all()
        mine = record()
        storage.create(mine)
        assert storage.get(mine.id) == mine
        assert isinstance(storage, SQLAlchemyStorage)
        tables.append(storage.table)
    assert tables[0] is tables[1]


# -- Flask-Migrate on PostgreSQL: the real commands ---------------------------------------------

APP_MODULE = """
import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from flask_alicertify.app_database import default_storage
from flask_alicertify.settings import Settings

db = SQLAlchemy()
migrate = Migrate()


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False)


def init_records(app):
    # What AliCertify(app) and AliCertify(app, name="kyc") do with their storage.
    stores = app.extensions.setdefault("test_records", {})
    for instance, prefix in (("alicertify", "ALICERTIFY_"), ("kyc", "KYC_")):
        stores[instance] = default_storage(app, Settings(prefix=prefix), instance=instance)


def create_app():
    app = Flask(__name__, instance_path=os.environ["TEST_INSTANCE_PATH"])
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["TEST_DATABASE_URL"]
    if os.environ["TEST_ORDER"] == "alicertify-first":
        init_records(app)
        db.init_app(app)
        migrate.init_app(app, db)
    else:
        db.init_app(app)
        migrate.init_app(app, db)
        init_records(app)
    return app
"""


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards."""
    reason = check_postgres()
    if reason:
        skip_or_fail(reason)
    name = f"alicertify_mig_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def flask_cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "records_app:create_app", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"flask {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def load_app_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.postgres
@pytest.mark.parametrize("order", ["db-first", "alicertify-first"])
def test_flask_migrate_creates_the_tables_once_and_never_drops_them(
    tmp_path: Path, pg_database: str, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("flask_migrate")
    (tmp_path / "records_app.py").write_text(textwrap.dedent(APP_MODULE), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        "TEST_DATABASE_URL": pg_database,
        "TEST_ORDER": order,
        "TEST_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    flask_cli(tmp_path, env, "db", "init")
    flask_cli(tmp_path, env, "db", "migrate", "-m", "first")
    [migration] = list((tmp_path / "migrations" / "versions").glob("*.py"))
    source = migration.read_text(encoding="utf-8")
    for table in ("user", "alicertify_records", "kyc_records"):
        assert f"op.create_table('{table}'" in source, source
    assert "ix_alicertify_records_delivered" in source and "ix_kyc_records_purged" in source
    assert "drop_table" not in source.split("def downgrade")[0]

    flask_cli(tmp_path, env, "db", "upgrade")
    engine = sa.create_engine(pg_database)
    try:
        inspector = sa.inspect(engine)
        assert {"user", "alicertify_records", "kyc_records", "alembic_version"} <= set(
            inspector.get_table_names()
        )
        assert {ix["name"] for ix in inspector.get_indexes("kyc_records")} >= {"ix_kyc_records_certify_id"}
    finally:
        engine.dispose()

    # A second autogenerate finds nothing to do: no empty revision, and above all no drop.
    again = flask_cli(tmp_path, env, "db", "migrate", "-m", "second")
    assert "No changes in schema detected" in again.stdout + again.stderr
    assert list((tmp_path / "migrations" / "versions").glob("*.py")) == [migration]

    # The app writes through the migrated tables, and init-db's create_all refuses.
    for key in ("TEST_DATABASE_URL", "TEST_ORDER", "TEST_INSTANCE_PATH"):
        monkeypatch.setenv(key, env[key])
    module = load_app_module(tmp_path / "records_app.py", f"records_app_{order.replace('-', '_')}")
    app = module.create_app()
    stores = app.extensions["test_records"]
    try:
        with app.app_context():
            mine = record(instance="kyc")
            stores["kyc"].create(mine)
            assert stores["kyc"].get(mine.id) == mine
            assert stores["alicertify"].get(mine.id) is None
            for storage in stores.values():
                with pytest.raises(SchemaManagedByMigrations, match="flask db upgrade"):
                    storage.create_all()
    finally:
        for storage in stores.values():
            storage.close()
        with app.app_context():
            module.db.engine.dispose()
    assert not (tmp_path / "instance").exists()
