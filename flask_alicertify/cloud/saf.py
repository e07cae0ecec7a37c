"""The ``saf`` gateway: ``ExecuteRequest`` with ``Service=fin_face_verify``.

This is the server API Alibaba pairs with the Alipay mini-program (bizCode ``FACE``; the
mini-program side is https://help.aliyun.com/document_detail/144545.html).
Several details are UNCONFIRMED upstream, so the reader accepts every documented reading:

* the envelope as ``Code``/``Data``/``Message``/``RequestId`` (OpenAPI metadata) or
  ``code``/``data``/``message``/``requestId`` (the help page's example);
* ``Code`` as an integer or a string; ``Data`` as an object or a JSON string;
* an unfinished query answers Code 424 (or 403), like cloudauth; a Code 200 answer without
  ``passed`` is also read as "not finished", since only ``passed`` carries a verdict.

Placement: the official SAF SDK sends the whole request model (``Service``, ``ServiceParameters``)
as the form body, so the identity never appears in a URL on this path. With ``encrypt_type="SM2"``
the parameters carry ``"encryptType": "SM2"`` and the wire encoder puts SM2 ciphertext in
``certName``/``certNo`` (:mod:`.sm2`).

SAF documents no deletion call: :meth:`SafGateway.delete` raises :class:`CloudNotSupported`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from .base import DEFAULT_CLOUDAUTH_ENDPOINTS
from .base import DEFAULT_SAF_ENDPOINTS
from .base import DeleteResult
from .base import GatewayConfig
from .base import InitRequest
from .base import InitResult
from .base import Verdict
from .envelope import MAX_DEPTH
from .envelope import NOT_FINISHED_CODES
from .envelope import OK_CODE
from .envelope import body_code
from .envelope import checked_init_result
from .envelope import clean_token
from .envelope import json_depth
from .envelope import not_finished
from .envelope import require_ok
from .errors import CloudMalformedResponse
from .errors import CloudNotSupported
from .options import encoder_for
from .options import guard_for
from .transport import RpcClient
from .wire import JsonParam
from .wire import sensitive

__all__ = ["ACTION", "NOT_FINISHED_CODES", "SERVICE", "SafGateway"]

ACTION = "ExecuteRequest"
SERVICE = "fin_face_verify"
_NOT_JSON = object()


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in mapping and mapping[key] is not None:
            return mapping[key]
    return None


class SafGateway:
    """SAF ``fin_face_verify`` init / query over our own signed httpx client."""

    api = "saf"
    #: ``2019-05-21`` is what the OpenAPI metadata lists today; third-party copies of the old
    #: sample use ``2017-03-31``. Override on a subclass if Alibaba support says otherwise.
    version = "2019-05-21"
    biz_code = "FACE"

    def __init__(self, config: GatewayConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        endpoints = config.endpoints
        if tuple(endpoints) == DEFAULT_CLOUDAUTH_ENDPOINTS:
            endpoints = DEFAULT_SAF_ENDPOINTS
        self.transport = RpcClient(
            endpoints,
            config.credentials,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            transport=transport,
            encoder=encoder_for(config),
            guard=guard_for(config),
            quota_scope="saf",
        )

    # -- wire ---------------------------------------------------------------------------------

    def init_parameters(self, request: InitRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "method": "init",
            "sceneId": self.config.scene_id,
            "outerOrderNo": request.outer_order_no,
            "bizCode": self.biz_code,
            "identityType": "CERT_INFO",
            "certType": request.cert_type or "IDENTITY_CARD",
            "certNo": sensitive(request.cert_no, "cert_no"),
            "certName": sensitive(request.cert_name, "cert_name"),
            "returnUrl": request.return_url or "",
        }
        if self.config.encrypt_type is not None:
            params["encryptType"] = "SM2"
        if request.callback_url:
            params["callbackUrl"] = request.callback_url
        if request.callback_token:
            params["callbackToken"] = request.callback_token
        return params

    def query_parameters(self, certify_id: str) -> dict[str, Any]:
        return {"method": "query", "certifyId": certify_id, "sceneId": self.config.scene_id}

    def _execute(self, parameters: Mapping[str, Any]) -> tuple[dict[str, Any], str | None, str]:
        # Serialised by the wire encoder, the only place that reveals (or encrypts) the identity.
        body = {"Service": SERVICE, "ServiceParameters": JsonParam(parameters)}
        data, request_id, endpoint = self.transport.call(ACTION, self.version, query={}, body=body)
        return data, request_id, endpoint

    # -- reading ------------------------------------------------------------------------------

    @staticmethod
    def _data(
        method: str, envelope: Mapping[str, Any], request_id: str | None, endpoint: str
    ) -> Mapping[str, Any] | None:
        data = _first(envelope, "Data", "data")
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else None
            except (ValueError, RecursionError):
                data = _NOT_JSON
            if data is _NOT_JSON or json_depth(data) > MAX_DEPTH:
                raise CloudMalformedResponse(
                    f"{ACTION}:{method}: Data is a string but not usable JSON",
                    code=body_code(envelope),
                    request_id=request_id,
                    http_status=200,
                    endpoint=endpoint,
                )
        if data is not None and not isinstance(data, Mapping):
            raise CloudMalformedResponse(
                f"{ACTION}:{method}: Data is {type(data).__name__}, not an object",
                code=body_code(envelope),
                request_id=request_id,
                http_status=200,
                endpoint=endpoint,
            )
        return data

    def init(self, request: InitRequest) -> InitResult:
        envelope, request_id, endpoint = self._execute(self.init_parameters(request))
        require_ok(f"{ACTION}:init", envelope, request_id, endpoint)
        data = self._data("init", envelope, request_id, endpoint)
        return checked_init_result(
            _first(data or {}, "certifyId", "CertifyId"),
            _first(data or {}, "certifyUrl", "CertifyUrl"),
            what=f"{ACTION}:init: Data",
            request_id=request_id,
            endpoint=endpoint,
        )

    def describe(self, certify_id: str) -> Verdict:
        envelope, request_id, endpoint = self._execute(self.query_parameters(certify_id))
        pending = not_finished(envelope, request_id)
        if pending is not None:
            return pending
        require_ok(f"{ACTION}:query", envelope, request_id, endpoint)
        data = self._data("query", envelope, request_id, endpoint) or {}
        passed = _first(data, "passed", "Passed")
        if passed is None:
            # Code 200 with no verdict: nothing to decide on yet.
            return Verdict(finished=False, passed=False, request_id=request_id, code=OK_CODE, raw=envelope)
        sub_code = _first(data, "subCode", "SubCode")
        if sub_code is not None and clean_token(sub_code) is None:
            raise CloudMalformedResponse(
                f"{ACTION}:query: subCode is not a code",
                code=OK_CODE,
                request_id=request_id,
                http_status=200,
                endpoint=endpoint,
            )
        return Verdict(
            finished=True,
            passed=str(passed) == "T",
            sub_code=clean_token(sub_code),
            request_id=request_id,
            code="200",
            raw=envelope,
        )

    def delete(self, certify_id: str) -> DeleteResult:
        """SAF documents no DeleteFaceVerifyResult; the settings refuse the combination up front."""
        raise CloudNotSupported(
            "the 'saf' API documents no deletion call (DeleteFaceVerifyResult is a cloudauth action);"
            " use ALICERTIFY_API = 'cloudauth' or 'sdk' to delete results at Alibaba",
            code="NotSupported",
        )

    def close(self) -> None:
        self.transport.close()

    def __repr__(self) -> str:
        return f"SafGateway(endpoints={list(self.transport.endpoints)!r})"
