"""cloudauth 2019-03-07: ``InitFaceVerify``, ``DescribeFaceVerify`` and ``DeleteFaceVerifyResult``.

Parameter names, the values Alibaba accepts and the ``ResultObject`` of each answer follow
Alibaba's API pages (InitFaceVerify, DescribeFaceVerify, DeleteFaceVerifyResult), e.g.
https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/describefaceverify
Envelope: ``{"Code": "200", "Message", "RequestId", "ResultObject"?}`` with a string ``Code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from . import protocol
from .api_common import ApiName
from .api_common import Decision
from .api_common import Deletion
from .api_common import Incoming
from .api_common import InitRules
from .api_common import Lookup
from .api_common import NewSession
from .api_common import Refusal
from .api_common import check_encrypt_type
from .api_common import check_init
from .api_common import is_json_object
from .api_common import material_info
from .api_common import missing
from .encryption import decrypt_identity
from .values import Session

API: ApiName = "cloudauth"
PRODUCT_CODES: frozenset[str] = frozenset({"ID_PRO", "ID_PLUS", "PV_FV", "LR_FR", "MFVC", "PV_FC", "ID_MIN"})
CERT_TYPES: frozenset[str] = frozenset({"IDENTITY_CARD", "PASSPORT"})
MODELS: frozenset[str] = frozenset(
    {"LIVENESS", "PHOTINUS_LIVENESS", "MULTI_ACTION", "MOVE_ACTION", "MOVE_PHOTINUS", "MULTI_FAPTCHA"}
)
INIT_REQUIRED = ("SceneId", "OuterOrderNo", "ProductCode", "CertType", "CertName", "CertNo")
DESCRIBE_REQUIRED = ("SceneId", "CertifyId")
DELETE_REQUIRED = ("CertifyId",)
DELETE_ACTION = "DeleteFaceVerifyResult"


def handle(call: Incoming, rules: InitRules) -> Decision:
    """Decide what to do with an ``InitFaceVerify``, ``DescribeFaceVerify`` or deletion request."""
    if call.wire.action == "InitFaceVerify":
        return _init(call.params, rules)
    if call.wire.action == DELETE_ACTION:
        return _delete(call.params)
    return _describe(call.params)


def envelope(code: str, request_id: str, data: Mapping[str, Any] | None) -> httpx.Response:
    """A business answer (HTTP 200) in cloudauth's envelope."""
    payload: dict[str, Any] = {
        "Code": code,
        "Message": protocol.business_message(code),
        "RequestId": request_id,
    }
    if data is not None:
        payload["ResultObject"] = dict(data)
    return protocol.json_response(200, payload)


def _init(p: Mapping[str, str], rules: InitRules) -> Decision:
    problem = missing(p, INIT_REQUIRED) or check_encrypt_type(p.get("EncryptType"))
    if problem is not None:
        return problem
    identity = decrypt_identity(
        rules.sm2_private_key, p.get("EncryptType"), ("CertName", "CertNo"), (p["CertName"], p["CertNo"])
    )
    if isinstance(identity, Refusal):
        return identity
    cert_name, cert_no = identity
    problem = check_init(
        rules,
        scene_id=p["SceneId"],
        outer_order_no=p["OuterOrderNo"],
        cert_no=cert_no,
        callback_url=p.get("CallbackUrl"),
    )
    if problem is None:
        if p["ProductCode"] not in PRODUCT_CODES:
            problem = Refusal("401", "unknown ProductCode")
        elif p["CertType"] not in CERT_TYPES:
            problem = Refusal("401", "CertType must be IDENTITY_CARD")
        elif p.get("Model") is not None and p["Model"] not in MODELS:
            problem = Refusal("401", "unknown Model")
        elif p.get("MetaInfo") is not None and not is_json_object(p["MetaInfo"]):
            problem = Refusal("401", "MetaInfo must be a JSON object")
    if problem is not None:
        return problem
    return NewSession(
        api=API,
        outer_order_no=p["OuterOrderNo"],
        scene_id=p["SceneId"],
        cert_name=cert_name,
        cert_no=cert_no,
        return_url=p.get("ReturnUrl"),
        callback_url=p.get("CallbackUrl"),
        callback_token=p.get("CallbackToken"),
        answer=_init_answer,
        product_code=p["ProductCode"],
        meta_info=p.get("MetaInfo"),
        encrypt_type=p.get("EncryptType"),
    )


def _describe(p: Mapping[str, str]) -> Decision:
    return missing(p, DESCRIBE_REQUIRED) or Lookup(API, p["CertifyId"], p["SceneId"], _verdict_answer)


def _delete(p: Mapping[str, str]) -> Decision:
    problem = missing(p, DELETE_REQUIRED)
    if problem is not None:
        return problem
    after = p.get("DeleteAfterQuery") or "N"
    if after not in ("Y", "N"):
        return Refusal("401", "DeleteAfterQuery must be Y or N")
    return Deletion(p["CertifyId"], after_query=after == "Y")


def delete_answer(certify_id: str, fail_reason: str | None) -> dict[str, Any]:
    """``ResultObject`` of DeleteFaceVerifyResult: ``DeleteResult`` Y, or N with its ``FailReason``."""
    if fail_reason is None:
        return {"CertifyId": certify_id, "DeleteResult": "Y"}
    return {"CertifyId": certify_id, "DeleteResult": "N", "FailReason": fail_reason}


def _init_answer(session: Session) -> dict[str, Any]:
    return {"CertifyId": session.certify_id, "CertifyUrl": session.certify_url}


def _verdict_answer(session: Session) -> dict[str, Any]:
    if session.deleted_at is not None:
        # Deleted: the verdict stays, the pictures, identity and device data are gone.
        return {"Passed": "T" if session.passed else "F", "SubCode": session.sub_code, "Success": "True"}
    return {
        "Passed": "T" if session.passed else "F",
        "SubCode": session.sub_code,
        "MaterialInfo": material_info(session),
        "IdentityInfo": "null",
        "DeviceToken": f"sandbox-device-{session.certify_id[:12]}",
        "Success": "True",
        "UserInfo": "",
    }
