"""Personal data (ID number, name), certifyUrl and callback tokens never reach logs or storage rows."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

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
