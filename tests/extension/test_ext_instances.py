"""Two instances in one app keep their records apart: by default, and even on one shared store.

Once both used one table in one SQLite file by default: a certify id started on
``/alicertify/init`` for someone else's identity, posted to ``/kyc/result``, answered 200
``passed``, so the identity-bound instance settled a record it had never checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from support.ext import CERT_NAME
from support.ext import CERT_NO
from support.ext import base_config
from support.ext import cloud_gateway
from support.ext import header_user
from support.ext import new_cloud

from flask_alicertify import AliCertify
from flask_alicertify.sandbox.fake import FakeCloud
from flask_alicertify.sandbox.fake import Outcome
from flask_alicertify.storage import MemoryStorage
from flask_alicertify.storage import Storage

BODY = {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}}


def two_instances(
    tmp_path: Path, cloud: FakeCloud, storage: Storage | None = None, **config: Any
) -> tuple[Flask, AliCertify, AliCertify]:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(base_config(TESTING=False, KYC_SCENE_ID="1000000007", KYC_URL_PREFIX="/kyc", **config))
    app.testing = False
    default = AliCertify(user_loader=header_user)
    kyc = AliCertify(name="kyc", config_prefix="KYC_", user_loader=header_user)
    default.init_app(app, gateway=cloud_gateway(cloud), storage=storage)
    kyc.init_app(app, gateway=cloud_gateway(cloud), storage=storage)
    return app, default, kyc


def cross_post(app: Flask, cloud: FakeCloud) -> tuple[int, int]:
    """Start on the default instance, post the certify id to the other: (result, callback) status."""
    client = app.test_client()
    client.environ_base["HTTP_X_USER"] = "alice"
    cloud.script_next(Outcome.passes())
    certify_id = client.post("/alicertify/init", json=BODY).get_json()["certifyId"]
    result = client.post("/kyc/result", json={"certifyId": certify_id, "resultStatus": "9000"})
    poll = client.get(f"/kyc/result/{certify_id}")
    assert poll.status_code == result.status_code
    # The record is untouched, and its own instance still settles it.
    own = client.post("/alicertify/result", json={"certifyId": certify_id, "resultStatus": "9000"})
    assert own.get_json()["status"] == "passed"
    return result.status_code, poll.status_code


def test_by_default_each_instance_has_its_own_table(tmp_path: Path) -> None:
    cloud = new_cloud()
    app, default, kyc = two_instances(tmp_path, cloud)
    try:
        assert cross_post(app, cloud) == (404, 404)
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'instance' / 'alicertify.sqlite3'}")
        try:
            tables = set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert {"alicertify_records", "kyc_records"} <= tables
    finally:
        default.close(app)
        kyc.close(app)


def test_one_shared_store_still_keeps_them_apart(tmp_path: Path) -> None:
    cloud = new_cloud()
    shared = MemoryStorage()
    app, default, kyc = two_instances(tmp_path, cloud, storage=shared)
    assert cross_post(app, cloud) == (404, 404)
    record = shared.latest_for_user("alice", instance="alicertify")
    assert record is not None and record.instance == "alicertify"
    assert shared.latest_for_user("alice", instance="kyc") is None


@pytest.mark.parametrize("name", ["alicertify", "kyc"])
def test_built_in_backends_get_names_from_the_instance(tmp_path: Path, name: str) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    app = Flask(__name__)
    prefix = "ALICERTIFY_" if name == "alicertify" else "KYC_"
    app.config.update(
        base_config(
            **{f"{prefix}DATABASE_URL": url, f"{prefix}SCENE_ID": "1", f"{prefix}STORAGE": "sqlalchemy"}
        )
    )
    ext = AliCertify(name=name, config_prefix=prefix, user_loader=header_user)
    ext.init_app(app, gateway=cloud_gateway(new_cloud()))
    try:
        storage: Any = ext.state(app).storage
        assert storage.table.name == f"{name}_records"
    finally:
        ext.close(app)
