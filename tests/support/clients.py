"""Helpers of the real-client tests: the demo backend (examples/backend) on a loopback port.

Node (the mini-program harness) and Chromium (the sandbox certify page) talk HTTP to it, so it
runs in a thread behind werkzeug's server, in sandbox mode, with its storage in a temporary
instance folder. Tests that need a system program skip when it is missing, except under
``CI=true`` where a missing piece must fail the run instead of hiding it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from werkzeug.serving import make_server

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
    app: Any

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


@contextmanager
def serve_demo_backend(instance_path: Path) -> Iterator[Backend]:
    """examples/backend in sandbox mode on a free loopback port (SQLite under ``instance_path``)."""
    module = load_backend()
    app = module.create_app(
        {"ALICERTIFY_SANDBOX": True, "SECRET_KEY": "tests-only"}, instance_path=str(instance_path)
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
