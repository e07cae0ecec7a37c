"""The envelope rules and the failover loop every gateway shares, and the RPC client's old name."""

from __future__ import annotations

import pytest

from flask_alicertify.cloud import cloudauth
from flask_alicertify.cloud import envelope
from flask_alicertify.cloud import saf
from flask_alicertify.cloud.errors import CloudBusinessError
from flask_alicertify.cloud.errors import CloudMalformedResponse
from flask_alicertify.cloud.errors import CloudRejected
from flask_alicertify.cloud.errors import CloudUnavailable
from flask_alicertify.cloud.failover import Failover
from flask_alicertify.cloud.failover import server_error
from flask_alicertify.cloud.failover import with_failover


def test_one_copy_of_the_not_finished_codes() -> None:
    assert envelope.NOT_FINISHED_CODES == {"424", "403"}
    assert cloudauth.NOT_FINISHED_CODES is envelope.NOT_FINISHED_CODES
    assert saf.NOT_FINISHED_CODES is envelope.NOT_FINISHED_CODES


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        ({"Code": "200", "Message": "success"}, "200", "success"),
        ({"code": 424, "message": "not finished"}, "424", "not finished"),
        ({"Code": "417"}, "417", None),
        ({}, None, None),
    ],
)
def test_body_code_and_message_read_both_spellings(
    data: dict[str, object], code: str | None, message: str | None
) -> None:
    assert envelope.body_code(data) == code
    assert envelope.body_message(data) == message


def test_require_ok_raises_the_business_error_with_alibabas_message() -> None:
    envelope.require_ok("InitFaceVerify", {"Code": "200"}, "R1", "https://a")
    with pytest.raises(CloudBusinessError) as caught:
        envelope.require_ok("InitFaceVerify", {"Code": "417", "Message": "身份信息无效"}, "R1", "https://a")
    error = caught.value
    assert (error.message, error.code, error.request_id, error.http_status, error.endpoint) == (
        "身份信息无效",
        "417",
        "R1",
        200,
        "https://a",
    )
    with pytest.raises(CloudBusinessError, match=r"ExecuteRequest:init returned Code 401"):
        envelope.require_ok("ExecuteRequest:init", {"code": 401}, None, None)


@pytest.mark.parametrize("code", ["424", "403", 424])
def test_not_finished(code: object) -> None:
    verdict = envelope.not_finished({"Code": code}, "R2")
    assert verdict is not None
    assert (verdict.finished, verdict.passed, verdict.code, verdict.request_id) == (
        False,
        False,
        str(code),
        "R2",
    )
    assert envelope.not_finished({"Code": "200"}, "R2") is None


def test_throttling_codes() -> None:
    assert envelope.is_throttling("Throttling.User")
    assert envelope.is_throttling("Throttling")
    assert not envelope.is_throttling("500")
    assert not envelope.is_throttling(None)


def test_checked_init_result_refuses_an_answer_without_its_fields() -> None:
    ok = envelope.checked_init_result("c1", "https://u", what="x", request_id="R", endpoint=None)
    assert (ok.certify_id, ok.certify_url, ok.request_id) == ("c1", "https://u", "R")
    for certify_id, url in (("", "https://u"), ("c1", None), (1, "https://u")):
        with pytest.raises(CloudMalformedResponse, match="lacks the certify id"):
            envelope.checked_init_result(certify_id, url, what="x", request_id="R", endpoint=None)


def test_failover_tries_each_target_in_order_and_keeps_the_last_cause() -> None:
    tried: list[str] = []

    def attempt(endpoint: str) -> str:
        tried.append(endpoint)
        if endpoint != "c":
            raise server_error(
                "Act", f"{endpoint} down", code="500", request_id=endpoint, http_status=200, endpoint=endpoint
            )
        return "answer"

    assert with_failover("Act", ["a", "b", "c"], attempt) == "answer"
    assert tried == ["a", "b", "c"]

    tried.clear()
    with pytest.raises(CloudUnavailable) as caught:
        with_failover("Act", ["a", "b"], attempt)
    assert tried == ["a", "b"]
    assert caught.value.message == "Act: every endpoint failed (2 tried); last: Act: server error: b down"
    assert (caught.value.code, caught.value.request_id, caught.value.endpoint) == ("500", "b", "b")
    assert isinstance(caught.value.__cause__, CloudUnavailable)


def test_failover_stops_at_an_error_another_endpoint_would_repeat() -> None:
    tried: list[str] = []

    def attempt(endpoint: str) -> str:
        tried.append(endpoint)
        raise CloudRejected("Act: rejected", http_status=400, endpoint=endpoint)

    with pytest.raises(CloudRejected):
        with_failover("Act", ["a", "b"], attempt)
    assert tried == ["a"]


def test_server_error_message_without_alibabas_message() -> None:
    failover = server_error("Act", None, code=None, request_id=None, http_status=503, endpoint="e")
    assert isinstance(failover, Failover)
    assert failover.error.message == "Act: server error"


def test_transport_is_a_deprecated_alias_of_rpc_client() -> None:
    from flask_alicertify.cloud import transport

    with pytest.deprecated_call(match="use RpcClient"):
        from flask_alicertify.cloud.transport import Transport
    assert Transport is transport.RpcClient
    with pytest.raises(AttributeError):
        transport.Nope  # noqa: B018
