"""What only one backend has: engine/client ownership, schema creation, Redis key layout."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from support import skip_or_fail
from support.storage import REDIS_URL
from support.storage import check_redis

from flask_alicertify.records import Record
from flask_alicertify.records import Status

sa = pytest.importorskip("sqlalchemy")

from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage  # noqa: E402

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


def make(**fields: object) -> Record:
    values: dict[str, object] = {"id": secrets.token_hex(16), "status": Status.PENDING}
    values.update(created_at=T0, updated_at=T0)
    values.update(fields)
    return Record(**values)


def test_sqlite_file_table_created_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    storage = SQLAlchemyStorage(url)
    try:
        assert storage.get("x") is None
        assert sa.inspect(storage.engine).has_table("alicertify_records")
        index_names = {ix["name"] for ix in sa.inspect(storage.engine).get_indexes("alicertify_records")}
        assert index_names == {
            "ix_alicertify_records_certify_id",
            "ix_alicertify_records_user_created",
            "ix_alicertify_records_status_updated",
            "ix_alicertify_records_delivered",
            "ix_alicertify_records_deleted",
            "ix_alicertify_records_purged",
        }
    finally:
        storage.close()


def test_create_false_needs_create_all(tmp_path: Path) -> None:
    storage = SQLAlchemyStorage(f"sqlite:///{tmp_path / 'b.sqlite3'}", create=False)
    try:
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            storage.get("x")
        storage.create_all()
        storage.create_all()  # idempotent
        record = make()
        storage.create(record)
        assert storage.get(record.id) == record
    finally:
        storage.close()


def test_concurrent_create_all(tmp_path: Path) -> None:
    # The race is narrow (SQLite's check-then-create failed about one round in forty), so
    # several rounds, each on a new file with eight first uses at once.
    errors: list[BaseException] = []
    for round_ in range(30):
        url = f"sqlite:///{tmp_path / f'c{round_}.sqlite3'}"
        storages = [SQLAlchemyStorage(url) for _ in range(8)]
        barrier = threading.Barrier(len(storages))

        def first_use(s: SQLAlchemyStorage, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(timeout=30)
                s.count_inits("u", since=T0)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=first_use, args=(s,)) for s in storages]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in storages:
            s.close()
    assert errors == []


def test_given_engine_is_not_disposed(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'd.sqlite3'}")
    storage = SQLAlchemyStorage(engine, table_name="mine")
    record = make()
    storage.create(record)
    storage.close()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM mine")).scalar_one() == 1
    engine.dispose()


def test_sqlite_stores_utc(tmp_path: Path) -> None:
    storage = SQLAlchemyStorage(f"sqlite:///{tmp_path / 'e.sqlite3'}")
    try:
        storage.create(make(created_at=datetime(2025, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))))
        with storage.engine.connect() as conn:
            raw = conn.execute(sa.text("SELECT created_at FROM alicertify_records")).scalar_one()
        assert str(raw).startswith("2025-01-01 00:00:00")
    finally:
        storage.close()


@pytest.fixture
def redis_client() -> Iterator[Any]:
    reason = check_redis()
    if reason:
        skip_or_fail(reason)
    import redis

    client = redis.Redis.from_url(REDIS_URL)  # bytes responses, unlike the storage's own client
    prefix = f"alicertify-test-{secrets.token_hex(6)}:"
    client.prefix = prefix
    try:
        yield client
    finally:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.mark.redis
def test_redis_with_a_bytes_client(redis_client: Any) -> None:
    from flask_alicertify.storage.redis import RedisStorage

    storage = RedisStorage(redis_client, prefix=redis_client.prefix)
    record = make(certify_id="cid", extra={"a": "认证"})
    storage.create(record)
    assert storage.get(record.id) == record
    assert storage.get_by_certify_id("cid") == record
    updated = storage.update(record.id, expect={Status.PENDING}, status=Status.FAILED, passed=False)
    assert updated == record.replace(status=Status.FAILED, passed=False)
    assert storage.update(record.id, expect={Status.PENDING}, status=Status.PASSED) is None
    storage.close()
    assert redis_client.ping()  # not ours to close


@pytest.mark.redis
def test_redis_key_layout(redis_client: Any) -> None:
    from flask_alicertify.storage.redis import RedisStorage

    client = redis_client
    prefix: str = client.prefix
    storage = RedisStorage(client, prefix=prefix)
    old = make(user_id="u1", created_at=T0 - timedelta(days=3))
    new = make(user_id="u1", certify_id="c1")
    storage.create(old)
    storage.create(new)
    hashed = client.hgetall(f"{prefix}record:{new.id}")
    assert hashed[b"status"] == b"pending"
    assert hashed[b"created_at"] == b"2025-03-01T08:00:00.000000+00:00"
    assert hashed[b"_cts"] == b"1740816000000000"  # integer microseconds: exact cursors
    assert hashed[b"sandbox"] == b"0" and hashed[b"instance"] == b"alicertify"
    assert b"user_id" in hashed and b"passed" not in hashed  # None is a missing field
    assert client.get(f"{prefix}certify:c1") == new.id.encode()

    def members(name: str) -> set[bytes]:
        return set(client.zrange(prefix + name, 0, -1))

    both = {old.id.encode(), new.id.encode()}
    assert members("user:u1") == both and members("stale") == both and members("unpurged") == both
    assert members("undelivered") == members("undeleted") == set()
    storage.update(new.id, expect={Status.PENDING}, status=Status.PASSED, passed=True)
    assert client.hget(f"{prefix}record:{new.id}", "passed") == b"1"
    assert members("stale") == {old.id.encode()}
    assert members("undelivered") == members("undeleted") == {new.id.encode()}
    storage.update(new.id, expect={Status.PASSED}, delivered_at=T0, deleted_at=T0, purged_at=T0)
    assert members("undelivered") == members("undeleted") == set()
    assert members("unpurged") == {old.id.encode()}
    # Moving a record to another user moves its index entry.
    storage.update(old.id, expect={Status.PENDING}, user_id="u2")
    assert members("user:u1") == {new.id.encode()} and members("user:u2") == {old.id.encode()}
    assert storage.count_inits("u2", since=T0 - timedelta(days=4)) == 1
    # Nothing but records, the certify-id key and the indexes.
    assert {k.decode()[len(prefix) :] for k in client.scan_iter(match=prefix + "*")} == {
        f"record:{old.id}",
        f"record:{new.id}",
        "certify:c1",
        "user:u1",
        "user:u2",
        "stale",
        "unpurged",
    }


def test_metadata_of_the_app_gets_the_table_once(tmp_path: Path) -> None:
    from flask_alicertify.storage.sqlalchemy import make_table

    metadata = sa.MetaData()
    sa.Table("users", metadata, sa.Column("id", sa.Integer, primary_key=True))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    first = SQLAlchemyStorage(engine, metadata=metadata, table_name="kyc_records", create=False)
    # An app factory run twice with one module-level metadata reuses the table.
    second = SQLAlchemyStorage(engine, metadata=metadata, table_name="kyc_records", create=False)
    assert first.table is second.table is metadata.tables["kyc_records"]
    metadata.create_all(engine)  # what db.create_all() does
    record = make()
    first.create(record)
    assert second.get(record.id) == record
    # drop_all drops the records table only, never the app's own tables.
    first.drop_all()
    assert set(sa.inspect(engine).get_table_names()) == {"users"}
    # A table of that name that is no records table is refused, not written to.
    with pytest.raises(ValueError, match="not a records table"):
        SQLAlchemyStorage(engine, metadata=metadata, table_name="users")
    other = sa.MetaData()
    make_table(other, "alicertify_records")
    assert SQLAlchemyStorage(engine, metadata=other).table is other.tables["alicertify_records"]
    engine.dispose()


def test_create_all_refuses_when_migrations_own_the_table(tmp_path: Path) -> None:
    from flask_alicertify.errors import SchemaManagedByMigrations

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    managed = {"yes": True}
    storage = SQLAlchemyStorage(engine, create=False, migrations=lambda: managed["yes"])
    with pytest.raises(SchemaManagedByMigrations, match="flask db upgrade"):
        storage.create_all()
    assert not sa.inspect(engine).has_table("alicertify_records")
    managed["yes"] = False  # asked at call time: Flask-Migrate may be set up after the storage
    storage.create_all()
    assert sa.inspect(engine).has_table("alicertify_records")
    assert issubclass(SchemaManagedByMigrations, RuntimeError)
    engine.dispose()


def test_without_returning_writes_read_the_row_back(tmp_path: Path) -> None:
    """MySQL has no ``UPDATE … RETURNING``: the row is read back by id or by certify id."""
    storage = SQLAlchemyStorage(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    storage._returning = False  # as on MySQL; statements are built on first use
    try:
        record = make(certify_id="cid-" + secrets.token_hex(4))
        storage.create(record)
        updated = storage.update(record.id, expect={Status.PENDING}, client_status="9000")
        assert updated == record.replace(client_status="9000")
        claimed = storage.claim_describe(
            certify_id=record.certify_id, now=T0, not_since=T0, changes={"client_error_code": "Z"}
        )
        assert claimed == updated.replace(last_described_at=T0, describe_count=1, client_error_code="Z")
        assert storage.claim_describe(record.id, now=T0, not_since=T0 - timedelta(seconds=1)) is None
        assert storage.update(record.id, expect={Status.PASSED}, client_status="x") is None
    finally:
        storage.close()
