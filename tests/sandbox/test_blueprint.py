"""The sandbox blueprint on its own: routes, errors, headers, and its part of the OpenAPI document.

The app here registers only the sandbox blueprint, with a dict for storage, so these tests pin
the blueprint's behaviour whatever the extension around it does; tests/extension/
test_ext_sandbox.py runs the same routes through ``AliCertify``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from datetime import timezone
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from flask import Flask
from flask import url_for
from openapi_spec_validator import validate

from flask_alicertify.errors import CATALOGUE
from flask_alicertify.records import Record
from flask_alicertify.records import Status
from flask_alicertify.sandbox import FakeCloud
from flask_alicertify.sandbox import sign_request
from flask_alicertify.sandbox.blueprint import make_sandbox_blueprint
from flask_alicertify.sandbox.blueprint import openapi_paths
from flask_alicertify.state import EXTENSION_KEY

NAME = "alicertify"
PREFIX = "/alicertify"
CERT_NO = "11010519491231002X"


class Sandbox:
    """A Flask app serving only the sandbox blueprint, and the fake cloud behind it."""

    def __init__(self, *, max_body_size: int = 8192, clock: Any = None) -> None:
        self.now = [1_700_000_000.0]
        self.cloud = FakeCloud(https_callbacks_only=False, clock=clock or (lambda: self.now[0]))
        self.records: dict[str, Record] = {}
        self.app = Flask(__name__)
        self.app.config.update(TESTING=True, SERVER_NAME="sandbox.test")
        # What the blueprint reads from the instance's state: only the body cap.
        settings = SimpleNamespace(max_body_size=max_body_size)
        self.app.extensions[EXTENSION_KEY] = {NAME: SimpleNamespace(settings=settings)}
        self.app.register_blueprint(
            make_sandbox_blueprint(
                NAME,
                PREFIX,
                cloud=self.cloud,
                find_record=self.records.get,
                result_url=lambda: "/alicertify/result",
                language="zh",
            )
        )
        self.client = self.app.test_client()

    def start(self, *, record: bool = True) -> str:
        """An init on the fake (and, unless told otherwise, the record the extension would store)."""
        request = sign_request(
            "InitFaceVerify",
            access_key_id=self.cloud.access_key_id,
            access_key_secret=self.cloud.access_key_secret,
            query={
                "SceneId": "1000000006",
                "OuterOrderNo": f"order{len(self.cloud.sessions)}",
                "ProductCode": "ID_PRO",
                "CertType": "IDENTITY_CARD",
                "CertName": "张三",
                "CertNo": CERT_NO,
            },
        )
        with httpx.Client(transport=self.cloud.transport()) as client:
            certify_id: str = client.send(request).json()["ResultObject"]["CertifyId"]
        if record:
            now = datetime.now(timezone.utc)
            self.records[certify_id] = Record(
                id="0" * 32,
                status=Status.PENDING,
                created_at=now,
                updated_at=now,
                certify_id=certify_id,
                cert_no_masked="1****************X",
                cert_name_masked="张*",
            )
        return certify_id

    def url(self, certify_id: str) -> str:
        """The page's path with the session's secret, as the certifyUrl carries it."""
        return f"{url(certify_id)}?token={self.cloud.links.secret(certify_id)}"

    def describe(self, certify_id: str) -> dict[str, Any]:
        request = sign_request(
            "DescribeFaceVerify",
            access_key_id=self.cloud.access_key_id,
            access_key_secret=self.cloud.access_key_secret,
            query={"SceneId": "1000000006", "CertifyId": certify_id},
        )
        with httpx.Client(transport=self.cloud.transport()) as client:
            body: dict[str, Any] = client.send(request).json()
        return body


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    yield Sandbox()


def url(certify_id: str) -> str:
    """The page's path without its secret: what someone who only knows the certify id has."""
    return f"{PREFIX}/sandbox/certify/{certify_id}"


def test_names_and_url_rule(sandbox: Sandbox) -> None:
    assert f"{NAME}_sandbox" in sandbox.app.blueprints
    rules = {rule.endpoint: rule for rule in sandbox.app.url_map.iter_rules() if rule.endpoint != "static"}
    assert set(rules) == {f"{NAME}_sandbox.page"}
    rule = rules[f"{NAME}_sandbox.page"]
    assert rule.rule == "/alicertify/sandbox/certify/<certify_id>"
    assert {"GET", "POST"} <= set(rule.methods or ())
    with sandbox.app.app_context():
        assert url_for(f"{NAME}_sandbox.page", certify_id="abc", _external=True) == (
            "http://sandbox.test/alicertify/sandbox/certify/abc"
        )


def test_empty_prefix_mounts_at_sandbox() -> None:
    app = Flask(__name__)
    app.register_blueprint(
        make_sandbox_blueprint(
            "x",
            "",
            cloud=FakeCloud(),
            find_record=lambda _: None,
            result_url=lambda: "/result",
            language="en",
        )
    )
    assert {rule.rule for rule in app.url_map.iter_rules()} >= {"/sandbox/certify/<certify_id>"}


def test_get_renders_the_page_with_the_masked_identity(sandbox: Sandbox) -> None:
    certify_id = sandbox.start()
    r = sandbox.client.get(sandbox.url(certify_id))
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert r.headers["Cache-Control"] == "no-store"
    text = r.get_data(as_text=True)
    assert certify_id in text and "张*" in text and "1****************X" in text
    assert CERT_NO not in text
    assert f'data-action-url="{sandbox.url(certify_id)}"' in text
    assert "<code>/alicertify/result</code>" in text


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_long_or_unrecorded_ids_are_404(sandbox: Sandbox, method: str) -> None:
    unrecorded = sandbox.start(record=False)
    for certify_id in ("0" * 32, "a" * 129, unrecorded):
        r = sandbox.client.open(sandbox.url(certify_id), method=method, json={"outcome": "pass"})
        assert r.status_code == 404, certify_id
        assert r.get_json()["error"]["code"] == "not_found"
        assert r.headers["Cache-Control"] == "no-store"
    assert not sandbox.cloud.sessions[unrecorded].finished


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_without_the_sessions_secret_the_page_is_404_and_changes_nothing(
    sandbox: Sandbox, method: str
) -> None:
    certify_id = sandbox.start()
    other = sandbox.start()
    attempts = [
        url(certify_id),
        f"{url(certify_id)}?token=",
        f"{url(certify_id)}?token={'A' * 32}",
        f"{url(certify_id)}?token={sandbox.cloud.links.secret(other)}",
        f"{url(certify_id)}?secret={sandbox.cloud.links.secret(certify_id)}",
    ]
    for attempt in attempts:
        r = sandbox.client.open(attempt, method=method, json={"outcome": "pass"})
        assert r.status_code == 404, attempt
        assert r.get_json()["error"]["code"] == "not_found"
        assert certify_id not in r.get_data(as_text=True)
    session = sandbox.cloud.sessions[certify_id]
    assert (session.finished, session.passed) == (False, None)
    assert (
        sandbox.client.open(sandbox.url(certify_id), method=method, json={"outcome": "pass"}).status_code
        == 200
    )


def test_a_multi_process_server_is_told_to_use_the_shared_sandbox(sandbox: Sandbox) -> None:
    certify_id = sandbox.start()
    r = sandbox.client.get(sandbox.url(certify_id), environ_overrides={"wsgi.multiprocess": True})
    assert r.status_code == 503
    error = r.get_json()["error"]
    assert error["code"] == "sandbox_needs_shared_server"
    assert "python -m flask_alicertify.sandbox" in CATALOGUE["sandbox_needs_shared_server"].message_en
    r = sandbox.client.post(
        sandbox.url(certify_id), json={"outcome": "pass"}, environ_overrides={"wsgi.multiprocess": True}
    )
    assert r.status_code == 503 and not sandbox.cloud.sessions[certify_id].finished


@pytest.mark.parametrize(
    ("body", "verify_result", "finished", "passed", "sub_code"),
    [
        ({"outcome": "pass"}, {"resultStatus": "9000", "result": {"certifyId": "ID"}}, True, True, "200"),
        (
            {"outcome": "fail", "subCode": "202"},
            {"resultStatus": "4000", "result": {"certifyId": "ID", "errorCode": "UNKNOWN_ERROR"}},
            True,
            False,
            "202",
        ),
        ({"outcome": "cancel"}, {"resultStatus": "6001", "result": None}, False, None, None),
        ({"outcome": "network_error"}, {"resultStatus": "6002", "result": None}, False, None, None),
        (
            {"outcome": "business_error", "errorCode": "SYSTEM_ERROR"},
            {"resultStatus": "4000", "result": {"certifyId": "ID", "errorCode": "SYSTEM_ERROR"}},
            False,
            None,
            None,
        ),
    ],
)
def test_post_records_the_outcome_and_answers_the_verify_result(
    sandbox: Sandbox,
    body: dict[str, str],
    verify_result: dict[str, Any],
    finished: bool,
    passed: bool | None,
    sub_code: str | None,
) -> None:
    certify_id = sandbox.start()
    r = sandbox.client.post(sandbox.url(certify_id), json=body)
    assert r.status_code == 200, r.get_json()
    assert r.headers["Cache-Control"] == "no-store"
    expected = dict(verify_result)
    if expected["result"] is not None:
        expected["result"] = {**expected["result"], "certifyId": certify_id}
    assert r.get_json() == expected
    session = sandbox.cloud.sessions[certify_id]
    assert (session.finished, session.passed, session.sub_code) == (finished, passed, sub_code)


def test_bad_bodies_are_field_errors_and_non_json_is_415(sandbox: Sandbox) -> None:
    certify_id = sandbox.start()
    r = sandbox.client.post(sandbox.url(certify_id), json={"outcome": "teleport"})
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == "invalid_input"
    assert "outcome" in r.get_json()["error"]["fields"]
    r = sandbox.client.post(sandbox.url(certify_id), data="outcome=pass", content_type="text/plain")
    assert r.status_code == 415
    assert r.get_json()["error"]["code"] == "unsupported_media_type"
    r = sandbox.client.post(sandbox.url(certify_id), data="{", content_type="application/json")
    assert r.status_code == 400 and "_body" in r.get_json()["error"]["fields"]


def test_body_cap_is_the_instances() -> None:
    sandbox = Sandbox(max_body_size=64)
    certify_id = sandbox.start()
    r = sandbox.client.post(
        sandbox.url(certify_id), json={"outcome": "business_error", "errorCode": "X" * 80}
    )
    assert r.status_code == 413
    assert r.get_json()["error"]["code"] == "body_too_large"
    assert not sandbox.cloud.sessions[certify_id].finished


def test_a_described_verdict_is_409_closed(sandbox: Sandbox) -> None:
    certify_id = sandbox.start()
    assert sandbox.client.post(sandbox.url(certify_id), json={"outcome": "pass"}).status_code == 200
    assert sandbox.describe(certify_id)["ResultObject"]["Passed"] == "T"
    # The same verdict again is a no-op; a different one is refused.
    assert sandbox.client.post(sandbox.url(certify_id), json={"outcome": "pass"}).status_code == 200
    r = sandbox.client.post(sandbox.url(certify_id), json={"outcome": "fail", "subCode": "205"})
    assert r.status_code == 409
    assert r.get_json()["error"]["code"] == "sandbox_session_closed"
    assert r.get_json()["error"]["message"] == CATALOGUE["sandbox_session_closed"].message_zh


def test_an_expired_session_is_410(sandbox: Sandbox) -> None:
    certify_id = sandbox.start()
    sandbox.now[0] += 30 * 60
    r = sandbox.client.post(
        sandbox.url(certify_id), json={"outcome": "pass"}, headers={"Accept-Language": "en"}
    )
    assert r.status_code == 410
    assert r.get_json()["error"] == {
        "code": "sandbox_session_expired",
        "message": CATALOGUE["sandbox_session_expired"].message_en,
    }
    # Cancelling records nothing, so it is still answered after the 30 minutes.
    assert sandbox.client.post(sandbox.url(certify_id), json={"outcome": "cancel"}).status_code == 200


def test_only_the_fakes_own_refusals_become_conflicts(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any other ValueError is a bug and must surface, not be answered as a 409."""
    certify_id = sandbox.start()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("a bug in the fake")

    monkeypatch.setattr(sandbox.cloud, "complete", broken)
    with pytest.raises(ValueError, match="a bug in the fake"):
        sandbox.client.post(sandbox.url(certify_id), json={"outcome": "pass"})


# -- OpenAPI -------------------------------------------------------------------------------------


def _error_responses(codes: Any) -> dict[str, Any]:
    statuses = sorted({CATALOGUE[code].status for code in codes})
    return {str(status): {"$ref": f"#/components/responses/Error{status}"} for status in statuses}


def test_openapi_paths_describe_both_routes_and_their_errors() -> None:
    paths = openapi_paths("/kyc/", _error_responses)
    assert set(paths) == {"/kyc/sandbox/certify/{certifyId}"}
    item = paths["/kyc/sandbox/certify/{certifyId}"]
    assert set(item) == {"get", "post"}
    assert set(item["get"]["responses"]) == {"200", "404"}
    assert "text/html" in item["get"]["responses"]["200"]["content"]
    assert set(item["post"]["responses"]) == {"200", "400", "404", "409", "410", "413", "415"}
    outcome = item["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert outcome["properties"]["outcome"]["enum"] == [
        "pass",
        "fail",
        "cancel",
        "network_error",
        "business_error",
    ]
    # A caller editing its document cannot change the next one.
    outcome["properties"].clear()
    assert openapi_paths("/kyc", _error_responses) == openapi_paths("/kyc", _error_responses)
    assert openapi_paths("/kyc", _error_responses)["/kyc/sandbox/certify/{certifyId}"]["post"]["requestBody"]


def test_openapi_paths_are_valid_openapi_3_1() -> None:
    statuses = sorted({spec.status for spec in CATALOGUE.values()})
    document = {
        "openapi": "3.1.0",
        "info": {"title": "sandbox", "version": "0"},
        "paths": openapi_paths("/alicertify", _error_responses),
        "components": {
            "schemas": {
                "Error": {"type": "object"},
                "ClientResult": {"type": "object"},
            },
            "responses": {
                f"Error{status}": {
                    "description": "error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
                for status in statuses
            },
        },
    }
    validate(document)
