"""Helpers of the real-client tests: the demo backend (examples/backend) on a loopback port.

Node (the mini-program harness) and Chromium (the sandbox certify page) talk HTTP to it, so it
runs in a thread behind werkzeug's server, in sandbox mode, with its storage in a temporary
instance folder. Tests that need a system program skip when it is missing, except under
``CI=true`` where a missing piece must fail the run instead of hiding it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from werkzeug.serving import make_server

from flask_alicertify.sandbox import server as sandbox_server
from flask_alicertify.sandbox.fake import FakeCloud
from flask_alicertify.sandbox.plugin import SANDBOX_ACCESS_KEY_ID
from flask_alicertify.sandbox.plugin import SANDBOX_ACCESS_KEY_SECRET
from flask_alicertify.sandbox.shared import SharedSandbox

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "examples" / "backend" / "app.py"


def load_backend() -> ModuleType:
    """examples/backend/app.py as a module (examples/ is not a package)."""
    name = "alicertify_demo_backend"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BACKEND)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Backend:
    origin: str
    prefix: str
    #: The Flask app when it runs in this process (None under gunicorn).
    app: Any
    #: Where certify pages live: the backend itself in-process, the shared sandbox server else.
    page_origin: str = ""

    def __post_init__(self) -> None:
        self.page_origin = self.page_origin or self.origin

    @property
    def base_url(self) -> str:
        return self.origin + self.prefix

    def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        """One JSON request; answers (status, parsed body). ``path`` is relative to the origin."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.origin + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                return res.status, json.loads(res.read() or b"null")
        except urllib.error.HTTPError as e:
            with e:
                raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode("utf-8", "replace")

    def login(self, username: str) -> str:
        status, body = self.request("POST", "/login", {"username": username})
        assert status == 200, body
        token: str = body["token"]
        return token


@dataclass
class SharedServer:
    """The shared sandbox server's routes served in this process: the fake stays inspectable."""

    url: str
    cloud: FakeCloud
    control_token: str

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.control_token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())


@contextmanager
def serve_shared_sandbox() -> Iterator[SharedServer]:
    """What ``python -m flask_alicertify.sandbox`` serves, in-thread on a free loopback port."""
    cloud = FakeCloud(SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET, https_callbacks_only=False)
    token = "shared-sandbox-tests"
    running = sandbox_server.Running(SharedSandbox(cloud, control_token=token), "127.0.0.1", 0)
    cloud.certify_url = running.url + "/sandbox/certify/{certify_id}"
    running.begin()
    try:
        yield SharedServer(url=running.url, cloud=cloud, control_token=token)
    finally:
        running.stop()


@contextmanager
def serve_demo_backend(instance_path: Path) -> Iterator[Backend]:
    """examples/backend in sandbox mode on a free loopback port (SQLite under ``instance_path``).

    The in-process fake, one process (werkzeug's threaded server), with the demo login on.
    """
    module = load_backend()
    app = module.create_app(
        {"ALICERTIFY_SANDBOX": True, "SECRET_KEY": "tests-only", "DEMO_LOGIN": True},
        instance_path=str(instance_path),
    )
    prefix = module.certify.state(app).settings.url_prefix
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="demo-backend", daemon=True)
    thread.start()
    try:
        yield Backend(origin=f"http://127.0.0.1:{server.port}", prefix=prefix, app=app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        module.certify.close(app)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_gunicorn_backend(
    *, sandbox_url: str, database_url: str, instance_path: Path, workers: int = 3, start_timeout: float = 30.0
) -> Iterator[Backend]:
    """examples/backend under gunicorn with ``workers`` processes, on the shared sandbox server.

    Every worker talks to ``sandbox_url`` (``ALICERTIFY_SANDBOX``) and stores records in
    ``database_url``; the demo login is on (loopback). Stopped with SIGINT (gunicorn's quick
    shutdown: the test is over, nothing is in flight), killed if it does not stop in 10 s.
    """
    port = free_port()
    env = {
        **os.environ,
        "ALICERTIFY_SANDBOX": sandbox_url,
        "ALICERTIFY_DATABASE_URL": database_url,
        "ALICERTIFY_STORAGE": "sqlalchemy",
        "SECRET_KEY": "gunicorn-tests-only",
        "DEMO_LOGIN": "1",
    }
    factory = f"app:create_app(instance_path={str(instance_path)!r})"
    log = instance_path / "gunicorn.log"
    instance_path.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
            + ["--chdir", str(BACKEND.parent), "--graceful-timeout", "5", factory],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(origin, process, start_timeout, log)
        yield Backend(origin=origin, prefix="/alicertify", app=None, page_origin=sandbox_url)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_until_serving(origin: str, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {process.returncode}:\n{log.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(origin + "/", timeout=2) as res:
                if res.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {timeout} s:\n{log.read_text(errors='replace')}")
