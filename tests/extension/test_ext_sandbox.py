"""Sandbox mode through ``AliCertify``: both forms, the certify link's secret, and the guard.

``ALICERTIFY_SANDBOX = True`` serves the flow from an in-process fake; a URL points every gateway
call at the shared sandbox server (served in-thread here, by ``support.clients``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from flask import Flask
from support.clients import SharedServer
from support.clients import serve_shared_sandbox

from flask_alicertify import AliCertify
from flask_alicertify import signals
from flask_alicertify.cloud import sm2
from flask_alicertify.errors import CATALOGUE
from flask_alicertify.errors import ConfigurationError
from flask_alicertify.records import Record
from flask_alicertify.sandbox.encryption import SANDBOX_SM2_PRIVATE_KEY
from flask_alicertify.sandbox.encryption import SANDBOX_SM2_PUBLIC_KEY
from flask_alicertify.sandbox.guard import CREDENTIAL_VARIABLES
from flask_alicertify.sandbox.links import token_of

CERT = {"certNo": "11010519491231002X", "certName": "张三"}


@pytest.fixture(autouse=True)
def no_real_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A home without credential files and an environment without credentials, for every test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for variable in (*CREDENTIAL_VARIABLES, "ALIBABA_CLOUD_CREDENTIALS_FILE"):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture(scope="module")
def shared() -> Iterator[SharedServer]:
    with serve_shared_sandbox() as server:
        yield server


def make_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True, SECRET_KEY="sandbox-tests", ALICERTIFY_ALLOW_ANONYMOUS=True, ALICERTIFY_SANDBOX=True
    )
    app.config.update(config)
    AliCertify(app)
    return app


def start(client: Any, **environ: Any) -> tuple[str, str]:
    r = client.post("/alicertify/init", json={"serviceParameters": CERT}, environ_overrides=environ)
    assert r.status_code == 200, r.get_json()
    data = r.get_json()
    return data["certifyId"], data["certifyUrl"]


def cloud_of(app: Flask) -> Any:
    return app.extensions["alicertify"]["alicertify"].sandbox_cloud


# -- in-process: the certify URL and its secret -------------------------------------------------


def test_certify_url_is_the_sandbox_page_on_this_loopback_host_with_the_sessions_secret() -> None:
    app = make_app()
    client = app.test_client()
    certify_id, url = start(client)
    token = cloud_of(app).links.secret(certify_id)
    assert url == f"http://localhost/alicertify/sandbox/certify/{certify_id}?token={token}"
    page = client.get(url)
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert certify_id in text
    assert "张*" in text and "1****************X" in text
    assert CERT["certNo"] not in text and "张三" not in text


def test_the_certify_id_alone_opens_nothing_and_changes_nothing() -> None:
    app = make_app()
    client = app.test_client()
    certify_id, url = start(client)
    other_id, other_url = start(client)
    bare = f"/alicertify/sandbox/certify/{certify_id}"
    for attempt in (bare, bare + "?token=", f"{bare}?token={token_of(other_url)}"):
        assert client.get(attempt).status_code == 404
        r = client.post(attempt, json={"outcome": "pass"})
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    assert not cloud_of(app).sessions[certify_id].finished
    answer = client.post(
        "/alicertify/result", json={"certifyId": certify_id, "resultStatus": "9000", "result": None}
    )
    assert answer.get_json()["status"] != "passed"
    assert client.post(url, json={"outcome": "pass"}).status_code == 200


def test_server_name_gives_the_absolute_url_and_a_forged_host_never_does() -> None:
    app = make_app(SERVER_NAME="kyc.example.com", PREFERRED_URL_SCHEME="https")
    certify_id, url = start(app.test_client(), HTTP_HOST="evil.example")
    assert urlsplit(url)[:3] == ("https", "kyc.example.com", f"/alicertify/sandbox/certify/{certify_id}")
    assert token_of(url) == cloud_of(app).links.secret(certify_id)


@pytest.mark.parametrize("host", ["evil.example", "10.0.0.7:5000", "kyc.example.com"])
def test_without_server_name_a_non_loopback_host_gets_a_root_relative_url(host: str) -> None:
    app = make_app()
    certify_id, url = start(app.test_client(), HTTP_HOST=host)
    assert url.startswith(f"/alicertify/sandbox/certify/{certify_id}?token=")
    assert "evil" not in url and "10.0.0.7" not in url


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "localhost:8000", "[::1]:5000"])
def test_a_loopback_host_gets_an_absolute_url(host: str) -> None:
    app = make_app()
    certify_id, url = start(app.test_client(), HTTP_HOST=host)
    assert url.startswith(f"http://{host}/alicertify/sandbox/certify/{certify_id}?token=")


def test_trusted_hosts_vouch_for_the_request_host() -> None:
    app = make_app(TRUSTED_HOSTS=["kyc.example.com"])
    client = app.test_client()
    _, url = start(client, HTTP_HOST="kyc.example.com")
    assert url.startswith("http://kyc.example.com/alicertify/sandbox/certify/")
    forged = client.post(
        "/alicertify/init", json={"serviceParameters": CERT}, headers={"Host": "evil.example"}
    )
    assert forged.status_code == 400


# -- in-process: outcomes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "result_status", "status", "passed"),
    [
        ({"outcome": "pass"}, "9000", "passed", True),
        ({"outcome": "fail", "subCode": "201"}, "4000", "failed", False),
        ({"outcome": "cancel"}, "6001", "abandoned", False),
        ({"outcome": "network_error"}, "6002", "abandoned", False),
        ({"outcome": "business_error", "errorCode": "SYSTEM_ERROR"}, "4000", "abandoned", False),
    ],
)
def test_each_outcome_reaches_the_server_verdict(
    body: dict[str, Any], result_status: str, status: str, passed: bool
) -> None:
    client = make_app().test_client()
    certify_id, url = start(client)
    verify_result = client.post(url, json=body).get_json()
    assert verify_result["resultStatus"] == result_status
    answer = client.post("/alicertify/result", json={"certifyId": certify_id, **verify_result}).get_json()
    assert (answer["status"], answer["passed"]) == (status, passed)


def test_a_forged_pass_in_sandbox_is_still_confirmed_server_side() -> None:
    client = make_app().test_client()
    certify_id, url = start(client)
    client.post(url, json={"outcome": "fail", "subCode": "204"})
    forged = {"certifyId": certify_id, "resultStatus": "9000", "result": {"certifyId": certify_id}}
    answer = client.post("/alicertify/result", json=forged).get_json()
    assert answer["status"] == "failed" and answer["passed"] is False


def test_bad_outcome_body_is_a_field_error() -> None:
    client = make_app().test_client()
    _, url = start(client)
    r = client.post(url, json={"outcome": "teleport"})
    assert r.status_code == 400
    assert "outcome" in r.get_json()["error"]["fields"]


def test_a_decided_session_cannot_be_decided_again() -> None:
    client = make_app().test_client()
    certify_id, url = start(client)
    assert client.post(url, json={"outcome": "pass"}).status_code == 200
    client.post("/alicertify/result", json={"certifyId": certify_id, "resultStatus": "9000", "result": None})
    again = client.post(url, json={"outcome": "fail", "subCode": "205"})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "sandbox_session_closed"


def test_an_expired_session_is_410_with_its_own_code() -> None:
    app = make_app()
    client = app.test_client()
    _, url = start(client)
    cloud = cloud_of(app)
    now = cloud.clock()
    cloud.clock = lambda: now + 31 * 60
    r = client.post(url, json={"outcome": "pass"})
    assert r.status_code == 410
    assert r.get_json()["error"]["code"] == "sandbox_session_expired"
    assert r.headers["Cache-Control"] == "no-store"


def test_sandbox_errors_are_json_in_the_chosen_language() -> None:
    client = make_app(ALICERTIFY_LANGUAGE="en").test_client()
    _, url = start(client)
    r = client.post(url, data="x", content_type="text/plain")
    assert r.status_code == 415
    assert r.get_json()["error"] == {
        "code": "unsupported_media_type",
        "message": "Send the body as application/json.",
    }


def test_records_are_marked_and_receivers_see_it() -> None:
    app = make_app()
    seen: list[Record] = []

    def on_initiated(sender: Flask, record: Record, **extra: Any) -> None:
        seen.append(record)

    signals.certify_initiated.connect(on_initiated, sender=app)
    certify_id, _ = start(app.test_client())
    stored = app.extensions["alicertify"]["alicertify"].storage.get_by_certify_id(certify_id)
    assert stored is not None and stored.sandbox is True
    assert [r.sandbox for r in seen] == [True]


def test_sm2_in_sandbox_encrypts_to_the_fakes_key() -> None:
    app = make_app(ALICERTIFY_ENCRYPT_TYPE="SM2")
    certify_id, _ = start(app.test_client())
    cloud = cloud_of(app)
    session = cloud.sessions[certify_id]
    assert (session.cert_no, session.cert_name, session.encrypt_type) == (CERT["certNo"], "张三", "SM2")
    sent = cloud.calls_for("InitFaceVerify")[-1].params
    assert sent["EncryptType"] == "SM2" and sent["CertNo"] != CERT["certNo"]
    assert cloud.sm2_public_key == SANDBOX_SM2_PUBLIC_KEY
    assert sm2.decrypt(SANDBOX_SM2_PRIVATE_KEY, sent["CertNo"]) == CERT["certNo"]


# -- in-process: one process only -----------------------------------------------------------------


def test_a_multi_process_server_gets_a_clear_json_error_and_nothing_happens() -> None:
    app = make_app()
    client = app.test_client()
    multi = {"wsgi.multiprocess": True}
    for method, path, body in (
        ("POST", "/alicertify/init", {"serviceParameters": CERT}),
        ("POST", "/alicertify/result", {"certifyId": "0" * 32, "resultStatus": "9000", "result": None}),
        ("GET", "/alicertify/status", None),
    ):
        r = client.open(path, method=method, json=body, environ_overrides=multi)
        assert r.status_code == 503, path
        error = r.get_json()["error"]
        assert error["code"] == "sandbox_needs_shared_server"
        assert error["message"] == CATALOGUE["sandbox_needs_shared_server"].message_zh
    en = client.post(
        "/alicertify/init",
        json={"serviceParameters": CERT},
        environ_overrides=multi,
        headers={"Accept-Language": "en"},
    )
    assert "python -m flask_alicertify.sandbox" in en.get_json()["error"]["message"]
    assert cloud_of(app).calls == []
    start(client)  # one process: served


# -- the shared server (a URL) --------------------------------------------------------------------


def test_a_url_points_every_call_at_the_shared_server(shared: SharedServer) -> None:
    app = make_app(ALICERTIFY_SANDBOX=shared.url)
    assert cloud_of(app) is None
    assert not any("sandbox" in rule.rule for rule in app.url_map.iter_rules())
    client = app.test_client()
    # Several worker processes share the server: no refusal.
    certify_id, url = start(client, **{"wsgi.multiprocess": True})
    assert url.startswith(f"{shared.url}/sandbox/certify/{certify_id}?token=")
    assert shared.cloud.sessions[certify_id].cert_no == CERT["certNo"]
    with httpx.Client() as http:
        assert http.get(url).status_code == 200
        verify_result = http.post(url, json={"outcome": "fail", "subCode": "205"}).json()
    answer = client.post("/alicertify/result", json={"certifyId": certify_id, **verify_result}).get_json()
    assert (answer["status"], answer["subCode"]) == ("failed", "205")
    stored = app.extensions["alicertify"]["alicertify"].storage.get_by_certify_id(certify_id)
    assert stored is not None and stored.sandbox is True


def test_the_cli_of_another_process_works_against_the_shared_server(
    shared: SharedServer, tmp_path: Path
) -> None:
    config = {
        "ALICERTIFY_SANDBOX": shared.url,
        "ALICERTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'records.sqlite3'}",
        "ALICERTIFY_STORAGE": "sqlalchemy",
    }
    web, cli_app = make_app(**config), make_app(**config)
    storage = web.extensions["alicertify"]["alicertify"].storage
    if hasattr(storage, "create_all"):
        storage.create_all()
    certify_id, _ = start(web.test_client())
    shared.control("POST", f"/_sandbox/sessions/{certify_id}/outcome", {"outcome": "pass"})
    result = cli_app.test_cli_runner().invoke(args=["alicertify", "describe", certify_id])
    assert result.exit_code == 0, result.output
    rows = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in result.output.splitlines()[2:])
    assert (rows["finished"], rows["passed"], rows["sub code"]) == ("yes", "yes", "200")
    assert rows["sandbox"].startswith("yes")  # the CLI says the record is a sandbox one

    # reconcile, from that other process too, settles what the web process never heard back about
    walked_away, _ = start(web.test_client())
    shared.control("POST", f"/_sandbox/sessions/{walked_away}/outcome", {"outcome": "fail", "subCode": "203"})
    result = cli_app.test_cli_runner().invoke(args=["alicertify", "reconcile", "--older-than", "0s"])
    assert result.exit_code == 0, result.output
    record = web.extensions["alicertify"]["alicertify"].storage.get_by_certify_id(walked_away)
    assert record is not None and (record.status.value, record.sub_code) == ("failed", "203")


def test_a_url_with_a_path_is_refused(shared: SharedServer) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(ALICERTIFY_SANDBOX=shared.url + "/api")
    assert info.value.key == "ALICERTIFY_SANDBOX"


# -- the guard --------------------------------------------------------------------------------


SANDBOX_FORMS = [True, "http://127.0.0.1:8900"]


@pytest.mark.parametrize("sandbox", SANDBOX_FORMS)
@pytest.mark.parametrize(
    "config",
    [
        {"ALICERTIFY_ACCESS_KEY_ID": "LTAI5tRealKey", "ALICERTIFY_ACCESS_KEY_SECRET": "s3cr3t-value"},
        {"ALICERTIFY_SECURITY_TOKEN": "sts-token"},
        {"ALICERTIFY_SCENE_ID": "1000000006"},
    ],
    ids=["access-key", "sts-token", "scene-id"],
)
def test_the_guard_refuses_the_instances_own_settings(sandbox: Any, config: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(ALICERTIFY_SANDBOX=sandbox, **config)
    assert info.value.key == "ALICERTIFY_SANDBOX"
    named = next(iter(config))
    assert named in str(info.value)
    assert all(value not in str(info.value) for value in config.values() if value != "1000000006")


@pytest.mark.parametrize("sandbox", SANDBOX_FORMS)
@pytest.mark.parametrize("variable", CREDENTIAL_VARIABLES)
def test_the_guard_refuses_each_credentials_variable(
    monkeypatch: pytest.MonkeyPatch, sandbox: Any, variable: str
) -> None:
    monkeypatch.setenv(variable, "LTAI5tFromTheEnvironment")
    with pytest.raises(ConfigurationError) as info:
        make_app(ALICERTIFY_SANDBOX=sandbox)
    assert info.value.key == "ALICERTIFY_SANDBOX"
    assert variable in str(info.value) and "LTAI5tFromTheEnvironment" not in str(info.value)


@pytest.mark.parametrize("sandbox", SANDBOX_FORMS)
@pytest.mark.parametrize(
    "relative", [".alibabacloud/credentials.ini", ".alibabacloud/credentials", ".aliyun/config.json"]
)
def test_the_guard_refuses_the_chains_profile_files(
    no_real_credentials: Path, sandbox: Any, relative: str
) -> None:
    path = no_real_credentials / relative
    path.parent.mkdir(parents=True)
    path.write_text("[default]\ntype = access_key\naccess_key_id = LTAI5tX\naccess_key_secret = s\n")
    with pytest.raises(ConfigurationError) as info:
        make_app(ALICERTIFY_SANDBOX=sandbox)
    assert str(path) in str(info.value)


def test_the_guard_refuses_the_credentials_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "elsewhere.ini"
    path.write_text("[default]\n")
    monkeypatch.setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", str(path))
    with pytest.raises(ConfigurationError) as info:
        make_app()
    assert "ALIBABA_CLOUD_CREDENTIALS_FILE" in str(info.value)


def test_the_guard_leaves_no_instance_folder_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tX")
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k", ALICERTIFY_SANDBOX=True, ALICERTIFY_ALLOW_ANONYMOUS=True)
    with pytest.raises(ConfigurationError):
        AliCertify(app)
    assert not (tmp_path / "instance").exists()
    assert "alicertify" not in app.blueprints


def test_sandbox_routes_do_not_exist_outside_sandbox_mode() -> None:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="x",
        ALICERTIFY_ALLOW_ANONYMOUS=True,
        ALICERTIFY_SCENE_ID="1000000006",
        ALICERTIFY_ACCESS_KEY_ID="LTAI5tSomeKeyId",
        ALICERTIFY_ACCESS_KEY_SECRET="secret",
    )
    AliCertify(app)
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert not any("sandbox" in rule for rule in rules)
    assert app.test_client().get("/alicertify/sandbox/certify/" + "0" * 32).status_code == 404


def test_sandbox_logs_a_warning_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_alicertify"):
        make_app()
    assert any("SANDBOX mode" in r.getMessage() for r in caplog.records)
