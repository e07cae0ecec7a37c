"""SAF ``ExecuteRequest`` with ``Service=fin_face_verify``: ``method=init`` and ``method=query``.

The verification parameters travel as one JSON object in ``ServiceParameters`` (decoded once,
by :class:`~flask_alicertify.sandbox.api_common.Incoming`). Alibaba's pages show the envelope
both as ``Code``/``Data`` and as ``code``/``data``, with ``Code`` an integer and ``Data`` an
object or a JSON string, so the fake can answer every spelling (see docs/apis.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from . import protocol
from .api_common import ApiName
from .api_common import Decision
from .api_common import Incoming
from .api_common import InitRules
from .api_common import Lookup
from .api_common import NewSession
from .api_common import Refusal
from .api_common import check_encrypt_type
from .api_common import check_init
from .api_common import material_info
from .api_common import missing
from .api_common import text
from .cloudauth_api import CERT_TYPES
from .encryption import decrypt_identity
from .values import Session

API: ApiName = "saf"
BIZ_CODES: frozenset[str] = frozenset({"FACE", "FACE_SDK"})
INIT_REQUIRED = ("sceneId", "outerOrderNo", "bizCode", "identityType", "certType", "certNo", "certName")
QUERY_REQUIRED = ("certifyId", "sceneId")


def handle(call: Incoming, rules: InitRules) -> Decision:
    """Decide what to do with an ``ExecuteRequest``: check the envelope, then run its method."""
    p = call.params
    if not p.get("Service") or p.get("ServiceParameters") is None:
        return Refusal("400", "missing Service or ServiceParameters")
    if p["Service"] != protocol.SAF_SERVICE:
        return Refusal("401", f"Service must be {protocol.SAF_SERVICE}")
    sp = call.service_parameters
    if not sp:
        return Refusal("401", "ServiceParameters must be a JSON object")
    values = {key: text(value) for key, value in sp.items()}
    method = sp.get("method")
    if method == "init":
        return _init(values, rules)
    if method == "query":
        return missing(values, QUERY_REQUIRED) or Lookup(
            API, values["certifyId"] or "", values["sceneId"] or "", _verdict_answer
        )
    if method is None:
        return Refusal("400", "missing method")
    return Refusal("401", "method must be init or query")


def envelope(
    code: str,
    request_id: str,
    data: Mapping[str, Any] | None,
    *,
    lower: bool = False,
    data_as_string: bool = False,
) -> httpx.Response:
    """A business answer (HTTP 200) in SAF's envelope: integer ``Code``, ``Data`` for the result.

    :param lower: spell the keys ``code``/``message``/``requestId``/``data``.
    :param data_as_string: ``Data`` as a JSON string instead of an object.
    """
    keys = ("code", "message", "requestId", "data") if lower else ("Code", "Message", "RequestId", "Data")
    wire_code: int | str = int(code) if code.isdigit() else code
    payload: dict[str, Any] = {
        keys[0]: wire_code,
        keys[1]: protocol.business_message(code),
        keys[2]: request_id,
    }
    if data is not None:
        payload[keys[3]] = json.dumps(data, ensure_ascii=False) if data_as_string else dict(data)
    return protocol.json_response(200, payload)


def _init(values: Mapping[str, str | None], rules: InitRules) -> Decision:
    problem = missing(values, INIT_REQUIRED)
    if problem is not None:
        return problem
    scene_id = values["sceneId"] or ""
    order = values["outerOrderNo"] or ""
    encrypt_type = values.get("encryptType")
    problem = check_encrypt_type(encrypt_type)
    if problem is not None:
        return problem
    identity = decrypt_identity(
        rules.sm2_private_key,
        encrypt_type,
        ("certName", "certNo"),
        (values["certName"] or "", values["certNo"] or ""),
    )
    if isinstance(identity, Refusal):
        return identity
    cert_name, cert_no = identity
    problem = check_init(
        rules,
        scene_id=scene_id,
        outer_order_no=order,
        cert_no=cert_no,
        callback_url=values.get("callbackUrl") or None,
    )
    if problem is None:
        if values["bizCode"] not in BIZ_CODES:
            problem = Refusal("401", "bizCode must be FACE")
        elif values["identityType"] != "CERT_INFO":
            problem = Refusal("401", "identityType must be CERT_INFO")
        elif values["certType"] not in CERT_TYPES:
            problem = Refusal("401", "certType must be IDENTITY_CARD")
    if problem is not None:
        return problem
    return NewSession(
        api=API,
        outer_order_no=order,
        scene_id=scene_id,
        cert_name=cert_name,
        cert_no=cert_no,
        return_url=values.get("returnUrl"),
        callback_url=values.get("callbackUrl") or None,
        callback_token=values.get("callbackToken") or None,
        answer=_init_answer,
        meta_info=values.get("metaInfo"),
        encrypt_type=encrypt_type,
    )


def _init_answer(session: Session) -> dict[str, Any]:
    return {"certifyId": session.certify_id, "certifyUrl": session.certify_url}


def _verdict_answer(session: Session) -> dict[str, Any]:
    if session.deleted_at is not None:
        return {"passed": "T" if session.passed else "F", "subCode": session.sub_code}
    return {
        "passed": "T" if session.passed else "F",
        "subCode": session.sub_code,
        "materialInfo": material_info(session),
    }
