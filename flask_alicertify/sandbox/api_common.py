"""What the two API handlers share: the request being answered, their decisions, common checks.

A handler (:mod:`.cloudauth_api`, :mod:`.saf_api`) reads one request and decides: refuse it
(:class:`Refusal`), open a session (:class:`NewSession`) or report on one (:class:`Lookup`).
It never touches the fake's state; :class:`~flask_alicertify.sandbox.fake.FakeCloud` carries
the decision out, records the call and wraps the answer in the API's envelope. The checks both
APIs make on an init (scene, order number, ID number, callback URL) are written once here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Literal
from typing import Protocol
from urllib.parse import urlsplit

from .protocol import SAF_ACTION
from .protocol import WireRequest
from .values import Call
from .values import Session

ApiName = Literal["cloudauth", "saf"]
#: Builds the ``ResultObject`` / ``Data`` of a Code 200 answer from the session it is about.
Answer = Callable[[Session], dict[str, Any]]

_OUTER_ORDER_NO = re.compile(r"[A-Za-z0-9]{1,32}")
_CERT_NO = re.compile(r"[0-9]{15}|[0-9]{17}[0-9Xx]")
_SCENE_ID = re.compile(r"[0-9]{1,20}")


def text(value: Any) -> str | None:
    """A JSON value as the string Alibaba would read it (numbers allowed for ids)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value)


def _json_object(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def is_json_object(raw: str) -> bool:
    return _json_object(raw) is not None


@dataclass(frozen=True)
class Incoming:
    """A request being answered: what is known before its answer, enough to record it however it ends.

    SAF's ``ServiceParameters`` is decoded here, once: the action name, the handler, the
    recorded :class:`~flask_alicertify.sandbox.values.Call` and its repr all read this copy.
    """

    wire: WireRequest
    #: ``InitFaceVerify``, ``DescribeFaceVerify``, ``ExecuteRequest:init``, ``ExecuteRequest:query``.
    action: str
    request_id: str
    at: float
    #: Query and form parameters merged (RPC gateways accept a parameter in either place).
    params: dict[str, str]
    #: ``ServiceParameters`` decoded; empty when absent or not a JSON object.
    service_parameters: dict[str, Any]

    @classmethod
    def read(cls, wire: WireRequest, request_id: str, at: float) -> Incoming:
        params = wire.params
        raw = params.get("ServiceParameters")
        decoded = _json_object(raw)
        action = wire.action or "<no action>"
        if wire.action == SAF_ACTION:
            method = decoded.get("method") if decoded else None
            action = f"{SAF_ACTION}:{method}" if isinstance(method, str) and method else SAF_ACTION
        return cls(wire, action, request_id, at, params, decoded or {})

    def recorded(
        self,
        status: int | None,
        code: str | None,
        *,
        certify_id: str | None = None,
        fault: str | None = None,
        detail: str | None = None,
    ) -> Call:
        """The :class:`~flask_alicertify.sandbox.values.Call` this request ended as."""
        return Call(
            action=self.action,
            host=self.wire.host,
            params=self.params,
            status_code=status,
            code=code,
            request_id=self.request_id,
            certify_id=certify_id or self.requested_certify_id(),
            fault=fault,
            detail=detail,
            service_parameters=self.service_parameters,
            headers=dict(self.wire.headers),
            at=self.at,
        )

    def requested_certify_id(self) -> str | None:
        """The certify id a describe/query asks about, so even refused or faulted calls name it."""
        if self.wire.action == "DescribeFaceVerify":
            return self.params.get("CertifyId") or None
        if self.action == f"{SAF_ACTION}:query":
            return text(self.service_parameters.get("certifyId")) or None
        return None


# ---------------------------------------------------------------------------------------------
# Decisions


@dataclass(frozen=True)
class Refusal:
    """Answer business Code ``code`` (HTTP 200); ``detail`` says why, without personal data."""

    code: str
    detail: str


@dataclass(frozen=True)
class NewSession:
    """An init that passed its checks: the session to open, and the answer once it exists."""

    api: ApiName
    outer_order_no: str
    scene_id: str
    cert_name: str
    cert_no: str
    return_url: str | None
    callback_url: str | None
    callback_token: str | None
    answer: Answer
    product_code: str | None = None
    meta_info: str | None = None
    #: ``"SM2"`` when ``cert_name``/``cert_no`` arrived encrypted (they are decrypted here).
    encrypt_type: str | None = None

    def open(self, certify_id: str, *, created_at: float, certify_url: str) -> Session:
        return Session(
            certify_id=certify_id,
            outer_order_no=self.outer_order_no,
            scene_id=self.scene_id,
            cert_name=self.cert_name,
            cert_no=self.cert_no,
            return_url=self.return_url,
            callback_url=self.callback_url,
            callback_token=self.callback_token,
            api=self.api,
            created_at=created_at,
            certify_url=certify_url,
            product_code=self.product_code,
            meta_info=self.meta_info,
            encrypt_type=self.encrypt_type,
        )


@dataclass(frozen=True)
class Deletion:
    """A ``DeleteFaceVerifyResult``: forget the session's personal data, answer ``DeleteResult``.

    ``after_query`` is ``DeleteAfterQuery=Y``: refused (``NEED_QUERY_VERIFY_RESULT``) until
    the session was described at least once.
    """

    certify_id: str
    after_query: bool


@dataclass(frozen=True)
class Lookup:
    """A describe/query: Code 424 until the session is finished, then Code 200 with ``answer``."""

    api: ApiName
    certify_id: str
    scene_id: str
    answer: Answer


Decision = Refusal | NewSession | Lookup | Deletion


# ---------------------------------------------------------------------------------------------
# Checks both APIs make


class InitRules(Protocol):
    """The fake's settings an init is checked against (``FakeCloud`` has both attributes)."""

    https_callbacks_only: bool
    scene_ids: frozenset[str] | None
    #: Decrypts ``EncryptType=SM2`` identities; None answers every encrypted init with Code 501.
    sm2_private_key: str | None


def missing(values: Mapping[str, str | None], names: Sequence[str]) -> Refusal | None:
    """Code 400 参数不能为空 naming every required parameter that is absent or empty."""
    absent = [name for name in names if not values.get(name)]
    return Refusal("400", f"missing {', '.join(absent)}") if absent else None


def check_scene(rules: InitRules, scene_id: str) -> Refusal | None:
    """Code 404 认证场景配置不存在 when the fake was told its scenes and this is not one."""
    if rules.scene_ids is not None and scene_id not in rules.scene_ids:
        return Refusal("404", "unknown SceneId")
    return None


def check_encrypt_type(encrypt_type: str | None) -> Refusal | None:
    """Code 401 for an ``EncryptType`` other than SM2 (the only one Alibaba documents)."""
    if encrypt_type is not None and encrypt_type.upper() != "SM2":
        return Refusal("401", "EncryptType must be SM2")
    return None


def check_init(
    rules: InitRules,
    *,
    scene_id: str,
    outer_order_no: str,
    cert_no: str,
    callback_url: str | None,
) -> Refusal | None:
    """The Code 401 参数非法 checks of an init parameter both APIs have, then the scene check.

    ``cert_no`` is the clear ID number (already decrypted when the init was SM2-encrypted).
    """
    if not _SCENE_ID.fullmatch(scene_id):
        return Refusal("401", "SceneId must be a number")
    if not _OUTER_ORDER_NO.fullmatch(outer_order_no):
        return Refusal("401", "OuterOrderNo must be 1-32 letters or digits")
    if not _CERT_NO.fullmatch(cert_no):
        return Refusal("401", "CertNo must be 15 digits, or 17 digits and a digit or X")
    if callback_url is not None:
        scheme = urlsplit(callback_url).scheme.lower()
        allowed = ("https",) if rules.https_callbacks_only else ("https", "http")
        if scheme not in allowed:
            return Refusal("401", "CallbackUrl must be an https URL")
    return check_scene(rules, scene_id)


def material_info(session: Session) -> str:
    """``MaterialInfo`` is a JSON *string* on the wire; scores follow the verdict.

    Its shape is the one DescribeFaceVerify documents for ``ResultObject.MaterialInfo``:
    https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/describefaceverify
    """
    passed = bool(session.passed)
    return json.dumps(
        {
            "faceAttack": "F" if passed or session.sub_code != "205" else "T",
            "faceOcclusion": "F",
            "facialPictureFront": {
                "qualityScore": 88.36,
                "verifyScore": 93.2 if passed else 12.5,
                "faceAttackScore": 0.01,
            },
        },
        separators=(",", ":"),
    )
