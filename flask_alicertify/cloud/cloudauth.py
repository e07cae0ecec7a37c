"""The ``cloudauth`` gateway: Init/Describe FaceVerify and DeleteFaceVerifyResult (Cloudauth 2019-03-07).

Alibaba's pages: InitFaceVerify (https://help.aliyun.com/document_detail/173781.html),
DescribeFaceVerify
(https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/describefaceverify);
DeleteFaceVerifyResult is described in the same API reference (CertifyId, DeleteAfterQuery;
answer ``ResultObject.DeleteResult`` Y/N with a ``FailReason``), and its quota of 10 QPS in
https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/product-overview/qps-limits-of-server-side-api-operations

Field placement follows the SDK's generated methods
(``alibabacloud_cloudauth20190307.client.Client.init_face_verify_with_options``): ``Model`` (with
AuthId, Crop and FaceContrastPicture, which we do not send) travels in the form body, everything
else in the query string. Like the SDK, InitFaceVerify always has a form body, possibly empty,
and DescribeFaceVerify and DeleteFaceVerifyResult have none.

With ``encrypt_type="SM2"`` the query also carries ``EncryptType=SM2`` and the wire encoder sends
CertName and CertNo as SM2 ciphertext (:mod:`.sm2`); both travel as
:class:`~flask_alicertify.identity.Sensitive` until then.

The answer interpretation lives in :func:`init_result` and :func:`verdict` so the ``sdk`` gateway
reads Alibaba's envelope with exactly the same rules (both built on :mod:`.envelope`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .base import DeleteResult
from .base import GatewayConfig
from .base import InitRequest
from .base import InitResult
from .base import Verdict
from .envelope import NOT_FINISHED_CODES
from .envelope import checked_init_result
from .envelope import clean_token
from .envelope import not_finished
from .envelope import require_ok
from .errors import CloudMalformedResponse
from .options import encoder_for
from .options import guard_for
from .transport import RpcClient
from .wire import sensitive

VERSION = "2019-03-07"
INIT = "InitFaceVerify"
DESCRIBE = "DescribeFaceVerify"
DELETE = "DeleteFaceVerifyResult"
#: FailReasons of DeleteFaceVerifyResult: already deleted (a success for us), and "describe first".
ALREADY_DELETED = "NOT_DELETE_REPEATEDLY"
NEEDS_DESCRIBE = "NEED_QUERY_VERIFY_RESULT"

__all__ = [
    "ALREADY_DELETED",
    "DELETE",
    "DESCRIBE",
    "INIT",
    "NEEDS_DESCRIBE",
    "NOT_FINISHED_CODES",
    "VERSION",
    "CloudauthGateway",
    "delete_query",
    "delete_result",
    "init_body",
    "init_query",
    "init_result",
    "verdict",
]


def init_query(config: GatewayConfig, request: InitRequest) -> dict[str, Any]:
    """The InitFaceVerify query parameters (None values are dropped by the transport).

    CertName and CertNo stay :class:`~flask_alicertify.identity.Sensitive` here; the wire encoder
    reveals (or encrypts) them.
    """
    encrypted = config.encrypt_type is not None
    return {
        "ProductCode": config.product_code,
        "SceneId": config.scene_id,
        "OuterOrderNo": request.outer_order_no,
        "CertType": request.cert_type,
        "CertName": sensitive(request.cert_name, "cert_name"),
        "CertNo": sensitive(request.cert_no, "cert_no"),
        "EncryptType": "SM2" if encrypted else None,
        "ReturnUrl": request.return_url,
        "CallbackUrl": request.callback_url,
        "CallbackToken": request.callback_token,
        "MetaInfo": request.meta_info,
        "UserId": request.user_id,
    }


def init_body(request: InitRequest) -> dict[str, Any]:
    return {"Model": request.model} if request.model is not None else {}


def _result_object(
    action: str, data: Mapping[str, Any], request_id: str | None, endpoint: str | None
) -> Mapping[str, Any]:
    result = data.get("ResultObject")
    if not isinstance(result, Mapping):
        raise CloudMalformedResponse(
            f"{action}: Code 200 without a ResultObject",
            code="200",
            request_id=request_id,
            http_status=200,
            endpoint=endpoint,
        )
    return result


def init_result(data: Mapping[str, Any], request_id: str | None, endpoint: str | None = None) -> InitResult:
    """Read an InitFaceVerify answer; raise the typed error for anything but Code 200."""
    require_ok(INIT, data, request_id, endpoint)
    result = _result_object(INIT, data, request_id, endpoint)
    return checked_init_result(
        result.get("CertifyId"),
        result.get("CertifyUrl"),
        what=f"{INIT}: ResultObject",
        request_id=request_id,
        endpoint=endpoint,
    )


def verdict(data: Mapping[str, Any], request_id: str | None, endpoint: str | None = None) -> Verdict:
    """Read a DescribeFaceVerify answer.

    Code 200: finished; passed only when ``Passed == "T"`` (unknown SubCodes are not passed).
    Code 424/403: not finished. Anything else: :class:`CloudBusinessError` with Alibaba's Message.
    """
    pending = not_finished(data, request_id)
    if pending is not None:
        return pending
    require_ok(DESCRIBE, data, request_id, endpoint)
    result = _result_object(DESCRIBE, data, request_id, endpoint)
    sub_code = result.get("SubCode")
    if sub_code is not None and clean_token(sub_code) is None:
        raise CloudMalformedResponse(
            f"{DESCRIBE}: ResultObject.SubCode is not a code",
            code="200",
            request_id=request_id,
            http_status=200,
            endpoint=endpoint,
        )
    return Verdict(
        finished=True,
        passed=result.get("Passed") == "T",
        sub_code=clean_token(sub_code),
        request_id=request_id,
        code="200",
        raw=dict(data),
    )


def delete_query(certify_id: str) -> dict[str, Any]:
    """DeleteFaceVerifyResult's query: ``DeleteAfterQuery=Y``, i.e. only once the result was read."""
    return {"CertifyId": certify_id, "DeleteAfterQuery": "Y"}


def delete_result(
    data: Mapping[str, Any], request_id: str | None, endpoint: str | None = None
) -> DeleteResult:
    """Read a DeleteFaceVerifyResult answer.

    ``DeleteResult`` "Y": deleted. "N" with ``NOT_DELETE_REPEATEDLY``: deleted before, which is
    what the caller wanted (``deleted=True`` with that reason). "N" with
    ``NEED_QUERY_VERIFY_RESULT`` or any other reason: not deleted; describe, then ask again.
    A non-200 Code is a :class:`CloudBusinessError`.
    """
    require_ok(DELETE, data, request_id, endpoint)
    result = _result_object(DELETE, data, request_id, endpoint)
    flag = result.get("DeleteResult")
    reason = clean_token(result.get("FailReason"))
    if flag == "Y":
        return DeleteResult(deleted=True, reason=None, request_id=request_id)
    if flag == "N":
        return DeleteResult(
            deleted=reason == ALREADY_DELETED, reason=reason or "UNKNOWN", request_id=request_id
        )
    raise CloudMalformedResponse(
        f"{DELETE}: ResultObject.DeleteResult is neither Y nor N",
        code="200",
        request_id=request_id,
        http_status=200,
        endpoint=endpoint,
    )


class CloudauthGateway:
    """InitFaceVerify / DescribeFaceVerify / DeleteFaceVerifyResult over our own signed httpx client."""

    api = "cloudauth"
    version = VERSION

    def __init__(self, config: GatewayConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.transport = RpcClient(
            config.endpoints,
            config.credentials,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            transport=transport,
            encoder=encoder_for(config),
            guard=guard_for(config),
            quota_scope="cloudauth",
        )

    def init(self, request: InitRequest) -> InitResult:
        data, request_id, endpoint = self.transport.call(
            INIT, self.version, query=init_query(self.config, request), body=init_body(request)
        )
        return init_result(data, request_id, endpoint)

    def describe(self, certify_id: str) -> Verdict:
        data, request_id, endpoint = self.transport.call(
            DESCRIBE, self.version, query={"CertifyId": certify_id, "SceneId": self.config.scene_id}
        )
        return verdict(data, request_id, endpoint)

    def delete(self, certify_id: str) -> DeleteResult:
        data, request_id, endpoint = self.transport.call(DELETE, self.version, query=delete_query(certify_id))
        return delete_result(data, request_id, endpoint)

    def close(self) -> None:
        self.transport.close()

    def __repr__(self) -> str:
        return f"CloudauthGateway(endpoints={list(self.transport.endpoints)!r})"
