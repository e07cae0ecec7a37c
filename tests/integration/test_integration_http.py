"""The HTTP surface inside a real app: JSON errors under the prefixes, the app's own pages untouched,
authentication before validation, localised field messages, the guide's returnUrl, and a
receiver that raises.
"""

from __future__ import annotations

import logging
import re

import pytest
from support.integration import error_code
from support.integration import guide_body
from support.integration import signed_in

from flask_alicertify import certify_passed
from pytest_alicertify import CASES
from pytest_alicertify import run_flow

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/alicertify/init", 405, "method_not_allowed"),
        ("PUT", "/alicertify/result", 405, "method_not_allowed"),
        ("POST", "/alicertify/callback", 405, "method_not_allowed"),
        ("POST", "/alicertify/status", 405, "method_not_allowed"),
        ("GET", "/alicertify/nothing-here", 404, "not_found"),
        ("GET", "/alicertify/result/abc/def", 404, "not_found"),
        ("GET", "/kyc/init", 405, "method_not_allowed"),
        ("DELETE", "/kyc/result", 405, "method_not_allowed"),
        ("GET", "/kyc/nothing-here", 404, "not_found"),
    ],
)
def test_every_answer_under_a_prefix_is_json(app, method, path, status, code, alicertify_cloud):
    response = app.test_client().open(path, method=method)

    assert response.status_code == status
    assert response.mimetype == "application/json", response.data[:200]
    assert error_code(response) == code
    assert response.get_json()["error"]["message"]
    if status == 405:
        assert "Allow" in response.headers


@pytest.mark.parametrize("path", ["/nothing-here", "/alicertifyx", "/kycx/init", "/alicertify-admin"])
def test_the_apps_own_404_page_is_untouched(app, path, alicertify_cloud):
    response = app.test_client().get(path)

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert response.get_data(as_text=True) == "<h1>Nothing here</h1>"


def test_the_apps_own_routes_are_untouched(app, alicertify_cloud):
    client = app.test_client()
    assert client.get("/").get_data(as_text=True) == "Welcome"
    wrong_method = client.post("/")
    assert wrong_method.status_code == 405 and wrong_method.mimetype == "text/html"


@pytest.mark.parametrize("prefix", ["/alicertify", "/kyc"])
@pytest.mark.parametrize(
    "body",
    [
        {"json": {}},
        {"json": {"serviceParameters": 5}},
        {"json": guide_body(cert_no="not-a-number")},
        {"data": "{not json", "content_type": "application/json"},
    ],
    ids=["empty", "wrong-type", "bad-id-number", "malformed-json"],
)
def test_an_anonymous_caller_is_401_whatever_the_body(app, prefix, body, alicertify_cloud):
    response = app.test_client().post(f"{prefix}/init", **body)

    assert response.status_code == 401 and error_code(response) == "unauthenticated"
    assert alicertify_cloud.init_calls == []


def _field_messages(response) -> list[str]:
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    assert response.status_code == 400 and error_code(response) == "invalid_input", response.get_json()
    walk(response.get_json()["error"].get("fields"))
    assert found, response.get_json()
    return found


@pytest.mark.parametrize(
    "body", [{}, {"serviceParameters": {}}, {"serviceParameters": {"certNo": 5, "certName": ["x"]}}]
)
def test_field_messages_follow_the_language(make_app, body, alicertify_cloud):
    app = make_app()
    client = signed_in(app, 42)

    chinese = _field_messages(client.post("/alicertify/init", json=body))
    assert all(CJK.search(m) for m in chinese), chinese
    assert "Missing data for required field." not in chinese

    english = _field_messages(client.post("/alicertify/init", json=body, headers={"Accept-Language": "en"}))
    assert all(m.isascii() and not CJK.search(m) for m in english), english
    assert len(english) == len(chinese)


def test_the_language_setting_makes_english_the_default(make_app, alicertify_cloud):
    app = make_app(FLASK_ALICERTIFY_LANGUAGE="en")
    client = signed_in(app, 42)

    english = _field_messages(client.post("/alicertify/init", json={"serviceParameters": {}}))
    assert all(m.isascii() for m in english), english
    chinese = _field_messages(
        client.post("/alicertify/init", json={"serviceParameters": {}}, headers={"Accept-Language": "zh-CN"})
    )
    assert all(CJK.search(m) for m in chinese), chinese


def test_the_guides_return_url_is_accepted_and_not_forwarded(app, alicertify_cloud):
    response = signed_in(app, 42).post(
        "/alicertify/init", json=guide_body(returnUrl="https://www.aliyun.com")
    )

    assert response.status_code == 200, response.get_json()
    assert alicertify_cloud.last_init.return_url is None


@pytest.mark.parametrize(
    ("hosts", "forwarded"), [('["www.aliyun.com"]', "https://www.aliyun.com"), ('["example.com"]', None)]
)
def test_with_allowed_hosts_the_no_open_redirect_rule_applies(make_app, hosts, forwarded, alicertify_cloud):
    app = make_app(FLASK_ALICERTIFY_RETURN_URL_HOSTS=hosts)
    response = signed_in(app, 42).post(
        "/alicertify/init", json=guide_body(returnUrl="https://www.aliyun.com")
    )

    if forwarded:
        assert response.status_code == 200, response.get_json()
        assert alicertify_cloud.last_init.return_url == forwarded
    else:
        assert response.status_code == 400 and error_code(response) == "invalid_return_url"
        assert alicertify_cloud.init_calls == []


def test_a_raising_receiver_never_turns_the_verdict_into_a_500(app, alicertify_cloud, caplog):
    def broken_receiver(sender, **kwargs):
        raise RuntimeError("the app's receiver is broken")

    caplog.set_level(logging.ERROR)
    client = signed_in(app, 42)
    with certify_passed.connected_to(broken_receiver, app):
        flow = run_flow(client, CASES[0], alicertify_cloud)

    assert flow.result_response.status_code == 200
    assert flow.body["status"] == "passed"
    assert client.get(f"/alicertify/result/{flow.certify_id}").get_json()["status"] == "passed"
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("flask_alicertify")]
    assert any("broken_receiver" in m and "RuntimeError" in m for m in logged), logged
