"""Shared pieces of the reliability suite: sizes, the figures collector, apps on the fake cloud.

Kept out of conftest.py so test modules (and processes spawned by them) can import it by name.

Sizes: ``ALICERTIFY_RELIABILITY=full`` runs the sizes docs/reliability.md reports; anything else runs the
reduced sizes ``make test`` can afford (the whole suite well under 90 s on 2 cores). Each test
reports one figure line through :func:`report`; the conftest prints them at the end of the run
and, at full size only, writes them to ``docs/reliability.md``.
"""

from __future__ import annotations

import json
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
from typing import Any
from urllib.parse import quote

import httpx
from flask import Flask
from flask import request
from flask.testing import FlaskClient

from flask_alicertify import AliCertify
from flask_alicertify import signals
from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.gateways import make_gateway
from flask_alicertify.identity import check_digit
from flask_alicertify.records import Record
from flask_alicertify.sandbox.fake import FakeCloud
from flask_alicertify.storage import MemoryStorage
from flask_alicertify.storage import Storage

FULL = os.environ.get("ALICERTIFY_RELIABILITY", "").strip().lower() == "full"
MODE = "full" if FULL else "reduced"

SCENE_ID = "1000000007"
ACCESS_KEY_ID = "LTAI5tReliabilityKey0001"
ACCESS_KEY_SECRET = "reliability-secret"
PRIMARY = "cloudauth.cn-shanghai.aliyuncs.com"
SECONDARY = "cloudauth.cn-beijing.aliyuncs.com"
CALLBACK_URL = "https://app.example.com/alicertify/callback"
PREFIX = "/alicertify"


def size(full: int, reduced: int) -> int:
    """The size of a run: ``full`` under ``ALICERTIFY_RELIABILITY=full``, else ``reduced``."""
    return full if FULL else reduced


# -- figures ------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One R-test's measured line."""

    rid: str
    title: str
    line: str
    target: str
    met: bool
    size: str


@dataclass
class Figures:
    """The session's figures, filled by :func:`report`, printed and written by the conftest."""

    items: dict[str, Figure] = field(default_factory=dict)


FIGURES = Figures()


def report(rid: str, title: str, line: str, *, target: str, met: bool, size: str) -> None:
    """Record and print this test's one summary line (shown with ``-s`` and in the summary)."""
    FIGURES.items[rid] = Figure(rid, title, line, target, met, size)
    print(f"{rid} {title}: {line} [target: {target}; {'met' if met else 'MISSED'}]")


# -- identities ---------------------------------------------------------------------------------


def cert_no(n: int) -> str:
    """A valid 18-character ID number (real check digit), distinct for each ``n``."""
    first17 = f"110105{1950 + n % 50:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return first17 + check_digit(first17)


#: Identities used by the suite; R5 scans for every one of them.
NAMES = ("张三丰", "欧阳娜娜", "李小龙", "王五")
CERT_NOS = tuple(cert_no(n) for n in (17, 231, 449, 1000 + 802))


def pii_forms(value: str) -> set[str]:
    """Every form a leaked value could take in text: clear, JSON-escaped, percent-encoded."""
    forms = {value, value.lower(), value.upper()}
    escaped = json.dumps(value)[1:-1]
    forms.add(escaped)
    forms.add(escaped.replace("\\u", "\\U"))
    for encoded in (
        quote(value, safe=""),
        quote(value.encode("gbk"), safe="") if not value.isascii() else "",
    ):
        if encoded:
            forms.add(encoded)
            forms.add(encoded.lower())
    forms.add(repr(value.encode("utf-8"))[2:-1])  # b'\xe5\xbc\xa0' as shown in a bytes repr
    return {f for f in forms if f}


# -- apps on the fake cloud ---------------------------------------------------------------------


class Clock:
    """One fake time for the service (aware datetimes) and the fake cloud (epoch seconds)."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def seconds(self) -> float:
        return self().timestamp()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


def header_user() -> str | None:
    return request.headers.get("X-User") or None


@dataclass
class App:
    """A Flask app with AliCertify on a fake cloud, and what tests inspect."""

    app: Flask
    ext: AliCertify
    cloud: FakeCloud
    storage: Storage
    clock: Clock | None
    events: list[tuple[str, str]] = field(default_factory=list)
    _events_lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, user: str | None = "alice") -> FlaskClient:
        client = self.app.test_client()
        if user is not None:
            client.environ_base["HTTP_X_USER"] = user
        return client

    def init(self, user: str | None = "alice", *, name: str = NAMES[0], number: str = CERT_NOS[0]) -> Any:
        body = {"serviceParameters": {"certNo": number, "certName": name}}
        return self.client(user).post(PREFIX + "/init", json=body)

    def start(self, user: str | None = "alice", **kwargs: Any) -> str:
        response = self.init(user, **kwargs)
        assert response.status_code == 200, response.get_json()
        certify_id: str = response.get_json()["certifyId"]
        return certify_id

    def post_result(
        self, certify_id: str, status: Any = "9000", result: Any = "same", user: str = "alice"
    ) -> Any:
        if result == "same":
            result = {"certifyId": certify_id}
        body = {"certifyId": certify_id, "resultStatus": status, "result": result}
        return self.client(user).post(PREFIX + "/result", json=body)

    def record(self, certify_id: str) -> Record:
        found = self.storage.get_by_certify_id(certify_id)
        assert found is not None, certify_id
        return found

    def count(self, name: str, record_id: str | None = None) -> int:
        with self._events_lock:
            return sum(1 for n, rid in self.events if n == name and (record_id is None or rid == record_id))

    def cli(self, *args: str) -> Any:
        return self.app.test_cli_runner().invoke(args=["alicertify", *args])


SIGNAL_NAMES = (
    "certify_initiated",
    "certify_passed",
    "certify_failed",
    "certify_abandoned",
    "certify_expired",
)


@contextmanager
def fake_app(
    *,
    storage: Storage | None = None,
    cloud: FakeCloud | None = None,
    clock: Clock | None = None,
    endpoints: tuple[str, ...] = (PRIMARY,),
    over_http: str | None = None,
    user_loader: Callable[[], Any] | None = header_user,
    wrap_transport: Callable[[httpx.BaseTransport], httpx.BaseTransport] | None = None,
    timeouts: tuple[float, float] = (5.0, 10.0),
    **config: Any,
) -> Iterator[App]:
    """An app wired to a fake cloud; signals are recorded in ``events``.

    In-process (no sockets) by default; ``over_http`` is the base URL of ``cloud.serve()`` to go
    through httpx's real network stack on loopback instead. ``wrap_transport`` wraps the fake's
    in-process transport (to garble what it answers); ``timeouts`` are the gateway's connect
    and read timeouts.
    """
    if cloud is None:
        kwargs: dict[str, Any] = {"clock": clock.seconds} if clock is not None else {}
        cloud = FakeCloud(access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET, **kwargs)
    storage = storage if storage is not None else MemoryStorage()
    app = Flask(f"reliability_{uuid.uuid4().hex[:8]}")
    app.config.update(
        TESTING=True,
        SECRET_KEY="reliability-secret-key",
        ALICERTIFY_SCENE_ID=SCENE_ID,
        ALICERTIFY_RETURN_URL_HOSTS=["example.com"],
    )
    app.config.update(config)
    gateway = make_gateway(
        "cloudauth",
        GatewayConfig(
            scene_id=SCENE_ID,
            credentials=StaticCredentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET),
            endpoints=(over_http,) if over_http else endpoints,
            connect_timeout=timeouts[0],
            read_timeout=timeouts[1],
        ),
        transport=None if over_http else _transport(cloud, wrap_transport),
    )
    ext = AliCertify(user_loader=user_loader)
    ext.init_app(app, storage=storage, gateway=gateway, clock=clock)
    built = App(app=app, ext=ext, cloud=cloud, storage=storage, clock=clock)
    receivers = []
    for name in SIGNAL_NAMES:

        def receiver(sender: Any, record: Record, _name: str = name, **extra: Any) -> None:
            with built._events_lock:
                built.events.append((_name, record.id))

        signal = getattr(signals, name)
        signal.connect(receiver, sender=app, weak=False)
        receivers.append((signal, receiver))
    try:
        yield built
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver, sender=app)
        gateway.close()


def _transport(
    cloud: FakeCloud, wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport] | None
) -> httpx.BaseTransport:
    transport = cloud.transport()
    return wrap(transport) if wrap is not None else transport


def run_together(jobs: list[Callable[[], Any]], timeout: float = 120) -> list[Any]:
    """Run every job in its own thread, released at once by a barrier; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    failures: list[BaseException] = []

    def run(i: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=60)
            results[i] = job()
        except BaseException as e:  # surfaced in the calling thread below
            failures.append(e)

    threads = [threading.Thread(target=run, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if failures:
        raise failures[0]
    return results


def is_error_shape(body: Any) -> bool:
    """``{"error": {"code": str, "message": str, "fields"?: object}}`` and nothing else."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return False
    error = body["error"]
    if not isinstance(error, dict) or not {"code", "message"} <= set(error) <= {"code", "message", "fields"}:
        return False
    if not isinstance(error["code"], str) or not isinstance(error["message"], str):
        return False
    return "fields" not in error or isinstance(error["fields"], dict)
