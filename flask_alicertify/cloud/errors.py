"""Typed errors for everything that can go wrong between us and Alibaba Cloud.

The service layer maps these to HTTP answers (503 for unavailable, 429 for throttled, 502 for
malformed, 400/502 for business codes) without looking at strings. Messages never contain
personal data: they carry Alibaba's Code, Message and RequestId only.
"""

from __future__ import annotations


class CloudError(Exception):
    """Base class. ``code`` is Alibaba's Code (or our own for transport faults)."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id
        self.http_status = http_status
        self.endpoint = endpoint

    def __str__(self) -> str:
        parts = [self.message]
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.http_status is not None:
            parts.append(f"http_status={self.http_status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        if self.endpoint:
            parts.append(f"endpoint={self.endpoint}")
        return " ".join(parts)


class CloudUnavailable(CloudError):
    """Every endpoint failed with a connect error, timeout, HTTP 5xx or body Code 500."""

    retryable = True

    @classmethod
    def after(cls, action: str, tried: int, last: CloudError) -> CloudUnavailable:
        """The error to raise once failover ran out of endpoints, carrying the last cause."""
        return cls(
            f"{action}: every endpoint failed ({tried} tried); last: {last.message}",
            code=last.code,
            request_id=last.request_id,
            http_status=last.http_status,
            endpoint=last.endpoint,
        )


class CloudThrottled(CloudError):
    """HTTP 429, a ``Throttling*`` code, or ``x-acs-retry-after``. ``retry_after`` is in seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class CloudMalformedResponse(CloudError):
    """The answer was not JSON, or not the JSON shape the action documents."""

    retryable = True


class CloudRejected(CloudError):
    """HTTP 4xx from the gateway itself (bad signature, unknown key, missing parameter)."""


class CloudBusinessError(CloudError):
    """HTTP 200 with a non-"200" body ``Code`` (e.g. 401 illegal parameter, 417, 418)."""


class CloudNotSupported(CloudError):
    """The configured API documents no such call (e.g. DeleteFaceVerifyResult on SAF)."""


class CredentialsMissing(CloudError):
    """No access key was configured and none could be found in the environment or chain."""
