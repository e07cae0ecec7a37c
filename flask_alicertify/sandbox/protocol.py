"""The wire side of the fake cloud: reading a signed RPC request and writing Alibaba's answers.

Kept apart from the state in :mod:`.fake` so the rules a real gateway enforces (V3 signature,
payload hash, versions, where parameters may live) read in one place and stay pure functions.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import parse_qsl

import httpx

from ..cloud import signer

CLOUDAUTH_VERSION = "2019-03-07"
SAF_VERSIONS: frozenset[str] = frozenset({"2017-03-31", "2019-05-21"})
CLOUDAUTH_ACTIONS: frozenset[str] = frozenset(
    {"InitFaceVerify", "DescribeFaceVerify", "DeleteFaceVerifyResult"}
)
SAF_ACTION = "ExecuteRequest"
SAF_SERVICE = "fin_face_verify"
FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json;charset=utf-8"

#: Business ``Code`` texts of Alibaba's InitFaceVerify and DescribeFaceVerify return-code tables
#: (the same table serves both actions; docs/tables.md, ``Code``), e.g.
#: https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/describefaceverify
BUSINESS_MESSAGES: Mapping[str, str] = {
    "200": "success",
    "400": "参数不能为空",
    "401": "参数非法",
    "402": "应用配置不存在",
    "403": "认证未完成",
    "404": "认证场景配置不存在",
    "405": "您的年龄未满14周岁，不允许使用此产品",
    "406": "无效的CertifyId",
    "410": "未开通服务",
    "411": "RAM无权限",
    "412": "欠费中",
    "414": "设备类型不支持",
    "415": "SDK版本不支持",
    "416": "系统版本不支持",
    "417": "无法使用刷脸服务",
    "418": "刷脸失败次数过多",
    "419": "传入图片不可用",
    "420": "数据重复",
    "421": "传入图片过大",
    "422": "下载图片超时",
    "423": "状态错误",
    "424": "身份认证记录不存在",
    "427": "业务策略限制",
    "500": "系统错误",
    # Not in the tables: what integrators report for an SM2 ciphertext Alibaba cannot decrypt
    # (wrong layout, wrong key, bad Base64), the one answer such a mistake ever gets.
    "501": "系统错误",
}

#: Gateway-level ``Code`` for an injected HTTP status (the JSON error body of a non-200 answer).
HTTP_ERROR_CODES: Mapping[int, tuple[str, str]] = {
    400: ("InvalidParameter", "The specified parameter is not valid."),
    401: ("Unauthorized", "The request is not authorized."),
    403: ("Forbidden.RAM", "User not authorized to operate on the specified resource."),
    404: ("InvalidAction.NotFound", "Specified api is not found, please check your url and method."),
    408: ("RequestTimeout", "The request timed out."),
    409: ("Conflict", "The request conflicts with the current state."),
    429: ("Throttling.User", "Request was denied due to user flow control."),
}
SERVER_ERROR = ("ServiceUnavailable", "The request has failed due to a temporary failure of the server.")


def business_message(code: str) -> str:
    """Alibaba's Chinese text for a business Code, or a neutral one for codes it never documented."""
    return BUSINESS_MESSAGES.get(code, "未知错误")


@dataclass(frozen=True)
class WireRequest:
    """One request as the gateway sees it, decoded but not yet trusted."""

    method: str
    host: str
    path: str
    action: str
    version: str
    query: dict[str, str]
    form: dict[str, str]
    body: bytes
    #: Every header by lower-case name (repeated headers joined with ", ", as httpx reads them),
    #: so the signature check looks each one up in a dict rather than scanning the list.
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, str]:
        """Query and form parameters merged; RPC gateways accept a parameter in either place."""
        return {**self.query, **self.form}


def read_request(request: httpx.Request) -> WireRequest:
    """Decode an ``httpx.Request`` into a :class:`WireRequest` (the body must be readable)."""
    body = request.read()
    headers = dict(request.headers.items())  # httpx yields lower-case names, repeats joined
    query = dict(parse_qsl(request.url.query.decode("ascii", "replace"), keep_blank_values=True))
    form: dict[str, str] = {}
    content_type = headers.get("content-type", "")
    if body and content_type.split(";")[0].strip().lower() == FORM_TYPE:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return WireRequest(
        method=request.method.upper(),
        host=headers.get("host") or request.url.netloc.decode("ascii"),
        path=request.url.path or "/",
        action=headers.get("x-acs-action", "").strip(),
        version=headers.get("x-acs-version", "").strip(),
        query=query,
        form=form,
        body=body,
        headers=headers,
    )


class GatewayError(Exception):
    """A non-200 answer from the API gateway itself (signature, key, version, action)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def verify_signature(
    request: httpx.Request,
    wire: WireRequest,
    *,
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
) -> None:
    """Check a V3 ``ACS3-HMAC-SHA256`` request the way Alibaba's gateway does; raise GatewayError.

    The signed header set is read from the Authorization header, because real clients sign
    more than the minimum (the SDK signs ``user-agent`` and ``x-acs-credentials-provider``).
    What the spec requires to be signed (``host``, ``content-type``, every ``x-acs-*``) must be.
    """
    request_headers = wire.headers or dict(request.headers.items())
    header = request_headers.get("authorization")
    if not header:
        raise GatewayError(400, "MissingAuthorization", "Authorization header is required.")
    try:
        _algorithm, key_id, signed_names, given = signer.parse_authorization(header)
    except ValueError as exc:
        message = f"The request signature is malformed: {exc}."
        raise GatewayError(400, "IncompleteSignature", message) from None
    if key_id != access_key_id:
        raise GatewayError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    header_key = request_headers.get("x-acs-accesskey-id")
    if header_key is not None and header_key != key_id:
        message = "x-acs-accesskey-id differs from the Authorization Credential."
        raise GatewayError(400, "InvalidAccessKeyId.Inconsistent", message)

    payload_hash = request_headers.get("x-acs-content-sha256")
    if payload_hash is None:
        raise GatewayError(400, "MissingContentSha256", "x-acs-content-sha256 header is required.")
    if not hmac.compare_digest(payload_hash.lower(), signer.hash_payload(wire.body)):
        raise GatewayError(
            400, "SignatureDoesNotMatch", "x-acs-content-sha256 does not match the SHA-256 of the body."
        )

    signed = [name.strip().lower() for name in signed_names if name.strip()]
    must_sign = {"host"} | {name for name in request_headers if name.startswith("x-acs-")}
    if "content-type" in request_headers:
        must_sign.add("content-type")
    unsigned = sorted(must_sign - set(signed))
    if unsigned:
        raise GatewayError(
            400, "SignatureDoesNotMatch", f"These headers must be signed: {', '.join(unsigned)}."
        )
    missing = [name for name in signed if name not in request_headers]
    if missing:
        raise GatewayError(
            400, "SignatureDoesNotMatch", f"Signed headers are absent from the request: {', '.join(missing)}."
        )
    headers = {name: request_headers[name] for name in signed}
    to_sign, _ = signer.string_to_sign(wire.method, wire.path, wire.query, headers, payload_hash.lower())
    expected = signer.signature(access_key_secret, to_sign)
    if not hmac.compare_digest(expected, given.lower()):
        raise GatewayError(
            400,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )

    if security_token is not None:
        token = request_headers.get("x-acs-security-token")
        if token is None:
            raise GatewayError(400, "MissingSecurityToken", "x-acs-security-token is required for STS keys.")
        if not hmac.compare_digest(token, security_token):
            raise GatewayError(400, "InvalidSecurityToken.Malformed", "The security token is not valid.")


def check_gateway(
    request: httpx.Request,
    wire: WireRequest,
    *,
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
) -> None:
    """Everything the gateway checks before an API sees the request: signature, version, method."""
    verify_signature(
        request,
        wire,
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        security_token=security_token,
    )
    check_version(wire)
    if wire.method not in ("GET", "POST"):
        raise GatewayError(405, "UnsupportedHTTPMethod", "Only GET and POST are supported.")


def check_version(wire: WireRequest) -> None:
    """Every action answers only for the API version it belongs to."""
    if not wire.action:
        raise GatewayError(400, "MissingAction", "x-acs-action header is required.")
    if wire.action in CLOUDAUTH_ACTIONS:
        allowed: frozenset[str] = frozenset({CLOUDAUTH_VERSION})
    elif wire.action == SAF_ACTION:
        allowed = SAF_VERSIONS
    else:
        raise GatewayError(404, "InvalidAction.NotFound", f"Specified api {wire.action!r} is not found.")
    if not wire.version:
        raise GatewayError(400, "MissingVersion", "x-acs-version header is required.")
    if wire.version not in allowed:
        raise GatewayError(400, "InvalidVersion", f"Specified version {wire.version!r} is not valid.")


def json_response(status: int, payload: Any, *, headers: Mapping[str, str] | None = None) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    all_headers = {"content-type": JSON_TYPE, **(headers or {})}
    return httpx.Response(status, headers=all_headers, content=body)


def gateway_error(status: int, code: str, message: str, request_id: str, host: str) -> httpx.Response:
    """The POP gateway's JSON error body (what the SDK maps to ClientException/ServerException)."""
    return json_response(
        status,
        {
            "RequestId": request_id,
            "HostId": host,
            "Code": code,
            "Message": message,
            "Recommend": "https://api.aliyun.com/troubleshoot?q=" + code,
        },
    )


def html_error(status: int) -> httpx.Response:
    """What a load balancer in front of the API answers when the service behind it is gone."""
    phrase = httpx.codes.get_reason_phrase(status) or "Error"
    body = (
        f"<html><head><title>{status} {phrase}</title></head>"
        f"<body><center><h1>{status} {phrase}</h1></center><hr><center>Tengine</center></body></html>"
    )
    return httpx.Response(status, headers={"content-type": "text/html"}, content=body.encode("utf-8"))


def malformed_response() -> httpx.Response:
    """HTTP 200 whose body is not JSON: a truncated envelope, as a broken proxy might deliver."""
    return httpx.Response(200, headers={"content-type": JSON_TYPE}, content=b'{"Code":"200","Message":"succ')
