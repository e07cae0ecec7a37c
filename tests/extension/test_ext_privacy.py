"""Personal data (ID number, name), certifyUrl and callback tokens never reach logs or storage rows."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import httpx
import pytest
from support.ext import BACKENDS
from support.ext import CERT_NAME
from support.ext import CERT_NAME_2
from support.ext import CERT_NO
from support.ext import CERT_NO_2
from support.ext import Harness
from support.ext import harness
from support.ext import open_storage

from flask_alicertify.sandbox.fake import Fault
from flask_alicertify.sandbox.fake import Outcome
from flask_alicertify.storage import MemoryStorage
from flask_alicertify.storage import Storage

CALLBACK_URL = "https://app.example.com/alicertify/callback"


def exercise(h: Harness) -> list[str]:
    """Run the whole flow, happy and unhappy paths; return the secrets it handled."""
    secrets: list[str] = []
    h.cloud.script_next(Outcome.passes())
    response = h.init(returnUrl="https://www.aliyun.com")
    cid = response.get_json()["certifyId"]
    secrets.append(response.get_json()["certifyUrl"])
    token = h.cloud.sessions[cid].callback_token
    if token:
        secrets.append(token)
    h.result(cid, "9000")
    # callbacks: good (duplicate) and bad
    url = h.cloud.callback_url(cid)
    if url:
        query = dict(parse_qsl(urlsplit(url).query))
        h.client(None).get("/alicertify/callback", query_string=query)
        h.client(None).get("/alicertify/callback", query_string=query | {"callbackToken": "nope"})
    # a failure, an abandonment, upstream trouble at init and at describe
    h.cloud.script_next(Outcome.fails("201"))
    failed = h.start(certNo=CERT_NO_2, certName=CERT_NAME_2)
    h.result(failed, "4000", {"certifyId": failed, "errorCode": "SYSTEM_ERROR"})
    abandoned = h.start()
    h.result(abandoned, "6001", None)
    h.cloud.inject(Fault.http(503), times=1, action="InitFaceVerify")
    h.init()
    h.cloud.inject(Fault.malformed(), times=1, action="DescribeFaceVerify")
    h.result(abandoned, "6002", None)
    # invalid and mismatching identities
    h.init(certNo=CERT_NO[:-1] + "1")
    h.init(certName=CERT_NAME + "1")
    # reconcile and expiry
    h.clock.advance(3600)
    h.ext.service(h.app).reconcile(older_than=timedelta(minutes=10))
    return secrets


FORBIDDEN = [CERT_NO, CERT_NO.lower(), CERT_NO[:-1] + "1", CERT_NAME, CERT_NO_2, CERT_NAME_2]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        for name in ("flask_alicertify", "httpx", "httpcore", "werkzeug", "flask_alicertify.cloud"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        try:
            yield caplog
        finally:
            for name in ("flask_alicertify", "httpx", "httpcore", "werkzeug", "flask_alicertify.cloud"):
                logging.getLogger(name).setLevel(logging.NOTSET)


def test_no_personal_data_in_any_log_record(debug_logs: pytest.LogCaptureFixture) -> None:
    with harness(ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h:
        secrets = exercise(h)
    assert debug_logs.records, "the flow should log something at DEBUG"
    names = {r.name for r in debug_logs.records}
    assert {"flask_alicertify", "httpx"} <= names, names
    for record in debug_logs.records:
        text = record.getMessage() + " " + repr(record.__dict__)
        for value in FORBIDDEN + secrets:
            assert value not in text, (
                f"{value!r} leaked into a log record of {record.name}: {record.getMessage()}"
            )


def raw_dump(storage: Storage) -> str:
    if isinstance(storage, MemoryStorage):
        return repr(vars(storage))
    from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

    if isinstance(storage, SQLAlchemyStorage):
        import sqlalchemy as sa

        with storage.engine.connect() as conn:
            rows = conn.execute(sa.select(storage.table)).all()
        assert rows
        return "\n".join(repr(tuple(row)) for row in rows)
    from flask_alicertify.storage.redis import RedisStorage

    assert isinstance(storage, RedisStorage)
    out: list[Any] = []
    for key in storage.client.scan_iter(match=storage.prefix + "*"):
        kind = storage.client.type(key)
        if kind == "hash":
            out.append((key, storage.client.hgetall(key)))
        elif kind == "zset":
            out.append((key, storage.client.zrange(key, 0, -1)))
        elif kind == "set":
            out.append((key, storage.client.smembers(key)))
        else:
            out.append((key, storage.client.get(key)))
    assert out
    return repr(out)


@pytest.mark.parametrize("kind", BACKENDS)
def test_no_personal_data_in_storage_rows(kind: str, tmp_path: Path) -> None:
    with open_storage(kind, tmp_path) as storage:
        with harness(storage=storage, ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h:
            secrets = exercise(h)
        dump = raw_dump(storage)
    assert "1****************X" in dump  # masked forms are there
    for value in FORBIDDEN + secrets:
        assert value not in dump, f"{value!r} is stored in clear"


# -- tracebacks --------------------------------------------------------------------------------------


def _identity_forms() -> set[str]:
    from support.reliability import pii_forms

    forms: set[str] = set()
    for value in (CERT_NO, CERT_NAME, CERT_NO_2, CERT_NAME_2):
        forms |= pii_forms(value)
    return forms


def _raising_gateway(exc: Callable[[httpx.Request], BaseException], api: str) -> Callable[[Any], Any]:
    """The real gateway of ``api`` on an httpx transport whose every request raises ``exc``."""
    from support.ext import ACCESS_KEY_ID
    from support.ext import ACCESS_KEY_SECRET
    from support.ext import ENDPOINT
    from support.ext import SCENE_ID

    from flask_alicertify.cloud.base import GatewayConfig
    from flask_alicertify.cloud.credentials import StaticCredentials
    from flask_alicertify.cloud.gateways import make_gateway

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(request)

    config = GatewayConfig(
        scene_id=SCENE_ID,
        credentials=StaticCredentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET),
        endpoints=(ENDPOINT,),
    )

    def wrap(original: Any) -> Any:
        original.close()
        return make_gateway(api, config, transport=httpx.MockTransport(handler))

    return wrap


FAILURES = {
    "connect_error": lambda request: httpx.ConnectError("connection refused", request=request),
    "read_timeout": lambda request: httpx.ReadTimeout("timed out", request=request),
    "bug": lambda request: RuntimeError("something broke inside the transport"),
}


@pytest.mark.parametrize("api", ["cloudauth", "saf"])
@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("source", ["client", "identity_loader"])
def test_no_clear_identity_in_the_frame_locals_of_an_upstream_failure(
    api: str, failure: str, source: str
) -> None:
    """What an error tracker records (sentry-sdk captures every frame's locals by default) for an
    exception raised at the upstream call of a real ``POST /init``: no name, no ID number, in any
    form (clear, JSON-escaped, percent-encoded, bytes)."""
    captured: list[BaseException] = []
    profiles = {"alice": (CERT_NAME_2, CERT_NO_2)}
    with harness(
        api=api,
        ALICERTIFY_API=api,
        wrap_gateway=_raising_gateway(FAILURES[failure], api),
        identity_loader=profiles.get if source == "identity_loader" else None,
    ) as h:
        handle = h.app.handle_user_exception

        def spy(e: Exception) -> Any:
            captured.append(e)
            return handle(e)

        h.app.handle_user_exception = spy  # type: ignore[method-assign]
        params = {"certNo": CERT_NO, "certName": CERT_NAME} if source == "client" else {}
        response = h.client().post("/alicertify/init", json={"serviceParameters": params})
    assert response.status_code in (502, 503), response.get_json()
    (error,) = captured
    chain = []
    e: BaseException | None = error
    while e is not None:
        chain.append(type(e).__name__)
        e = e.__cause__ or e.__context__
    assert len(chain) >= 2, chain  # the answer's error and the upstream failure under it
    text = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    assert "start" in text and "init" in text  # the service's and the gateway's frames are in it
    leaked = sorted(form for form in _identity_forms() if form in text)
    assert not leaked, f"{leaked} in the frames of {chain}"
