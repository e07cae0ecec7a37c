"""The demo backend: a small Flask app using flask-alicertify the way a real app would.

What it shows, in the order a reader meets it:

* configuration from the environment (``ALICERTIFY_*``), with ``ALICERTIFY_SANDBOX`` serving the
  whole flow from the built-in fake Alibaba Cloud (no account, no network): ``true`` for the
  in-process fake, or the URL of the shared sandbox server for several workers;
* the extension's storage left at its default: SQLite in the instance folder;
* the app's own user table (stdlib ``sqlite3``) and a demo login, ``POST /login``, that returns a
  bearer token without a password: a separate switch (``DEMO_LOGIN=1``), never implied by the
  sandbox, and for loopback clients only (a real mini-program logs in with ``my.getAuthCode``;
  see README.md);
* ``@certify.user_loader`` reading that bearer token, and ``@certify.identity_loader`` supplying
  the identity to verify instead of trusting the client;
* signal receivers that keep the app's own ``users.verification_status`` up to date;
* ``GET /me`` showing the caller's verification state.

Run it with ``make demo``, or ``DEMO_LOGIN=1 python examples/backend/app.py`` (sandbox on,
127.0.0.1:5000, ``PORT`` overrides), or ``flask --app examples/backend/app.py run``. The reconcile job is
``flask --app examples/backend/app.py alicertify reconcile`` (README.md: cron).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import datetime
from datetime import timezone
from typing import Any

from flask import Flask
from flask import current_app
from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue

from flask_alicertify import AliCertify
from flask_alicertify import Record
from flask_alicertify import signals
from flask_alicertify.errors import Unauthenticated

#: The identity every sandbox verification uses (a valid GB 11643 number, the standard's own
#: example). It replaces the guide page's placeholder ID number ``1******************9``, which
#: the extension would otherwise refuse. The name is the guide's own ``张先生``: a client value
#: without ``*`` is not a placeholder, so the extension requires it to equal the profile's.
SANDBOX_IDENTITY: tuple[str, str] = ("张先生", "11010519491231002X")

#: In sandbox mode, callers without a token act as this one shared user, so the guide's page
#: (which sends no login) works unchanged. It hands out no token and names no other user.
DEMO_USER_ID = "demo"

#: Users may start more verifications per day in the sandbox, where they cost nothing.
SANDBOX_MAX_ATTEMPTS_PER_DAY = 20

_USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_TRUE = {"1", "true", "yes", "on"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    username TEXT UNIQUE NOT NULL,
    created_at TEXT NOT NULL,
    -- unverified | pending | verified | failed | abandoned | expired
    verification_status TEXT NOT NULL DEFAULT 'unverified',
    verified_at TEXT,
    last_certify_id TEXT,
    last_sub_code TEXT,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,      -- sha256 of the bearer token: a leaked table logs nobody in
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL
);
"""

certify = AliCertify()


def create_app(config: Mapping[str, Any] | None = None, *, instance_path: str | None = None) -> Flask:
    """Build the demo app. ``config`` overrides everything read from the environment."""
    app = Flask(__name__, instance_path=instance_path)
    app.config.update(_env_config(os.environ))
    if config:
        app.config.update(config)
    sandbox = _sandbox_on(app.config.get("ALICERTIFY_SANDBOX"))
    if sandbox:
        # Sandbox defaults; any of them can still be set explicitly.
        app.config.setdefault("ALICERTIFY_ALLOW_ANONYMOUS", True)
        app.config.setdefault("ALICERTIFY_MAX_ATTEMPTS_PER_DAY", SANDBOX_MAX_ATTEMPTS_PER_DAY)
        # Alibaba's mini-program guide sends returnUrl "https://www.aliyun.com"; allow that host so the page
        # works unchanged. A real app sets ALICERTIFY_RETURN_URL (or its own hosts) instead.
        app.config.setdefault("ALICERTIFY_RETURN_URL_HOSTS", ["www.aliyun.com"])
        if not app.config.get("SECRET_KEY"):  # Flask's default is None, so setdefault would not do
            app.config["SECRET_KEY"] = "sandbox-only-not-a-secret"
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("set SECRET_KEY (the extension derives its PII key from it)")
    app.config.setdefault("DEMO_SANDBOX", sandbox)
    # Password-less login: its own switch, never implied by the sandbox (a sandbox flag left on by
    # mistake must not hand out tokens), and answered to loopback clients only (login()).
    app.config["DEMO_LOGIN"] = _truthy(app.config.get("DEMO_LOGIN", False))
    app.config.setdefault("DEMO_USERS_DATABASE", os.path.join(app.instance_path, "demo-users.sqlite3"))

    os.makedirs(app.instance_path, exist_ok=True)
    with _db(app) as db:
        db.executescript(_SCHEMA)
        db.execute(
            "INSERT OR IGNORE INTO users (id, username, created_at) VALUES (?, ?, ?)",
            (DEMO_USER_ID, DEMO_USER_ID, _now()),
        )

    certify.init_app(app)

    # The app's own user table follows the verification outcomes. Receivers are module-level
    # functions (blinker holds them weakly) connected for this app only.
    signals.certify_initiated.connect(_on_initiated, sender=app)
    signals.certify_passed.connect(_on_passed, sender=app)
    signals.certify_failed.connect(_on_failed, sender=app)
    signals.certify_abandoned.connect(_on_abandoned, sender=app)
    signals.certify_expired.connect(_on_expired, sender=app)

    app.add_url_rule("/", view_func=index)
    app.add_url_rule("/login", view_func=login, methods=["POST"])
    app.add_url_rule("/me", view_func=me)
    app.register_error_handler(Unauthenticated, _unauthenticated)
    return app


def _env_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """``ALICERTIFY_*``, ``SECRET_KEY`` and ``DEMO_LOGIN`` from the environment, as strings."""
    found: dict[str, Any] = {k: v for k, v in environ.items() if k.startswith("ALICERTIFY_")}
    for key in ("SECRET_KEY", "DEMO_LOGIN"):
        if environ.get(key):
            found[key] = environ[key]
    return found


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in _TRUE


def _sandbox_on(value: Any) -> bool:
    """``ALICERTIFY_SANDBOX`` is on: true, or the shared sandbox server's URL."""
    text = str(value or "").strip().lower()
    return _truthy(value) or text.startswith(("http://", "https://"))


def is_loopback(host: str | None) -> bool:
    """``host`` (an address or ``localhost``) is this machine's loopback."""
    if not host:
        return False
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# -- the app's own data ----------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def _db(app: Flask) -> Iterator[sqlite3.Connection]:
    """One short-lived connection: requests run in threads, receivers may run in the CLI."""
    conn = sqlite3.connect(app.config["DEMO_USERS_DATABASE"], timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_user_id() -> str | None:
    """The signed-in user's id; in sandbox mode callers without a token are the demo user.

    A token that is present but unknown is refused (401) rather than treated as anonymous:
    silently downgrading a bad login would attach the verification to the wrong account.
    """
    token = _bearer_token()
    if token is None:
        return DEMO_USER_ID if current_app.config["DEMO_SANDBOX"] else None
    with _db(current_app) as db:
        row = db.execute("SELECT user_id FROM tokens WHERE token_hash = ?", (_token_hash(token),)).fetchone()
    if row is None:
        raise Unauthenticated("登录已失效，请重新登录", "The token is not valid; sign in again.")
    return str(row["user_id"])


# -- the extension's hooks -------------------------------------------------------------------------


@certify.user_loader
def load_user() -> str | None:
    return current_user_id()


@certify.identity_loader
def load_identity(user_id: str) -> tuple[str, str] | None:
    """The identity to verify for ``user_id``.

    A real app returns the name and ID number the user registered with (e.g. from its KYC
    profile), so the mini-program cannot ask Alibaba to verify somebody else; returning None
    uses the client's values, validated by the extension. The sandbox uses one test identity.
    """
    if current_app.config["DEMO_SANDBOX"]:
        return SANDBOX_IDENTITY
    return None


def _update_user(app: Flask, record: Record, status: str, *, start: bool = False) -> None:
    """Move the record's user to ``status`` if the record is the user's latest attempt.

    A verified user stays verified, and an outcome of an older attempt (e.g. reconcile expiring
    it later) never overwrites the state of a newer one.
    """
    if record.user_id is None:
        return
    with _db(app) as db:
        if start:
            db.execute(
                "UPDATE users SET verification_status = ?, last_certify_id = ?, last_sub_code = NULL,"
                " updated_at = ? WHERE id = ? AND verification_status != 'verified'",
                (status, record.certify_id, _now(), record.user_id),
            )
            return
        verified_at = _now() if status == "verified" else None
        db.execute(
            "UPDATE users SET verification_status = ?, last_sub_code = ?, updated_at = ?,"
            " verified_at = COALESCE(?, verified_at), last_certify_id = COALESCE(last_certify_id, ?)"
            " WHERE id = ? AND verification_status != 'verified'"
            " AND (last_certify_id IS NULL OR last_certify_id = ? OR ? = 'verified')",
            (
                status,
                record.sub_code,
                _now(),
                verified_at,
                record.certify_id,
                record.user_id,
                record.certify_id,
                status,
            ),
        )


def _on_initiated(app: Flask, record: Record, **extra: Any) -> None:
    _update_user(app, record, "pending", start=True)


def _on_passed(app: Flask, record: Record, **extra: Any) -> None:
    _update_user(app, record, "verified")


def _on_failed(app: Flask, record: Record, **extra: Any) -> None:
    _update_user(app, record, "failed")


def _on_abandoned(app: Flask, record: Record, **extra: Any) -> None:
    _update_user(app, record, "abandoned")


def _on_expired(app: Flask, record: Record, **extra: Any) -> None:
    _update_user(app, record, "expired")


# -- views -----------------------------------------------------------------------------------------


def index() -> ResponseReturnValue:
    prefix = certify.state().settings.url_prefix
    return jsonify(
        app="flask-alicertify demo backend",
        sandbox=current_app.config["DEMO_SANDBOX"],
        endpoints={
            "login": "POST /login {username}" if current_app.config["DEMO_LOGIN"] else None,
            "me": "GET /me",
            "init": f"POST {prefix}/init",
            "result": f"POST {prefix}/result",
            "status": f"GET {prefix}/result/<certifyId>",
            "sandbox_page": "GET the certifyUrl /init answered"
            if current_app.config["DEMO_SANDBOX"]
            else None,
        },
    )


def login() -> ResponseReturnValue:
    """Demo login: ``{"username": "alice"}`` creates the user if needed and returns a bearer token.

    No password: this exists only in the demo (``DEMO_LOGIN=1``, a switch of its own), and only
    for clients on this machine. A real mini-program backend takes an ``authCode`` from
    ``my.getAuthCode`` instead (README.md).
    """
    if not current_app.config["DEMO_LOGIN"]:
        return _error(404, "not_found", "未开放演示登录", "The demo login is off.")
    if not is_loopback(request.remote_addr):
        return _error(403, "forbidden", "演示登录仅限本机访问", "The demo login answers this machine only.")
    body = request.get_json(silent=True)
    username = body.get("username") if isinstance(body, dict) else None
    if not isinstance(username, str) or not _USERNAME.match(username):
        return _error(
            400,
            "invalid_input",
            "用户名不正确",
            "username: 1-64 letters, digits, '.', '_' or '-'.",
            fields={"username": ["1-64 letters, digits, '.', '_' or '-'."]},
        )
    token = secrets.token_urlsafe(32)
    with _db(current_app) as db:
        db.execute(
            "INSERT OR IGNORE INTO users (id, username, created_at) VALUES (?, ?, ?)",
            ("u_" + secrets.token_hex(8), username, _now()),
        )
        user = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        db.execute(
            "INSERT INTO tokens (token_hash, user_id, created_at) VALUES (?, ?, ?)",
            (_token_hash(token), user["id"], _now()),
        )
    return jsonify(token=token, user=_user_json(user))


def me() -> ResponseReturnValue:
    user_id = current_user_id()
    if user_id is None:
        raise Unauthenticated()
    with _db(current_app) as db:
        user = db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
    if user is None:
        raise Unauthenticated()
    return jsonify(user=_user_json(user))


def _user_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "username": row["username"],
        "verification": {
            "status": row["verification_status"],
            "verified": row["verification_status"] == "verified",
            "verifiedAt": row["verified_at"],
            "lastCertifyId": row["last_certify_id"],
            "subCode": row["last_sub_code"],
            "updatedAt": row["updated_at"],
        },
    }


def _error(status: int, code: str, zh: str, en: str, *, fields: Any = None) -> ResponseReturnValue:
    error: dict[str, Any] = {"code": code, "message": zh, "message_en": en}
    if fields:
        error["fields"] = fields
    return jsonify(error=error), status


def _unauthenticated(e: Unauthenticated) -> ResponseReturnValue:
    # The app's own routes use the extension's error shape too.
    return _error(e.status, e.code, e.message("zh"), e.message("en"))


def main() -> None:
    """``python examples/backend/app.py``: the sandbox demo on 127.0.0.1:$PORT (default 5000)."""
    os.environ.setdefault("ALICERTIFY_SANDBOX", "true")
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    if _truthy(os.environ.get("DEMO_LOGIN")) and not is_loopback(host):
        raise SystemExit(
            f"DEMO_LOGIN hands out tokens without a password: it binds to loopback only, not HOST={host}"
        )
    app = create_app()
    prefix = certify.state(app).settings.url_prefix
    base = f"http://{host}:{port}"
    mode = "SANDBOX: no Alibaba account, no network" if app.config["DEMO_SANDBOX"] else "LIVE"
    if app.config["DEMO_LOGIN"]:
        mode += "; demo login on (loopback only)"
    print(
        f"""
flask-alicertify demo backend ({mode})
  {base}/                      what is served
  POST {base}{prefix}/init     start (the body of Alibaba's mini-program guide works as is)
  certifyUrl                   the stand-in certify page (open it; it carries the session's token)

Walk the flow with curl:
  curl -s -X POST {base}{prefix}/init -H 'content-type: application/json' \\
       -d '{{"serviceParameters":{{"certNo":"1******************9","certName":"张先生"}}}}'
  # open certifyUrl in a browser and click an outcome, or script it (the URL, token included):
  curl -s -X POST '<certifyUrl>' -H 'content-type: application/json' -d '{{"outcome":"pass"}}'
  curl -s -X POST {base}{prefix}/result -H 'content-type: application/json' \\
       -d '{{"certifyId":"<certifyId>","resultStatus":"9000","result":null}}'
  curl -s {base}/me

Mini-program: open examples/miniprogram in the Alipay developer tool (小程序开发者工具), tick
详情 > 域名信息 > 忽略 http 请求域名合法性检查, and keep config.js's baseUrl at {base}{prefix}.
Node harness against this server: node tests/clients/node/harness.js {base}
""",
        flush=True,
    )
    app.run(host=host, port=port, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
