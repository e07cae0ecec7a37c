"""The verification record, its statuses, and Alibaba's SubCode table.

A :class:`Record` is what the extension keeps for one verification attempt. It never holds the
clear ID number or name (only an HMAC digest and masked forms) and never the ``certifyUrl``:
the URL is single-use and short-lived, and whoever holds it can complete someone else's check.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Status(str, enum.Enum):
    """Where a record stands. docs/flow.md gives the meaning of each value."""

    INITIATING = "initiating"
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    ABANDONED = "abandoned"
    EXPIRED = "expired"
    INIT_FAILED = "init_failed"

    @property
    def terminal(self) -> bool:
        """Terminal records are never re-described and never change again."""
        return self in TERMINAL

    def __str__(self) -> str:
        return self.value


TERMINAL: frozenset[Status] = frozenset({Status.PASSED, Status.FAILED, Status.EXPIRED, Status.INIT_FAILED})
NON_TERMINAL: frozenset[Status] = frozenset(set(Status) - TERMINAL)


class ClientStatus(str, enum.Enum):
    """The mini-program's ``resultStatus`` values Alibaba's mini-program guide documents
    (https://help.aliyun.com/document_detail/144545.html).

    Unknown values are still recorded as plain strings: the guide's list is not exhaustive, and
    an unknown status must never be an error (it is only a claim, confirmed server-side).
    """

    PASSED = "9000"
    CANCELLED = "6001"
    NETWORK_ERROR = "6002"
    BUSINESS_ERROR = "4000"

    def __str__(self) -> str:
        return self.value


#: Documented client ``errorCode`` values for resultStatus 4000 (the guide says the list is partial).
CLIENT_ERROR_CODES: Mapping[str, str] = {
    "UNKNOWN_ERROR": "未知异常",
    "SYSTEM_ERROR": "系统异常",
    "USER_IS_NOT_CERTIFY": "用户未认证",
}


@dataclass(frozen=True)
class SubCode:
    """One row of Alibaba's DescribeFaceVerify ``SubCode`` table.

    ``documented`` is False for codes seen only in third-party enums (docs/tables.md); they are
    kept so users see a sensible message, but they never decide a verdict: only ``Passed`` does.
    """

    code: str
    message_zh: str
    message_en: str
    documented: bool
    retryable: bool


SUBCODES: Mapping[str, SubCode] = {
    s.code: s
    for s in (
        SubCode("200", "认证通过", "Verification passed.", True, False),
        SubCode("201", "姓名和身份证不一致", "The name does not match the ID number.", True, False),
        SubCode("202", "查询不到身份信息", "No identity record was found.", True, False),
        SubCode("203", "查询不到照片或照片不可用", "No usable reference photo.", True, False),
        SubCode("204", "人脸比对不一致", "The face does not match.", True, True),
        SubCode("205", "活体检测存在风险", "The liveness check found a risk.", True, True),
        SubCode("206", "业务策略限制", "Blocked by the business policy.", True, False),
        SubCode("207", "人脸与身份证人脸比对不一致", "The face does not match the ID card.", False, True),
        SubCode("209", "权威比对源异常", "The authoritative source is unavailable.", False, True),
        SubCode("210", "认证通过", "Verification passed (policy decision).", False, False),
        SubCode("220", "意愿判定不通过", "The intent check did not pass.", False, True),
        SubCode("221", "声纹比对不一致", "The voiceprint does not match.", False, True),
        SubCode("222", "常规认证失败", "Verification failed.", False, True),
    )
}

#: User-safe texts for record states that have no SubCode (yet).
STATUS_MESSAGES: Mapping[str, tuple[str, str]] = {
    "initiating": ("认证初始化中", "Verification is being set up."),
    "pending": ("认证处理中，请稍候", "Verification is in progress."),
    "abandoned": ("认证未完成，可重新发起", "Verification was not completed; you can start again."),
    "expired": ("认证已过期，请重新发起", "Verification expired; please start again."),
    "init_failed": ("认证发起失败，请稍后重试", "Verification could not be started; try again later."),
    "cancelled": ("认证已取消", "Verification was cancelled."),
    "network_error": ("网络异常，请检查网络后重试", "Network error; check the connection and retry."),
    "failed": ("认证未通过", "Verification did not pass."),
    "passed": ("认证通过", "Verification passed."),
}


def subcode_message(sub_code: str | None, *, lang: str = "zh") -> str | None:
    """The user-safe text for a SubCode, or None when the code is unknown."""
    row = SUBCODES.get(sub_code or "")
    if row is None:
        return None
    return row.message_zh if lang == "zh" else row.message_en


@dataclass(frozen=True)
class Record:
    """One verification attempt, as storage keeps it.

    ``id`` is our own OuterOrderNo (32 hex characters), written before Alibaba is called so an
    attempt is never lost. Personal data appears only as a keyed digest and masked forms.

    ``user_id`` is the text form of whatever the app's user loader produced, because every store
    keys on text; ``user_id_type`` remembers whether that was an ``int``, so
    :attr:`typed_user_id` hands the app back the value it gave (an integer primary key stays an
    integer for lookups in the app's own tables).

    ``instance`` names the extension instance that made the record: two instances pointed at
    one store must never settle each other's records. ``sandbox`` marks records made against
    the fake cloud, so they can never count as a real verification. ``delivered_at``,
    ``deleted_at`` and ``purged_at`` say when the outcome signal was delivered, when Alibaba's
    copy of the result was deleted and when the retention purge cleared the identity fields.
    """

    id: str
    status: Status
    created_at: datetime
    updated_at: datetime
    user_id: str | None = None
    api: str = "cloudauth"
    certify_id: str | None = None
    cert_no_digest: str = ""
    cert_no_masked: str = ""
    cert_name_masked: str = ""
    callback_token_digest: str | None = None
    client_status: str | None = None
    client_error_code: str | None = None
    passed: bool | None = None
    sub_code: str | None = None
    error_code: str | None = None
    describe_count: int = 0
    last_described_at: datetime | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    instance: str = "alicertify"
    sandbox: bool = False
    user_id_type: str = "str"
    delivered_at: datetime | None = None
    deleted_at: datetime | None = None
    purged_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def typed_user_id(self) -> str | int | None:
        """``user_id`` with the type the user loader produced (``int`` or ``str``), or None."""
        if self.user_id is not None and self.user_id_type == "int":
            return int(self.user_id)
        return self.user_id

    def replace(self, **changes: Any) -> Record:
        return dataclasses.replace(self, **changes)


#: Field names of :class:`Record` that storage backends persist, in declaration order.
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Record))

#: The values :attr:`Record.user_id_type` may take: the Python types a user id may have.
USER_ID_TYPES: tuple[str, ...] = ("str", "int")

#: The fields the retention purge clears: everything derived from the ID number and the name.
PURGED_FIELDS: tuple[str, ...] = ("cert_no_digest", "cert_no_masked", "cert_name_masked")


def user_id_text(value: object) -> tuple[str, str]:
    """``(text, type)`` for a user id as the app produced it: the form storage keeps.

    Only ``str`` and ``int`` are user ids. ``bool`` is refused although it is an ``int``
    subclass (``True`` would be stored as user ``"True"``), as is anything else: turning an
    arbitrary object into ``str(value)`` is how a user object's repr once became a "user id".
    """
    if isinstance(value, str):
        return value, "str"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), "int"
    raise TypeError(f"a user id must be a str or an int, got {type(value).__name__}")


def purge_changes(now: datetime) -> dict[str, Any]:
    """The :meth:`~flask_alicertify.storage.base.Storage.update` changes of the retention purge.

    They name only the identity fields and ``purged_at``, never a status field, so a purge
    running beside reconcile's compare-and-set transitions cannot undo one (every backend
    writes only the fields an update names).
    """
    return {**{name: "" for name in PURGED_FIELDS}, "purged_at": now}
