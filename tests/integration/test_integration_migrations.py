"""The schema under Flask-Migrate, through the ``flask`` command as a developer types it.

The ``migrations`` fixture ran ``flask db init``, ``flask db migrate`` and ``flask db upgrade``
on the session's PostgreSQL database, then started the later commands. Here: what the migration
contains, that a second autogenerate finds nothing to do (so it never proposes dropping the
audit trail), that ``init-db`` refuses to compete with migrations, and that ``flask --help``
works with the configuration Flask decoded from the environment.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.integration import RECORD_TABLES


@pytest.fixture(scope="module")
def commands(migrations) -> dict[str, subprocess.CompletedProcess[str]]:
    return {name: future.result() for name, future in migrations.later.items()}


def _upgrade_source(revision: Path) -> str:
    source = revision.read_text(encoding="utf-8")
    return source[source.index("def upgrade") : source.index("def downgrade")]


def test_the_migration_creates_each_instances_table(migrations, database):
    upgrade = _upgrade_source(migrations.first_revision)
    for table in ("users", *RECORD_TABLES.values()):
        assert f"op.create_table('{table}'" in upgrade, upgrade
    assert "drop_table" not in upgrade
    assert {"alembic_version", "users", *RECORD_TABLES.values()} <= database.tables()
    inspector = sa.inspect(database.engine)
    for table in RECORD_TABLES.values():
        indexes = {tuple(i["column_names"]): bool(i["unique"]) for i in inspector.get_indexes(table)}
        assert indexes.get(("certify_id",)) is True, indexes
        assert any(columns[0] == "user_id" for columns in indexes), indexes  # "is this user verified?"


def test_a_second_autogenerate_finds_nothing_to_do(commands, migrations):
    done = commands["second migrate"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No changes in schema detected" in done.stdout + done.stderr
    assert sorted((migrations.project / "migrations" / "versions").glob("*.py")) == [
        migrations.first_revision
    ]


@pytest.mark.parametrize("name", ["alicertify", "kyc"])
def test_init_db_refuses_when_migrations_manage_the_table(commands, name):
    done = commands[f"{name} init-db"]
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "flask db upgrade" in output
    assert "Traceback" not in output


def test_flask_help_works_with_config_from_the_environment(commands):
    done = commands["help"]
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    for group in ("alicertify", "kyc", "db"):
        assert f"\n  {group} " in done.stdout, done.stdout
