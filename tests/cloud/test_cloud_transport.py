"""The signed RPC client on its own: wire format, failover and error mapping (httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest
from pytest_httpx import HTTPXMock

from flask_alicertify.cloud import signer
from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.cloudauth import CloudauthGateway
from flask_alicertify.cloud.cloudauth import init_body
from flask_alicertify.cloud.cloudauth import init_query
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.errors import CloudMalformedResponse
from flask_alicertify.cloud.errors import CloudRejected
from flask_alicertify.cloud.errors import CloudThrottled
from flask_alicertify.cloud.errors import CloudUnavailable
from flask_alicertify.cloud.transport import RpcClient
from flask_alicertify.cloud.transport import normalize_endpoint
from flask_alicertify.cloud.wire import WireEncoder

Handler = Callable[[httpx.Request], httpx.Response]
CREDS = StaticCredentials("LTAI5tTransportTest", "transport-secret")
A, B = "cloudauth.cn-shanghai.aliyuncs.com", "cloudauth.cn-beijing.aliyuncs.com"
OK = {"Code": "200", "Message": "success", "RequestId": "REQ-OK"}


class Recorder:
    """A MockTransport handler: answers per host from a script, records every request."""

    def __init__(self, **by_host: Handler | httpx.Response | Exception) -> None:
        self.by_host = by_host
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.by_host.get(
            request.url.host.split(".")[1].removeprefix("cn-"), httpx.Response(200, json=OK)
        )
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    @property
    def hosts(self) -> list[str]:
        return [r.url.host for r in self.requests]


def make(recorder: Recorder, endpoints: tuple[str, ...] = (A, B)) -> RpcClient:
    return RpcClient(endpoints, CREDS, transport=httpx.MockTransport(recorder))


def describe(t: RpcClient) -> tuple[dict[str, object], str | None, str]:
    return t.call("DescribeFaceVerify", "2019-03-07", query={"CertifyId": "c1", "SceneId": "1000000006"})


# -- wire format --------------------------------------------------------------------------------


def test_init_request_is_laid_out_like_the_sdk() -> None:
    rec = Recorder()
    t = make(rec)
    t.call(
        "InitFaceVerify",
        "2019-03-07",
        query={"SceneId": "1000000006", "CertName": "张 三", "ReturnUrl": "https://x.y/z?a=1 2~", "Ip": None},
        body={"Model": "LIVENESS"},
    )
    request = rec.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/"
    # urlencode/quote_plus like the SDK's compose_url; sorted like the SDK's generated methods
    assert request.url.query.decode() == urlencode(
        {"CertName": "张 三", "ReturnUrl": "https://x.y/z?a=1 2~", "SceneId": "1000000006"}
    )
    assert "+" in request.url.query.decode()
    assert request.content == b"Model=LIVENESS"
    names = [name.decode().lower() for name, _ in request.headers.raw]
    assert names == [
        "host",
        "x-acs-version",
        "x-acs-action",
        "user-agent",
        "x-acs-date",
        "x-acs-signature-nonce",
        "accept",
        "content-type",
        "x-acs-content-sha256",
        "authorization",
        "content-length",
    ]
    assert request.headers["accept"] == "application/json"  # not httpx's */*
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["x-acs-content-sha256"] == signer.hash_payload(b"Model=LIVENESS")
    _, key_id, signed, sig = signer.parse_authorization(request.headers["authorization"])
    assert key_id == "LTAI5tTransportTest"
    assert signed == sorted(n for n in names if n not in ("authorization", "content-length"))
    headers = {n: request.headers[n] for n in signed}
    to_sign, _ = signer.string_to_sign(
        "POST", "/", dict(request.url.params), headers, request.headers["x-acs-content-sha256"]
    )
    assert signer.signature("transport-secret", to_sign) == sig


def test_describe_has_no_body_and_no_content_type() -> None:
    rec = Recorder()
    describe(make(rec))
    request = rec.requests[0]
    assert request.content == b""
    assert "content-type" not in request.headers
    assert request.headers["content-length"] == "0"
    assert request.headers["x-acs-content-sha256"] == signer.EMPTY_SHA256


def test_each_attempt_gets_a_fresh_nonce() -> None:
    rec = Recorder(shanghai=httpx.Response(503, json={"Code": "ServiceUnavailable"}))
    describe(make(rec))
    nonces = {r.headers["x-acs-signature-nonce"] for r in rec.requests}
    assert len(nonces) == 2


def test_query_and_body_split_matches_the_sdk_planner() -> None:
    """Our InitFaceVerify query/body equals what the SDK's generated method hands to call_api."""
    client_mod = pytest.importorskip("alibabacloud_cloudauth20190307.client")
    models = pytest.importorskip("alibabacloud_cloudauth20190307.models")
    config_mod = pytest.importorskip("alibabacloud_tea_openapi.utils_models")
    runtime_mod = pytest.importorskip("darabonba.runtime")

    class Planner(client_mod.Client):  # type: ignore[misc,name-defined]
        captured: tuple[object, object]

        def call_api(self, params: object, request: object, runtime: object) -> dict[str, object]:
            self.captured = (params, request)
            return {}

    config = GatewayConfig(scene_id="1000000006", credentials=CREDS)
    for model in (None, "MOVE_ACTION"):
        req = InitRequest(
            outer_order_no="order0001",
            cert_name="张三",
            cert_no="330103199001011234",
            return_url="https://x.y/done",
            callback_url="https://x.y/cb",
            callback_token="tok",
            meta_info='{"zimVer":"3.0.0"}',
            user_id="u1",
            model=model,
        )
        planner = Planner(config_mod.Config(endpoint="plan.invalid"))
        planner.init_face_verify_with_options(
            models.InitFaceVerifyRequest(
                product_code="ID_PRO",
                scene_id=1000000006,
                outer_order_no=req.outer_order_no,
                cert_type=req.cert_type,
                cert_name=req.cert_name,
                cert_no=req.cert_no,
                return_url=req.return_url,
                callback_url=req.callback_url,
                callback_token=req.callback_token,
                meta_info=req.meta_info,
                user_id=req.user_id,
                model=req.model,
            ),
            runtime_mod.RuntimeOptions(),
        )
        params, open_api_request = planner.captured
        # The gateway's dict keeps the identity masked; the wire encoder is what reveals it.
        ours_query = WireEncoder().fields(init_query(config, req))
        assert ours_query == open_api_request.query  # type: ignore[attr-defined]
        assert init_body(req) == open_api_request.body  # type: ignore[attr-defined]
        assert (params.action, params.version, params.pathname) == ("InitFaceVerify", "2019-03-07", "/")  # type: ignore[attr-defined]


# -- failover -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow connect"),
        httpx.RemoteProtocolError("peer closed"),
        httpx.Response(500, json={"Code": "InternalError", "RequestId": "R5"}),
        httpx.Response(503, json={"Code": "ServiceUnavailable"}),
        httpx.Response(502, text="<html>502 Bad Gateway</html>"),
        httpx.Response(200, json={"Code": "500", "Message": "系统错误"}),
        httpx.Response(200, json={"code": 500, "message": "系统错误"}),
    ],
    ids=[
        "connect",
        "read-timeout",
        "connect-timeout",
        "protocol",
        "http500",
        "http503",
        "html502",
        "code500",
        "int500",
    ],
)
def test_fails_over_to_the_next_endpoint(failure: httpx.Response | Exception) -> None:
    rec = Recorder(shanghai=failure)
    data, request_id, endpoint = describe(make(rec))
    assert rec.hosts == [A, B]
    assert endpoint == f"https://{B}"
    assert (data["Code"], request_id) == ("200", "REQ-OK")


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(400, json={"Code": "SignatureDoesNotMatch", "Message": "bad", "RequestId": "R4"}),
        httpx.Response(404, json={"Code": "InvalidAccessKeyId.NotFound", "RequestId": "R4"}),
        httpx.Response(403, json={"Code": "Forbidden.RAM", "RequestId": "R4"}),
    ],
)
def test_4xx_is_rejected_without_failover(answer: httpx.Response) -> None:
    rec = Recorder(shanghai=answer)
    with pytest.raises(CloudRejected) as info:
        describe(make(rec))
    assert rec.hosts == [A]
    assert info.value.code == answer.json()["Code"]
    assert info.value.request_id == "R4"
    assert info.value.http_status == answer.status_code
    assert info.value.endpoint == f"https://{A}"


def test_business_codes_are_returned_not_failed_over() -> None:
    rec = Recorder(
        shanghai=httpx.Response(200, json={"Code": "417", "Message": "无法使用刷脸服务", "RequestId": "RB"})
    )
    data, request_id, endpoint = describe(make(rec))
    assert rec.hosts == [A]
    assert (data["Code"], request_id, endpoint) == ("417", "RB", f"https://{A}")


def test_all_endpoints_down_is_unavailable_with_the_last_cause() -> None:
    rec = Recorder(shanghai=httpx.ConnectError("refused"), beijing=httpx.ReadTimeout("slow"))
    with pytest.raises(CloudUnavailable) as info:
        describe(make(rec))
    error = info.value
    assert rec.hosts == [A, B]
    assert error.retryable
    assert error.endpoint == f"https://{B}"
    assert error.code == "Timeout"
    assert isinstance(error.__cause__, CloudUnavailable)
    # The httpx exception is not chained (its frames hold the request and so the identity);
    # its type is in the message instead.
    assert error.__cause__.__cause__ is None and error.__cause__.__context__ is None
    assert "ReadTimeout" in str(error)


def test_last_http_failure_carries_status_and_request_id() -> None:
    rec = Recorder(
        shanghai=httpx.ConnectError("refused"),
        beijing=httpx.Response(503, json={"Code": "ServiceUnavailable", "RequestId": "R503"}),
    )
    with pytest.raises(CloudUnavailable) as info:
        describe(make(rec))
    assert (info.value.http_status, info.value.request_id, info.value.code) == (
        503,
        "R503",
        "ServiceUnavailable",
    )


# -- throttling and malformed answers -----------------------------------------------------------


def test_http_429_with_retry_after_in_ms() -> None:
    rec = Recorder(
        shanghai=httpx.Response(
            429, json={"Code": "Throttling.User", "RequestId": "RT"}, headers={"x-acs-retry-after": "1500"}
        )
    )
    with pytest.raises(CloudThrottled) as info:
        describe(make(rec))
    assert rec.hosts == [A]  # the quota is per account: another region would not help
    assert (info.value.retry_after, info.value.code, info.value.request_id) == (1.5, "Throttling.User", "RT")


def test_throttling_code_without_header() -> None:
    rec = Recorder(shanghai=httpx.Response(400, json={"Code": "Throttling.Api"}))
    with pytest.raises(CloudThrottled) as info:
        describe(make(rec))
    assert info.value.retry_after is None
    assert info.value.http_status == 400


def test_retry_after_header_on_a_503_is_throttling() -> None:
    rec = Recorder(
        shanghai=httpx.Response(
            503, json={"Code": "ServiceUnavailable"}, headers={"x-acs-retry-after": "250"}
        )
    )
    with pytest.raises(CloudThrottled) as info:
        describe(make(rec))
    assert info.value.retry_after == 0.25


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (httpx.Response(200, content=b'{"Code":"200","Mess', headers={"x-acs-request-id": "RH"}), 200),
        (httpx.Response(200, content=b"[1, 2]", headers={"x-acs-request-id": "RH"}), 200),
        (httpx.Response(200, content=b'"just a string"', headers={"x-acs-request-id": "RH"}), 200),
        (httpx.Response(200, content=b"\xff\xfe", headers={"x-acs-request-id": "RH"}), 200),
        (httpx.Response(404, text="<html>not found</html>", headers={"x-acs-request-id": "RH"}), 404),
    ],
)
def test_malformed_answers(answer: httpx.Response, status: int) -> None:
    rec = Recorder(shanghai=answer)
    with pytest.raises(CloudMalformedResponse) as info:
        describe(make(rec))
    assert rec.hosts == [A]
    assert (info.value.http_status, info.value.request_id) == (status, "RH")


def test_request_id_from_body_wins_over_header() -> None:
    rec = Recorder(shanghai=httpx.Response(200, json=OK, headers={"x-acs-request-id": "HEADER"}))
    assert describe(make(rec))[1] == "REQ-OK"


# -- endpoints, pooling, closing ----------------------------------------------------------------


def test_endpoint_forms() -> None:
    assert normalize_endpoint("cloudauth.aliyuncs.com") == "https://cloudauth.aliyuncs.com"
    assert normalize_endpoint("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert normalize_endpoint("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert normalize_endpoint("https://cloudauth.aliyuncs.com:8443") == "https://cloudauth.aliyuncs.com:8443"
    for bad in ("", "ftp://x", "https://x/prefix", "https://x/?a=1"):
        with pytest.raises(ValueError):
            normalize_endpoint(bad)


def test_full_url_endpoint_sets_host_with_port() -> None:
    rec = Recorder()
    t = RpcClient(["http://127.0.0.1:8080"], CREDS, transport=httpx.MockTransport(rec))
    describe(t)
    assert str(rec.requests[0].url).startswith("http://127.0.0.1:8080/?")
    assert rec.requests[0].headers["host"] == "127.0.0.1:8080"


def test_timeouts_are_per_attempt() -> None:
    t = RpcClient([A], CREDS, connect_timeout=1.5, read_timeout=7.0)
    try:
        assert t.timeout == httpx.Timeout(connect=1.5, read=7.0, write=7.0, pool=1.5)
        assert t._client.timeout == t.timeout
    finally:
        t.close()


def test_closed_transport_refuses_calls() -> None:
    t = make(Recorder())
    t.close()
    t.close()  # idempotent
    with pytest.raises(RuntimeError):
        describe(t)


def test_default_transport_is_visible_to_pytest_httpx(httpx_mock: HTTPXMock) -> None:
    """transport=None means httpx's own HTTPTransport, so pytest-httpx can intercept it."""
    httpx_mock.add_response(
        url=f"https://{A}/?CertifyId=c1&SceneId=1000000006",
        match_headers={"x-acs-action": "DescribeFaceVerify"},
        json={"Code": "424", "Message": "not finished", "RequestId": "R-mock"},
    )
    gateway = CloudauthGateway(GatewayConfig(scene_id="1000000006", credentials=CREDS, endpoints=(A,)))
    try:
        verdict = gateway.describe("c1")
    finally:
        gateway.close()
    assert (verdict.finished, verdict.code, verdict.request_id) == (False, "424", "R-mock")
    sent = httpx_mock.get_request()
    assert sent is not None
    assert dict(sent.url.params) == {"CertifyId": "c1", "SceneId": "1000000006"}
