"""Helpers for the extension tests: an app wired to the fake cloud, a fake clock, payloads.

Kept out of conftest.py so test modules can import the helpers by name.
"""

from __future__ import annotations

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
from support.storage import open_test_backend

SCENE_ID = "1000000006"
ACCESS_KEY_ID = "LTAI5tExtTestAccessKey01"
ACCESS_KEY_SECRET = "ext-test-secret"
ENDPOINT = "cloudauth.cn-shanghai.aliyuncs.com"

#: An uncompressed SM2 public key (a point on sm2p256v1) for settings tests.
SM2_PUBLIC_KEY = (
    "0442a7269d43708f6d145044ecfe2b4365cb3990e0b59ce1133795553b87b4b5fd"
    "18981e2c6ddabcb28cfcaafc44ee550df1d5f79e018db8d7275a89a304630111"
)

#: Valid 18-digit ID numbers (GB 11643 check digits) and names used throughout.
CERT_NO = "11010519491231002X"
CERT_NO_2 = "440306199001011236"
CERT_NAME = "张三"
CERT_NAME_2 = "欧阳娜娜"
#: The masked ID number Alibaba's mini-program guide sends as a placeholder
#: (https://help.aliyun.com/document_detail/144545.html).
PLACEHOLDER_NO = "1******************9"
SEED_PLACEHOLDER_NO = PLACEHOLDER_NO


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

    @property
    def prefix(self) -> str:
        """The instance's URL prefix (``/alicertify`` unless configured otherwise)."""
        return self.ext.state(self.app).settings.url_prefix

    def client(self, user: str | None = "alice") -> FlaskClient:
        client = self.app.test_client()
        if user is not None:
            client.environ_base["HTTP_X_USER"] = user
        return client

    def init(self, user: str | None = "alice", **params: Any) -> Any:
        body = {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME} | params}
        return self.client(user).post(self.prefix + "/init", json=body)

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
        return self.client(user).post(self.prefix + "/result", json=body)

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
    before_init: Callable[[Flask], None] | None = None,
    name: str = "alicertify",
    config_prefix: str = "ALICERTIFY_",
    **config: Any,
) -> Iterator[Harness]:
    """An app with AliCertify on ``storage`` (default: a fresh MemoryStorage) and a fake cloud.

    ``before_init`` runs on the app before ``init_app`` (to add Flask-Login, Flask-SQLAlchemy...).
    """
    cloud = cloud or new_cloud()
    storage = storage if storage is not None else MemoryStorage()
    clock = FakeClock()
    app = Flask(f"ext_test_{uuid.uuid4().hex[:8]}")
    app.config.update(base_config(**config))
    if before_init is not None:
        before_init(app)
    ext = AliCertify(
        user_loader=user_loader, identity_loader=identity_loader, name=name, config_prefix=config_prefix
    )
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


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


@contextmanager
def open_storage(kind: str, tmp_path: Path) -> Iterator[Storage]:
    """A fresh storage of ``kind``; PostgreSQL gets its own table and Redis its own prefix."""
    with open_test_backend(kind, tmp_path) as backend:
        yield backend.storage
