"""P2 overhead: time per ``POST /result`` through the extension vs a hand-written minimal view.

Both variants run in this process on the same fake cloud through the same gateway object
(``cloudauth`` over ``FakeCloud.transport()``: signing and the fake's signature check included),
and write to SQLite files in one temporary folder:

* ``extension``: a Flask app with :class:`AliCertify` (a user loader, SQLAlchemy storage on
  SQLite), ``POST /alicertify/result`` with the body of Alibaba's mini-program guide. The
  sessions never finish, so every request records the claim, describes and stores what it saw.
* ``minimal``: a Flask app whose one view parses the JSON, calls ``gateway.describe`` and runs one
  plain ``sqlite3`` ``UPDATE`` (claim, verdict, describe count, time) with a commit, then answers
  the same JSON fields. No validation, no ownership check, no state machine. Its connection gets
  the journal mode and ``synchronous`` level the extension's connections use (read from them), so
  a commit costs both the same and the ratio compares code, not durability settings.

Each request is a fresh WSGI environ handed to ``app.wsgi_app`` (building it is not timed); the
variants alternate request by request (ABAB… then BABA…), and the medians are compared.
"""

from __future__ import annotations

import io
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import Any

from flask import Flask
from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue

from flask_alicertify import AliCertify
from flask_alicertify.cloud.base import Gateway
from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.gateways import make_gateway
from flask_alicertify.sandbox.fake import FakeCloud

from .common import CERT_NAME
from .common import CERT_NO
from .common import KEY_ID
from .common import KEY_SECRET
from .common import SCENE_ID
from .common import Check
from .common import Figure
from .common import Size
from .common import command
from .common import interleave
from .common import median
from .common import ms
from .common import percentile

USER = "user-1"
SESSIONS = 20

_SCHEMA = """
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


def extension_app(gateway: Gateway, folder: Path) -> Flask:
    app = Flask("bench_p2_extension")
    app.config.update(
        SECRET_KEY="bench",
        ALICERTIFY_SCENE_ID=SCENE_ID,
        ALICERTIFY_STORAGE="sqlalchemy",
        ALICERTIFY_DATABASE_URL=f"sqlite:///{folder / 'extension.sqlite3'}",
        ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None,
    )
    AliCertify(user_loader=lambda: request.headers.get("X-User")).init_app(app, gateway=gateway)
    return app


def sqlite_settings(app: Flask) -> dict[str, str]:
    """The journal mode and sync level of the extension's SQLite connections (what a write costs)."""
    storage = app.extensions["alicertify"]["alicertify"].storage
    with storage.engine.connect() as conn:
        return {
            name: str(conn.exec_driver_sql(f"PRAGMA {name}").scalar()).lower()
            for name in ("journal_mode", "synchronous")
        }


def minimal_app(gateway: Gateway, database: Path, pragmas: dict[str, str]) -> Flask:
    """What a developer would write by hand for the same request: describe, one UPDATE, JSON.

    Its connection uses the same ``pragmas`` (journal mode, sync level) as the extension's, so
    both pay the same for a commit and the ratio measures code, not a durability setting.
    """
    app = Flask("bench_p2_minimal")
    db = sqlite3.connect(database, check_same_thread=False)
    for name, value in pragmas.items():
        db.execute(f"PRAGMA {name}={value}")

    @app.post("/result")
    def result() -> ResponseReturnValue:
        data = request.get_json()
        certify_id = data["certifyId"]
        verdict = gateway.describe(certify_id)
        status = ("passed" if verdict.passed else "failed") if verdict.finished else "pending"
        now = datetime.now(timezone.utc).isoformat()
        db.execute(
            "UPDATE records SET status = ?, client_status = ?, passed = ?, sub_code = ?,"
            " describe_count = describe_count + 1, last_described_at = ?, updated_at = ?"
            " WHERE certify_id = ? AND user_id = ?",
            (status, data["resultStatus"], verdict.passed, verdict.sub_code, now, now, certify_id, USER),
        )
        db.commit()
        return jsonify(certifyId=certify_id, status=status, passed=verdict.passed, subCode=verdict.sub_code)

    app.extensions["bench_db"] = db
    return app


def _environ(path: str, body: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "HTTP_HOST": "localhost",
        "HTTP_X_USER": USER,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def timed_request(app: Flask, path: str, ids: list[str]) -> Callable[[], float]:
    """A callable sending the next ``POST path`` (cycling over ``ids``) and returning its seconds."""
    counter = iter(range(1 << 62))
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda _data: None

    def once() -> float:
        certify_id = ids[next(counter) % len(ids)]
        environ = _environ(path, {"certifyId": certify_id, "resultStatus": "9000", "result": None})
        started = time.perf_counter()
        body = app.wsgi_app(environ, start_response)
        try:
            content = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        elapsed = time.perf_counter() - started
        status = statuses.pop()
        if not status.startswith("200") or b'"pending"' not in content:
            raise RuntimeError(f"{path} answered {status}: {content[:200]!r}")
        return elapsed

    return once


@contextmanager
def rigs() -> Iterator[tuple[Flask, Flask, list[str]]]:
    with tempfile.TemporaryDirectory(prefix="alicertify-bench-p2-") as tmp:
        folder = Path(tmp)
        cloud = FakeCloud(KEY_ID, KEY_SECRET, seed=2)
        gateway = make_gateway(
            "cloudauth", GatewayConfig(SCENE_ID, StaticCredentials(KEY_ID, KEY_SECRET)), cloud.transport()
        )
        ext = extension_app(gateway, folder)
        client = ext.test_client()
        ids: list[str] = []
        for _ in range(SESSIONS):
            answer = client.post(
                "/alicertify/init",
                json={"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}},
                headers={"X-User": USER},
            )
            assert answer.status_code == 200, answer.get_data(as_text=True)
            ids.append(answer.get_json()["certifyId"])
        database = folder / "minimal.sqlite3"
        with sqlite3.connect(database) as db:
            db.execute(_SCHEMA)
            db.executemany(
                "INSERT INTO records (certify_id, user_id, status) VALUES (?, ?, 'pending')",
                [(i, USER) for i in ids],
            )
        pragmas = sqlite_settings(ext)
        minimal = minimal_app(gateway, database, pragmas)
        ext.extensions["bench_sqlite"] = pragmas
        try:
            yield ext, minimal, ids
        finally:
            minimal.extensions["bench_db"].close()
            ext.extensions["alicertify"]["alicertify"].extension.close(ext)
            gateway.close()


def run(size: Size = "full") -> Figure:
    started = time.perf_counter()
    rounds, warmup = (2000, 200) if size == "full" else (50, 5)
    with rigs() as (ext, minimal, ids):
        samples = interleave(
            {
                "extension": timed_request(ext, "/alicertify/result", ids),
                "minimal": timed_request(minimal, "/result", ids),
            },
            rounds=rounds,
            warmup=warmup,
        )
    ext_median, min_median = median(samples["extension"]), median(samples["minimal"])
    ratio = ext_median / min_median
    check = Check(
        "P2",
        "time per `POST /result` through the extension (in-process fake upstream, SQLite) "
        "÷ a minimal Flask view doing the same describe and one SQLite UPDATE",
        ratio,
        "<=",
        1.3,
        detail=f"{ratio:.2f}× (median {ms(ext_median)} vs {ms(min_median)}, {rounds} requests each)",
    )
    values: dict[str, Any] = {"requests_each": rounds, "warmup_each": warmup, "sessions": len(ids)}
    for name, values_s in samples.items():
        values[name] = {
            "median_ms": median(values_s) * 1000.0,
            "p10_ms": percentile(values_s, 0.1) * 1000.0,
            "p90_ms": percentile(values_s, 0.9) * 1000.0,
        }
    values["ratio"] = ratio
    return Figure(
        "P2",
        "Extension overhead per request",
        [check],
        values,
        command("p2"),
        seconds=time.perf_counter() - started,
    )
