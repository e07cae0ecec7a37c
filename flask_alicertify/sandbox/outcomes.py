"""What a sandbox user can choose on the certify page, and what each choice means.

In production the mini-program hands ``certifyUrl`` to ``my.call('startBizService', {name:
'open-certify'})``, Alibaba's page runs the face check, and the mini-program's callback receives
a ``verifyResult`` ``{resultStatus, result: {certifyId, errorCode} | null}`` (Alibaba's
mini-program guide, https://help.aliyun.com/document_detail/144545.html; docs/tables.md). In
sandbox mode nobody can run a face check, so the sandbox page lets a person (or a script, through
the same POST) choose what happens instead. Framework-free, one job per function:

* :func:`parse_outcome_body` validates the POST body of ``{prefix}/sandbox/certify/<certifyId>``;
* :func:`cloud_completion` says what the fake cloud must record for an outcome (the server-side
  truth ``DescribeFaceVerify`` will later report);
* :func:`outcome_to_verify_result` builds what the mini-program's callback would receive (the
  client-side claim, which the server never trusts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..records import SUBCODES

#: The outcomes a sandbox user can choose, in the order the page shows them.
OUTCOMES: tuple[str, ...] = ("pass", "fail", "cancel", "network_error", "business_error")

#: SubCodes that mean "passed" (210 is an undocumented policy pass; docs/tables.md, ``SubCode``).
PASS_SUB_CODES: frozenset[str] = frozenset({"200", "210"})

#: SubCodes a failed check may end with: every known code that is not a pass.
FAIL_SUB_CODES: frozenset[str] = frozenset(SUBCODES) - PASS_SUB_CODES

#: The documented failing SubCodes (201-206) the page offers, with their Chinese text.
PAGE_SUB_CODES: Mapping[str, str] = {
    code: row.message_zh for code, row in SUBCODES.items() if row.documented and code not in PASS_SUB_CODES
}

#: The SubCode a ``fail`` without ``subCode`` ends with (face mismatch, like ``Outcome.fails()``).
DEFAULT_FAIL_SUB_CODE = "204"

#: The client ``errorCode`` used when none is given (the one documented code that claims nothing).
DEFAULT_ERROR_CODE = "UNKNOWN_ERROR"

# Alibaba's mini-program guide lists its errorCodes as "部分错误码" (some of them): accept any
# code-shaped string so scripts can exercise a client's handling of codes nobody documented yet.
_ERROR_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

_ALLOWED_FIELDS: Mapping[str, frozenset[str]] = {
    "pass": frozenset({"outcome", "subCode"}),
    "fail": frozenset({"outcome", "subCode", "errorCode"}),
    "cancel": frozenset({"outcome"}),
    "network_error": frozenset({"outcome"}),
    "business_error": frozenset({"outcome", "errorCode"}),
}


class OutcomeError(ValueError):
    """The POST body is not a valid outcome; ``fields`` maps each bad field to a message.

    A ``ValueError`` so framework-free callers can catch the usual type; the view turns
    ``fields`` into the ``{"error": {"fields": ...}}`` part of the 400 answer.
    """

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields: dict[str, str] = dict(fields)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.fields.items()))


def parse_outcome_body(body: object) -> tuple[str, str | None, str | None]:
    """Validate a sandbox POST body and return ``(outcome, sub_code, error_code)`` with defaults applied.

    * ``pass`` -> ``("pass", "200" | "210", None)``
    * ``fail`` -> ``("fail", <failing SubCode, default "204">, <errorCode, default "UNKNOWN_ERROR">)``
    * ``cancel`` / ``network_error`` -> ``(outcome, None, None)``
    * ``business_error`` -> ``("business_error", None, <errorCode, default "UNKNOWN_ERROR">)``

    Fields that do not apply to the chosen outcome are rejected rather than ignored: a script
    sending ``{"outcome": "cancel", "subCode": "204"}`` has a bug it should hear about.

    :raises OutcomeError: with one message per bad field.
    """
    if not isinstance(body, Mapping):
        raise OutcomeError({"body": "must be a JSON object"})
    outcome = body.get("outcome")
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise OutcomeError({"outcome": f"must be one of {', '.join(OUTCOMES)}"})
    errors: dict[str, str] = {}
    for key in body:
        if key not in _ALLOWED_FIELDS[outcome]:
            errors[str(key)] = f"not allowed with outcome {outcome!r}"

    sub_code: str | None = None
    error_code: str | None = None
    raw_sub = body.get("subCode")
    raw_err = body.get("errorCode")
    if outcome == "pass":
        sub_code = "200"
        if "subCode" in body:
            if raw_sub not in PASS_SUB_CODES:
                errors["subCode"] = f"a passing SubCode: one of {', '.join(sorted(PASS_SUB_CODES))}"
            else:
                sub_code = str(raw_sub)
    elif outcome == "fail":
        sub_code = DEFAULT_FAIL_SUB_CODE
        if "subCode" in body:
            if raw_sub not in FAIL_SUB_CODES:
                errors["subCode"] = f"a failing SubCode: one of {', '.join(sorted(FAIL_SUB_CODES))}"
            else:
                sub_code = str(raw_sub)
    if outcome in ("fail", "business_error"):
        error_code = DEFAULT_ERROR_CODE
        if "errorCode" in body:
            if not isinstance(raw_err, str) or not _ERROR_CODE_RE.match(raw_err):
                errors["errorCode"] = (
                    "an upper-case code such as UNKNOWN_ERROR, SYSTEM_ERROR, USER_IS_NOT_CERTIFY"
                )
            else:
                error_code = raw_err
    if errors:
        raise OutcomeError(errors)
    return outcome, sub_code, error_code


def cloud_completion(outcome: str, *, sub_code: str | None = None) -> tuple[bool, str] | None:
    """What the fake cloud must record for ``outcome``: ``(passed, sub_code)``, or None for nothing.

    Only ``pass`` and ``fail`` finish the face check. Cancel, network error and business error
    leave the session unfinished, so ``DescribeFaceVerify`` keeps answering Code 424 (certify
    record not found / not finished), exactly what Alibaba does when the user never completes.
    """
    if outcome == "pass":
        return True, sub_code or "200"
    if outcome == "fail":
        return False, sub_code or DEFAULT_FAIL_SUB_CODE
    if outcome in OUTCOMES:
        return None
    raise ValueError(f"unknown outcome {outcome!r}")


def outcome_to_verify_result(
    outcome: str, *, certify_id: str, error_code: str | None = None
) -> dict[str, Any]:
    """The ``verifyResult`` the mini-program's ``open-certify`` callback receives for ``outcome``.

    ============== ============================================================================
    pass           ``{"resultStatus": "9000", "result": {"certifyId": id}}``
    fail           ``{"resultStatus": "4000", "result": {"certifyId": id, "errorCode": code}}``
    cancel         ``{"resultStatus": "6001", "result": None}``
    network_error  ``{"resultStatus": "6002", "result": None}``
    business_error ``{"resultStatus": "4000", "result": {"certifyId": id, "errorCode": code}}``
    ============== ============================================================================

    Why a failed face check is 4000 and not 9000: Alibaba's mini-program guide
    (https://help.aliyun.com/document_detail/144545.html) defines 9000 as "认证通过" (passed) and
    lists no other terminal status, so a page that ends without a pass can only report 4000 (业务
    异常). Its ``errorCode`` defaults to ``UNKNOWN_ERROR``, the one documented code that asserts
    nothing Alibaba has not documented (``USER_IS_NOT_CERTIFY`` may just as well mean "the Alipay
    account has no real-name certification"). Either way the verdict comes from the server:
    ``DescribeFaceVerify`` reports ``Passed = "F"`` with the chosen SubCode, and a forged 9000 is
    the pytest kit's job (``9000 forged``), not this page's. There is no SubCode parameter:
    Alibaba's callback carries none, so the client never sees it.

    The guide says ``result`` is empty for 6001/6002, so both give ``None``; tests that want a
    null ``result`` for 9000/4000 null it themselves.
    """
    if outcome == "pass":
        return {"resultStatus": "9000", "result": {"certifyId": certify_id}}
    if outcome in ("fail", "business_error"):
        return {
            "resultStatus": "4000",
            "result": {"certifyId": certify_id, "errorCode": error_code or DEFAULT_ERROR_CODE},
        }
    if outcome == "cancel":
        return {"resultStatus": "6001", "result": None}
    if outcome == "network_error":
        return {"resultStatus": "6002", "result": None}
    raise ValueError(f"unknown outcome {outcome!r}")
