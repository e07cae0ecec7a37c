"""What the P2 figures share: the request they time, and the rig holding the three apps.

Its own module so that the figure (:mod:`.p2_overhead`) and the per-part timing
(:mod:`.p2_parts`) both use it without importing each other.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask

from .fake_server import FakeServers
from .p2_apps import peer_db

USER = "user-1"
PATHS = {"extension": "/alicertify/result", "peer": "/result", "minimal": "/result"}


def environ(path: str, body: dict[str, Any], user: str = USER) -> dict[str, Any]:
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
        "HTTP_X_USER": user,
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
        env = environ(path, {"certifyId": certify_id, "resultStatus": "9000", "result": None})
        started = time.perf_counter()
        body = app.wsgi_app(env, start_response)
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


@dataclass
class Rig:
    apps: dict[str, Flask]
    ids: list[str]
    fake: FakeServers
    pragmas: dict[str, str]

    def engines(self) -> dict[str, sa.Engine]:
        """The SQLAlchemy engines of the extension and the peer (the minimal view has none)."""
        ext = self.apps["extension"].extensions["alicertify"]["alicertify"].storage.engine
        with self.apps["peer"].app_context():
            return {"extension": ext, "peer": peer_db.engine}
