"""The errors the extension raises, and THE error catalogue: every stable code, defined once.

Each :class:`ErrorSpec` in :data:`CATALOGUE` is one code a client may branch on, with the one
HTTP status it is always answered with and a user-safe message in Chinese and English (messages
never repeat personal data). The exception classes take their code, status and messages from
it; the blueprint's JSON error body (``{"error": {"code", "message", "fields"?}}``), the OpenAPI
document and the error table of ``docs/tables.md`` are all read from it, and a test checks the
docs table against it in both directions.

Framework-free and a leaf: it imports only the cloud-layer errors (re-exported here, so
applications have one module to import error types from) and :class:`InvalidIdentity` from the
standard-library-only :mod:`flask_alicertify.identity`. :func:`init_error` and
:func:`describe_error` are the one mapping from a cloud error to the answer a client gets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .cloud.errors import CloudBusinessError
from .cloud.errors import CloudError
from .cloud.errors import CloudMalformedResponse
from .cloud.errors import CloudRejected
from .cloud.errors import CloudThrottled
from .cloud.errors import CloudUnavailable
from .cloud.errors import CredentialsMissing
from .identity import InvalidIdentity

__all__ = [
    "CATALOGUE",
    "AttemptsExhausted",
    "CloudBusinessError",
    "CloudError",
    "CloudMalformedResponse",
    "CloudRejected",
    "CloudThrottled",
    "CloudUnavailable",
    "ConfigurationError",
    "CredentialsMissing",
    "ErrorSpec",
    "FieldMessage",
    "Forbidden",
    "IdentityMismatch",
    "IdentityNotVerifiable",
    "InvalidCallbackToken",
    "InvalidCertName",
    "InvalidIdentity",
    "InvalidInput",
    "InvalidReturnUrl",
    "NotFound",
    "SandboxConflict",
    "SandboxNeedsSharedServer",
    "SchemaManagedByMigrations",
    "ServiceError",
    "StorageConfigError",
    "TooManyFailures",
    "Unauthenticated",
    "UnsupportedMediaType",
    "UpstreamError",
    "UpstreamMalformed",
    "UpstreamThrottled",
    "UpstreamUnavailable",
    "VerificationRequired",
]


@dataclass(frozen=True)
class ErrorSpec:
    """One stable error code: the HTTP status it always has, and its default messages."""

    code: str
    status: int
    message_zh: str
    message_en: str

    def message(self, lang: str = "zh") -> str:
        return self.message_zh if lang == "zh" else self.message_en


def _catalogue(*specs: ErrorSpec) -> Mapping[str, ErrorSpec]:
    table = {spec.code: spec for spec in specs}
    assert len(table) == len(specs), "an error code is defined twice"
    return MappingProxyType(table)


#: Every error code the blueprints answer with, code -> :class:`ErrorSpec` (see docs/tables.md).
CATALOGUE: Mapping[str, ErrorSpec] = _catalogue(
    ErrorSpec("invalid_input", 400, "请求参数不正确", "The request is not valid."),
    ErrorSpec("invalid_return_url", 400, "返回地址不被允许", "The return URL is not allowed."),
    ErrorSpec(
        "identity_mismatch",
        400,
        "提交的身份信息与账户不一致",
        "The submitted identity does not match the account.",
    ),
    ErrorSpec(
        "identity_not_verifiable", 400, "该身份无法进行刷脸认证", "This identity cannot be verified by face."
    ),
    ErrorSpec(
        "invalid_cert_name",
        400,
        "姓名无效，请填写身份证上的姓名",
        "The name is not valid; enter the name on the ID card.",
    ),
    ErrorSpec("bad_request", 400, "请求格式不正确", "The request is malformed."),
    ErrorSpec("unauthenticated", 401, "请先登录", "Sign in first."),
    ErrorSpec("forbidden", 403, "无权访问该认证记录", "This verification belongs to someone else."),
    ErrorSpec("invalid_callback_token", 403, "回调令牌无效", "The callback token is missing or wrong."),
    ErrorSpec("verification_required", 403, "请先完成实人认证", "Complete identity verification first."),
    ErrorSpec("unknown_certify_id", 404, "认证记录不存在", "No verification has this certifyId."),
    ErrorSpec("not_found", 404, "请求的地址不存在", "Not Found"),
    ErrorSpec("method_not_allowed", 405, "不支持该请求方法", "This method is not allowed here."),
    ErrorSpec(
        "sandbox_session_closed",
        409,
        "该认证已结束，请重新发起",
        "This verification session is closed; start a new one.",
    ),
    ErrorSpec(
        "sandbox_session_expired",
        410,
        "该认证已过期，请重新发起",
        "This verification session has expired; start a new one.",
    ),
    ErrorSpec("body_too_large", 413, "请求体过大", "The request body is too large."),
    ErrorSpec(
        "unsupported_media_type", 415, "请使用 application/json 提交", "Send the body as application/json."
    ),
    ErrorSpec(
        "attempts_exhausted",
        429,
        "今日认证次数已用完，请明天再试",
        "No verification attempts left today; try again tomorrow.",
    ),
    ErrorSpec(
        "too_many_failures",
        429,
        "刷脸失败次数过多，请明天再试",
        "Too many failed attempts; try again tomorrow.",
    ),
    ErrorSpec("upstream_throttled", 429, "请求过于频繁，请稍后重试", "Too many requests; try again shortly."),
    ErrorSpec("error", 500, "服务暂时不可用", "The service is unavailable."),
    ErrorSpec("internal_server_error", 500, "服务器内部错误", "Internal Server Error"),
    ErrorSpec(
        "upstream_error",
        502,
        "认证服务返回异常，请稍后重试",
        "The verification service answered with an error; try again later.",
    ),
    ErrorSpec(
        "upstream_malformed",
        502,
        "认证服务返回异常，请稍后重试",
        "The verification service answered with an error; try again later.",
    ),
    ErrorSpec(
        "upstream_unavailable",
        503,
        "认证服务暂时不可用，请稍后重试",
        "The verification service is unavailable; try again later.",
    ),
    ErrorSpec(
        "sandbox_needs_shared_server",
        503,
        "沙箱模式需要共享的沙箱服务器",
        "This server runs several processes: sandbox mode needs the shared sandbox server "
        "(python -m flask_alicertify.sandbox) and ALICERTIFY_SANDBOX set to its URL.",
    ),
)

#: The codes of Werkzeug's HTTP errors (routing, body parsing), keyed by their status.
HTTP_ERROR_CODES: Mapping[int, str] = MappingProxyType(
    {
        CATALOGUE[code].status: code
        for code in (
            "bad_request",
            "not_found",
            "method_not_allowed",
            "body_too_large",
            "unsupported_media_type",
            "internal_server_error",
        )
    }
)


def http_error_spec(status: int, name: str) -> ErrorSpec:
    """The catalogue entry for a Werkzeug HTTP error with ``status`` (``name`` is its phrase).

    A status no blueprint answers by itself (an application's ``abort(418)`` in a hook, say)
    keeps Werkzeug's own name as code and message.
    """
    code = HTTP_ERROR_CODES.get(status)
    if code is not None:
        return CATALOGUE[code]
    snake = "_".join(name.lower().replace("-", " ").split()) or "error"
    return ErrorSpec(snake, status, name, name)


class FieldMessage(str):
    """A ``fields`` message: the English text (what the string is) with its Chinese one as ``zh``.

    ``fields`` are localised like ``message`` when the answer is built; a message raised as a
    plain ``str`` is looked up in the blueprint's translation table instead.
    """

    zh: str

    def __new__(cls, en: str, zh: str) -> FieldMessage:
        message = super().__new__(cls, en)
        message.zh = zh
        return message


class ConfigurationError(ValueError):
    """An ``ALICERTIFY_*`` setting is missing or wrong. Raised by ``init_app``, never per request.

    ``key`` is the full config key (with the instance's prefix) so the message and the attribute
    point at the one line of configuration to fix.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key = key
        self.problem = problem


class StorageConfigError(ValueError):
    """``ALICERTIFY_STORAGE`` (or its options) does not describe a usable storage."""


class SchemaManagedByMigrations(RuntimeError):
    """The records table lives in the app's Flask-SQLAlchemy metadata, so migrations own it.

    Raised by ``SQLAlchemyStorage.create_all()`` (and so ``flask alicertify init-db``) instead of
    creating the table behind Alembic's back: a later ``flask db upgrade`` would then fail with
    ``DuplicateTable``. The message names ``flask db upgrade``, the command to run instead.
    """

    def __init__(self, table: str) -> None:
        super().__init__(
            f"the table {table!r} is part of the app's Flask-SQLAlchemy metadata and managed by "
            "migrations: create it with `flask db migrate` and `flask db upgrade`, not init-db"
        )
        self.table = table


class ServiceError(Exception):
    """Base class of the errors a request can end with.

    A subclass names its catalogue row (``class Forbidden(ServiceError, code="forbidden")``) and
    gets that row's code, status and messages. ``code``/``status``/messages passed to the
    constructor override them for one instance.
    """

    code: str = CATALOGUE["error"].code
    status: int = CATALOGUE["error"].status
    message_zh: str = CATALOGUE["error"].message_zh
    message_en: str = CATALOGUE["error"].message_en

    def __init_subclass__(cls, *, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            spec = CATALOGUE[code]
            cls.code, cls.status = spec.code, spec.status
            cls.message_zh, cls.message_en = spec.message_zh, spec.message_en

    def __init__(
        self,
        message_zh: str | None = None,
        message_en: str | None = None,
        *,
        fields: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        if message_zh is not None:
            self.message_zh = message_zh
        if message_en is not None:
            self.message_en = message_en
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.fields = dict(fields) if fields else None
        #: Seconds a client should wait before retrying (sent as ``Retry-After``), or None.
        self.retry_after = retry_after
        super().__init__(self.message_en)

    def message(self, lang: str = "zh") -> str:
        return self.message_zh if lang == "zh" else self.message_en

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.code} {self.status}>"


class InvalidInput(ServiceError, code="invalid_input"):
    """The body or query does not have the documented shape; ``fields`` says where and why."""


class InvalidReturnUrl(InvalidInput, code="invalid_return_url"):
    pass


class IdentityMismatch(InvalidInput, code="identity_mismatch"):
    pass


class InvalidCertName(InvalidInput, code="invalid_cert_name"):
    """A name made only of invisible, filler or combining characters (nothing Alibaba could match)."""


class VerificationRequired(ServiceError, code="verification_required"):
    """``@certify.verified_required``: the signed-in user has no passed verification."""


class SandboxNeedsSharedServer(ServiceError, code="sandbox_needs_shared_server"):
    """``ALICERTIFY_SANDBOX = True`` (the in-process fake) under a multi-process server."""


class UnsupportedMediaType(ServiceError, code="unsupported_media_type"):
    """A blueprint that reads JSON got a body that is not ``application/json``."""


class Unauthenticated(ServiceError, code="unauthenticated"):
    pass


class Forbidden(ServiceError, code="forbidden"):
    pass


class InvalidCallbackToken(ServiceError, code="invalid_callback_token"):
    pass


class NotFound(ServiceError, code="unknown_certify_id"):
    pass


class AttemptsExhausted(ServiceError, code="attempts_exhausted"):
    """Our own ``ALICERTIFY_MAX_ATTEMPTS_PER_DAY`` limit."""


class TooManyFailures(ServiceError, code="too_many_failures"):
    """Alibaba's InitFaceVerify Code 418 (刷脸失败次数过多): its own per-person daily limit."""


class IdentityNotVerifiable(ServiceError, code="identity_not_verifiable"):
    """InitFaceVerify refused this person, not the request: retrying the same identity won't help.

    Code 405 (under 14) and 417 (无法使用刷脸服务, also what a re-init after SubCode 201–203
    answers). The message is per code; the status is 400 because the input cannot succeed.
    """

    MESSAGES = {
        "405": ("未满14周岁，无法使用刷脸认证", "People under 14 cannot use face verification."),
        "417": (
            "该身份暂时无法使用刷脸认证，请核对姓名和身份证号或联系客服",
            "Face verification is not available for this identity; check the name and ID number.",
        ),
    }

    def __init__(self, upstream_code: str) -> None:
        zh, en = self.MESSAGES.get(upstream_code, (self.message_zh, self.message_en))
        super().__init__(zh, en)
        self.upstream_code = upstream_code


class UpstreamThrottled(ServiceError, code="upstream_throttled"):
    """Alibaba throttled InitFaceVerify (always with ``Retry-After``)."""


class UpstreamUnavailable(ServiceError, code="upstream_unavailable"):
    """Alibaba cannot be reached (or throttles describe): the record is kept, retry later."""


class UpstreamError(ServiceError, code="upstream_error"):
    """Alibaba answered, but not with something we can use (business error, rejection)."""


class UpstreamMalformed(UpstreamError, code="upstream_malformed"):
    """Alibaba's answer was not JSON, not the documented shape, or not consistent."""


class SandboxConflict(ServiceError, code="sandbox_session_closed"):
    """Sandbox page: the session already has a verdict (409), or its 30 minutes are over (410).

    Alibaba's real page cannot be submitted twice either (a certifyUrl is single-use).
    ``reason`` is ``"decided"`` or ``"expired"``.
    """

    def __init__(self, reason: str) -> None:
        spec = CATALOGUE["sandbox_session_expired" if reason == "expired" else "sandbox_session_closed"]
        super().__init__(spec.message_zh, spec.message_en, status=spec.status, code=spec.code)
        self.reason = reason


def retry_after(e: CloudThrottled) -> float:
    """The seconds to send as ``Retry-After`` for a throttled call (at least a positive number)."""
    if e.retry_after is None or not math.isfinite(e.retry_after) or e.retry_after <= 0:
        return 1.0
    return e.retry_after


def init_error(e: CloudError) -> ServiceError:
    """The answer to a failed InitFaceVerify: 429, 400 for a person Alibaba refuses, 502 or 503.

    The business codes are Alibaba's InitFaceVerify codes (see docs/tables.md and
    https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/initfaceverify).
    """
    if isinstance(e, CloudThrottled):
        return UpstreamThrottled(retry_after=retry_after(e))
    if isinstance(e, (CloudUnavailable, CredentialsMissing)):
        return UpstreamUnavailable()
    if isinstance(e, CloudBusinessError) and e.code == "418":
        return TooManyFailures()
    if isinstance(e, CloudBusinessError) and e.code in IdentityNotVerifiable.MESSAGES:
        return IdentityNotVerifiable(e.code)
    if isinstance(e, CloudMalformedResponse):
        return UpstreamMalformed()
    return UpstreamError()


def describe_error(e: CloudError) -> ServiceError:
    """The answer to a failed describe on a request that needs one: always 503, the record kept.

    Throttling is a 503 too (with ``Retry-After``): the client retries the same request later,
    exactly as for any other unreachable-Alibaba answer; 429 is reserved for Init.
    """
    if isinstance(e, CloudThrottled):
        return UpstreamUnavailable(retry_after=retry_after(e))
    return UpstreamUnavailable()
