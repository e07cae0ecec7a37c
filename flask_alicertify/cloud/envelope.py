"""Reading Alibaba's answer envelope: the body ``Code``, its ``Message``, and what they mean.

Every gateway reads the same envelope the same way, whichever client carried it (our httpx
client or Alibaba's SDK), so the rules live here once:

* ``Code`` "200" is success; any other code on an HTTP 200 answer is a business error the caller
  gets as :class:`~.errors.CloudBusinessError` with Alibaba's ``Message``;
* describe/query answers Code 424 (not verified, abandoned or still in progress) or 403
  (认证未完成) while the user has no result yet: "not finished", never a failure. See
  DescribeFaceVerify's return codes:
  https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/describefaceverify
* a ``Throttling*`` code is the account's QPS quota, whatever HTTP status carries it.

SAF spells the envelope ``code``/``message`` and may send ``code`` as an integer; both spellings
are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import InitResult
from .base import Verdict
from .errors import CloudBusinessError
from .errors import CloudMalformedResponse

#: Describe/query codes meaning "no result yet"; polling treats them as pending, not failure.
NOT_FINISHED_CODES = frozenset({"424", "403"})
OK_CODE = "200"


def str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def body_code(data: Mapping[str, Any]) -> str | None:
    """Alibaba's ``Code`` (or SAF's ``code``) as a string; SAF sends it as an integer."""
    return str_or_none(data.get("Code", data.get("code")))


def body_message(data: Mapping[str, Any]) -> str | None:
    return str_or_none(data.get("Message", data.get("message")))


def is_throttling(code: str | None) -> bool:
    """``Throttling``, ``Throttling.User``, ``Throttling.Api`` …: the per-account QPS quota."""
    return code is not None and code.startswith("Throttling")


def business_error(
    what: str, data: Mapping[str, Any], request_id: str | None, endpoint: str | None
) -> CloudBusinessError:
    """The error for an HTTP 200 answer whose ``Code`` is not "200" (``what`` names the call)."""
    code = body_code(data)
    message = body_message(data) or f"{what} returned Code {code}"
    return CloudBusinessError(message, code=code, request_id=request_id, http_status=200, endpoint=endpoint)


def require_ok(what: str, data: Mapping[str, Any], request_id: str | None, endpoint: str | None) -> None:
    """Raise :func:`business_error` unless the answer's ``Code`` is "200"."""
    if body_code(data) != OK_CODE:
        raise business_error(what, data, request_id, endpoint)


def not_finished(data: Mapping[str, Any], request_id: str | None) -> Verdict | None:
    """The "not finished" verdict when the answer's ``Code`` says so, else None."""
    code = body_code(data)
    if code in NOT_FINISHED_CODES:
        return Verdict(finished=False, passed=False, request_id=request_id, code=code or "", raw=dict(data))
    return None


def checked_init_result(
    certify_id: Any, certify_url: Any, *, what: str, request_id: str | None, endpoint: str | None
) -> InitResult:
    """An :class:`InitResult` from an answer's two fields, or CloudMalformedResponse if either is
    missing: a Code 200 without them is not an answer the mini-program can use."""
    if (
        not isinstance(certify_id, str)
        or not certify_id
        or not isinstance(certify_url, str)
        or not certify_url
    ):
        raise CloudMalformedResponse(
            f"{what} lacks the certify id or the certify URL",
            code=OK_CODE,
            request_id=request_id,
            http_status=200,
            endpoint=endpoint,
        )
    return InitResult(certify_id=certify_id, certify_url=certify_url, request_id=request_id)
