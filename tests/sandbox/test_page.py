"""The sandbox certify page: body validation, outcome mapping, and the rendered HTML."""

from __future__ import annotations

import html.parser
import json

import pytest

from flask_alicertify.records import CLIENT_ERROR_CODES
from flask_alicertify.records import SUBCODES
from flask_alicertify.sandbox.page import FAIL_SUB_CODES
from flask_alicertify.sandbox.page import OUTCOMES
from flask_alicertify.sandbox.page import PAGE_SUB_CODES
from flask_alicertify.sandbox.page import OutcomeError
from flask_alicertify.sandbox.page import cloud_completion
from flask_alicertify.sandbox.page import outcome_to_verify_result
from flask_alicertify.sandbox.page import parse_outcome_body
from flask_alicertify.sandbox.page import render_certify_page

CID = "0123456789abcdef0123456789abcdef"


class _Collector(html.parser.HTMLParser):
    """Collects the elements the tests look for, the way a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.outcome_buttons: list[str] = []
        self.options: dict[str, list[str]] = {}
        self.attrs_by_id: dict[str, dict[str, str | None]] = {}
        self._select: str | None = None
        self.text_by_id: dict[str, str] = {}
        self._text_id: str | None = None
        self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.attrs_by_id[str(a["id"])] = a
            self._text_id = str(a["id"])
        if tag == "button" and a.get("data-outcome"):
            self.outcome_buttons.append(str(a["data-outcome"]))
        if tag == "select":
            self._select = str(a.get("id"))
            self.options[self._select] = []
        if tag == "option" and self._select:
            self.options[self._select].append(str(a.get("value")))
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(str(a[key]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        self._text_id = None

    def handle_data(self, data: str) -> None:
        if self._text_id:
            self.text_by_id[self._text_id] = self.text_by_id.get(self._text_id, "") + data


def _render(result_url: str | None = None) -> str:
    return render_certify_page(
        CID,
        masked_name="*三",
        masked_cert_no="1101**********002X",
        action_url=f"/alicertify/sandbox/certify/{CID}",
        result_url=result_url,
    )


def _parse(page: str) -> _Collector:
    c = _Collector()
    c.feed(page)
    c.close()
    return c


# -- parse_outcome_body ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"outcome": "pass"}, ("pass", "200", None)),
        ({"outcome": "pass", "subCode": "210"}, ("pass", "210", None)),
        ({"outcome": "fail"}, ("fail", "204", "UNKNOWN_ERROR")),
        ({"outcome": "fail", "subCode": "201"}, ("fail", "201", "UNKNOWN_ERROR")),
        (
            {"outcome": "fail", "subCode": "222", "errorCode": "USER_IS_NOT_CERTIFY"},
            ("fail", "222", "USER_IS_NOT_CERTIFY"),
        ),
        ({"outcome": "cancel"}, ("cancel", None, None)),
        ({"outcome": "network_error"}, ("network_error", None, None)),
        ({"outcome": "business_error"}, ("business_error", None, "UNKNOWN_ERROR")),
        (
            {"outcome": "business_error", "errorCode": "SYSTEM_ERROR"},
            ("business_error", None, "SYSTEM_ERROR"),
        ),
        # Alibaba's list is partial (部分错误码): an undocumented but code-shaped errorCode is accepted
        ({"outcome": "business_error", "errorCode": "NEW_CODE_2"}, ("business_error", None, "NEW_CODE_2")),
    ],
)
def test_parse_valid(body: dict[str, str], expected: tuple[str, str | None, str | None]) -> None:
    assert parse_outcome_body(body) == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (None, "body"),
        ([], "body"),
        ("pass", "body"),
        ({}, "outcome"),
        ({"outcome": "PASS"}, "outcome"),
        ({"outcome": 1}, "outcome"),
        ({"outcome": "pass", "subCode": "204"}, "subCode"),
        ({"outcome": "pass", "subCode": 200}, "subCode"),
        ({"outcome": "fail", "subCode": "200"}, "subCode"),
        ({"outcome": "fail", "subCode": "999"}, "subCode"),
        ({"outcome": "fail", "subCode": 204}, "subCode"),
        ({"outcome": "business_error", "errorCode": "lower"}, "errorCode"),
        ({"outcome": "business_error", "errorCode": "<script>"}, "errorCode"),
        ({"outcome": "business_error", "errorCode": None}, "errorCode"),
        ({"outcome": "cancel", "subCode": "204"}, "subCode"),
        ({"outcome": "network_error", "errorCode": "SYSTEM_ERROR"}, "errorCode"),
        ({"outcome": "business_error", "subCode": "204"}, "subCode"),
        ({"outcome": "pass", "extra": 1}, "extra"),
    ],
)
def test_parse_invalid_names_the_field(body: object, field: str) -> None:
    with pytest.raises(OutcomeError) as info:
        parse_outcome_body(body)
    assert field in info.value.fields
    assert isinstance(info.value, ValueError)
    assert field in str(info.value)


def test_fail_sub_codes_exclude_passing_codes() -> None:
    assert "200" not in FAIL_SUB_CODES and "210" not in FAIL_SUB_CODES
    assert {"201", "202", "203", "204", "205", "206"} <= FAIL_SUB_CODES
    assert list(PAGE_SUB_CODES) == ["201", "202", "203", "204", "205", "206"]


# -- cloud_completion / outcome_to_verify_result -------------------------------------------------


def test_cloud_completion() -> None:
    assert cloud_completion("pass") == (True, "200")
    assert cloud_completion("pass", sub_code="210") == (True, "210")
    assert cloud_completion("fail", sub_code="202") == (False, "202")
    assert cloud_completion("fail") == (False, "204")
    for outcome in ("cancel", "network_error", "business_error"):
        assert cloud_completion(outcome) is None
    with pytest.raises(ValueError):
        cloud_completion("nope")


def test_verify_result_mapping() -> None:
    assert outcome_to_verify_result("pass", certify_id=CID) == {
        "resultStatus": "9000",
        "result": {"certifyId": CID},
    }
    assert outcome_to_verify_result("fail", certify_id=CID) == {
        "resultStatus": "4000",
        "result": {"certifyId": CID, "errorCode": "UNKNOWN_ERROR"},
    }
    assert outcome_to_verify_result("cancel", certify_id=CID) == {"resultStatus": "6001", "result": None}
    assert outcome_to_verify_result("network_error", certify_id=CID) == {
        "resultStatus": "6002",
        "result": None,
    }
    for code in CLIENT_ERROR_CODES:
        assert outcome_to_verify_result("business_error", certify_id=CID, error_code=code) == {
            "resultStatus": "4000",
            "result": {"certifyId": CID, "errorCode": code},
        }
    with pytest.raises(ValueError):
        outcome_to_verify_result("nope", certify_id=CID)


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_verify_result_is_json_and_never_leaks_the_sub_code(outcome: str) -> None:
    parsed = parse_outcome_body({"outcome": outcome})
    result = outcome_to_verify_result(parsed[0], certify_id=CID, error_code=parsed[2])
    text = json.dumps(result)
    assert json.loads(text) == result
    assert set(result) == {"resultStatus", "result"}
    assert "subCode" not in text and "SubCode" not in text


# -- render_certify_page ---------------------------------------------------------------------------


def test_page_has_one_button_per_outcome_and_the_selects() -> None:
    c = _parse(_render())
    assert c.outcome_buttons == list(OUTCOMES)
    assert c.options["sub-code"] == ["201", "202", "203", "204", "205", "206"]
    assert c.options["error-code"] == list(CLIENT_ERROR_CODES)
    assert c.attrs_by_id["certify"]["data-action-url"] == f"/alicertify/sandbox/certify/{CID}"
    assert c.text_by_id["masked-name"] == "*三"
    assert c.text_by_id["masked-cert-no"] == "1101**********002X"
    assert c.text_by_id["certify-id"] == CID
    assert "verify-result" in c.attrs_by_id


def test_page_is_self_contained() -> None:
    page = _render()
    c = _parse(page)
    assert c.external == []  # no src=/href= at all: no external assets
    assert c.scripts == 1
    assert "<style>" in page
    assert "实人认证" in page and "ID verification" in page


def test_page_selects_default_choices() -> None:
    page = _render()
    assert '<option value="204" selected>' in page
    assert '<option value="UNKNOWN_ERROR" selected>' in page


def test_page_custom_code_lists() -> None:
    c = _parse(
        render_certify_page(
            CID,
            masked_name="x",
            masked_cert_no="y",
            action_url="/a",
            sub_codes={"207": SUBCODES["207"].message_zh},
            error_codes={"MY_CODE": "mine"},
        )
    )
    assert c.options == {"sub-code": ["207"], "error-code": ["MY_CODE"]}


def test_page_escapes_everything() -> None:
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    page = render_certify_page(
        evil,
        masked_name=evil,
        masked_cert_no=evil,
        action_url='/x?a="b"&c=<d>',
        sub_codes={evil: evil},
        error_codes={evil: evil},
        result_url=evil,
    )
    assert "<script>alert(1)" not in page
    assert "<img" not in page
    c = _parse(page)
    assert c.scripts == 1
    assert c.external == []
    assert c.outcome_buttons == list(OUTCOMES)
    # the browser gets the original values back after unescaping
    assert c.attrs_by_id["certify"]["data-action-url"] == '/x?a="b"&c=<d>'
    assert c.attrs_by_id["certify"]["data-certify-id"] == evil
    assert c.text_by_id["masked-name"] == evil
    assert c.options["sub-code"] == [evil]


def test_page_mentions_result_url_when_given() -> None:
    page = _render(result_url="/alicertify/result")
    assert "<code>/alicertify/result</code>" in page
