"""The whole flow end to end: Flask test client -> extension -> gateway -> fake Alibaba Cloud."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.ext import CERT_NAME_2
from support.ext import CERT_NO
from support.ext import CERT_NO_2
from support.ext import SEED_PLACEHOLDER_NO
from support.ext import Harness
from support.ext import harness
from support.ext import header_user
from support.storage import BACKENDS
from support.storage import open_test_backend

from flask_alicertify import AliCertify
from flask_alicertify.records import Record
from flask_alicertify.records import Status
from flask_alicertify.sandbox.fake import Fault
from flask_alicertify.sandbox.fake import Outcome
from flask_alicertify.sandbox.guard import CREDENTIAL_VARIABLES
from flask_alicertify.storage.memory import MemoryStorage
from pytest_alicertify.cases import CASES
from pytest_alicertify.cases import Case

#: The signal each outcome of the matrix sends after ``certify_initiated`` (pending sends none).
SIGNAL = {
    "passed": "certify_passed",
    "failed": "certify_failed",
    "abandoned": "certify_abandoned",
    "pending": None,
}
DESCRIBE = {"cloudauth": "DescribeFaceVerify", "saf": "ExecuteRequest:query"}


@pytest.mark.parametrize("api", ["cloudauth", "saf"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_outcome_matrix(case: Case, api: str) -> None:
    """Every row of the kit's matrix (:data:`pytest_alicertify.cases.CASES`), through the extension."""
    with harness(api=api, ALICERTIFY_API=api) as h:
        case.script(h.cloud)
        cid = h.start(returnUrl="https://www.aliyun.com")
        payload = case.payload(cid)
        response = h.result(cid, payload["resultStatus"], payload["result"])
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        case.check(body)
        expected = case.expected.status
        assert set(body) == {
            "certifyId",
            "status",
            "passed",
            "subCode",
            "message",
            "retryable",
            "clientStatus",
        }
        assert body["certifyId"] == cid
        assert body["status"] == expected
        assert body["passed"] is (expected == "passed")
        assert body["clientStatus"] == str(case.result_status)
        assert isinstance(body["message"], str) and body["message"]
        record = h.record(cid)
        assert record.status == Status(expected)
        assert record.client_status == str(case.result_status)
        if case.error_code is not None:
            assert record.client_error_code == case.error_code
        # Alibaba was asked exactly once, with the stored certify id (never the client's result.certifyId).
        describes = h.cloud.calls_for(DESCRIBE[api])
        assert [c.certify_id for c in describes] == [cid]
        signal = SIGNAL[expected]
        assert h.names() == ["certify_initiated"] + ([signal] if signal else [])
        if signal:
            assert h.events[-1][1] is h.app
            assert h.events[-1][2].status == Status(expected)


def test_failed_verdict_carries_subcode_message_and_retryable(h: Harness) -> None:
    h.cloud.script_next(Outcome.fails("201"))
    cid = h.start()
    body = h.result(cid, "9000").get_json()
    assert (body["status"], body["subCode"], body["retryable"]) == ("failed", "201", False)
    assert body["message"] == "姓名和身份证不一致"
    h.cloud.script_next(Outcome.fails("204"))
    cid2 = h.start()
    body2 = (
        h.client()
        .post(
            "/alicertify/result",
            json={"certifyId": cid2, "resultStatus": "9000", "result": None},
            headers={"Accept-Language": "en-US,en;q=0.9"},
        )
        .get_json()
    )
    assert (body2["subCode"], body2["retryable"]) == ("204", True)
    assert body2["message"] == "The face does not match."


def test_abandoned_can_still_pass_later(h: Harness) -> None:
    cid = h.start()
    assert h.result(cid, "6001", None).get_json()["status"] == "abandoned"
    h.clock.advance(3)  # past the describe budget's interval
    assert h.result(cid, "6001", None).get_json()["status"] == "abandoned"
    h.cloud.complete(cid, passed=True)
    h.clock.advance(3)
    body = h.result(cid, "9000").get_json()
    assert body["status"] == "passed"
    assert h.names() == ["certify_initiated", "certify_abandoned", "certify_passed"]


def test_unknown_certify_id_is_404(h: Harness) -> None:
    response = h.result("0" * 32, "9000")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_certify_id"
    assert h.describes() == 0
    assert h.client().get("/alicertify/result/" + "0" * 32).status_code == 404


def test_foreign_record_is_403_and_untouched(h: Harness) -> None:
    h.cloud.script_next(Outcome.passes())
    cid = h.start(user="alice")
    response = h.result(cid, "9000", user="mallory")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert h.client("mallory").get(f"/alicertify/result/{cid}").status_code == 403
    record = h.record(cid)
    assert (record.status, record.client_status) == (Status.PENDING, None)
    assert h.describes() == 0


def test_client_result_certify_id_is_never_used(h: Harness) -> None:
    h.cloud.script_next(Outcome.never_finishes())
    other = h.start()
    h.cloud.script_next(Outcome.passes())
    cid = h.start()
    # The client claims 9000 for cid but echoes another certify id (of a passing session).
    response = h.result(cid, "9000", {"certifyId": other, "errorCode": None})
    assert response.get_json()["status"] == "passed"
    assert [c.certify_id for c in h.cloud.calls_for("DescribeFaceVerify")] == [cid]
    assert h.record(other).status == Status.PENDING


def test_terminal_records_are_never_described_again(h: Harness) -> None:
    h.cloud.script_next(Outcome.passes())
    cid = h.start()
    assert h.result(cid, "9000").get_json()["status"] == "passed"
    assert h.describes() == 1
    for status in ("9000", "6001", "4000", "x"):
        body = h.result(cid, status, None).get_json()
        assert (body["status"], body["clientStatus"]) == ("passed", "9000")
    h.clock.advance(3600)
    assert h.client().get(f"/alicertify/result/{cid}").get_json()["status"] == "passed"
    assert h.describes() == 1
    assert h.names() == ["certify_initiated", "certify_passed"]


def test_polls_before_a_claim_do_not_describe(h: Harness) -> None:
    # The user is in the face scan: Alibaba would answer "not finished" to every poll, and the
    # result post describes as soon as the user is done.
    cid = h.start()
    client = h.client()
    for _ in range(30):
        assert client.get(f"/alicertify/result/{cid}").get_json()["status"] == "pending"
        h.clock.advance(1.9)
    assert h.describes() == 0
    h.cloud.complete(cid, passed=True)
    assert h.result(cid, "9000").get_json()["status"] == "passed"
    assert h.describes() == 1
    h.clock.advance(60)
    assert client.get(f"/alicertify/result/{cid}").get_json()["status"] == "passed"
    assert h.describes() == 1
    assert h.names() == ["certify_initiated", "certify_passed"]


def test_polls_after_a_claim_describe_at_most_once_per_interval(h: Harness) -> None:
    h.cloud.script_next(Outcome.passes(after=2))
    cid = h.start()
    client = h.client()
    # A result post always confirms, whatever the interval says.
    assert h.result(cid, "9000").get_json()["status"] == "pending"
    assert h.describes() == 1
    client.get(f"/alicertify/result/{cid}")
    h.clock.advance(1.9)
    client.get(f"/alicertify/result/{cid}")
    assert h.describes() == 1
    h.clock.advance(0.1)
    assert client.get(f"/alicertify/result/{cid}").get_json()["status"] == "pending"
    assert h.describes() == 2
    client.get(f"/alicertify/result/{cid}")
    assert h.describes() == 2
    h.clock.advance(2)
    assert client.get(f"/alicertify/result/{cid}").get_json()["status"] == "passed"
    assert h.describes() == 3
    h.clock.advance(60)
    client.get(f"/alicertify/result/{cid}")
    assert h.describes() == 3
    assert h.record(cid).client_status == "9000"


def test_unclaimed_polls_describe_once_the_record_is_old_enough(h: Harness) -> None:
    # The safety net for a lost result post: the user finished, the mini-program never posted.
    cid = h.start()
    client = h.client()
    h.cloud.complete(cid, passed=False, sub_code="204")
    h.clock.advance(59.9)
    assert client.get(f"/alicertify/result/{cid}").get_json()["status"] == "pending"
    assert h.describes() == 0
    h.clock.advance(0.1)
    body = client.get(f"/alicertify/result/{cid}").get_json()
    assert (body["status"], body["subCode"], body["clientStatus"]) == ("failed", "204", None)
    assert h.describes() == 1
    assert h.names() == ["certify_initiated", "certify_failed"]


def test_unclaimed_polls_after_the_age_are_throttled(h: Harness) -> None:
    cid = h.start()
    client = h.client()
    h.clock.advance(60)
    client.get(f"/alicertify/result/{cid}")
    client.get(f"/alicertify/result/{cid}")
    h.clock.advance(1.9)
    client.get(f"/alicertify/result/{cid}")
    assert h.describes() == 1
    h.clock.advance(0.1)
    client.get(f"/alicertify/result/{cid}")
    assert h.describes() == 2


def test_unclaimed_describe_age_is_configurable() -> None:
    with harness(ALICERTIFY_UNCLAIMED_DESCRIBE_AFTER=10) as h:
        cid = h.start()
        h.clock.advance(9.9)
        h.client().get(f"/alicertify/result/{cid}")
        assert h.describes() == 0
        h.clock.advance(0.1)
        h.client().get(f"/alicertify/result/{cid}")
        assert h.describes() == 1


def test_describe_interval_is_configurable() -> None:
    with harness(ALICERTIFY_DESCRIBE_MIN_INTERVAL=0, ALICERTIFY_UNCLAIMED_DESCRIBE_AFTER=0) as h:
        cid = h.start()
        for _ in range(3):
            h.client().get(f"/alicertify/result/{cid}")
        assert h.describes() == 3


def test_get_result_survives_upstream_failure(h: Harness) -> None:
    cid = h.start()
    h.clock.advance(60)
    h.cloud.inject(Fault.http(503), times=1, action="DescribeFaceVerify")
    response = h.client().get(f"/alicertify/result/{cid}")
    assert response.status_code == 200
    assert response.get_json()["status"] == "pending"
    assert h.cloud.unconsumed() == []
    assert h.record(cid).describe_count == 1


# -- upstream failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        pytest.param(Fault.http(503), 503, "upstream_unavailable", id="http-503"),
        pytest.param(Fault.code_500(), 503, "upstream_unavailable", id="code-500"),
        pytest.param(Fault.connect_error(), 503, "upstream_unavailable", id="connect-error"),
        pytest.param(Fault.timeout(), 503, "upstream_unavailable", id="timeout"),
        pytest.param(Fault.throttle(retry_after=2.5), 429, "upstream_throttled", id="throttle"),
        pytest.param(Fault.malformed(), 502, "upstream_malformed", id="malformed"),
        pytest.param(Fault.error("417"), 400, "identity_not_verifiable", id="business-417"),
        pytest.param(Fault.error("405"), 400, "identity_not_verifiable", id="business-405-under-14"),
        pytest.param(Fault.error("412"), 502, "upstream_error", id="business-412-arrears"),
        pytest.param(Fault.error("418"), 429, "too_many_failures", id="business-418"),
    ],
)
def test_init_upstream_failure_keeps_the_record(h: Harness, fault: Fault, status: int, code: str) -> None:
    h.cloud.inject(fault, times=1, action="InitFaceVerify")
    response = h.init()
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    if fault.kind == "throttle":
        assert response.headers["Retry-After"] == "3"
    assert h.cloud.unconsumed() == []
    outer_order_no = h.cloud.calls_for("InitFaceVerify")[-1].params["OuterOrderNo"]
    record = h.storage.get(outer_order_no)
    assert record is not None
    assert record.status == Status.INIT_FAILED
    assert record.error_code
    assert record.certify_id is None
    assert h.names() == []
    # The next attempt works.
    assert h.init().status_code == 200


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        pytest.param(Fault.http(503), "upstream_unavailable", id="http-503"),
        # A throttled describe is "try again shortly" (503 with Retry-After); upstream_throttled
        # (429) is Init's own code.
        pytest.param(Fault.throttle(retry_after=1.0), "upstream_unavailable", id="throttle"),
        pytest.param(Fault.malformed(), "upstream_unavailable", id="malformed"),
        pytest.param(Fault.connect_error(), "upstream_unavailable", id="connect-error"),
    ],
)
def test_result_upstream_failure_records_the_claim(h: Harness, fault: Fault, code: str) -> None:
    h.cloud.script_next(Outcome.passes())
    cid = h.start()
    h.cloud.inject(fault, times=1, action="DescribeFaceVerify")
    response = h.result(cid, "6002", None)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == code
    if fault.kind == "throttle":
        assert response.headers["Retry-After"] == "1"
    record = h.record(cid)
    assert (record.status, record.client_status) == (Status.PENDING, "6002")
    # Once Alibaba answers again (and the describe budget allows another call) the verdict is taken.
    h.clock.advance(3)
    assert h.result(cid, "9000").get_json()["status"] == "passed"
    assert h.cloud.unconsumed() == []


class CountingStorage(MemoryStorage):
    """Memory storage that counts the statements a request makes, but the delivery mark."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.delivery_marks = 0

    def get(self, record_id: str) -> Record | None:
        self.calls.append("get")
        return super().get(record_id)

    def get_by_certify_id(self, certify_id: str) -> Record | None:
        self.calls.append("get_by_certify_id")
        return super().get_by_certify_id(certify_id)

    def claim_describe(self, record_id: str | None = None, **kwargs: Any) -> Record | None:
        self.calls.append("claim_describe")
        return super().claim_describe(record_id, **kwargs)

    def update(self, record_id: str, *, expect: Any, **changes: Any) -> Record | None:
        if set(changes) == {"delivered_at"}:
            self.delivery_marks += 1  # after the receivers ran: a write of its own by design
        else:
            self.calls.append("update")
        return super().update(record_id, expect=expect, **changes)


@pytest.mark.parametrize(
    ("outcome", "claim", "status", "calls"),
    [
        pytest.param(Outcome.passes(), "9000", "passed", ["claim_describe", "update"], id="verdict"),
        pytest.param(Outcome.never_finishes(), "9000", "pending", ["claim_describe"], id="not-finished"),
        pytest.param(
            Outcome.never_finishes(), "6001", "abandoned", ["claim_describe", "update"], id="abandoned"
        ),
    ],
)
def test_result_post_claims_checks_and_writes_in_one_statement(
    outcome: Outcome, claim: str, status: str, calls: list[str]
) -> None:
    """The claim checks ownership and stores the client's claim; only an outcome writes again."""
    storage = CountingStorage()
    with harness(storage=storage) as h:
        h.cloud.script_next(outcome)
        cid = h.start()
        storage.calls.clear()
        marks = storage.delivery_marks
        assert h.result(cid, claim).get_json()["status"] == status
        assert storage.calls == calls
        assert storage.delivery_marks - marks == (1 if status == "passed" else 0)
        record = h.record(cid)
        assert (record.status.value, record.client_status, record.describe_count) == (status, claim, 1)


def test_a_result_post_that_misses_the_claim_reads_once() -> None:
    """Within the interval, for another user, or terminal: one read decides the answer."""
    storage = CountingStorage()
    with harness(storage=storage) as h:
        h.cloud.script_next(Outcome.never_finishes())
        cid = h.start()
        h.result(cid, "9000")
        storage.calls.clear()
        assert h.result(cid, "6002").get_json()["status"] == "pending"  # within the interval
        assert storage.calls == ["claim_describe", "get_by_certify_id", "update"]
        assert h.record(cid).client_status == "6002"
        storage.calls.clear()
        assert h.result(cid, "9000", user="mallory").status_code == 403
        assert storage.calls == ["claim_describe", "get_by_certify_id"]
        assert h.record(cid).client_status == "6002"  # nothing written for the other user


def test_outer_order_no_is_our_record_id_and_certify_url_is_not_stored(h: Harness) -> None:
    response = h.init()
    certify_url = response.get_json()["certifyUrl"]
    cid = response.get_json()["certifyId"]
    call = h.cloud.calls_for("InitFaceVerify")[-1]
    record = h.record(cid)
    assert call.params["OuterOrderNo"] == record.id
    assert len(record.id) == 32 and record.id.isalnum()
    assert certify_url not in repr(record)
    assert record.cert_no_masked == "1****************X"
    assert record.cert_name_masked == "张*"


# -- returnUrl ------------------------------------------------------------------------------------


def test_return_url_from_allowed_host(h: Harness) -> None:
    assert h.init(returnUrl="https://example.com/done?x=1").status_code == 200
    assert h.cloud.calls_for("InitFaceVerify")[-1].params["ReturnUrl"] == "https://example.com/done?x=1"


def test_no_return_url_is_fine(h: Harness) -> None:
    assert h.init().status_code == 200
    assert "ReturnUrl" not in h.cloud.calls_for("InitFaceVerify")[-1].params


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/done",
        "https://evil.example.net/",
        "https://www.aliyun.com@evil.example.net/",
        "https://user:pw@example.com/",
        "javascript:alert(1)",
        "//example.com/x",
        "https://example.com\\@evil.net",
        "https://example.com:99999/",
    ],
)
def test_return_url_refused(h: Harness, url: str) -> None:
    response = h.init(returnUrl=url)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_return_url"
    assert "returnUrl" in error["fields"]["serviceParameters"]
    assert h.cloud.calls_for("InitFaceVerify") == []


def test_fixed_return_url_wins() -> None:
    with harness(ALICERTIFY_RETURN_URL="https://app.example.org/back") as h:
        assert h.init(returnUrl="https://evil.example.net/").status_code == 200
        assert h.cloud.calls_for("InitFaceVerify")[-1].params["ReturnUrl"] == "https://app.example.org/back"


def test_client_return_url_ignored_without_allowed_hosts() -> None:
    """With neither RETURN_URL nor RETURN_URL_HOSTS no client returnUrl can be trusted: not sent."""
    with harness(ALICERTIFY_RETURN_URL_HOSTS=None) as h:
        assert h.init(returnUrl="https://www.aliyun.com").status_code == 200
        assert "ReturnUrl" not in h.cloud.calls_for("InitFaceVerify")[-1].params
        assert h.init().status_code == 200


# -- identity ---------------------------------------------------------------------------------------


def test_the_guides_request_shape_is_accepted(h: Harness) -> None:
    body = {
        "serviceParameters": {"certNo": CERT_NO, "certName": "张先生", "returnUrl": "https://www.aliyun.com"}
    }
    response = h.client().post("/alicertify/init", json=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert set(response.get_json()) == {"certifyId", "certifyUrl"}


def test_the_guides_placeholder_without_identity_loader_is_400(h: Harness) -> None:
    response = h.init(certNo=SEED_PLACEHOLDER_NO)
    assert response.status_code == 400
    assert "certNo" in response.get_json()["error"]["fields"]["serviceParameters"]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("certNo", "110105194912310021", "invalid_input"),
        ("certNo", "12345", "invalid_input"),
        ("certName", "张3", "invalid_cert_name"),
        ("certName", "   ", "invalid_input"),  # blank is missing, not a bad name
    ],
)
def test_invalid_identity_is_400_with_field(h: Harness, field: str, value: str, code: str) -> None:
    response = h.init(**{field: value})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == code
    assert field in error["fields"]["serviceParameters"]
    assert h.cloud.calls_for("InitFaceVerify") == []


def test_identity_loader_replaces_placeholders() -> None:
    profiles = {"alice": (CERT_NAME_2, CERT_NO_2)}
    with harness(identity_loader=profiles.get) as h:
        assert h.init(certNo=SEED_PLACEHOLDER_NO, certName="欧**").status_code == 200
        params = h.cloud.calls_for("InitFaceVerify")[-1].params
        assert (params["CertNo"], params["CertName"]) == (CERT_NO_2, CERT_NAME_2)
        client = h.client()
        assert client.post("/alicertify/init", json={"serviceParameters": {}}).status_code == 200
        # Equal real values are fine; different ones are refused.
        assert h.init(certNo=CERT_NO_2.lower(), certName=CERT_NAME_2).status_code == 200
        response = h.init(certNo=CERT_NO, certName=CERT_NAME_2)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "identity_mismatch"
        assert "fields" not in response.get_json()["error"]  # no hint of which value differs
        assert h.init(certNo=SEED_PLACEHOLDER_NO, certName="张先生").get_json()["error"]["code"] == (
            "identity_mismatch"
        )
        assert len(h.cloud.calls_for("InitFaceVerify")) == 3
        # A user without a profile falls back to the client's values.
        assert h.init(user="bob").status_code == 200
        assert h.cloud.calls_for("InitFaceVerify")[-1].params["CertNo"] == CERT_NO


def test_identity_loader_with_invalid_profile_is_400_not_500() -> None:
    with harness(identity_loader=lambda user: ("张三", "123")) as h:
        response = h.init()
        assert response.status_code == 400
        assert h.cloud.calls_for("InitFaceVerify") == []


# -- users and attempts ---------------------------------------------------------------------------------


def test_no_user_is_401(h: Harness) -> None:
    response = h.init(user=None)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthenticated"
    cid = h.start()
    assert h.result(cid, "9000", user=None).status_code == 401


def test_attempt_limit_per_user_per_day() -> None:
    with harness(ALICERTIFY_MAX_ATTEMPTS_PER_DAY=2) as h:
        assert h.init().status_code == 200
        h.clock.advance(3600)
        assert h.init().status_code == 200
        response = h.init()
        assert response.status_code == 429
        assert response.get_json()["error"]["code"] == "attempts_exhausted"
        assert len(h.cloud.calls_for("InitFaceVerify")) == 2
        assert h.init(user="bob").status_code == 200
        h.clock.advance(23 * 3600 + 1)
        assert h.init().status_code == 200  # the first attempt left the 24 h window
        assert h.init().status_code == 429
        h.clock.advance(3600)
        assert h.init().status_code == 200


def test_attempt_limit_can_be_switched_off() -> None:
    with harness(ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None) as h:
        for _ in range(7):
            assert h.init().status_code == 200


# -- callback ----------------------------------------------------------------------------------------

CALLBACK_URL = "https://app.example.com/alicertify/callback"


def callback_query(h: Harness, cid: str) -> dict[str, str]:
    from urllib.parse import parse_qsl
    from urllib.parse import urlsplit

    url = h.cloud.callback_url(cid)
    assert url is not None
    return dict(parse_qsl(urlsplit(url).query))


def test_callback_confirms_with_describe_once() -> None:
    with harness(ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h:
        cid = h.start()
        session = h.cloud.sessions[cid]
        assert session.callback_url == CALLBACK_URL
        assert session.callback_token and len(session.callback_token) >= 32
        record = h.record(cid)
        assert record.callback_token_digest and session.callback_token not in repr(record)
        h.cloud.complete(cid, passed=True)
        query = callback_query(h, cid)
        client = h.client(user=None)
        for _ in range(3):
            response = client.get("/alicertify/callback", query_string=query)
            assert response.status_code == 200
            assert response.get_json() == {"ok": True}
        assert h.record(cid).status == Status.PASSED
        assert h.describes() == 1
        assert h.names() == ["certify_initiated", "certify_passed"]


def test_callback_tokens_differ_per_record() -> None:
    with harness(ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h:
        a, b = h.start(), h.start()
        assert h.cloud.sessions[a].callback_token != h.cloud.sessions[b].callback_token


@pytest.mark.parametrize("token", [None, "", "wrong-token", "x" * 300])
def test_callback_bad_token_is_403_without_state_change(token: str | None) -> None:
    with harness(ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h:
        cid = h.start()
        h.cloud.complete(cid, passed=True)
        query = {"certifyId": cid, "passed": "200"}
        if token is not None:
            query["callbackToken"] = token
        response = h.client(None).get("/alicertify/callback", query_string=query)
        assert response.status_code in (400, 403)
        if token is None or token in ("", "wrong-token"):
            assert response.status_code == 403
            assert response.get_json()["error"]["code"] == "invalid_callback_token"
        assert h.record(cid).status == Status.PENDING
        assert h.describes() == 0
        assert h.names() == ["certify_initiated"]


def test_callback_accepts_upper_case_token_name() -> None:
    with harness(ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h:
        h.cloud.script_next(Outcome.fails("205"))
        cid = h.start()
        token = h.cloud.sessions[cid].callback_token
        query = {"certifyId": cid, "passed": "T", "CallbackToken": token}
        assert h.client(None).get("/alicertify/callback", query_string=query).status_code == 200
        assert h.record(cid).status == Status.FAILED


def test_callback_unknown_certify_id_is_404() -> None:
    with harness(ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h:
        response = h.client(None).get(
            "/alicertify/callback", query_string={"certifyId": "f" * 32, "callbackToken": "t"}
        )
        assert response.status_code == 404
        assert h.client(None).get("/alicertify/callback").status_code == 400


def test_callback_without_configured_token_is_403(h: Harness) -> None:
    cid = h.start()
    response = h.client(None).get(
        "/alicertify/callback", query_string={"certifyId": cid, "callbackToken": "x"}
    )
    assert response.status_code == 403


def test_callback_upstream_down_is_503_so_alibaba_retries() -> None:
    with harness(ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h:
        cid = h.start()
        h.cloud.complete(cid, passed=True)
        query = callback_query(h, cid)
        h.cloud.inject(Fault.http(503), times=1, action="DescribeFaceVerify")
        assert h.client(None).get("/alicertify/callback", query_string=query).status_code == 503
        assert h.record(cid).status == Status.PENDING
        h.clock.advance(3)  # Alibaba retries later, past the describe budget's interval
        assert h.client(None).get("/alicertify/callback", query_string=query).status_code == 200
        assert h.record(cid).status == Status.PASSED


def test_callback_after_result_post_is_harmless() -> None:
    with harness(ALICERTIFY_CALLBACK_URL=CALLBACK_URL) as h:
        cid = h.start()
        h.cloud.complete(cid, passed=False, sub_code="204")
        assert h.result(cid, "9000").get_json()["status"] == "failed"
        query = callback_query(h, cid)
        assert h.client(None).get("/alicertify/callback", query_string=query).status_code == 200
        assert h.names() == ["certify_initiated", "certify_failed"]
        assert h.describes() == 1


def test_init_without_callback_url_sends_none(h: Harness) -> None:
    h.start()
    params = h.cloud.calls_for("InitFaceVerify")[-1].params
    assert "CallbackUrl" not in params and "CallbackToken" not in params


def test_saf_api_flow() -> None:
    with harness(api="saf", ALICERTIFY_API="saf") as h:
        h.cloud.script_next(Outcome.passes())
        cid = h.start()
        assert h.result(cid, "9000").get_json()["status"] == "passed"
        assert len(h.cloud.calls_for("ExecuteRequest:query")) == 1


# -- sandbox records, on every backend ---------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials reachable (the sandbox's guard would refuse to start otherwise)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in (*CREDENTIAL_VARIABLES, "ALIBABA_CLOUD_CREDENTIALS_FILE"):
        monkeypatch.delenv(variable, raising=False)


def _app(storage: Any, **config: Any) -> tuple[Flask, AliCertify]:
    app = Flask(f"flow_sandbox_{uuid.uuid4().hex[:8]}")
    app.config.update(TESTING=True, SECRET_KEY="flow-sandbox", **config)
    ext = AliCertify(user_loader=header_user)
    ext.init_app(app, storage=storage)
    return app, ext


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize("kind", BACKENDS)
def test_sandbox_records_are_marked_on_every_backend_and_never_count_outside_it(
    kind: str, tmp_path: Path
) -> None:
    with open_test_backend(kind, tmp_path) as backend:
        app, ext = _app(backend.storage, ALICERTIFY_SANDBOX=True)
        client = app.test_client()
        client.environ_base["HTTP_X_USER"] = "alice"
        body = {"serviceParameters": {"certNo": CERT_NO, "certName": "张三"}}
        init = client.post("/alicertify/init", json=body)
        assert init.status_code == 200, init.get_json()
        cid, url = init.get_json()["certifyId"], init.get_json()["certifyUrl"]
        verify_result = client.post(url, json={"outcome": "pass"}).get_json()
        assert client.post("/alicertify/result", json={"certifyId": cid, **verify_result}).status_code == 200
        stored = backend.storage.get_by_certify_id(cid)
        assert stored is not None and (stored.sandbox, stored.status) == (True, Status.PASSED)
        assert stored.instance == "alicertify"
        with app.app_context():
            assert ext.is_verified("alice")

        # The same store under a live app: the sandbox verdict proves nothing there.
        live_app, live_ext = _app(
            backend.storage,
            ALICERTIFY_SCENE_ID="1000000006",
            ALICERTIFY_ACCESS_KEY_ID="LTAI5tLiveKeyForTests",
            ALICERTIFY_ACCESS_KEY_SECRET="live-secret",
        )
        with live_app.app_context():
            assert not live_ext.is_verified("alice")
            assert live_ext.verification("alice") is None
        live = live_app.test_client()
        live.environ_base["HTTP_X_USER"] = "alice"
        assert live.get(f"/alicertify/result/{cid}").status_code == 404
