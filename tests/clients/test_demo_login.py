"""The example backend's demo login: a switch of its own, for loopback clients only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.clients import BACKEND
from support.clients import load_backend


def test_sandbox_mode_alone_never_turns_the_password_less_login_on(tmp_path: Path) -> None:
    module = load_backend()
    app = module.create_app(
        {"ALICERTIFY_SANDBOX": True, "SECRET_KEY": "t"}, instance_path=str(tmp_path / "off")
    )
    client = app.test_client()
    assert client.post("/login", json={"username": "alice"}).status_code == 404
    assert client.get("/").get_json()["endpoints"]["login"] is None
    # Sandbox callers without a token share the one demo user: no token, no other user id.
    assert client.get("/me").get_json()["user"]["id"] == module.DEMO_USER_ID
    module.certify.close(app)


def test_the_demo_login_answers_loopback_clients_only(tmp_path: Path) -> None:
    module = load_backend()
    app = module.create_app(
        {"ALICERTIFY_SANDBOX": True, "SECRET_KEY": "t", "DEMO_LOGIN": "1"}, instance_path=str(tmp_path)
    )
    client = app.test_client()
    assert client.post("/login", json={"username": "alice"}).status_code == 200
    for remote in ("203.0.113.7", "10.0.0.2", "::ffff:203.0.113.7"):
        r = client.post("/login", json={"username": "alice"}, environ_overrides={"REMOTE_ADDR": remote})
        assert r.status_code == 403, remote
        assert "token" not in (r.get_json() or {})
    ipv6 = client.post("/login", json={"username": "bob"}, environ_overrides={"REMOTE_ADDR": "::1"})
    assert ipv6.status_code == 200
    token = ipv6.get_json()["token"]
    me = client.get("/me", headers={"Authorization": f"Bearer {token}"}).get_json()["user"]
    assert me["username"] == "bob"
    module.certify.close(app)


def test_the_demo_refuses_to_bind_beyond_loopback_with_the_demo_login_on(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_LOGIN": "1", "HOST": "0.0.0.0", "PORT": "0", "ALICERTIFY_SANDBOX": "true"}
    result = subprocess.run(
        [sys.executable, str(BACKEND)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode != 0
    assert "loopback" in result.stderr and "0.0.0.0" in result.stderr
