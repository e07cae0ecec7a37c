"""The WSGI app gunicorn serves for P3: the example backend, plus one bare JSON endpoint.

``GET /bench/bare`` is the baseline: a plain Flask view answering ``{"ok": true}`` in the same
app, the same workers and the same server as the extension's ``/alicertify/result``. The demo
login (``POST /login``) is switched on so the load generator has a real bearer token; everything
else (``ALICERTIFY_*``, ``SECRET_KEY``) comes from the environment, as in production.
"""

from __future__ import annotations

import os

from flask import Flask
from flask import jsonify
from flask.typing import ResponseReturnValue

from .common import load_backend

backend = load_backend()
app: Flask = backend.create_app({"DEMO_LOGIN": True}, instance_path=os.environ["BENCH_INSTANCE"])


@app.get("/bench/bare")
def bare() -> ResponseReturnValue:
    return jsonify(ok=True)
