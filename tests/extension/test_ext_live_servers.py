"""Behaviour only a real server shows: chunked bodies, request logs, gunicorn's access log.

Werkzeug's test client does not frame a body the way a server does, nor write a request log, so
these run the app under werkzeug's development server (in a thread) and under gunicorn (a
subprocess), and talk to them over loopback HTTP.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support import skip_or_fail
from support.ext import CERT_NAME
from support.ext import CERT_NO
from support.ext import harness
from werkzeug.serving import make_server

from flask_alicertify import request_log

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
SECRET = "c0ffee5ecret70ken"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def werkzeug_server(app: Flask) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown()
        thread.join(5)


def post_chunked(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """POST ``body`` with ``Transfer-Encoding: chunked`` (no Content-Length), 4 KiB per chunk."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
    try:
        conn.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def padded_init_body(size: int) -> bytes:
    """A valid init body followed by whitespace up to ``size`` bytes: cut anywhere past the JSON,
    it still parses, which is how a silently truncated body used to reach a billed Init."""
    body = json.dumps({"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}}).encode()
    return body + b" " * (size - len(body))


HEADERS = {"Content-Type": "application/json", "X-User": "alice"}


def test_chunked_body_over_the_cap_is_413_on_werkzeugs_server() -> None:
    with harness() as h, werkzeug_server(h.app) as port:
        status, body = post_chunked(port, "/alicertify/init", padded_init_body(40_000), HEADERS)
        assert status == 413, body
        assert body["error"]["code"] == "body_too_large"
        assert h.cloud.calls_for("InitFaceVerify") == []
        # At the cap exactly, and under it, a chunked body is read whole and served.
        status, body = post_chunked(port, "/alicertify/init", padded_init_body(16 * 1024), HEADERS)
        assert status == 200, body
        status, body = post_chunked(port, "/alicertify/init", padded_init_body(2000), HEADERS)
        assert status == 200, body


def test_the_callback_token_never_reaches_werkzeugs_request_log(caplog: pytest.LogCaptureFixture) -> None:
    with harness() as h, werkzeug_server(h.app) as port, caplog.at_level(logging.INFO, logger="werkzeug"):
        for name in ("callbackToken", "CallbackToken"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", f"/alicertify/callback?certifyId=abc&passed=T&{name}={SECRET}")
            assert conn.getresponse().status == 404
            conn.close()
        deadline = time.monotonic() + 5
        while len([r for r in caplog.records if r.name == "werkzeug"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert len(lines) >= 2, lines
    assert all(SECRET not in line for line in lines), lines
    assert all("certifyId=abc" in line and "Token=[redacted]" in line for line in lines), lines


def test_the_filter_redacts_every_spelling_and_only_the_token() -> None:
    line = f"GET /alicertify/callback?certifyId=a&CALLBACKTOKEN={SECRET}&passed=T&callbackToken={SECRET}#x"
    redacted = request_log.redact(line)
    assert SECRET not in redacted
    assert redacted.count("[redacted]") == 2 and "certifyId=a" in redacted and "passed=T" in redacted
    assert request_log.install() is request_log.install()  # once per process


# -- gunicorn -----------------------------------------------------------------------------------

APP_MODULE = textwrap.dedent(
    """
    from flask import Flask
    from flask_alicertify import AliCertify


    def create_app():
        app = Flask("live")
        app.config.update(
            SECRET_KEY="live-server-test",
            ALICERTIFY_SANDBOX=True,
            ALICERTIFY_STORAGE="memory",
            ALICERTIFY_ALLOW_ANONYMOUS=True,
        )
        AliCertify(app)
        return app
    """
)


def documented_gunicorn_config() -> str:
    """The ``gunicorn.conf.py`` block of docs/operations.md, as written there."""
    text = OPERATIONS.read_text(encoding="utf-8")
    match = re.search(r"```python\n(# gunicorn\.conf\.py\n.*?)```", text, flags=re.DOTALL)
    assert match, f"{OPERATIONS.name} lost its gunicorn.conf.py block"
    return match.group(1)


@contextmanager
def gunicorn(tmp_path: Path, config: str | None) -> Iterator[tuple[int, Path]]:
    if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
        skip_or_fail("gunicorn is not installed in this environment")
    (tmp_path / "live_app.py").write_text(APP_MODULE, encoding="utf-8")
    access_log = tmp_path / "access.log"
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--access-logfile",
        str(access_log),
        "--chdir",
        str(tmp_path),
    ]
    if config is not None:
        (tmp_path / "gunicorn.conf.py").write_text(config, encoding="utf-8")
        command += ["--config", str(tmp_path / "gunicorn.conf.py")]
    command.append("live_app:create_app()")
    output_path = tmp_path / "gunicorn.out"
    with open(output_path, "wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start: {output_path.read_text(errors='replace')}")
                time.sleep(0.1)
        yield port, access_log
    finally:
        process.terminate()
        process.wait(10)


def _hit_callback(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/alicertify/callback?certifyId=abc&passed=T&callbackToken={SECRET}")
    assert conn.getresponse().status == 404
    conn.close()


def _read_log(path: Path, expect: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if expect in text:
            return text
        time.sleep(0.05)
    pytest.fail(f"{expect!r} never reached the access log: {text!r}")


def test_the_documented_gunicorn_access_log_leaves_the_token_out(tmp_path: Path) -> None:
    config = documented_gunicorn_config()
    assert "access_log_format" in config
    with gunicorn(tmp_path, config) as (port, access_log):
        _hit_callback(port)
        text = _read_log(access_log, "/alicertify/callback")
    assert SECRET not in text
    assert '"GET /alicertify/callback HTTP/1.1" 404' in text


def test_gunicorns_default_access_log_shows_the_token(tmp_path: Path) -> None:
    """Why the documented format exists (and proof the check above can fail)."""
    with gunicorn(tmp_path, None) as (port, access_log):
        _hit_callback(port)
        text = _read_log(access_log, "/alicertify/callback")
    assert SECRET in text


def test_chunked_body_over_the_cap_is_413_under_gunicorn(tmp_path: Path) -> None:
    with gunicorn(tmp_path, None) as (port, _):
        status, body = post_chunked(port, "/alicertify/init", padded_init_body(40_000), HEADERS)
        assert status == 413, body
        assert body["error"]["code"] == "body_too_large"
        status, body = post_chunked(port, "/alicertify/init", padded_init_body(4000), HEADERS)
        assert status == 200, body
