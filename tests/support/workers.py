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
from collections.abc import Iterator
from contextlib import contextmanager
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


def build_app(
    kind: str,
    spec: dict[str, Any],
    base_url: str,
    log_path: Path | None,
    config: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """The worker's app and its storage (the caller closes the storage: it was passed in)."""
    from flask import Flask

    from flask_alicertify import AliCertify
    from flask_alicertify import signals
    from support.storage import open_backend

    app = Flask(f"r2_worker_{os.getpid()}")
    app.config.update(worker_config(base_url))
    app.config.update(config or {})
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


def serve(
    kind: str,
    spec: dict[str, Any],
    base_url: str,
    log_dir: str,
    ports: Any,
    stop: Any,
    config: dict[str, Any] | None = None,
) -> None:
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        log_path = Path(log_dir) / f"passed-{os.getpid()}.log"
        app, storage = build_app(kind, spec, base_url, log_path, config)
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


@contextmanager
def running(
    ctx: Any,
    kind: str,
    spec: dict[str, Any],
    base_url: str,
    *,
    count: int = 3,
    config: dict[str, Any] | None = None,
    log_dir: str | None = None,
) -> Iterator[list[str]]:
    """``count`` worker processes serving one app each; yields their base URLs, stops them after.

    Only the processes started here are stopped, by their handles.
    """
    import queue
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ports: Any = ctx.Queue()
        stop = ctx.Event()
        procs = [
            ctx.Process(
                target=serve, args=(kind, spec, base_url, log_dir or tmp, ports, stop, config), daemon=True
            )
            for _ in range(count)
        ]
        for p in procs:
            p.start()
        try:
            got = [ports.get(timeout=120) for _ in procs]
            assert all(isinstance(port, int) for port in got), got
            yield [f"http://127.0.0.1:{port}" for port in got]
        finally:
            stop.set()
            for p in procs:
                p.join(timeout=30)
            for p in procs:
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=10)
            try:
                while True:
                    ports.get_nowait()
            except queue.Empty:
                pass
            ports.close()
            ports.join_thread()


def die_after_transition(kind: str, spec: dict[str, Any], how: str, conn: Any) -> None:
    """R8's doomed worker: settles one verification as ``passed`` and dies inside the signal.

    The record's transition is stored; the ``certify_passed`` receiver tells the parent the
    record id over a pipe (a synchronous write, unlike a queue's feeder thread) and then dies:
    ``how == "exit"`` calls ``os._exit`` (no cleanup, as a crash), ``"sigkill"`` waits for the
    parent's SIGKILL (as an OOM kill or a supervisor's timeout).
    """
    import time

    from flask import Flask

    from flask_alicertify import AliCertify
    from flask_alicertify import signals
    from flask_alicertify.cloud.base import GatewayConfig
    from flask_alicertify.cloud.credentials import StaticCredentials
    from flask_alicertify.cloud.gateways import make_gateway
    from flask_alicertify.sandbox.fake import FakeCloud
    from support.storage import open_backend

    cloud = FakeCloud(access_key_id=support.ACCESS_KEY_ID, access_key_secret=support.ACCESS_KEY_SECRET)
    storage = open_backend(kind, spec)
    app = Flask(f"r8_worker_{os.getpid()}")
    app.config.update(
        SECRET_KEY="reliability-secret-key",
        ALICERTIFY_SCENE_ID=support.SCENE_ID,
        ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None,
    )
    gateway = make_gateway(
        "cloudauth",
        GatewayConfig(
            scene_id=support.SCENE_ID,
            credentials=StaticCredentials(support.ACCESS_KEY_ID, support.ACCESS_KEY_SECRET),
            endpoints=(support.PRIMARY,),
        ),
        transport=cloud.transport(),
    )
    AliCertify(user_loader=support.header_user).init_app(app, storage=storage, gateway=gateway)

    def doomed(sender: Any, record: Any, **extra: Any) -> None:
        conn.send(record.id)
        if how == "exit":
            os._exit(17)
        time.sleep(120)

    signals.certify_passed.connect(doomed, sender=app, weak=False)
    client = app.test_client()
    client.environ_base["HTTP_X_USER"] = "alice"
    body = {"serviceParameters": {"certNo": support.CERT_NOS[0], "certName": support.NAMES[0]}}
    try:
        started = client.post("/alicertify/init", json=body)
        cid = started.get_json()["certifyId"]
        cloud.complete(cid, passed=True)
        client.post("/alicertify/result", json={"certifyId": cid, "resultStatus": "9000", "result": None})
    except BaseException as e:  # tell the parent why, instead of letting it wait
        conn.send(f"error: {type(e).__name__}: {e}")
        raise
    conn.send("survived")  # never reached: the receiver does not return
