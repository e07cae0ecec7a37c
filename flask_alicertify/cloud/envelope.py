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

import json
from collections.abc import Mapping
from typing import Any

from .base import InitResult
from .base import Verdict
from .errors import CloudBusinessError
from .errors import CloudMalformedResponse

#: Describe/query codes meaning "no result yet"; polling treats them as pending, not failure.
NOT_FINISHED_CODES = frozenset({"424", "403"})
OK_CODE = "200"
#: Alibaba's CertifyIds are 32 hex digits; anything longer than this is not one.
MAX_CERTIFY_ID = 128
MAX_CERTIFY_URL = 8192
#: Alibaba's answers nest three levels deep; far deeper is an attack on whoever walks the tree.
MAX_DEPTH = 32
_MAX_TOKEN = 128
_MAX_MESSAGE = 500


def str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def usable_text(value: Any, *, limit: int) -> bool:
    """A non-empty ``str`` of at most ``limit`` printable characters: no NUL or other control
    character, no lone surrogate (PostgreSQL and UTF-8 encoders refuse both), no line breaks."""
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def clean_token(value: Any) -> str | None:
    """An identifier from an answer (RequestId, SubCode, a header) if usable, else None.

    Informational fields must never break a log line or a stored row because the upstream
    (or something pretending to be it) sent garbage.
    """
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value)
    return text if usable_text(text, limit=_MAX_TOKEN) and " " not in text else None


def clean_message(value: Any) -> str | None:
    """Alibaba's ``Message`` for our errors and logs: control characters and lone surrogates
    replaced, at most 500 characters."""
    if value is None:
        return None
    text = str(value)[:_MAX_MESSAGE]
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def json_depth(value: Any) -> int:
    """Nesting depth of decoded JSON, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_object(content: bytes) -> tuple[dict[str, Any] | None, str]:
    """``(object, "")`` for a JSON object answer, else ``(None, what it is instead)``.

    Never raises: invalid UTF-8, invalid JSON, numbers too long for ``int``, and nesting deep
    enough to exhaust the recursion limit all come back as a reason.
    """
    try:
        data = json.loads(content)
    except RecursionError:
        return None, "JSON nested too deeply"
    except (ValueError, TypeError):  # includes UnicodeDecodeError and int-digits limits
        return None, "not JSON"
    if not isinstance(data, dict):
        return None, f"JSON {type(data).__name__}, not an object"
    if json_depth(data) > MAX_DEPTH:
        return None, f"JSON nested more than {MAX_DEPTH} levels"
    return data, ""


def body_code(data: Mapping[str, Any]) -> str | None:
    """Alibaba's ``Code`` (or SAF's ``code``) as a string; SAF sends it as an integer."""
    value = data.get("Code", data.get("code"))
    return None if value is None else clean_token(value) or "malformed"


def body_message(data: Mapping[str, Any]) -> str | None:
    return clean_message(data.get("Message", data.get("message")))


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
    missing or unusable: a Code 200 without them is not an answer the mini-program can use, and a
    CertifyId that is empty, longer than 128 characters, or holds a NUL, another control character
    or a lone surrogate cannot be stored (PostgreSQL refuses NUL and invalid UTF-8) or echoed."""
    if not usable_text(certify_id, limit=MAX_CERTIFY_ID) or " " in certify_id:
        problem = "no certify id" if not certify_id else "an unusable certify id"
    elif not usable_text(certify_url, limit=MAX_CERTIFY_URL):
        problem = "no certify URL" if not certify_url else "an unusable certify URL"
    else:
        problem = ""
    if problem:
        raise CloudMalformedResponse(
            f"{what} lacks the certify id or the certify URL ({problem})",
            code=OK_CODE,
            request_id=request_id,
            http_status=200,
            endpoint=endpoint,
        )
    return InitResult(certify_id=certify_id, certify_url=certify_url, request_id=request_id)
