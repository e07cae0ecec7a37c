"""A WSGI worker process for R2: one app on a shared database, talking to a shared fake cloud.

Started with ``multiprocessing`` (spawn) by the R2 test; importable by name because spawned
children inherit the parent's ``sys.path``. Each worker serves the app with werkzeug's threaded
server on a loopback port, appends one line per ``certify_passed`` it sends to its own log file
(written before the response leaves, so the parent can count once every response is in), and
stops when the parent sets ``stop``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import support.reliability as support


def worker_config(base_url: str) -> dict[str, Any]:
    """The config every worker shares: same SECRET_KEY (callback token digests), same fake cloud."""
    return {
        "SECRET_KEY": "reliability-secret-key",
        "ALICERTIFY_SCENE_ID": support.SCENE_ID,
        "ALICERTIFY_ENDPOINTS": [base_url],
        "ALICERTIFY_ACCESS_KEY_ID": support.ACCESS_KEY_ID,
        "ALICERTIFY_ACCESS_KEY_SECRET": support.ACCESS_KEY_SECRET,
        "ALICERTIFY_CALLBACK_URL": support.CALLBACK_URL,
        "ALICERTIFY_MAX_ATTEMPTS_PER_DAY": None,
        "ALICERTIFY_DESCRIBE_MIN_INTERVAL": 0,
    }


def build_app(kind: str, spec: dict[str, Any], base_url: str, log_path: Path | None) -> tuple[Any, Any]:
    """The worker's app and its storage (the caller closes the storage: it was passed in)."""
    from flask import Flask

    from flask_alicertify import AliCertify
    from flask_alicertify import signals
    from support.storage import open_backend

    app = Flask(f"r2_worker_{os.getpid()}")
    app.config.update(worker_config(base_url))
    ext = AliCertify(user_loader=support.header_user)
    storage = open_backend(kind, spec)
    ext.init_app(app, storage=storage)
    if log_path is not None:
        lock = threading.Lock()

        def passed(sender: Any, record: Any, **extra: Any) -> None:
            with lock, open(log_path, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()} {record.id}\n")

        signals.certify_passed.connect(passed, sender=app, weak=False)
    return app, storage


def serve(kind: str, spec: dict[str, Any], base_url: str, log_dir: str, ports: Any, stop: Any) -> None:
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        app, storage = build_app(kind, spec, base_url, Path(log_dir) / f"passed-{os.getpid()}.log")
        server = make_server("127.0.0.1", 0, app, threaded=True)
    except BaseException as e:  # tell the parent why instead of letting it wait for a port
        ports.put(f"{type(e).__name__}: {e}")
        raise
    ports.put(server.server_port)

    def stopper() -> None:
        stop.wait()
        server.shutdown()

    threading.Thread(target=stopper, daemon=True).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        storage.close()
