"""Helpers for the extension tests: an app wired to the fake cloud, a fake clock, payloads.

Kept out of conftest.py so test modules can import the helpers by name.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask import request
from flask.testing import FlaskClient

from flask_alicertify import AliCertify
from flask_alicertify import signals
from flask_alicertify.cloud.base import Gateway
from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.gateways import make_gateway
from flask_alicertify.records import Record
from flask_alicertify.sandbox.fake import FakeCloud
from flask_alicertify.storage import MemoryStorage
from flask_alicertify.storage import Storage

SCENE_ID = "1000000006"
ACCESS_KEY_ID = "LTAI5tExtTestAccessKey01"
ACCESS_KEY_SECRET = "ext-test-secret"
ENDPOINT = "cloudauth.cn-shanghai.aliyuncs.com"

#: Valid 18-digit ID numbers (GB 11643 check digits) and names used throughout.
CERT_NO = "11010519491231002X"
CERT_NO_2 = "440306199001011236"
CERT_NAME = "张三"
CERT_NAME_2 = "欧阳娜娜"
SEED_PLACEHOLDER_NO = "1******************9"

POSTGRES_URL = os.environ.get(
    "ALICERTIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ALICERTIFY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class FakeClock:
    """An aware-UTC clock that moves only when told to (no sleeps in tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


def cloud_gateway(cloud: FakeCloud, api: str = "cloudauth") -> Gateway:
    config = GatewayConfig(
        scene_id=SCENE_ID,
        credentials=StaticCredentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET),
        endpoints=(ENDPOINT,),
    )
    return make_gateway(api, config, transport=cloud.transport())


def new_cloud() -> FakeCloud:
    return FakeCloud(access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET)


def base_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "ALICERTIFY_SCENE_ID": SCENE_ID,
        "ALICERTIFY_RETURN_URL_HOSTS": ["www.aliyun.com", "example.com"],
    }
    config.update(overrides)
    return config


def header_user() -> str | None:
    """The user loader of the test apps: the ``X-User`` header names the caller."""
    return request.headers.get("X-User") or None


@dataclass
class Harness:
    """A Flask app with AliCertify on the fake cloud, plus the things tests poke at."""

    app: Flask
    ext: AliCertify
    cloud: FakeCloud
    storage: Storage
    clock: FakeClock
    events: list[tuple[str, Any, Record]] = field(default_factory=list)

    def client(self, user: str | None = "alice") -> FlaskClient:
        client = self.app.test_client()
        if user is not None:
            client.environ_base["HTTP_X_USER"] = user
        return client

    def init(self, user: str | None = "alice", **params: Any) -> Any:
        body = {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME} | params}
        return self.client(user).post("/alicertify/init", json=body)

    def start(self, user: str | None = "alice", **params: Any) -> str:
        """Init and return the certify id (asserting success)."""
        response = self.init(user, **params)
        assert response.status_code == 200, response.get_json()
        certify_id: str = response.get_json()["certifyId"]
        return certify_id

    def result(
        self,
        certify_id: str,
        status: Any = "9000",
        result: Any = "same",
        user: str | None = "alice",
    ) -> Any:
        if result == "same":
            result = {"certifyId": certify_id, "errorCode": None}
        body = {"certifyId": certify_id, "resultStatus": status, "result": result}
        return self.client(user).post("/alicertify/result", json=body)

    def record(self, certify_id: str) -> Record:
        found = self.storage.get_by_certify_id(certify_id)
        assert found is not None
        return found

    def names(self) -> list[str]:
        return [name for name, _, _ in self.events]

    def describes(self) -> int:
        return len(self.cloud.calls_for("DescribeFaceVerify"))


def connect_events(h: Harness) -> Callable[[], None]:
    """Record every signal sent with ``h.app`` as sender; returns a disconnect function."""
    receivers = []
    for name in (
        "certify_initiated",
        "certify_passed",
        "certify_failed",
        "certify_abandoned",
        "certify_expired",
    ):
        signal = getattr(signals, name)

        def receiver(sender: Any, record: Record, _name: str = name, **extra: Any) -> None:
            h.events.append((_name, sender, record))

        signal.connect(receiver, sender=h.app, weak=False)
        receivers.append((signal, receiver))

    def disconnect() -> None:
        for signal, receiver in receivers:
            signal.disconnect(receiver, sender=h.app)

    return disconnect


@contextmanager
def harness(
    *,
    storage: Storage | None = None,
    cloud: FakeCloud | None = None,
    user_loader: Callable[[], Any] | None = header_user,
    identity_loader: Callable[[Any], Any] | None = None,
    api: str = "cloudauth",
    wrap_gateway: Callable[[Gateway], Gateway] | None = None,
    **config: Any,
) -> Iterator[Harness]:
    cloud = cloud or new_cloud()
    storage = storage if storage is not None else MemoryStorage()
    clock = FakeClock()
    app = Flask(f"ext_test_{uuid.uuid4().hex[:8]}")
    app.config.update(base_config(**config))
    ext = AliCertify(user_loader=user_loader, identity_loader=identity_loader)
    gateway = cloud_gateway(cloud, api)
    if wrap_gateway is not None:
        gateway = wrap_gateway(gateway)
    ext.init_app(app, storage=storage, gateway=gateway, clock=clock)
    h = Harness(app=app, ext=ext, cloud=cloud, storage=storage, clock=clock)
    disconnect = connect_events(h)
    try:
        yield h
    finally:
        disconnect()
        ext.state(app).gateway.close()


def service_missing(reason: str) -> None:
    """Skip, or fail under CI=true (where the services are promised)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the service must be available)", pytrace=False)
    pytest.skip(reason)


def _reachable_postgres() -> str | None:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as e:  # any failure means "not usable here"
        return f"PostgreSQL unreachable at {POSTGRES_URL}: {type(e).__name__}: {e}"
    return None


def _reachable_redis() -> str | None:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as e:
        return f"Redis unreachable at {REDIS_URL}: {type(e).__name__}: {e}"
    return None


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


@contextmanager
def open_storage(kind: str, tmp_path: Path) -> Iterator[Storage]:
    """A fresh storage of ``kind``; PostgreSQL gets its own table and Redis its own prefix."""
    token = uuid.uuid4().hex[:12]
    if kind == "memory":
        yield MemoryStorage()
        return
    if kind == "sqlite":
        from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

        sql = SQLAlchemyStorage(f"sqlite:///{tmp_path / 'ext.sqlite3'}")
        try:
            yield sql
        finally:
            sql.close()
        return
    if kind == "postgresql":
        reason = _reachable_postgres()
        if reason:
            service_missing(reason)
        from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

        pg = SQLAlchemyStorage(POSTGRES_URL, table_name=f"alicertify_ext_{token}")
        try:
            yield pg
        finally:
            pg.drop_all()
            pg.close()
        return
    if kind == "redis":
        reason = _reachable_redis()
        if reason:
            service_missing(reason)
        from flask_alicertify.storage.redis import RedisStorage

        rs = RedisStorage(REDIS_URL, prefix=f"alicertify-ext-{token}:")
        try:
            yield rs
        finally:
            keys = list(rs.client.scan_iter(match=rs.prefix + "*"))
            if keys:
                rs.client.delete(*keys)
            rs.close()
        return
    raise ValueError(kind)
