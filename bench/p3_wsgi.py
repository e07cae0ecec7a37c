"""The WSGI app gunicorn serves for P3 and P6: the example backend, plus two bench-only views.

* ``GET /bench/bare``: ``{"ok": true}`` (the readiness probe).
* ``POST /bench/minimal``: the least a hand-written ``/result`` view can do in this app: the app's
  own login lookup (``current_user_id()``, the same call the extension's user loader makes), the
  JSON body, a describe through our transport (its own gateway, same endpoint, quota guard off),
  one raw ``UPDATE`` of ``bench_minimal`` (``psycopg`` on PostgreSQL, ``sqlite3`` with the
  extension's WAL settings otherwise; one connection per thread) and ``jsonify``.

The demo login (``POST /login``) is on so the load generator has a real bearer token. Everything
else (``ALICERTIFY_*``, ``SECRET_KEY``) comes from the environment, as in production; ``BENCH_DB``
(``postgresql`` or ``sqlite``) and ``BENCH_MINIMAL_DSN`` say where the minimal view's table is.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from datetime import timezone

from flask import Flask
from flask import abort
from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue

from flask_alicertify.cloud.gateways import make_gateway

from .common import gateway_config
from .common import load_backend
from .p3_minimal import connect_minimal
from .p3_minimal import update_statement

backend = load_backend()
app: Flask = backend.create_app({"DEMO_LOGIN": True}, instance_path=os.environ["BENCH_INSTANCE"])

_kind = os.environ.get("BENCH_DB", "sqlite")
_dsn = os.environ.get("BENCH_MINIMAL_DSN", "")
_update = update_statement(_kind)
_local = threading.local()
_endpoint = os.environ["ALICERTIFY_ENDPOINTS"].split(",")[0].strip()
_gateway = make_gateway("cloudauth", gateway_config(_endpoint, guard=False))


@app.get("/bench/bare")
def bare() -> ResponseReturnValue:
    return jsonify(ok=True)


@app.post("/bench/minimal")
def minimal() -> ResponseReturnValue:
    user_id = backend.current_user_id()
    if user_id is None:
        abort(401)
    data = request.get_json()
    certify_id = data["certifyId"]
    verdict = _gateway.describe(certify_id)
    status = ("passed" if verdict.passed else "failed") if verdict.finished else "pending"
    now = datetime.now(timezone.utc).isoformat()
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = connect_minimal(_kind, _dsn)
    conn.execute(
        _update,
        (status, data["resultStatus"], verdict.passed, verdict.sub_code, now, now, certify_id, user_id),
    )
    conn.commit()
    return jsonify(certifyId=certify_id, status=status, passed=verdict.passed, subCode=verdict.sub_code)
