"""Every answer under the prefix is JSON in the error shape; who is calling is asked first; the
``fields`` messages speak the answer's language; ``metaInfo`` is checked before the billed Init."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from support.ext import CERT_NAME
from support.ext import CERT_NO
from support.ext import Harness
from support.ext import harness
from test_ext_http import assert_error

from flask_alicertify.schemas import MAX_META_DEPTH
from flask_alicertify.translations import EXACT
from flask_alicertify.translations import translate


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/alicertify/init", "OPTIONS, POST"),
        ("PUT", "/alicertify/result", "OPTIONS, POST"),
        ("DELETE", "/alicertify/result", "OPTIONS, POST"),
        ("POST", "/alicertify/callback", "GET, HEAD, OPTIONS"),
        ("POST", "/alicertify/result/abc", "GET, HEAD, OPTIONS"),
        ("PATCH", "/alicertify/status", "GET, HEAD, OPTIONS"),
        ("POST", "/alicertify/openapi.json", "GET, HEAD, OPTIONS"),
        ("HEAD", "/alicertify/init", "OPTIONS, POST"),
        ("TRACE", "/alicertify/callback", "GET, HEAD, OPTIONS"),
    ],
)
def test_wrong_methods_are_json_405_with_allow(h: Harness, method: str, path: str, allowed: str) -> None:
    response = h.client().open(path, method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    if method != "HEAD":
        assert_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize(
    "path",
    [
        "/alicertify",
        "/alicertify/",
        "/alicertify/nope",
        "/alicertify/init/",
        "/alicertify/result/",
        "/alicertify/a/b/c",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_unknown_paths_under_the_prefix_are_json_404(h: Harness, path: str, method: str) -> None:
    assert_error(h.client().open(path, method=method), 404, "not_found")


def test_options_lists_the_real_methods(h: Harness) -> None:
    response = h.client().options("/alicertify/init")
    assert response.status_code == 200
    assert response.headers["Allow"] == "OPTIONS, POST"


def test_routing_errors_speak_english_on_request(h: Harness) -> None:
    response = h.client().get("/alicertify/init", headers={"Accept-Language": "en"})
    assert response.get_json()["error"]["message"] == "This method is not allowed here."
    assert h.client().get("/alicertify/init").get_json()["error"]["message"] == "不支持该请求方法"


def test_an_empty_prefix_leaves_the_apps_404s_alone() -> None:
    with harness(ALICERTIFY_URL_PREFIX="") as h:
        response = h.client().get("/somewhere-of-the-app")
        assert (response.status_code, response.mimetype) == (404, "text/html")
        assert_error(h.client().get("/init"), 405, "method_not_allowed")


def test_a_custom_prefix_owns_its_paths_only() -> None:
    with harness(ALICERTIFY_URL_PREFIX="/kyc/v1") as h:
        assert_error(h.client().get("/kyc/v1/nope"), 404, "not_found")
        assert h.client().get("/kyc/nope").mimetype == "text/html"
        assert h.client().get("/alicertify/nope").mimetype == "text/html"


# -- authentication before validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "data", "content_type"),
    [
        ("/alicertify/init", "{not json", "application/json"),
        ("/alicertify/init", '{"serviceParameters": 5}', "application/json"),
        ("/alicertify/init", "certNo=1", "application/x-www-form-urlencoded"),
        ("/alicertify/result", "[]", "application/json"),
        ("/alicertify/result", "x" * 40000, "application/json"),
    ],
)
def test_anonymous_callers_get_401_whatever_the_body(
    h: Harness, path: str, data: str, content_type: str
) -> None:
    assert_error(h.client(user=None).post(path, data=data, content_type=content_type), 401, "unauthenticated")


def test_anonymous_poll_with_a_bad_certify_id_is_401(h: Harness) -> None:
    assert_error(h.client(user=None).get("/alicertify/result/" + "a" * 300), 401, "unauthenticated")


# -- localised field messages --------------------------------------------------------------------

CJK = re.compile(r"[\u4e00-\u9fff]")

BAD_INIT_BODIES: list[Any] = [
    {},
    [],
    {"serviceParameters": "x"},
    {"serviceParameters": None},
    {"serviceParameters": {"certNo": 5, "certName": CERT_NAME}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": ["x"]}},
    {"serviceParameters": {"certNo": "1" * 65, "certName": CERT_NAME}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": "张" * 129}},
    {"serviceParameters": {"certNo": "1\x00", "certName": CERT_NAME}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "returnUrl": 5}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "returnUrl": "u" * 3000}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "metaInfo": 5}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "metaInfo": "not json"}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "metaInfo": "[1, 2]"}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME, "metaInfo": "m" * 5000}},
    {"serviceParameters": {"certNo": "", "certName": ""}},
    {"serviceParameters": {"certNo": "110105194912310021", "certName": CERT_NAME}},
    {"serviceParameters": {"certNo": "1101051949123100", "certName": CERT_NAME}},
    {"serviceParameters": {"certNo": "11010519491331002X", "certName": CERT_NAME}},
    {"serviceParameters": {"certNo": "1101051949123100A2", "certName": CERT_NAME}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": "张三3"}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": "·张三"}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": "\u3164\u3164\u3164"}},
    {"serviceParameters": {"certNo": CERT_NO, "certName": "\u0301\u0301"}},
]
BAD_RESULT_BODIES: list[Any] = [
    {},
    {"certifyId": 5, "resultStatus": "9000"},
    {"certifyId": "", "resultStatus": "9000"},
    {"certifyId": "abc", "resultStatus": True},
    {"certifyId": "abc", "resultStatus": None},
    {"certifyId": "abc", "resultStatus": "9000", "result": "x"},
    {"certifyId": "abc", "resultStatus": "9000", "result": {"errorCode": {"a": 1}}},
    {"certifyId": "a" * 200, "resultStatus": "9" * 40},
]


def _messages(fields: Any) -> list[str]:
    if isinstance(fields, str):
        return [fields]
    if isinstance(fields, dict):
        return [m for value in fields.values() for m in _messages(value)]
    if isinstance(fields, list):
        return [m for value in fields for m in _messages(value)]
    return []


def _field_messages(h: Harness, path: str, body: Any, **headers: str) -> list[str]:
    response = h.client().post(path, data=json.dumps(body), content_type="application/json", headers=headers)
    assert response.status_code == 400, (body, response.get_data(as_text=True))
    return _messages(response.get_json()["error"].get("fields"))


@pytest.mark.parametrize(
    ("path", "body"),
    [("/alicertify/init", body) for body in BAD_INIT_BODIES]
    + [("/alicertify/result", b) for b in BAD_RESULT_BODIES],
)
def test_field_messages_are_chinese_by_default_and_english_on_request(
    h: Harness, path: str, body: Any
) -> None:
    zh = _field_messages(h, path, body)
    assert all(CJK.search(m) for m in zh), zh
    en = _field_messages(h, path, body, **{"Accept-Language": "en-US,en;q=0.9"})
    assert len(en) == len(zh)
    assert not any(CJK.search(m) for m in en), en
    assert h.cloud.calls_for("InitFaceVerify") == []


def test_marshmallows_own_message_is_translated(h: Harness) -> None:
    response = h.client().post("/alicertify/result", json={"certifyId": "abc"})
    assert response.get_json()["error"]["fields"] == {"resultStatus": ["缺少必填字段"]}
    with harness(ALICERTIFY_LANGUAGE="en") as english:
        response = english.client().post("/alicertify/result", json={"certifyId": "abc"})
        assert response.get_json()["error"]["fields"] == {
            "resultStatus": ["Missing data for required field."]
        }


def test_the_translation_table_is_chinese_and_formatted_messages_match() -> None:
    assert all(CJK.search(zh) for zh in EXACT.values())
    assert translate("Longer than maximum length 128.", "zh") == "长度不能超过 128"
    assert translate("Length must be between 1 and 32.", "zh") == "长度应在 1 到 32 之间"
    assert translate("Longer than maximum length 128.", "en") == "Longer than maximum length 128."


# -- metaInfo ------------------------------------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


class Raw(str):
    """JSON text to splice into the body as a value (too deep for json.dumps to write)."""


def nested_text(depth: int) -> Raw:
    return Raw('{"n":' * (depth - 1) + '{"leaf":1}' + "}" * (depth - 1))


def post_init(h: Harness, meta: Any) -> Any:
    identity = f'"certNo": "{CERT_NO}", "certName": "{CERT_NAME}"'
    value = str(meta) if isinstance(meta, Raw) else json.dumps(meta)
    body = '{"serviceParameters": {' + identity + ', "metaInfo": ' + value + "}}"
    return h.client().post("/alicertify/init", data=body.encode(), content_type="application/json")


@pytest.mark.parametrize(
    "meta",
    [
        "not json",
        "[1, 2, 3]",
        '"a string"',
        "5",
        "null",
        nested(MAX_META_DEPTH + 1),
        json.dumps(nested(MAX_META_DEPTH + 1)),
        nested_text(970),
        str(nested_text(970)),
        "[" * 5000 + "]" * 5000,
        [{"a": 1}],
    ],
    ids=[
        "text",
        "array-string",
        "string-string",
        "number-string",
        "null-string",
        "too-deep-object",
        "too-deep-string",
        "depth-970-object",
        "depth-970-string",
        "depth-5000-string",
        "array",
    ],
)
def test_bad_meta_info_is_400_before_init_and_uses_no_attempt(meta: Any) -> None:
    with harness(ALICERTIFY_MAX_ATTEMPTS_PER_DAY=1) as h:
        for _ in range(3):
            response = post_init(h, meta)
            error = assert_error(response, 400, "invalid_input")
            # A body this deep stops at the JSON parser already; a shallower one at metaInfo.
            assert "_body" in error["fields"] or "metaInfo" in error["fields"]["serviceParameters"]
        assert h.cloud.calls_for("InitFaceVerify") == []
        # The one attempt of the day is still there.
        assert h.init(metaInfo={"zimVer": "3.0.0"}).status_code == 200


def test_meta_info_at_the_depth_limit_is_passed_through(h: Harness) -> None:
    meta = nested(MAX_META_DEPTH)
    assert h.init(metaInfo=meta).status_code == 200
    assert json.loads(h.cloud.calls_for("InitFaceVerify")[-1].params["MetaInfo"]) == meta
    text = json.dumps(meta)
    assert h.init(metaInfo=text).status_code == 200
    assert h.cloud.calls_for("InitFaceVerify")[-1].params["MetaInfo"] == text
