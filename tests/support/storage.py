"""Every storage backend, ready for tests: build, skip-or-fail, inspect raw, clean up.

Kept out of conftest.py (whose module name is shared by every conftest) and at the top of
``tests/`` so every test folder can import it,
e.g. to run an end-to-end test once per backend, and spawned processes can import it by name.

PostgreSQL and Redis are the real servers on this machine. When one is unreachable its tests
skip with the reason, except under ``CI=true`` where a skipped backend would hide a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pytest

from flask_alicertify.records import Status
from flask_alicertify.storage import MemoryStorage
from flask_alicertify.storage import Storage
from support import skip_or_fail

POSTGRES_URL = os.environ.get(
    "ALICERTIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ALICERTIFY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

_reachable: dict[str, str | None] = {}


def check_postgres() -> str | None:
    if "postgresql" not in _reachable:
        try:
            import sqlalchemy as sa

            engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
            finally:
                engine.dispose()
            _reachable["postgresql"] = None
        except Exception as e:  # any failure means "not usable here"
            _reachable["postgresql"] = f"PostgreSQL unreachable at {POSTGRES_URL}: {type(e).__name__}: {e}"
    return _reachable["postgresql"]


def check_redis() -> str | None:
    if "redis" not in _reachable:
        try:
            import redis

            client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
            try:
                client.ping()
            finally:
                client.close()
            _reachable["redis"] = None
        except Exception as e:
            _reachable["redis"] = f"Redis unreachable at {REDIS_URL}: {type(e).__name__}: {e}"
    return _reachable["redis"]


@dataclass
class Backend:
    """A storage plus what a test needs to reach it from outside (raw reads, other processes)."""

    kind: str
    storage: Storage
    #: keyword arguments that rebuild an equivalent storage in another process
    spec: dict[str, Any] = field(default_factory=dict)

    def raw_dump(self) -> str:
        """Everything the backend holds for us, as text: what an attacker with the DB would see."""
        if self.kind in ("sqlite", "sqlite_memory", "postgresql"):
            import sqlalchemy as sa

            from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

            assert isinstance(self.storage, SQLAlchemyStorage)
            with self.storage.engine.connect() as conn:
                rows = conn.execute(sa.text(f"SELECT * FROM {self.storage.table.name}")).all()
            return "\n".join(repr(tuple(row)) for row in rows)
        if self.kind == "redis":
            from flask_alicertify.storage.redis import RedisStorage

            assert isinstance(self.storage, RedisStorage)
            client = self.storage.client
            out = []
            for key in client.scan_iter(match=self.storage.prefix + "*"):
                kind = client.type(key)
                if kind == "hash":
                    value: Any = client.hgetall(key)
                elif kind == "zset":
                    value = client.zrange(key, 0, -1, withscores=True)
                else:
                    value = client.get(key)
                out.append(f"{key} {value!r}")
            return "\n".join(out)
        assert isinstance(self.storage, MemoryStorage)
        return repr(vars(self.storage))


def open_backend(kind: str, spec: dict[str, Any]) -> Storage:
    """Build a storage from a :attr:`Backend.spec`."""
    if kind == "memory":
        return MemoryStorage()
    if kind in ("sqlite", "sqlite_memory", "postgresql"):
        from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

        return SQLAlchemyStorage(spec["url"], table_name=spec["table_name"])
    if kind == "redis":
        from flask_alicertify.storage.redis import RedisStorage

        return RedisStorage(spec["url"], prefix=spec["prefix"])
    raise AssertionError(kind)


KINDS = ("memory", "sqlite", "sqlite_memory", "postgresql", "redis")

#: ``pytest.mark.parametrize``-ready list of every backend kind, with the service markers.
BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("sqlite_memory", id="sqlite-memory"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


@contextmanager
def open_test_backend(kind: str, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty backend of ``kind`` (see :data:`KINDS`), removed afterwards.

    PostgreSQL gets a table and Redis a key prefix unique to this call, so concurrent test
    runs against the same servers never see each other's records.
    """
    token = uuid.uuid4().hex[:12]
    spec: dict[str, Any] = {}
    if kind in ("sqlite", "sqlite_memory", "postgresql"):
        pytest.importorskip("sqlalchemy")
    if kind == "sqlite":
        spec = {
            "url": f"sqlite:///{tmp_path / f'alicertify-{token}.sqlite3'}",
            "table_name": "alicertify_records",
        }
    elif kind == "sqlite_memory":
        spec = {"url": "sqlite://", "table_name": "alicertify_records"}
    elif kind == "postgresql":
        reason = check_postgres()
        if reason:
            skip_or_fail(reason)
        spec = {"url": POSTGRES_URL, "table_name": f"alicertify_test_{token}"}
    elif kind == "redis":
        pytest.importorskip("redis")
        reason = check_redis()
        if reason:
            skip_or_fail(reason)
        spec = {"url": REDIS_URL, "prefix": f"alicertify-test-{token}:"}
    elif kind != "memory":
        raise ValueError(f"unknown backend kind {kind!r}; expected one of {KINDS}")
    storage = open_backend(kind, spec)
    try:
        yield Backend(kind, storage, spec)
    finally:
        _cleanup(kind, storage)


def _cleanup(kind: str, storage: Storage) -> None:
    try:
        if kind == "postgresql":
            from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

            assert isinstance(storage, SQLAlchemyStorage)
            storage.drop_all()
        elif kind == "redis":
            from flask_alicertify.storage.redis import RedisStorage

            assert isinstance(storage, RedisStorage)
            keys = list(storage.client.scan_iter(match=storage.prefix + "*"))
            if keys:
                storage.client.delete(*keys)
    finally:
        storage.close()


def race(kind: str, spec: dict[str, Any], record_ids: list[str], barrier: Any, results: Any) -> None:
    """One process of the cross-process race, one round per record: wait for all, then try
    pending -> passed; put ``(round, True if it won)``."""
    try:
        storage = open_backend(kind, spec)
        try:
            # Warm the connection up first so the race is on the UPDATE, not on connecting.
            storage.get(record_ids[0])
            for round_no, record_id in enumerate(record_ids):
                barrier.wait(timeout=60)
                won = storage.update(record_id, expect={Status.PENDING}, status=Status.PASSED)
                results.put((round_no, won is not None))
        finally:
            storage.close()
    except BaseException as e:  # report, so the parent fails with the cause instead of hanging
        results.put(f"{type(e).__name__}: {e}")
        raise


def claim_race(
    kind: str, spec: dict[str, Any], record_ids: list[str], now: Any, barrier: Any, results: Any
) -> None:
    """One process of the cross-process describe-claim race, one round per record: wait for all,
    claim, put ``(round, 1 if it won else 0)``."""
    from datetime import timedelta

    try:
        storage = open_backend(kind, spec)
        try:
            storage.get(record_ids[0])
            for round_no, record_id in enumerate(record_ids):
                barrier.wait(timeout=60)
                won = storage.claim_describe(record_id, now=now, not_since=now - timedelta(seconds=5))
                results.put((round_no, 0 if won is None else 1))
        finally:
            storage.close()
    except BaseException as e:
        results.put(f"{type(e).__name__}: {e}")
        raise
