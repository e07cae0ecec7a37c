"""The three Flask apps P2 compares, each answering ``POST …/result`` for sessions that never finish.

* :func:`extension_app`: :class:`~flask_alicertify.AliCertify` as documented (SQLAlchemy storage on a
  SQLite file, a user loader, the gateway it builds itself from ``ALICERTIFY_ENDPOINTS``, the quota
  guard on with a rate that never binds, so its per-call cost is in the figure;
  ``ALICERTIFY_DESCRIBE_MIN_INTERVAL`` 0, so every post describes, as a session's first post does).
* :func:`peer_app`: what Alibaba's samples lead a Python team to write by hand: the official
  ``alibabacloud_cloudauth20190307`` client built once (``Config`` with the access key, as in the
  samples), a Flask-SQLAlchemy model loaded by certify id *and* user (the ownership check), fields
  updated on the ORM object, ``db.session.commit()``, ``jsonify``. Its answer is built before the
  commit, so it does not pay the ORM's reload of expired attributes after the commit (a
  conservative peer: the same view written the usual way is slower).
* :func:`minimal_app`: the least a view can do: parse the JSON, ``gateway.describe`` through our
  transport (guard off), one raw ``sqlite3`` ``UPDATE`` + commit, ``jsonify``. No validation, no
  ownership read, no state machine.

All three describe over HTTP against one fake cloud in another process (:mod:`bench.fake_server`),
and their SQLite connections use the extension's journal mode, sync level and busy timeout.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask import abort
from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_alicertify import AliCertify
from flask_alicertify.cloud.base import Gateway
from flask_alicertify.cloud.gateways import make_gateway

from .common import KEY_ID
from .common import KEY_SECRET
from .common import SCENE_ID
from .common import gateway_config

#: A quota the benchmark never reaches: the guard runs (and costs what it costs) but never waits.
NON_BINDING_QPS = 1_000_000

MINIMAL_SCHEMA = """
CREATE TABLE records (
    certify_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    client_status TEXT,
    passed INTEGER,
    sub_code TEXT,
    describe_count INTEGER NOT NULL DEFAULT 0,
    last_described_at TEXT,
    updated_at TEXT
)
"""


def extension_app(url: str, database: Path) -> Flask:
    app = Flask("bench_p2_extension")
    app.config.update(
        # No SECRET_KEY in any of the three apps, so Flask opens a session cookie in none of them.
        ALICERTIFY_PII_KEY="bench-pii-key-32-bytes-long-xxxxx",
        ALICERTIFY_SCENE_ID=SCENE_ID,
        ALICERTIFY_ACCESS_KEY_ID=KEY_ID,
        ALICERTIFY_ACCESS_KEY_SECRET=KEY_SECRET,
        ALICERTIFY_ENDPOINTS=url,
        ALICERTIFY_STORAGE="sqlalchemy",
        ALICERTIFY_DATABASE_URL=f"sqlite:///{database}",
        ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None,
        ALICERTIFY_UPSTREAM_QPS=NON_BINDING_QPS,
        # Every post takes the path of a verification's first result post (claim, describe):
        # with the default 2 s, repeated posts for one session within 2 s answer the stored state.
        ALICERTIFY_DESCRIBE_MIN_INTERVAL=0,
    )
    AliCertify(user_loader=lambda: request.headers.get("X-User")).init_app(app)

    @app.post("/bench/noop")
    def noop() -> ResponseReturnValue:
        """Flask's own dispatch floor on the same app (for ``python -m bench.profile``)."""
        return jsonify(ok=True)

    return app


def sqlite_settings(app: Flask) -> dict[str, str]:
    """The journal mode, sync level and busy timeout of the extension's SQLite connections."""
    storage = app.extensions["alicertify"]["alicertify"].storage
    with storage.engine.connect() as conn:
        return {
            name: str(conn.exec_driver_sql(f"PRAGMA {name}").scalar()).lower()
            for name in ("journal_mode", "synchronous", "busy_timeout")
        }


def _apply(dbapi_connection: Any, pragmas: dict[str, str]) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for name, value in pragmas.items():
            cursor.execute(f"PRAGMA {name}={value}")
    finally:
        cursor.close()


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat()


def minimal_app(url: str, database: Path, pragmas: dict[str, str], ids: list[str], user: str) -> Flask:
    """Describe through our transport, one raw UPDATE, JSON. Seeds its table with ``ids``."""
    app = Flask("bench_p2_minimal")
    gateway: Gateway = make_gateway("cloudauth", gateway_config(url, guard=False))
    with sqlite3.connect(database) as seed:
        seed.execute(MINIMAL_SCHEMA)
        seed.executemany(
            "INSERT INTO records (certify_id, user_id, status) VALUES (?, ?, 'pending')",
            [(i, user) for i in ids],
        )
    seed.close()
    db = sqlite3.connect(database, check_same_thread=False)
    _apply(db, pragmas)

    @app.post("/result")
    def result() -> ResponseReturnValue:
        data = request.get_json()
        certify_id, user = data["certifyId"], request.headers.get("X-User")
        verdict = gateway.describe(certify_id)
        status = ("passed" if verdict.passed else "failed") if verdict.finished else "pending"
        now = now_text()
        db.execute(
            "UPDATE records SET status = ?, client_status = ?, passed = ?, sub_code = ?,"
            " describe_count = describe_count + 1, last_described_at = ?, updated_at = ?"
            " WHERE certify_id = ? AND user_id = ?",
            (status, data["resultStatus"], verdict.passed, verdict.sub_code, now, now, certify_id, user),
        )
        db.commit()
        return jsonify(certifyId=certify_id, status=status, passed=verdict.passed, subCode=verdict.sub_code)

    app.extensions["bench_close"] = [db.close, gateway.close]
    app.extensions["bench_parts"] = {"db": db, "gateway": gateway}
    return app


class PeerBase(DeclarativeBase):
    pass


peer_db = SQLAlchemy(model_class=PeerBase)


class Verification(peer_db.Model):  # type: ignore[name-defined,misc]
    """The row a team keeps per verification (what the extension's record holds, minus the extras)."""

    __tablename__ = "verifications"
    certify_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    client_status: Mapped[str | None] = mapped_column(sa.String(16))
    passed: Mapped[bool | None]
    sub_code: Mapped[str | None] = mapped_column(sa.String(16))
    describe_count: Mapped[int] = mapped_column(default=0)
    last_described_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]


def peer_app(url: str, database: Path, pragmas: dict[str, str], ids: list[str], user: str) -> Flask:
    """The official SDK client + Flask-SQLAlchemy + jsonify, as a team writes it from the samples."""
    from alibabacloud_cloudauth20190307 import models as cloudauth_models
    from alibabacloud_cloudauth20190307.client import Client as CloudauthClient
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_util import models as util_models

    app = Flask("bench_p2_peer")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}",
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"check_same_thread": False}},
    )
    peer_db.init_app(app)
    with app.app_context():
        sa.event.listen(peer_db.engine, "connect", lambda conn, _record: _apply(conn, pragmas))
        peer_db.create_all()
        peer_db.session.add_all(Verification(certify_id=i, user_id=user, status="pending") for i in ids)
        peer_db.session.commit()

    endpoint = url.split("://", 1)[1]
    client = CloudauthClient(
        open_api_models.Config(
            access_key_id=KEY_ID, access_key_secret=KEY_SECRET, endpoint=endpoint, protocol="http"
        )
    )
    runtime = util_models.RuntimeOptions()

    @app.post("/result")
    def result() -> ResponseReturnValue:
        data = request.get_json()
        row = peer_db.session.execute(
            peer_db.select(Verification).filter_by(
                certify_id=data["certifyId"], user_id=request.headers.get("X-User")
            )
        ).scalar_one_or_none()
        if row is None:
            abort(404)
        describe = cloudauth_models.DescribeFaceVerifyRequest(
            scene_id=int(SCENE_ID), certify_id=row.certify_id
        )
        body = client.describe_face_verify_with_options(describe, runtime).body
        if body.code == "200" and body.result_object is not None:
            row.passed = body.result_object.passed == "T"
            row.sub_code = body.result_object.sub_code
            row.status = "passed" if row.passed else "failed"
        row.client_status = data["resultStatus"]
        row.describe_count += 1
        row.last_described_at = row.updated_at = datetime.now(timezone.utc)
        answer = {
            "certifyId": row.certify_id,
            "status": row.status,
            "passed": row.passed,
            "subCode": row.sub_code,
        }
        peer_db.session.commit()
        return jsonify(answer)

    def close() -> None:
        with app.app_context():
            peer_db.engine.dispose()

    app.extensions["bench_close"] = [close]
    app.extensions["bench_parts"] = {"client": client, "runtime": runtime, "models": cloudauth_models}
    return app
