"""The errors the extension raises, each with a stable code, a user-safe message and an HTTP status.

Framework-free: the service raises these, and the blueprint turns them into the JSON error body
``{"error": {"code", "message", "fields"?}}``. ``code`` is the stable, machine-readable part a
client may branch on; ``message`` is safe to show an end user (it never repeats personal data),
in Chinese by default and in English when the request prefers it.

The cloud-layer errors (:class:`~flask_alicertify.cloud.errors.CloudError` and subclasses) are
re-exported here so applications have one module to import error types from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .cloud.errors import CloudBusinessError
from .cloud.errors import CloudError
from .cloud.errors import CloudMalformedResponse
from .cloud.errors import CloudRejected
from .cloud.errors import CloudThrottled
from .cloud.errors import CloudUnavailable
from .cloud.errors import CredentialsMissing
from .identity import InvalidIdentity
from .storage.loader import StorageConfigError

__all__ = [
    "AttemptsExhausted",
    "CloudBusinessError",
    "CloudError",
    "CloudMalformedResponse",
    "CloudRejected",
    "CloudThrottled",
    "CloudUnavailable",
    "ConfigurationError",
    "CredentialsMissing",
    "Forbidden",
    "IdentityMismatch",
    "InvalidCallbackToken",
    "InvalidIdentity",
    "InvalidInput",
    "InvalidReturnUrl",
    "NotFound",
    "ServiceError",
    "StorageConfigError",
    "TooManyFailures",
    "Unauthenticated",
    "UpstreamError",
    "UpstreamThrottled",
    "UpstreamUnavailable",
]


class ConfigurationError(ValueError):
    """An ``ALICERTIFY_*`` setting is missing or wrong. Raised by ``init_app``, never per request.

    ``key`` is the full config key (with the instance's prefix) so the message and the attribute
    point at the one line of configuration to fix.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key = key
        self.problem = problem


class ServiceError(Exception):
    """Base class of the errors a request can end with. Subclasses fix ``code`` and ``status``."""

    code: str = "error"
    status: int = 500
    message_zh: str = "服务暂时不可用"
    message_en: str = "The service is unavailable."

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


class InvalidInput(ServiceError):
    """The body or query does not have the documented shape; ``fields`` says where and why."""

    code = "invalid_input"
    status = 400
    message_zh = "请求参数不正确"
    message_en = "The request is not valid."


class InvalidReturnUrl(InvalidInput):
    code = "invalid_return_url"
    message_zh = "返回地址不被允许"
    message_en = "The return URL is not allowed."


class IdentityMismatch(InvalidInput):
    code = "identity_mismatch"
    message_zh = "提交的身份信息与账户不一致"
    message_en = "The submitted identity does not match the account."


class Unauthenticated(ServiceError):
    code = "unauthenticated"
    status = 401
    message_zh = "请先登录"
    message_en = "Sign in first."


class Forbidden(ServiceError):
    code = "forbidden"
    status = 403
    message_zh = "无权访问该认证记录"
    message_en = "This verification belongs to someone else."


class InvalidCallbackToken(ServiceError):
    code = "invalid_callback_token"
    status = 403
    message_zh = "回调令牌无效"
    message_en = "The callback token is missing or wrong."


class NotFound(ServiceError):
    code = "unknown_certify_id"
    status = 404
    message_zh = "认证记录不存在"
    message_en = "No verification has this certifyId."


class AttemptsExhausted(ServiceError):
    """Our own ``ALICERTIFY_MAX_ATTEMPTS_PER_DAY`` limit."""

    code = "attempts_exhausted"
    status = 429
    message_zh = "今日认证次数已用完，请明天再试"
    message_en = "No verification attempts left today; try again tomorrow."


class TooManyFailures(ServiceError):
    """Alibaba's InitFaceVerify Code 418 (刷脸失败次数过多): its own per-person daily limit."""

    code = "too_many_failures"
    status = 429
    message_zh = "刷脸失败次数过多，请明天再试"
    message_en = "Too many failed attempts; try again tomorrow."


class IdentityNotVerifiable(ServiceError):
    """InitFaceVerify refused this person, not the request: retrying the same identity won't help.

    Code 405 (under 14) and 417 (无法使用刷脸服务, also what a re-init after SubCode 201–203
    answers). The message is per code; the status is 400 because the input cannot succeed.
    """

    code = "identity_not_verifiable"
    status = 400
    message_zh = "该身份无法进行刷脸认证"
    message_en = "This identity cannot be verified by face."

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


class UpstreamThrottled(ServiceError):
    code = "upstream_throttled"
    status = 429
    message_zh = "请求过于频繁，请稍后重试"
    message_en = "Too many requests; try again shortly."


class UpstreamUnavailable(ServiceError):
    code = "upstream_unavailable"
    status = 503
    message_zh = "认证服务暂时不可用，请稍后重试"
    message_en = "The verification service is unavailable; try again later."


class UpstreamError(ServiceError):
    """Alibaba answered, but not with something we can use (business error, rejection, bad JSON)."""

    code = "upstream_error"
    status = 502
    message_zh = "认证服务返回异常，请稍后重试"
    message_en = "The verification service answered with an error; try again later."


class SandboxConflict(ServiceError):
    """Sandbox page: the session already has a verdict, or its 30 minutes are over.

    Alibaba's real page cannot be submitted twice either (a certifyUrl is single-use).
    """

    code = "sandbox_session_closed"
    status = 409
    message_zh = "该认证已结束，请重新发起"
    message_en = "This verification session is closed; start a new one."

    def __init__(self, reason: str) -> None:
        super().__init__(status=410 if reason == "expired" else 409)
        self.reason = reason
