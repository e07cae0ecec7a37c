"""Bad input never gets a 500: 400/413/415 with the JSON error shape, on this blueprint only."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import abort
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from support.ext import CERT_NAME
from support.ext import CERT_NO
from support.ext import Harness
from support.ext import harness


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) <= {"code", "message", "fields"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize("path", ["/alicertify/init", "/alicertify/result"])
@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ('{"a": 1}', "text/plain"),
        ("certNo=1", "application/x-www-form-urlencoded"),
        ('{"a": 1}', None),
        ("<xml/>", "application/xml"),
    ],
)
def test_non_json_content_type_is_415(h: Harness, path: str, data: str, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = h.client().post(path, data=data, headers=headers)
    assert_error(response, 415, "unsupported_media_type")


def test_json_suffix_content_types_are_json(h: Harness) -> None:
    body = json.dumps({"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}})
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        assert h.client().post("/alicertify/init", data=body, content_type=content_type).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b"{'a': 1}",
        b'{"serviceParameters": {"certNo": "1\xff"}}',
        b"[" * 5000 + b"]" * 5000,
        b'{"serviceParameters": ' + b'{"a":' * 2500 + b"1" + b"}" * 2501,
        b"\x00\x01",
    ],
    ids=["empty", "blank", "truncated", "single-quotes", "bad-utf8", "deep-array", "deep-object", "binary"],
)
def test_malformed_json_is_400(h: Harness, raw: bytes) -> None:
    for path in ("/alicertify/init", "/alicertify/result"):
        response = h.client().post(path, data=raw, content_type="application/json")
        assert response.status_code == 400, (path, response.get_data(as_text=True))
        assert_error(response, 400)
    assert h.cloud.calls == []


@pytest.mark.parametrize(
    ("body", "field_path"),
    [
        ([], ("_schema",)),
        ("x", ("_schema",)),
        (None, ("_schema",)),
        ({}, ("serviceParameters",)),
        ({"serviceParameters": "x"}, ("serviceParameters",)),
        (
            {"serviceParameters": {"certNo": 110105194912310020, "certName": CERT_NAME}},
            ("serviceParameters", "certNo"),
        ),
        ({"serviceParameters": {"certNo": CERT_NO, "certName": ["张三"]}}, ("serviceParameters", "certName")),
        (
            {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "returnUrl": 5}},
            ("serviceParameters", "returnUrl"),
        ),
        (
            {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "metaInfo": 5}},
            ("serviceParameters", "metaInfo"),
        ),
        ({"serviceParameters": {"certNo": "1" * 65, "certName": CERT_NAME}}, ("serviceParameters", "certNo")),
        (
            {"serviceParameters": {"certNo": [[[[[[[[CERT_NO]]]]]]]], "certName": CERT_NAME}},
            ("serviceParameters", "certNo"),
        ),
    ],
)
def test_init_wrong_types_are_400_with_field_messages(
    h: Harness, body: Any, field_path: tuple[str, ...]
) -> None:
    response = h.client().post("/alicertify/init", data=json.dumps(body), content_type="application/json")
    error = assert_error(response, 400, "invalid_input")
    node: Any = error["fields"]
    for key in field_path:
        node = node[key]
    assert node  # a message (list or nested dict) for exactly that field
    assert h.cloud.calls == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resultStatus": "9000", "result": None}, "certifyId"),
        ({"certifyId": None, "resultStatus": "9000"}, "certifyId"),
        ({"certifyId": 5, "resultStatus": "9000"}, "certifyId"),
        ({"certifyId": "", "resultStatus": "9000"}, "certifyId"),
        ({"certifyId": "a" * 500, "resultStatus": "9000"}, "certifyId"),
        ({"certifyId": "abc"}, "resultStatus"),
        ({"certifyId": "abc", "resultStatus": None}, "resultStatus"),
        ({"certifyId": "abc", "resultStatus": ["9000"]}, "resultStatus"),
        ({"certifyId": "abc", "resultStatus": True}, "resultStatus"),
        ({"certifyId": "abc", "resultStatus": 9000.5}, "resultStatus"),
        ({"certifyId": "abc", "resultStatus": "9000", "result": "x"}, "result"),
        ({"certifyId": "abc", "resultStatus": "9000", "result": {"errorCode": {"a": 1}}}, "result"),
        ({"certifyId": "abc", "resultStatus": "9000", "result": {"certifyId": 7}}, "result"),
    ],
)
def test_result_wrong_types_are_400_with_field_messages(h: Harness, body: Any, field: str) -> None:
    response = h.client().post("/alicertify/result", json=body)
    error = assert_error(response, 400, "invalid_input")
    assert field in error["fields"]


def test_unknown_keys_are_ignored(h: Harness) -> None:
    body = {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "extra": {"x": 1}}, "more": 1}
    assert h.client().post("/alicertify/init", json=body).status_code == 200


def test_meta_info_object_or_string_is_passed_through(h: Harness) -> None:
    meta = {"zimVer": "3.0.0", "deviceType": "h5"}
    assert h.init(metaInfo=meta).status_code == 200
    assert json.loads(h.cloud.calls_for("InitFaceVerify")[-1].params["MetaInfo"]) == meta
    assert h.init(metaInfo='{"a":"b"}').status_code == 200
    assert h.cloud.calls_for("InitFaceVerify")[-1].params["MetaInfo"] == '{"a":"b"}'


def test_oversized_body_is_413(h: Harness) -> None:
    big = json.dumps({"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "pad": "x" * 20000}})
    for path in ("/alicertify/init", "/alicertify/result"):
        response = h.client().post(path, data=big, content_type="application/json")
        assert_error(response, 413, "body_too_large")
    assert h.cloud.calls == []


def test_oversized_body_without_content_length_is_413(h: Harness) -> None:
    big = b'{"pad": "' + b"x" * 40000 + b'"}'
    response = h.client().post(
        "/alicertify/init",
        input_stream=io.BytesIO(big),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_error(response, 413, "body_too_large")


def test_body_cap_is_configurable_and_not_app_wide() -> None:
    with harness(ALICERTIFY_MAX_BODY_SIZE=1024) as h:

        @h.app.post("/app/upload")
        def upload() -> str:
            from flask import request

            return str(len(request.get_data()))

        pad = {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "pad": "x" * 2000}}
        assert h.client().post("/alicertify/init", json=pad).status_code == 413
        assert h.app.config["MAX_CONTENT_LENGTH"] is None
        response = h.client().post("/app/upload", data=b"y" * 100_000)
        assert (response.status_code, response.get_data(as_text=True)) == (200, "100000")


def test_long_certify_id_in_path_is_400(h: Harness) -> None:
    assert_error(h.client().get("/alicertify/result/" + "a" * 300), 400, "invalid_input")


def test_app_errors_are_not_hijacked(h: Harness) -> None:
    """The app's own handlers answer outside the prefix; under it, the answer is always JSON."""

    @h.app.errorhandler(404)
    def app_not_found(e: Exception) -> tuple[str, int]:
        return "the app's own 404", 404

    @h.app.errorhandler(405)
    def app_not_allowed(e: Exception) -> tuple[str, int]:
        return "the app's own 405", 405

    @h.app.get("/app/bad")
    def app_bad() -> str:
        abort(400)

    @h.app.post("/app/only-post")
    def app_only_post() -> str:
        return "ok"

    client = h.client()
    response = client.get("/nope")
    assert (response.status_code, response.get_data(as_text=True)) == (404, "the app's own 404")
    response = client.get("/app/only-post")
    assert (response.status_code, response.get_data(as_text=True)) == (405, "the app's own 405")
    response = client.get("/app/bad")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    # Under the prefix the app's handlers never win, not even its by-code 404 handler.
    assert_error(client.get("/alicertify/nope"), 404, "not_found")
    assert_error(client.get("/alicertify/init"), 405, "method_not_allowed")


def test_app_error_handlers_still_see_app_errors_without_our_json() -> None:
    with harness() as h:
        client = h.client()
        response = client.get("/definitely-missing")
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        assert client.get("/alicertifyx").mimetype == "text/html"


def test_responses_are_not_cacheable(h: Harness) -> None:
    response = h.init()
    assert response.headers["Cache-Control"] == "no-store"
    error = h.client().post("/alicertify/init", data="x", content_type="text/plain")
    assert error.headers["Cache-Control"] == "no-store"


def test_english_messages_on_request(h: Harness) -> None:
    response = h.client().post(
        "/alicertify/init", data="x", content_type="text/plain", headers={"Accept-Language": "en"}
    )
    assert response.get_json()["error"]["message"] == "Send the body as application/json."
    zh = h.client().post("/alicertify/init", data="x", content_type="text/plain")
    assert zh.get_json()["error"]["message"] == "请使用 application/json 提交"


def test_english_by_setting() -> None:
    with harness(ALICERTIFY_LANGUAGE="en") as h:
        cid = h.start()
        body = h.result(cid, "6001", None).get_json()
        assert body["message"] == "Verification was cancelled."
        zh = h.client().get(f"/alicertify/result/{cid}", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert zh.get_json()["message"] == "认证已取消"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "serviceParameters",
        "certNo",
        "certName",
        "returnUrl",
        "metaInfo",
        "certifyId",
        "resultStatus",
        "result",
        "errorCode",
    ]
)
shaped = st.recursive(
    json_values,
    lambda children: st.dictionaries(keys, children, max_size=5),
    max_leaves=15,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=shaped)
def test_no_json_value_makes_a_500(body: Any) -> None:
    with harness() as h:
        for path in ("/alicertify/init", "/alicertify/result"):
            response = h.client().post(path, data=json.dumps(body), content_type="application/json")
            assert response.status_code in (200, 400, 403, 404), (path, body, response.get_data(as_text=True))
            if response.status_code != 200:
                assert_error(response, response.status_code)


def test_no_frame_holds_the_clear_identity_at_the_upstream_call() -> None:
    """Error trackers record every frame's locals; from the view down, only Sensitive values."""
    import traceback

    from flask_alicertify.identity import Sensitive

    stacks: list[str] = []
    requests: list[Any] = []

    class Recording:
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.api = inner.api

        def init(self, request: Any) -> Any:
            # The frames an exception raised here would carry, with their locals, up to the view
            # (above it are Flask's and the test client's, which hold the raw request).
            below_view = []
            for frame, lineno in traceback.walk_stack(None):
                below_view.append((frame, lineno))
                if frame.f_code.co_name == "init" and frame.f_code.co_filename.endswith("views.py"):
                    break
            frames = traceback.StackSummary.extract(iter(below_view), capture_locals=True)
            stacks.append("".join(frames.format()))
            requests.append(request)
            return self.inner.init(request)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    with harness(wrap_gateway=Recording) as h:
        assert h.init().status_code == 200
    [stack] = stacks
    assert "views.py" in stack and "params = " in stack  # the view's own frame, with its locals
    assert CERT_NO not in stack and CERT_NAME not in stack
    assert isinstance(requests[0].cert_no, Sensitive) and isinstance(requests[0].cert_name, Sensitive)
