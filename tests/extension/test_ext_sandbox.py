"""Sandbox mode: the flow served from the in-process fake cloud, and its certify page."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask

from flask_alicertify import AliCertify
from flask_alicertify.errors import ConfigurationError

CERT = {"certNo": "11010519491231002X", "certName": "张三"}


def make_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True, SECRET_KEY="sandbox-tests", ALICERTIFY_ALLOW_ANONYMOUS=True, ALICERTIFY_SANDBOX=True
    )
    app.config.update(config)
    AliCertify(app)
    return app


def start(client: Any) -> tuple[str, str]:
    r = client.post("/alicertify/init", json={"serviceParameters": CERT})
    assert r.status_code == 200, r.get_json()
    data = r.get_json()
    return data["certifyId"], data["certifyUrl"]


def test_certify_url_points_at_the_sandbox_page_on_this_host() -> None:
    client = make_app().test_client()
    certify_id, url = start(client)
    assert url == f"http://localhost/alicertify/sandbox/certify/{certify_id}"
    page = client.get(url)
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert certify_id in text
    assert "张*" in text and "1****************X" in text
    assert CERT["certNo"] not in text and "张三" not in text


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
    certify_id, _ = start(client)
    verify_result = client.post(f"/alicertify/sandbox/certify/{certify_id}", json=body).get_json()
    assert verify_result["resultStatus"] == result_status
    answer = client.post("/alicertify/result", json={"certifyId": certify_id, **verify_result}).get_json()
    assert (answer["status"], answer["passed"]) == (status, passed)


def test_a_forged_pass_in_sandbox_is_still_confirmed_server_side() -> None:
    client = make_app().test_client()
    certify_id, _ = start(client)
    client.post(f"/alicertify/sandbox/certify/{certify_id}", json={"outcome": "fail", "subCode": "204"})
    forged = {"certifyId": certify_id, "resultStatus": "9000", "result": {"certifyId": certify_id}}
    answer = client.post("/alicertify/result", json=forged).get_json()
    assert answer["status"] == "failed" and answer["passed"] is False


def test_bad_outcome_body_is_a_field_error() -> None:
    client = make_app().test_client()
    certify_id, _ = start(client)
    r = client.post(f"/alicertify/sandbox/certify/{certify_id}", json={"outcome": "teleport"})
    assert r.status_code == 400
    assert "outcome" in r.get_json()["error"]["fields"]


def test_a_decided_session_cannot_be_decided_again() -> None:
    client = make_app().test_client()
    certify_id, _ = start(client)
    url = f"/alicertify/sandbox/certify/{certify_id}"
    assert client.post(url, json={"outcome": "pass"}).status_code == 200
    client.post("/alicertify/result", json={"certifyId": certify_id, "resultStatus": "9000", "result": None})
    again = client.post(url, json={"outcome": "fail", "subCode": "205"})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "sandbox_session_closed"


def test_an_expired_session_is_410_with_its_own_code() -> None:
    app = make_app()
    client = app.test_client()
    certify_id, _ = start(client)
    cloud = app.extensions["alicertify"]["alicertify"].sandbox_cloud
    now = cloud.clock()
    cloud.clock = lambda: now + 31 * 60
    r = client.post(f"/alicertify/sandbox/certify/{certify_id}", json={"outcome": "pass"})
    assert r.status_code == 410
    assert r.get_json()["error"]["code"] == "sandbox_session_expired"
    assert r.headers["Cache-Control"] == "no-store"


def test_sandbox_errors_are_json_in_the_chosen_language() -> None:
    client = make_app(ALICERTIFY_LANGUAGE="en").test_client()
    certify_id, _ = start(client)
    r = client.post(f"/alicertify/sandbox/certify/{certify_id}", data="x", content_type="text/plain")
    assert r.status_code == 415
    assert r.get_json()["error"] == {
        "code": "unsupported_media_type",
        "message": "Send the body as application/json.",
    }


def test_unknown_session_is_404() -> None:
    client = make_app().test_client()
    assert client.get("/alicertify/sandbox/certify/" + "0" * 32).status_code == 404
    assert client.post("/alicertify/sandbox/certify/" + "0" * 32, json={"outcome": "pass"}).status_code == 404


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


def test_sandbox_refuses_real_credentials() -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(ALICERTIFY_ACCESS_KEY_ID="LTAI5tRealKey", ALICERTIFY_ACCESS_KEY_SECRET="real")
    assert "SANDBOX" in str(info.value)


def test_sandbox_logs_a_warning_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_alicertify"):
        make_app()
    assert any("SANDBOX mode" in r.getMessage() for r in caplog.records)
