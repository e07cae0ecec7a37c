"""Helpers of the reference-integration tests (a module of their own: every conftest is "conftest")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from pytest_alicertify.flow import DEFAULT_CERT_NAME
from pytest_alicertify.flow import DEFAULT_CERT_NO
from pytest_alicertify.options import DEFAULTS

#: The reference app's folder (tests/integration): ``flask`` subprocesses load ``refapp`` from it.
HERE = Path(__file__).resolve().parents[1] / "integration"
FLASK = str(Path(sys.executable).with_name("flask"))

#: Both of Alibaba's cloudauth regions (the defaults), set as a list to exercise list decoding.
ENDPOINTS = ["cloudauth.cn-shanghai.aliyuncs.com", "cloudauth.cn-beijing.aliyuncs.com"]

#: The app's configuration, as a deployment sets it. ``from_prefixed_env`` JSON-decodes each
#: value, so the scene ids and the digits-only PII keys reach the extension as ``int``, the
#: endpoints as a ``list``, the timeout as a ``float`` and the flag as a ``bool``.
BASE_ENV = {
    "FLASK_SECRET_KEY": "integration-secret-key",
    "FLASK_ALICERTIFY_SCENE_ID": DEFAULTS.scene_id,
    "FLASK_ALICERTIFY_PII_KEY": "31415926535897932384",
    "FLASK_ALICERTIFY_ENDPOINTS": json.dumps(ENDPOINTS),
    "FLASK_ALICERTIFY_READ_TIMEOUT": "10.0",
    "FLASK_KYC_SCENE_ID": DEFAULTS.scene_id,
    "FLASK_KYC_PII_KEY": "27182818284590452353",
    "FLASK_KYC_URL_PREFIX": "/kyc",
    "FLASK_KYC_ALLOW_ANONYMOUS": "false",
}
#: Variables of ours that must not leak in from the surrounding environment.
OUR_PREFIXES = ("FLASK_", "ALICERTIFY_", "KYC_")

#: The extension's own tables in the app's database: one per instance, named after it.
RECORD_TABLES = {"alicertify": "alicertify_records", "kyc": "kyc_records"}

#: A second valid ID number (GB 11643 check digit) that belongs to nobody real.
OTHER_CERT_NO = "110101199003070011"
OTHER_CERT_NAME = "李四"


class Database:
    """This session's PostgreSQL database, read from outside the app through one engine of ours."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url)

    def rows(self, table: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.text(f"SELECT * FROM {table}"))]

    def tables(self) -> set[str]:
        return set(sa.inspect(self.engine).get_table_names())

    def empty(self, tables: Iterable[str]) -> None:
        """Delete every row (a DELETE of a few rows is far quicker than TRUNCATE in PostgreSQL)."""
        present = self.tables()
        with self.engine.begin() as conn:
            for table in tables:
                if table in present:
                    conn.execute(sa.text(f"DELETE FROM {table}"))


#: What a developer runs once the first migration is applied, by name.
LATER_COMMANDS = {
    "second migrate": ("db", "migrate", "-m", "second"),
    "alicertify init-db": ("alicertify", "init-db"),
    "kyc init-db": ("kyc", "init-db"),
    "help": ("--help",),
}


@dataclass(frozen=True)
class Migrations:
    project: Path  # the working directory holding ``migrations/``
    first_revision: Path  # the file ``flask db migrate`` generated
    outputs: dict[str, subprocess.CompletedProcess[str]]
    #: :data:`LATER_COMMANDS`, started in the background once the schema is in place (each
    #: takes a second or more, mostly importing; meanwhile the in-process tests run).
    later: dict[str, Future[subprocess.CompletedProcess[str]]]


def flask_command(
    *args: str, env: dict[str, str], cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``flask <args>`` for the reference app, in a subprocess (as a developer types it)."""
    done = subprocess.run([FLASK, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(
            f"flask {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def command_env(database: Database, **extra: str) -> dict[str, str]:
    """The environment of a ``flask`` command run against the reference app."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUR_PREFIXES)}
    env.update(BASE_ENV)
    env.update(
        FLASK_APP="refapp",
        FLASK_SQLALCHEMY_DATABASE_URI=database.url,
        PYTHONPATH=os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p),
        # The deployment's key pair (the kit's fake one here): the extension reads these.
        ALIBABA_CLOUD_ACCESS_KEY_ID=DEFAULTS.access_key_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=DEFAULTS.access_key_secret,
    )
    env.update(extra)
    return env


def signed_in(app: Flask, user_id: int) -> FlaskClient:
    """A test client signed in as this user, through Flask-Login's own test client."""
    import refapp

    with app.app_context():
        user = refapp.db.session.get(refapp.User, user_id)
        assert user is not None, f"no user {user_id}"
        return app.test_client(user=user)


def guide_body(
    cert_no: str = DEFAULT_CERT_NO, cert_name: str = DEFAULT_CERT_NAME, **more: str
) -> dict[str, Any]:
    """The init body of Alibaba's mini-program guide."""
    return {"serviceParameters": {"certNo": cert_no, "certName": cert_name, **more}}


def error_code(response: Any) -> str | None:
    body = response.get_json(silent=True)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None
