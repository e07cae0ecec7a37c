"""The records in the app's own PostgreSQL database, with configuration from the environment.

Flask's ``from_prefixed_env`` hands the extension JSON-decoded values (an ``int`` scene id, an
``int`` PII key made of digits, a list, a float, a bool); the records of both instances land in
the tables the migration created, keyed with the configured PII keys.
"""

from __future__ import annotations

from pathlib import Path

import refapp
from support.integration import ENDPOINTS
from support.integration import RECORD_TABLES
from support.integration import guide_body
from support.integration import signed_in

from flask_alicertify.identity import cert_no_digest
from pytest_alicertify import CASES
from pytest_alicertify import run_flow
from pytest_alicertify.flow import DEFAULT_CERT_NAME
from pytest_alicertify.flow import DEFAULT_CERT_NO


def test_config_from_prefixed_env_arrives_typed_and_is_accepted(app, alicertify_cloud):
    # The point of the test: Flask decoded these, so the extension saw int, list, float and bool.
    assert app.config["ALICERTIFY_SCENE_ID"] == 1000000006
    assert type(app.config["ALICERTIFY_PII_KEY"]) is int
    assert isinstance(app.config["ALICERTIFY_ENDPOINTS"], list)
    assert type(app.config["ALICERTIFY_READ_TIMEOUT"]) is float
    assert app.config["KYC_ALLOW_ANONYMOUS"] is False

    settings = refapp.certify.state(app).settings
    assert settings.endpoints == tuple(ENDPOINTS)
    assert settings.read_timeout == 10.0
    assert signed_in(app, 42).post("/alicertify/init", json=guide_body()).status_code == 200
    assert alicertify_cloud.last_init.scene_id == "1000000006"


def test_a_digits_only_pii_key_is_the_key_used(app, database, alicertify_cloud):
    client = signed_in(app, 42)
    for prefix in ("/alicertify", "/kyc"):
        run_flow(client, CASES[0], alicertify_cloud, prefix=prefix)

    for table, key in (
        ("alicertify_records", "31415926535897932384"),
        ("kyc_records", "27182818284590452353"),
    ):
        (row,) = database.rows(table)
        assert row["cert_no_digest"] == cert_no_digest(DEFAULT_CERT_NO, key.encode())


def test_records_live_in_the_apps_database(app, database, alicertify_cloud):
    client = signed_in(app, 42)
    flows = {name: run_flow(client, CASES[0], alicertify_cloud, prefix=f"/{name}") for name in RECORD_TABLES}

    for name, table in RECORD_TABLES.items():
        (row,) = database.rows(table)
        assert row["certify_id"] == flows[name].certify_id
        assert (row["instance"], row["status"], row["user_id"]) == (name, "passed", "42")
        # Flask-Login's get_id() is a string; kyc's loader gives the integer primary key.
        assert row["user_id_type"] == ("int" if name == "kyc" else "str")
        stored = repr(row)
        assert DEFAULT_CERT_NO not in stored and DEFAULT_CERT_NAME not in stored
        assert flows[name].certify_url not in stored
    # Nothing went to a SQLite file in the instance folder.
    assert not Path(app.instance_path).exists()
