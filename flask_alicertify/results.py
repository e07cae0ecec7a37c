"""What a client is told about a record: the result body, its user message, whether to retry.

These are pure functions of a :class:`~flask_alicertify.records.Record`, with no Flask, so the
service layer re-exports them and anything (a CLI, a job, a test) can build the same answer the
blueprint sends. :mod:`flask_alicertify.responses` serves them as JSON.
"""

from __future__ import annotations

from typing import Any

from .records import STATUS_MESSAGES
from .records import SUBCODES
from .records import ClientStatus
from .records import Record
from .records import Status
from .records import subcode_message

#: Statuses whose record a client may retry by starting a new verification.
RETRYABLE_STATUSES: frozenset[Status] = frozenset({Status.ABANDONED, Status.EXPIRED, Status.INIT_FAILED})


def user_message(record: Record, lang: str = "zh") -> str:
    """A user-safe text for the record: the SubCode's text for a verdict, else the state's."""
    if record.status in (Status.PASSED, Status.FAILED):
        text = subcode_message(record.sub_code, lang=lang)
        if text is not None:
            return text
    key = record.status.value
    if record.status in (Status.ABANDONED, Status.PENDING):
        if record.client_status == ClientStatus.CANCELLED.value:
            key = "cancelled"
        elif record.client_status == ClientStatus.NETWORK_ERROR.value:
            key = "network_error"
    zh, en = STATUS_MESSAGES[key]
    return zh if lang == "zh" else en


def retryable(record: Record) -> bool:
    """Whether starting a new verification makes sense for the user.

    True for abandoned, expired and init_failed records, and for a failure whose SubCode says a
    new attempt can succeed (a face mismatch can, a name/ID mismatch cannot). Unknown SubCodes
    count as retryable: the attempt limit bounds the cost of being wrong.
    """
    if record.status == Status.FAILED:
        row = SUBCODES.get(record.sub_code or "")
        return True if row is None else row.retryable
    return record.status in RETRYABLE_STATUSES


def result_body(record: Record, lang: str = "zh") -> dict[str, Any]:
    """The JSON body of ``POST /result`` and ``GET /result/<certifyId>`` (see docs/tables.md)."""
    return {
        "certifyId": record.certify_id,
        "status": record.status.value,
        "passed": record.status == Status.PASSED,
        "subCode": record.sub_code,
        "message": user_message(record, lang),
        "retryable": retryable(record),
        "clientStatus": record.client_status,
    }
