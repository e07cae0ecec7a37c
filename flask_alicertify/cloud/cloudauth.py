"""The ``cloudauth`` gateway: InitFaceVerify / DescribeFaceVerify (Cloudauth 2019-03-07).

Field placement follows the SDK's generated methods (sdk-anatomy §1.1): ``Model`` (with AuthId,
Crop and FaceContrastPicture, which we do not send) travels in the form body, everything else in
the query string. Like the SDK, InitFaceVerify always has a form body, possibly empty, and
DescribeFaceVerify has none.

The answer interpretation lives in :func:`init_result` and :func:`verdict` so the ``sdk`` gateway
reads Alibaba's envelope with exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .base import GatewayConfig
from .base import InitRequest
from .base import InitResult
from .base import Verdict
from .errors import CloudBusinessError
from .errors import CloudMalformedResponse
from .transport import Transport
from .transport import body_code
from .transport import body_message
from .transport import checked_init_result

VERSION = "2019-03-07"
INIT = "InitFaceVerify"
DESCRIBE = "DescribeFaceVerify"

#: DescribeFaceVerify codes meaning "no result yet": 424 (not verified / abandoned / in
#: progress) and 403 (认证未完成), reference §2.4. Polling treats them as pending, not failure.
NOT_FINISHED_CODES = frozenset({"424", "403"})


def init_query(config: GatewayConfig, request: InitRequest) -> dict[str, Any]:
    """The InitFaceVerify query parameters (None values are dropped by the transport)."""
    return {
        "ProductCode": config.product_code,
        "SceneId": config.scene_id,
        "OuterOrderNo": request.outer_order_no,
        "CertType": request.cert_type,
        "CertName": request.cert_name,
        "CertNo": request.cert_no,
        "ReturnUrl": request.return_url,
        "CallbackUrl": request.callback_url,
        "CallbackToken": request.callback_token,
        "MetaInfo": request.meta_info,
        "UserId": request.user_id,
    }


def init_body(request: InitRequest) -> dict[str, Any]:
    return {"Model": request.model} if request.model is not None else {}


def _business_error(
    action: str, data: Mapping[str, Any], request_id: str | None, endpoint: str | None
) -> CloudBusinessError:
    code = body_code(data)
    message = body_message(data) or f"{action} returned Code {code}"
    return CloudBusinessError(message, code=code, request_id=request_id, http_status=200, endpoint=endpoint)


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
    if body_code(data) != "200":
        raise _business_error(INIT, data, request_id, endpoint)
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
    code = body_code(data)
    if code in NOT_FINISHED_CODES:
        return Verdict(finished=False, passed=False, request_id=request_id, code=code or "", raw=dict(data))
    if code != "200":
        raise _business_error(DESCRIBE, data, request_id, endpoint)
    result = _result_object(DESCRIBE, data, request_id, endpoint)
    sub_code = result.get("SubCode")
    return Verdict(
        finished=True,
        passed=result.get("Passed") == "T",
        sub_code=None if sub_code is None else str(sub_code),
        request_id=request_id,
        code="200",
        raw=dict(data),
    )


class CloudauthGateway:
    """InitFaceVerify / DescribeFaceVerify over our own signed httpx transport."""

    api = "cloudauth"
    version = VERSION

    def __init__(self, config: GatewayConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.transport = Transport(
            config.endpoints,
            config.credentials,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            transport=transport,
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

    def close(self) -> None:
        self.transport.close()

    def __repr__(self) -> str:
        return f"CloudauthGateway(endpoints={list(self.transport.endpoints)!r})"
