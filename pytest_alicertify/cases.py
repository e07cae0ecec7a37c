"""The outcome matrix: every way the mini-program can report, and what the server must conclude.

Each :class:`Case` scripts what Alibaba will decide, builds the ``verifyResult`` the mini-program
would post, and carries the outcome the server must reach. The client's ``resultStatus`` is only
a claim: the expected status always follows Alibaba's verdict, never the claim, which is the whole
point of the warning in Alibaba's mini-program guide that "前端数据是可以修改的"
(https://help.aliyun.com/document_detail/144545.html).

This is the one matrix: the kit's ``alicertify_case`` fixture runs it against a user's app, and
the project's own tests run it against the extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from typing import Literal

from flask_alicertify.records import SUBCODES
from flask_alicertify.sandbox.fake import Outcome

ResultShape = Literal["normal", "null", "mismatch"]

#: The certify id a "mismatch" case puts in ``result.certifyId``: a well-formed id of nobody.
FOREIGN_CERTIFY_ID = "f" * 32


@dataclass(frozen=True)
class Expected:
    """What the server must answer after the result post."""

    status: str
    passed: bool
    retryable: bool


@dataclass(frozen=True)
class Case:
    """One row of the matrix. ``id`` is the readable pytest id, e.g. ``9000-confirmed``."""

    id: str
    #: What the mini-program posts as ``resultStatus``: a string, or a number as some clients send it.
    result_status: str | int
    outcome: Outcome
    expected: Expected
    error_code: str | None = None
    result: ResultShape = "normal"
    description: str = ""

    def script(self, cloud: Any) -> None:
        """Tell the fake cloud what Alibaba decides for the next session."""
        cloud.script_next(self.outcome)

    def payload(self, certify_id: str) -> dict[str, Any]:
        """The body the mini-program posts to ``/result`` for this case."""
        result: dict[str, Any] | None
        if self.result == "null":
            result = None
        else:
            result = {"certifyId": FOREIGN_CERTIFY_ID if self.result == "mismatch" else certify_id}
            if self.error_code is not None:
                result["errorCode"] = self.error_code
        return {"certifyId": certify_id, "resultStatus": self.result_status, "result": result}

    def check(self, body: dict[str, Any]) -> None:
        """Assert the server's answer matches :attr:`expected`, with a message that says why."""
        got = Expected(str(body.get("status")), bool(body.get("passed")), bool(body.get("retryable")))
        assert got == self.expected, (
            f"case {self.id}: expected {self.expected}, server answered {got} ({self.description})"
        )


def _failed(sub_code: str) -> Expected:
    return Expected("failed", False, SUBCODES[sub_code].retryable)


PASSED = Expected("passed", True, False)
PENDING = Expected("pending", False, False)
ABANDONED = Expected("abandoned", False, True)

CASES: tuple[Case, ...] = (
    Case("9000-confirmed", "9000", Outcome.passes(), PASSED, description="client and Alibaba agree"),
    Case("9000-null-result", "9000", Outcome.passes(), PASSED, result="null", description="result is null"),
    Case(
        "9000-as-number",
        9000,
        Outcome.passes(),
        PASSED,
        result="null",
        description="resultStatus posted as the number 9000, not the string",
    ),
    Case(
        "9000-foreign-result-id",
        "9000",
        Outcome.passes(),
        PASSED,
        result="mismatch",
        description="result.certifyId differs; the stored id is used",
    ),
    Case(
        "9000-forged-passed-F",
        "9000",
        Outcome.fails("204"),
        _failed("204"),
        description="the client claims 9000 but Alibaba says Passed=F",
    ),
    *(
        Case(
            f"9000-forged-{code}",
            "9000",
            Outcome.fails(code),
            _failed(code),
            description=f"the client claims 9000 but Alibaba failed it with SubCode {code}",
        )
        for code in ("201", "202", "203", "205", "206")
    ),
    Case(
        "9000-pending-424",
        "9000",
        Outcome.never_finishes(),
        PENDING,
        description="the client claims 9000 but Alibaba says not finished (424)",
    ),
    Case(
        "9000-forged-null-result",
        "9000",
        Outcome.never_finishes(),
        PENDING,
        result="null",
        description="a bare 9000 claim with no result and no session behind it",
    ),
    Case("6001-cancelled", "6001", Outcome.never_finishes(), ABANDONED, result="null"),
    Case(
        "6001-with-result",
        "6001",
        Outcome.never_finishes(),
        ABANDONED,
        description="a 6001 that still carries a result object (the guide says it is empty)",
    ),
    Case(
        "6001-but-passed",
        "6001",
        Outcome.passes(),
        PASSED,
        result="null",
        description="the user cancelled after Alibaba had passed them: the verdict wins",
    ),
    Case("6002-network", "6002", Outcome.never_finishes(), ABANDONED, result="null"),
    Case(
        "6002-but-failed",
        "6002",
        Outcome.fails("205"),
        _failed("205"),
        result="null",
        description="the network failed after Alibaba had decided",
    ),
    *(
        Case(f"4000-{code}", "4000", Outcome.never_finishes(), ABANDONED, error_code=code)
        for code in ("UNKNOWN_ERROR", "SYSTEM_ERROR", "USER_IS_NOT_CERTIFY")
    ),
    Case("4000-null-result", "4000", Outcome.never_finishes(), ABANDONED, result="null"),
    Case(
        "4000-but-failed",
        "4000",
        Outcome.fails("205"),
        _failed("205"),
        error_code="SYSTEM_ERROR",
        description="a business error reported after Alibaba had failed the user: the verdict wins",
    ),
    Case(
        "4000-undocumented-errorCode",
        "4000",
        Outcome.never_finishes(),
        ABANDONED,
        error_code="Z1234_NEW_CODE",
        description="the guide's errorCode list is partial",
    ),
    Case(
        "unknown-status",
        "7777",
        Outcome.never_finishes(),
        PENDING,
        description="an undocumented resultStatus is recorded, not an error",
    ),
    Case(
        "unknown-status-passed",
        "7777",
        Outcome.passes(),
        PASSED,
        result="null",
        description="an undocumented resultStatus while Alibaba passed the user",
    ),
)


def case_by_id(case_id: str) -> Case | None:
    """The row of :data:`CASES` with this id, or None."""
    return next((case for case in CASES if case.id == case_id), None)
