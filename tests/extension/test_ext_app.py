"""The extension object: init_app, several instances and apps, loaders, storage choice, closing."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.ext import ACCESS_KEY_ID
from support.ext import ACCESS_KEY_SECRET
from support.ext import CERT_NAME
from support.ext import CERT_NO
from support.ext import SM2_PUBLIC_KEY
from support.ext import base_config
from support.ext import cloud_gateway
from support.ext import header_user
from support.ext import new_cloud

from flask_alicertify import AliCertify
from flask_alicertify import Record
from flask_alicertify import Status
from flask_alicertify import errors
from flask_alicertify import signals
from flask_alicertify.cloud.base import Gateway
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.base import InitResult
from flask_alicertify.cloud.base import Verdict
from flask_alicertify.sandbox.fake import FakeCloud
from flask_alicertify.sandbox.fake import Outcome
from flask_alicertify.settings import Settings
from flask_alicertify.storage import MemoryStorage

INIT_BODY = {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}}


def make_app(tmp_path: Path | None = None, **config: Any) -> Flask:
    app = Flask(__name__, instance_path=str(tmp_path / "instance") if tmp_path else None)
    app.config.update(base_config(**config))
    return app


class SpyGateway:
    """Wraps a real gateway and counts close() calls."""

    def __init__(self, inner: Gateway) -> None:
        self.inner = inner
        self.api = inner.api
        self.closed = 0

    def init(self, request: InitRequest) -> InitResult:
        return self.inner.init(request)

    def describe(self, certify_id: str) -> Verdict:
        return self.inner.describe(certify_id)

    def close(self) -> None:
        self.closed += 1
        self.inner.close()


def test_refuses_to_serve_without_user_loader() -> None:
    app = make_app()
    with pytest.raises(errors.ConfigurationError) as info:
        AliCertify(app)
    assert info.value.key == "ALICERTIFY_ALLOW_ANONYMOUS"
    assert "user_loader" in str(info.value)
    assert "alicertify" not in app.extensions or not app.extensions["alicertify"]
    assert "alicertify.init" not in app.view_functions


def test_anonymous_mode_when_allowed() -> None:
    cloud = new_cloud()
    app = make_app(ALICERTIFY_ALLOW_ANONYMOUS=True)
    AliCertify().init_app(app, gateway=cloud_gateway(cloud))
    cloud.script_next(Outcome.passes())
    client = app.test_client()
    cid = client.post("/alicertify/init", json=INIT_BODY).get_json()["certifyId"]
    body = client.post("/alicertify/result", json={"certifyId": cid, "resultStatus": "9000", "result": None})
    assert body.get_json()["status"] == "passed"


def test_user_loader_decorator_before_init_app() -> None:
    ext = AliCertify()

    @ext.user_loader
    def load_user() -> int:
        return 42

    assert load_user() == 42  # the decorator returns the function unchanged
    app = make_app()
    cloud = new_cloud()
    ext.init_app(app, gateway=cloud_gateway(cloud))
    cid = app.test_client().post("/alicertify/init", json=INIT_BODY).get_json()["certifyId"]
    record = ext.state(app).storage.get_by_certify_id(cid)
    assert record is not None and record.user_id == "42"


def test_two_instances_with_different_prefixes_in_one_app() -> None:
    app = make_app(KYC_SCENE_ID="2000000001", KYC_URL_PREFIX="/kyc", KYC_RETURN_URL_HOSTS="kyc.example.com")
    cloud_a, cloud_b = new_cloud(), new_cloud()
    a = AliCertify(user_loader=header_user)
    b = AliCertify(name="kyc", config_prefix="KYC_", user_loader=lambda: "kyc-user")
    a.init_app(app, gateway=cloud_gateway(cloud_a))
    b.init_app(app, gateway=cloud_gateway(cloud_b))
    assert set(app.extensions["alicertify"]) == {"alicertify", "kyc"}
    assert a.state(app).storage is not b.state(app).storage
    client = app.test_client()
    response = client.post(
        "/kyc/init",
        json={
            "serviceParameters": {
                "certNo": CERT_NO,
                "certName": CERT_NAME,
                "returnUrl": "https://kyc.example.com/",
            }
        },
    )
    assert response.status_code == 200
    cid = response.get_json()["certifyId"]
    assert len(cloud_b.calls_for("InitFaceVerify")) == 1 and cloud_a.calls == []
    assert b.state(app).storage.get_by_certify_id(cid) is not None
    assert a.state(app).storage.get_by_certify_id(cid) is None
    # The other instance does not know this certify id, and its own return hosts differ.
    assert (
        client.post("/alicertify/result", json={"certifyId": cid, "resultStatus": "9000"}).status_code == 401
    )
    assert (
        client.post(
            "/alicertify/result",
            json={"certifyId": cid, "resultStatus": "9000"},
            headers={"X-User": "kyc-user"},
        ).status_code
        == 404
    )
    assert client.post("/kyc/result", json={"certifyId": cid, "resultStatus": "9000"}).status_code == 200
    assert "alicertify" in app.cli.commands and "kyc" in app.cli.commands
    assert b.state(app).settings.scene_id == "2000000001"


def test_same_name_or_prefix_twice_is_refused() -> None:
    app = make_app(OTHER_SCENE_ID="1")
    AliCertify(app, user_loader=header_user)
    with pytest.raises(RuntimeError, match="already registered"):
        AliCertify(app, user_loader=header_user)
    with pytest.raises(errors.ConfigurationError) as info:
        AliCertify(app, name="other", config_prefix="OTHER_", user_loader=header_user)
    assert info.value.key == "OTHER_URL_PREFIX"


def test_one_extension_two_apps_in_one_process() -> None:
    ext = AliCertify(user_loader=header_user)
    apps, clouds = [], []
    for _ in range(2):
        app, cloud = make_app(), new_cloud()
        ext.init_app(app, gateway=cloud_gateway(cloud))
        apps.append(app)
        clouds.append(cloud)
    seen: list[tuple[Any, Record]] = []

    def receiver(sender: Any, record: Record, **extra: Any) -> None:
        seen.append((sender, record))

    signals.certify_passed.connect(receiver)
    try:
        for app, cloud in zip(apps, clouds, strict=True):
            cloud.script_next(Outcome.passes())
            client = app.test_client()
            cid = client.post("/alicertify/init", json=INIT_BODY, headers={"X-User": "u"}).get_json()[
                "certifyId"
            ]
            body = client.post(
                "/alicertify/result", json={"certifyId": cid, "resultStatus": "9000"}, headers={"X-User": "u"}
            ).get_json()
            assert body["status"] == "passed"
            assert ext.state(app).storage.get_by_certify_id(cid) is not None
    finally:
        signals.certify_passed.disconnect(receiver)
    assert [sender for sender, _ in seen] == apps
    assert ext.state(apps[0]).storage is not ext.state(apps[1]).storage
    for cloud in clouds:
        assert len(cloud.calls_for("InitFaceVerify")) == 1


def test_gateway_closed_when_app_is_collected() -> None:
    spies: list[SpyGateway] = []
    cloud = new_cloud()

    class Spying(AliCertify):
        def make_gateway(self, app: Flask, settings: Settings, *, sandbox: Any = None) -> Gateway:
            spy = SpyGateway(cloud_gateway(cloud))
            spies.append(spy)
            return spy

    app = make_app()
    Spying(app, user_loader=header_user)
    assert spies[0].closed == 0
    del app
    gc.collect()
    assert spies[0].closed == 1


def test_close_now_is_idempotent_and_injected_objects_stay_open() -> None:
    cloud = new_cloud()
    injected = SpyGateway(cloud_gateway(cloud))
    app = make_app(ALICERTIFY_ACCESS_KEY_ID=ACCESS_KEY_ID, ALICERTIFY_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET)
    ext = AliCertify(app, user_loader=header_user)
    second = AliCertify(name="injected", config_prefix="ALICERTIFY_", user_loader=header_user)
    app.config["ALICERTIFY_URL_PREFIX"] = "/second"
    second.init_app(app, gateway=injected)
    built = ext.state(app).gateway
    closed: list[int] = []
    original = built.close
    built.close = lambda: (closed.append(1), original())  # type: ignore[method-assign]
    ext.close(app)
    ext.close(app)
    assert closed == [1]
    second.close(app)
    assert injected.closed == 0


def test_default_storage_is_memory_when_testing() -> None:
    app = make_app()
    ext = AliCertify(app, user_loader=header_user)
    assert isinstance(ext.state(app).storage, MemoryStorage)
    ext.close(app)


def test_default_storage_is_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

    app = make_app(tmp_path, TESTING=False)
    app.testing = False
    cloud = new_cloud()
    ext = AliCertify(user_loader=header_user)
    ext.init_app(app, gateway=cloud_gateway(cloud))
    try:
        # Nothing on disk until the storage is first used.
        assert not (tmp_path / "instance").exists()
        response = app.test_client().post("/alicertify/init", json=INIT_BODY, headers={"X-User": "a"})
        assert response.status_code == 200
        assert (tmp_path / "instance" / "alicertify.sqlite3").is_file()
        assert isinstance(ext.state(app).storage.resolved, SQLAlchemyStorage)  # type: ignore[attr-defined]
    finally:
        ext.close(app)


def test_failed_init_app_leaves_no_instance_folder(tmp_path: Path) -> None:
    """A configuration error after the settings were read once left an empty instance/ behind."""
    app = make_app(tmp_path, TESTING=False, ALICERTIFY_ENDPOINTS=["ftp://nowhere"])
    app.testing = False
    with pytest.raises(errors.ConfigurationError):
        AliCertify(app, user_loader=header_user)

    class BrokenGateway(AliCertify):
        def make_gateway(self, app: Flask, settings: Settings, *, sandbox: Any = None) -> Gateway:
            raise errors.ConfigurationError(settings.key("ACCESS_KEY_ID"), "is not usable")

    no_credentials = make_app(tmp_path, TESTING=False)
    no_credentials.testing = False
    with pytest.raises(errors.ConfigurationError):
        # The gateway fails after the settings are read: once after the storage made the folder.
        BrokenGateway(no_credentials, user_loader=header_user)
    assert not (tmp_path / "instance").exists()
    assert "alicertify" not in no_credentials.blueprints


def test_storage_config_errors_name_the_key() -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        AliCertify(make_app(ALICERTIFY_STORAGE="nonsense"), user_loader=header_user)
    assert info.value.key == "ALICERTIFY_STORAGE"
    with pytest.raises(errors.ConfigurationError) as info:
        AliCertify(make_app(ALICERTIFY_STORAGE="redis"), user_loader=header_user)
    assert info.value.key == "ALICERTIFY_REDIS_URL"
    with pytest.raises(errors.ConfigurationError) as info:
        AliCertify(make_app(ALICERTIFY_SCENE_ID=None), user_loader=header_user)
    assert str(info.value) == "ALICERTIFY_SCENE_ID is required (the scene id from the Alibaba Cloud console)"


@pytest.mark.parametrize("spec", ["Redis", " REDIS ", "redis "])
def test_redis_in_any_case_without_a_url_names_the_url_key(spec: str) -> None:
    """Once an AttributeError ('NoneType' object has no attribute 'register_script') from init_app."""
    with pytest.raises(errors.ConfigurationError) as info:
        AliCertify(make_app(ALICERTIFY_STORAGE=spec), user_loader=header_user)
    assert info.value.key == "ALICERTIFY_REDIS_URL"
    assert "ALICERTIFY_STORAGE" in str(info.value)


@pytest.mark.parametrize("spec", ["SQLAlchemy", " sqlalchemy", "SQLALCHEMY"])
def test_sqlalchemy_in_any_case_uses_the_instance_folder(tmp_path: Path, spec: str) -> None:
    app = make_app(tmp_path, ALICERTIFY_STORAGE=spec)
    ext = AliCertify(app, user_loader=header_user)
    try:
        assert ext.state(app).settings.storage == "sqlalchemy"
        with app.app_context():
            assert ext.state(app).storage.get("0" * 32) is None
        assert (tmp_path / "instance" / "alicertify.sqlite3").is_file()
    finally:
        ext.close(app)


def test_settings_built_by_hand_still_need_their_url() -> None:
    """make_storage checks too, for Settings that did not come from from_mapping."""
    app = make_app()
    for spec, key in (("Redis", "KYC_REDIS_URL"), ("SQLAlchemy", "KYC_DATABASE_URL")):
        settings = Settings(prefix="KYC_", storage=spec)
        with pytest.raises(errors.ConfigurationError) as info:
            AliCertify(user_loader=header_user).make_storage(app, settings)
        assert info.value.key == key


def test_storage_instance_in_config() -> None:
    storage = MemoryStorage()
    app = make_app(ALICERTIFY_STORAGE=storage)
    ext = AliCertify(app, user_loader=header_user)
    assert ext.state(app).storage is storage


def test_identity_loader_must_return_a_pair() -> None:
    cloud = new_cloud()
    app = make_app()
    ext = AliCertify(user_loader=header_user, identity_loader=lambda user: "not a pair")
    ext.init_app(app, gateway=cloud_gateway(cloud))
    app.testing = False  # let the app turn the loader bug into a 500 rather than re-raising
    response = app.test_client().post("/alicertify/init", json=INIT_BODY, headers={"X-User": "a"})
    assert response.status_code == 500
    # Under the prefix even a bug answers in the JSON error shape.
    assert response.get_json() == {"error": {"code": "internal_server_error", "message": "服务器内部错误"}}
    assert cloud.calls == []


def test_gateway_built_from_config_over_real_loopback_http() -> None:
    cloud = FakeCloud(access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET)
    with cloud.serve() as base_url:
        app = make_app(
            ALICERTIFY_ACCESS_KEY_ID=ACCESS_KEY_ID,
            ALICERTIFY_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
            ALICERTIFY_ENDPOINTS=base_url,
        )
        ext = AliCertify(app, user_loader=header_user)
        try:
            cloud.script_next(Outcome.fails("204"))
            client = app.test_client()
            cid = client.post("/alicertify/init", json=INIT_BODY, headers={"X-User": "a"}).get_json()[
                "certifyId"
            ]
            body = client.post(
                "/alicertify/result", json={"certifyId": cid, "resultStatus": "9000"}, headers={"X-User": "a"}
            ).get_json()
            assert (body["status"], body["subCode"]) == ("failed", "204")
        finally:
            ext.close(app)


def test_sandbox_mode_serves_from_the_in_process_fake() -> None:
    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="k", ALICERTIFY_SANDBOX=True)
    ext = AliCertify(app, user_loader=lambda: "demo")
    state = ext.state(app)
    assert isinstance(state.sandbox, FakeCloud)
    client = app.test_client()
    cid = client.post("/alicertify/init", json=INIT_BODY).get_json()["certifyId"]
    state.sandbox.complete(cid, passed=True)
    body = client.post("/alicertify/result", json={"certifyId": cid, "resultStatus": "9000"}).get_json()
    assert body["status"] == "passed"
    assert state.storage.get_by_certify_id(cid).status == Status.PASSED  # type: ignore[union-attr]
    ext.close(app)


def test_public_exports() -> None:
    import flask_alicertify

    for name in ("AliCertify", "Record", "Status", "ClientStatus", "errors", "signals", "storages"):
        assert hasattr(flask_alicertify, name)
    assert flask_alicertify.storages.MemoryStorage is MemoryStorage
    assert issubclass(errors.NotFound, errors.ServiceError)


def test_framework_free_layers_import_without_flask() -> None:
    import subprocess
    import sys

    code = (
        "import sys, flask_alicertify.service, flask_alicertify.settings, flask_alicertify.schemas, "
        "flask_alicertify.signals, flask_alicertify.errors, flask_alicertify.storage; "
        "print('flask' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _built_config(monkeypatch: pytest.MonkeyPatch, app: Flask) -> Any:
    """The GatewayConfig init_app builds for ``app`` (captured at cloud.gateways.make_gateway)."""
    import flask_alicertify.cloud.gateways as gateways

    captured: list[Any] = []
    real = gateways.make_gateway

    def capture(api: str, config: Any, transport: Any = None) -> Gateway:
        captured.append(config)
        return real(api, config, transport=transport)

    monkeypatch.setattr(gateways, "make_gateway", capture)
    ext = AliCertify(app, user_loader=header_user)
    ext.close(app)
    [config] = captured
    return config


def test_make_gateway_passes_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    key = SM2_PUBLIC_KEY
    app = make_app(
        ALICERTIFY_ACCESS_KEY_ID=ACCESS_KEY_ID,
        ALICERTIFY_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
        ALICERTIFY_ENCRYPT_TYPE="SM2",
        ALICERTIFY_SM2_PUBLIC_KEY=key,
        ALICERTIFY_UPSTREAM_QPS=20,
        ALICERTIFY_UPSTREAM_WAIT=0.5,
        ALICERTIFY_RATE_LIMIT_URL="redis://127.0.0.1:6379/9",
        ALICERTIFY_CONNECT_TIMEOUT=1,
        ALICERTIFY_READ_TIMEOUT=3,
        ALICERTIFY_PRODUCT_CODE="ID_PLUS",
    )
    config = _built_config(monkeypatch, app)
    assert (config.encrypt_type, config.sm2_public_key) == ("SM2", key)
    assert (config.upstream_qps, config.upstream_wait) == (20.0, 0.5)
    assert config.rate_limit_url == "redis://127.0.0.1:6379/9"
    assert (config.connect_timeout, config.read_timeout, config.product_code) == (1.0, 3.0, "ID_PLUS")
    assert config.scene_id == "1000000006"


def test_the_quota_guard_shares_the_redis_storage_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(
        ALICERTIFY_ACCESS_KEY_ID=ACCESS_KEY_ID,
        ALICERTIFY_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
        ALICERTIFY_STORAGE=MemoryStorage(),
    )
    assert _built_config(monkeypatch, app).rate_limit_url is None
    monkeypatch.undo()
    app = make_app(
        ALICERTIFY_ACCESS_KEY_ID=ACCESS_KEY_ID,
        ALICERTIFY_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
        ALICERTIFY_STORAGE="redis",
        ALICERTIFY_REDIS_URL="redis://127.0.0.1:6379/5",
    )
    assert _built_config(monkeypatch, app).rate_limit_url == "redis://127.0.0.1:6379/5"


def test_sandbox_gateway_uses_the_sandboxs_keys_scene_and_sm2_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_alicertify.sandbox.plugin import SANDBOX_ACCESS_KEY_ID
    from flask_alicertify.sandbox.plugin import SANDBOX_SCENE_ID

    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="k", ALICERTIFY_SANDBOX=True, ALICERTIFY_ENCRYPT_TYPE="SM2")
    config = _built_config(monkeypatch, app)
    assert config.scene_id == SANDBOX_SCENE_ID
    assert config.credentials.get().access_key_id == SANDBOX_ACCESS_KEY_ID
    assert config.encrypt_type == "SM2"
    assert config.sm2_public_key != "02cd77e007bdc86eeaf9a479ba7a2c22bc0a517ccb3a6975c3f94b4ac93347dea6"
