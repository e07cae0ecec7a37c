"""DeleteFaceVerifyResult: the signed call, its documented answers, its own 10 QPS."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from support.upstream import Upstream
from support.upstream import answer

from flask_alicertify.cloud import signer
from flask_alicertify.cloud.base import DeleteResult
from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.cloudauth import delete_result
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.errors import CloudBusinessError
from flask_alicertify.cloud.errors import CloudError
from flask_alicertify.cloud.errors import CloudMalformedResponse
from flask_alicertify.cloud.errors import CloudNotSupported
from flask_alicertify.cloud.errors import CloudThrottled
from flask_alicertify.cloud.gateways import make_gateway

KEY_ID, SECRET = "LTAI5tDeleteTest00001", "delete-secret"
CREDS = StaticCredentials(KEY_ID, SECRET)
CID = "91707dc296d469ad38e4c5efa6a0f24b"


def never(request: httpx.Request) -> httpx.Response:
    raise AssertionError("no request expected")


def answer_for(result: dict[str, str] | None, code: str = "200") -> dict[str, object]:
    body: dict[str, object] = {"Code": code, "Message": "success", "RequestId": "RDEL"}
    if result is not None:
        body["ResultObject"] = {"CertifyId": CID, **result}
    return body


def verified(request: httpx.Request) -> None:
    """The request is signed like every other call (V3, over exactly these headers and query)."""
    _, key_id, signed, sig = signer.parse_authorization(request.headers["authorization"])
    headers = {n: request.headers[n] for n in signed}
    to_sign, _ = signer.string_to_sign(
        "POST", "/", dict(request.url.params), headers, request.headers["x-acs-content-sha256"]
    )
    assert key_id == KEY_ID and signer.signature(SECRET, to_sign) == sig


def test_cloudauth_delete_is_signed_with_delete_after_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        verified(request)
        return httpx.Response(200, json=answer_for({"DeleteResult": "Y"}))

    config = GatewayConfig(scene_id="1000000006", credentials=CREDS, endpoints=("a.test",))
    gateway = make_gateway("cloudauth", config, transport=httpx.MockTransport(handler))
    assert gateway.delete(CID) == DeleteResult(deleted=True, reason=None, request_id="RDEL")
    gateway.close()
    request = seen[0]
    assert request.headers["x-acs-action"] == "DeleteFaceVerifyResult"
    assert request.headers["x-acs-version"] == "2019-03-07"
    assert dict(request.url.params) == {"CertifyId": CID, "DeleteAfterQuery": "Y"}
    assert request.content == b"" and "content-type" not in request.headers  # like the SDK: no body


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"DeleteResult": "Y"}, DeleteResult(True, None, "RDEL")),
        (
            {"DeleteResult": "N", "FailReason": "NOT_DELETE_REPEATEDLY"},
            DeleteResult(True, "NOT_DELETE_REPEATEDLY", "RDEL"),
        ),
        (
            {"DeleteResult": "N", "FailReason": "NEED_QUERY_VERIFY_RESULT"},
            DeleteResult(False, "NEED_QUERY_VERIFY_RESULT", "RDEL"),
        ),
        ({"DeleteResult": "N", "FailReason": "SOMETHING_NEW"}, DeleteResult(False, "SOMETHING_NEW", "RDEL")),
        ({"DeleteResult": "N"}, DeleteResult(False, "UNKNOWN", "RDEL")),
    ],
)
def test_the_documented_answers(result: dict[str, str], expected: DeleteResult) -> None:
    assert delete_result(answer_for(result), "RDEL") == expected


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (answer_for(None), CloudMalformedResponse),
        (answer_for({"DeleteResult": "maybe"}), CloudMalformedResponse),
        (answer_for({"DeleteResult": "Y"}, code="406"), CloudBusinessError),
    ],
)
def test_unusable_answers_are_typed_errors(body: dict[str, object], error: type[CloudError]) -> None:
    with pytest.raises(error):
        delete_result(body, "RDEL")


def test_sdk_delete_sends_the_same_call() -> None:
    pytest.importorskip("alibabacloud_cloudauth20190307")
    upstream = Upstream(answer(answer_for({"DeleteResult": "N", "FailReason": "NOT_DELETE_REPEATEDLY"})))
    with upstream as url:
        config = GatewayConfig(scene_id="1000000006", credentials=CREDS, endpoints=(url,))
        gateway = make_gateway("sdk", config)
        assert gateway.delete(CID) == DeleteResult(True, "NOT_DELETE_REPEATEDLY", "RDEL")
        gateway.close()
    received = upstream.received[0]
    assert received.headers["x-acs-action"] == "DeleteFaceVerifyResult"
    assert received.query == {"CertifyId": CID, "DeleteAfterQuery": "Y"}


def test_saf_documents_no_deletion() -> None:
    config = GatewayConfig(scene_id="1", credentials=CREDS, endpoints=("saf.test",))
    gateway = make_gateway("saf", config, transport=httpx.MockTransport(never))
    with pytest.raises(CloudNotSupported, match="saf"):
        gateway.delete(CID)
    assert issubclass(CloudNotSupported, CloudError)


def test_deletes_stay_under_their_10_qps_even_with_the_guard_off() -> None:
    arrivals: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        arrivals.append(time.monotonic())
        return httpx.Response(200, content=json.dumps(answer_for({"DeleteResult": "Y"})).encode())

    config = GatewayConfig(
        scene_id="1", credentials=CREDS, endpoints=("a.test",), upstream_qps=None, upstream_wait=2.0
    )
    gateway = make_gateway("cloudauth", config, transport=httpx.MockTransport(handler))
    for _ in range(12):
        gateway.delete(CID)
    assert len(arrivals) == 12
    # However fast the caller loops, no 1-second window holds more than the API's 10 calls.
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= 10, busiest
    nowait = make_gateway(
        "cloudauth",
        GatewayConfig(
            scene_id="1", credentials=CREDS, endpoints=("a.test",), upstream_qps=None, upstream_wait=0.0
        ),
        transport=httpx.MockTransport(handler),
    )
    # With no time to wait, a call whose slot is not free now is refused, never sent.
    with pytest.raises(CloudThrottled):
        for _ in range(12):
            nowait.delete(CID)
    assert len(arrivals) < 12 + 12
