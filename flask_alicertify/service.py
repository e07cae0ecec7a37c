"""The verification state machine: start, confirm, call back, reconcile. No Flask here.

Every state change goes through :meth:`Storage.update`, an atomic compare-and-set on the record's
status. Whoever gets the new record back won the transition and is the only caller that sends
the matching signal, so an outcome is announced exactly once per record however many workers,
result posts, callbacks and reconcile runs race on it. Losers re-read the record and answer
with whatever the winner stored.

Only DescribeFaceVerify decides a verdict (DESIGN §1): the mini-program's ``resultStatus`` is
recorded as a *claim* and only ever used to tell "abandoned" from "still pending" when Alibaba
says the verification has not finished. Describe always uses the certify id stored with the
record, never one sent by a client.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any
from urllib.parse import urlsplit

from blinker import Signal

from . import signals
from .cloud.base import Gateway
from .cloud.base import InitRequest
from .cloud.base import Verdict
from .cloud.errors import CloudBusinessError
from .cloud.errors import CloudError
from .cloud.errors import CloudMalformedResponse
from .cloud.errors import CloudThrottled
from .cloud.errors import CloudUnavailable
from .cloud.errors import CredentialsMissing
from .errors import AttemptsExhausted
from .errors import Forbidden
from .errors import IdentityMismatch
from .errors import IdentityNotVerifiable
from .errors import InvalidCallbackToken
from .errors import InvalidInput
from .errors import InvalidReturnUrl
from .errors import NotFound
from .errors import ServiceError
from .errors import TooManyFailures
from .errors import UpstreamError
from .errors import UpstreamThrottled
from .errors import UpstreamUnavailable
from .identity import InvalidIdentity
from .identity import cert_no_digest
from .identity import is_placeholder
from .identity import mask_cert_name
from .identity import mask_cert_no
from .identity import validate_cert_name
from .identity import validate_cert_no
from .records import NON_TERMINAL
from .records import STATUS_MESSAGES
from .records import SUBCODES
from .records import ClientStatus
from .records import Record
from .records import Status
from .records import subcode_message
from .settings import Settings
from .storage.base import RecordExists
from .storage.base import Storage

logger = logging.getLogger("flask_alicertify")

Clock = Callable[[], datetime]

#: Client claims that mean "the user left": with describe saying "not finished", the record is abandoned.
ABANDON_STATUSES: frozenset[str] = frozenset(
    {ClientStatus.CANCELLED.value, ClientStatus.NETWORK_ERROR.value, ClientStatus.BUSINESS_ERROR.value}
)
#: Statuses of records that have a certify id and may still get a verdict.
DESCRIBABLE: frozenset[Status] = frozenset({Status.PENDING, Status.ABANDONED})
#: Statuses whose record a client may retry by starting a new verification.
RETRYABLE_STATUSES: frozenset[Status] = frozenset({Status.ABANDONED, Status.EXPIRED, Status.INIT_FAILED})

ATTEMPT_WINDOW = timedelta(hours=24)
_CALLBACK_TOKEN_LABEL = b"flask-alicertify callback-token v1\x00"
_LOCK_STRIPES = 64
_MAX_ERROR_CODE = 64


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Started:
    """What :meth:`CertifyService.start` returns. ``certify_url`` is never stored anywhere."""

    record: Record
    certify_url: str = field(repr=False)


@dataclass(frozen=True)
class ReconcileItem:
    record_id: str
    certify_id: str | None
    before: Status
    after: Status
    #: ``"verdict"``, ``"expired"``, ``"interrupted"``, ``"unchanged"``, ``"error"`` or ``"skipped"``.
    outcome: str


@dataclass
class ReconcileReport:
    """What one :meth:`CertifyService.reconcile` run did, for the CLI's summary table."""

    items: list[ReconcileItem] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return len(self.items)

    def by_status(self) -> Counter[str]:
        return Counter(item.after.value for item in self.items)

    def by_outcome(self) -> Counter[str]:
        return Counter(item.outcome for item in self.items)


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
    """The JSON body of ``POST /result`` and ``GET /result/<certifyId>`` (DESIGN §2)."""
    return {
        "certifyId": record.certify_id,
        "status": record.status.value,
        "passed": record.status == Status.PASSED,
        "subCode": record.sub_code,
        "message": user_message(record, lang),
        "retryable": retryable(record),
        "clientStatus": record.client_status,
    }


class CertifyService:
    """The state machine for one extension instance.

    :param clock: returns the current time as an aware UTC datetime; tests inject their own.
    :param sender: returns the object signals are sent with (the Flask app); a callable so the
        service can hold a weak reference and never keep an app alive.
    """

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        gateway: Gateway,
        *,
        clock: Clock = utcnow,
        sender: Callable[[], Any] = lambda: None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.gateway = gateway
        self.clock = clock
        self.sender = sender
        self._locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))

    # -- start ------------------------------------------------------------------------------------

    def start(
        self,
        *,
        user_id: str | None,
        cert_no: str | None,
        cert_name: str | None,
        return_url: str | None = None,
        meta_info: str | None = None,
        profile: tuple[str, str] | None = None,
    ) -> Started:
        """Create the record, then call Init; answer the certify id and URL.

        ``profile`` is ``(cert_name, cert_no)`` from the app's identity loader: it replaces the
        client's values, which must then be absent, placeholders, or equal.
        """
        return_url = self._return_url(return_url)
        name, number = self._identity(cert_name, cert_no, profile)
        callback_token = secrets.token_hex(16) if self.settings.callback_url else None
        record = self._create(user_id, name, number, callback_token)
        request = InitRequest(
            outer_order_no=record.id,
            cert_name=name,
            cert_no=number,
            return_url=return_url,
            callback_url=self.settings.callback_url,
            callback_token=callback_token,
            meta_info=meta_info,
        )
        try:
            result = self.gateway.init(request)
        except CloudError as e:
            self._fail_init(record, _error_code(e))
            logger.warning(
                "record %s: init failed (%s code=%s request_id=%s)",
                record.id,
                type(e).__name__,
                e.code,
                e.request_id,
            )
            raise _init_error(e) from e
        except BaseException:
            self._fail_init(record, "internal_error")
            raise
        try:
            pending = self.storage.update(
                record.id,
                expect={Status.INITIATING},
                status=Status.PENDING,
                certify_id=result.certify_id,
                updated_at=self.clock(),
            )
        except RecordExists:
            self._fail_init(record, "duplicate_certify_id")
            logger.error("record %s: Alibaba returned a certify id another record already has", record.id)
            raise UpstreamError(code="upstream_malformed") from None
        if pending is None:
            logger.error("record %s: left the initiating state while Init was running", record.id)
            raise UpstreamUnavailable()
        logger.info("record %s: pending certify_id=%s", pending.id, pending.certify_id)
        self._send(signals.certify_initiated, pending)
        return Started(record=pending, certify_url=result.certify_url)

    def _create(self, user_id: str | None, name: str, number: str, callback_token: str | None) -> Record:
        """Write the initiating record, enforcing the per-user daily attempt limit.

        The limit holds under concurrency: inside one process, a per-user lock serialises the
        count and the insert, so exactly N of any number of parallel inits proceed. Across
        processes, each new record counts the records that exist after its own insert; the
        k-th inserted sees at least k, so never more than N proceed (under a cross-process race
        a few may be refused that could have gone through; they are stored as init_failed).
        """
        limit = self.settings.max_attempts_per_day if user_id is not None else None
        with self._user_lock(user_id):
            now = self.clock()
            since = now - ATTEMPT_WINDOW
            if limit is not None and user_id is not None:
                if self.storage.count_inits(user_id, since=since) >= limit:
                    logger.info("init refused: attempt limit reached")
                    raise AttemptsExhausted()
            record = Record(
                id=uuid.uuid4().hex,
                status=Status.INITIATING,
                created_at=now,
                updated_at=now,
                user_id=user_id,
                api=self.gateway.api,
                cert_no_digest=cert_no_digest(number, self.settings.pii_key),
                cert_no_masked=mask_cert_no(number),
                cert_name_masked=mask_cert_name(name),
                callback_token_digest=self._token_digest(callback_token) if callback_token else None,
            )
            self.storage.create(record)
            if limit is not None and user_id is not None:
                if self.storage.count_inits(user_id, since=since) > limit:
                    self._fail_init(record, "attempts_exhausted")
                    logger.info("record %s: refused, another worker took the last attempt", record.id)
                    raise AttemptsExhausted()
        logger.info("record %s: initiating", record.id)
        return record

    @contextmanager
    def _user_lock(self, user_id: str | None) -> Iterator[None]:
        if user_id is None:
            yield
            return
        with self._locks[hash(user_id) % _LOCK_STRIPES]:
            yield

    def _fail_init(self, record: Record, error_code: str) -> None:
        self.storage.update(
            record.id,
            expect={Status.INITIATING},
            status=Status.INIT_FAILED,
            passed=False,
            error_code=error_code,
            updated_at=self.clock(),
        )

    def _return_url(self, client_value: str | None) -> str | None:
        """The configured return URL, else an allowed client one (https, listed host), else None."""
        if self.settings.return_url:
            return self.settings.return_url
        if client_value is None or not client_value.strip():
            return None
        value = client_value.strip()
        fields = {"serviceParameters": {"returnUrl": ["The returnUrl must be https on an allowed host."]}}
        if any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in value):
            raise InvalidReturnUrl(fields=fields)
        try:
            parts = urlsplit(value)
            host = parts.hostname
            has_credentials = parts.username is not None or parts.password is not None
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            raise InvalidReturnUrl(fields=fields) from None
        if parts.scheme != "https" or not host or has_credentials:
            raise InvalidReturnUrl(fields=fields)
        if host.rstrip(".") not in self.settings.return_url_hosts:
            raise InvalidReturnUrl(fields=fields)
        return value

    def _identity(
        self, cert_name: str | None, cert_no: str | None, profile: tuple[str, str] | None
    ) -> tuple[str, str]:
        """The validated ``(name, number)`` to send, from the profile or from the client."""
        if profile is not None:
            try:
                name = validate_cert_name(profile[0])
                number = validate_cert_no(profile[1])
            except InvalidIdentity as e:
                logger.warning("identity_loader returned an invalid identity (%s)", e.code)
                raise InvalidInput(
                    "账户中的身份信息无效", "The identity stored for this account is not valid."
                ) from None
            _must_match("certNo", cert_no, number, validate_cert_no)
            _must_match("certName", cert_name, name, validate_cert_name)
            return name, number
        missing: dict[str, list[str]] = {}
        if cert_no is None or not cert_no.strip():
            missing["certNo"] = ["Missing data for required field."]
        if cert_name is None or not cert_name.strip():
            missing["certName"] = ["Missing data for required field."]
        if missing:
            raise InvalidInput("请填写姓名和身份证号码", fields={"serviceParameters": missing})
        assert cert_no is not None and cert_name is not None
        number = _validated("certNo", cert_no, validate_cert_no)
        name = _validated("certName", cert_name, validate_cert_name)
        return name, number

    # -- confirm ----------------------------------------------------------------------------------

    def submit_result(
        self,
        *,
        user_id: str | None,
        certify_id: str,
        client_status: str,
        client_error_code: str | None = None,
        client_certify_id: str | None = None,
    ) -> Record:
        """Confirm the mini-program's claim with describe (unless terminal) and record the claim.

        One storage write per post: the claim travels in the same compare-and-set as what
        describe said (the verdict, the abandonment, or just "described now"). When describe
        fails, the claim is written alone before the 503, so it is never lost.
        """
        record = self._owned(certify_id, user_id)
        if client_certify_id is not None and client_certify_id != record.certify_id:
            logger.info("record %s: the client's result.certifyId differs; ignored", record.id)
        if record.terminal:
            return record
        logger.info("record %s: client claims %s", record.id, client_status)
        claim = {"client_status": client_status, "client_error_code": client_error_code}
        if record.certify_id is None:
            return self._record_claim(record, claim)
        try:
            verdict = self._describe(record)
        except BaseException:
            self._record_claim(record, claim)
            raise
        return self._settle(record, verdict, client_status=client_status, claim=claim)

    def _record_claim(self, record: Record, claim: dict[str, str | None]) -> Record:
        claimed = self.storage.update(record.id, expect=NON_TERMINAL, updated_at=self.clock(), **claim)
        return claimed if claimed is not None else self._reload(record)

    def current(self, *, user_id: str | None, certify_id: str) -> Record:
        """The record's state, re-described at most once per ``describe_min_interval``.

        A record nobody has reported back on (no client claim) is not described until it is
        ``unclaimed_describe_after`` seconds old: the user is still in the face scan, Alibaba
        answers "not finished" until then, and the result post (or the callback) describes as
        soon as the user is done. Polls after that age are the safety net for a lost result post.
        Upstream failures are not errors here: the stored state is still the right answer.
        """
        record = self._owned(certify_id, user_id)
        if record.terminal or record.certify_id is None:
            return record
        now = self.clock()
        if (
            record.client_status is None
            and (now - record.created_at).total_seconds() < self.settings.unclaimed_describe_after
        ):
            return record
        last = record.last_described_at
        if last is not None and (now - last).total_seconds() < self.settings.describe_min_interval:
            return record
        try:
            verdict = self.gateway.describe(record.certify_id)
        except CloudError as e:
            return self._describe_failed(record, e, now)
        return self._settle(record, verdict, client_status=record.client_status)

    def handle_callback(self, *, certify_id: str, token: str | None, passed: str | None = None) -> Record:
        """Alibaba's completion notice: check the token, then confirm with describe.

        ``passed`` is opaque (``T``/``F`` or a SubCode, reference §3) and never a verdict.
        """
        record = self.storage.get_by_certify_id(certify_id)
        if record is None:
            raise NotFound()
        expected = record.callback_token_digest
        if not token or not expected or not hmac.compare_digest(self._token_digest(token), expected):
            logger.warning("record %s: callback with a missing or wrong token refused", record.id)
            raise InvalidCallbackToken()
        logger.info("record %s: callback received", record.id)
        if record.terminal:
            return record
        verdict = self._describe(record)
        return self._settle(record, verdict, client_status=record.client_status)

    # -- reconcile --------------------------------------------------------------------------------

    def reconcile(
        self,
        *,
        older_than: timedelta,
        limit: int | None = None,
        progress: Callable[[ReconcileItem], None] | None = None,
        batch_size: int = 100,
    ) -> ReconcileReport:
        """Re-describe non-terminal records not updated for ``older_than``; expire dead ones.

        A record still unfinished ``CERTIFY_ID_LIFETIME + expire_grace`` after it was created
        can never finish (its certify id is dead), so it becomes ``expired``. An ``initiating``
        record that old never got its certify id (the process died during Init): it becomes
        ``init_failed``. Every processed record is touched, so paging through ``stale()`` ends.
        """
        report = ReconcileReport()
        now = self.clock()
        cutoff = now - older_than
        seen: set[str] = set()
        while limit is None or report.checked < limit:
            size = batch_size if limit is None else min(batch_size, limit - report.checked)
            fresh = [r for r in self.storage.stale(updated_before=cutoff, limit=size) if r.id not in seen]
            if not fresh:
                break
            for record in fresh:
                seen.add(record.id)
                item = self._reconcile_one(record)
                report.items.append(item)
                if progress is not None:
                    progress(item)
        return report

    def _reconcile_one(self, record: Record) -> ReconcileItem:
        now = self.clock()
        age = (now - record.created_at).total_seconds()
        dead = age >= self.settings.expire_after

        def item(after: Record, outcome: str) -> ReconcileItem:
            return ReconcileItem(record.id, record.certify_id, record.status, after.status, outcome)

        if record.status == Status.INITIATING or record.certify_id is None:
            if not dead:
                return item(record, "skipped")
            failed = self.storage.update(
                record.id,
                expect={Status.INITIATING},
                status=Status.INIT_FAILED,
                passed=False,
                error_code="interrupted",
                updated_at=now,
            )
            return item(failed or self._reload(record), "interrupted" if failed else "unchanged")
        try:
            verdict = self.gateway.describe(record.certify_id)
        except CloudError as e:
            # updated_at moves too, so this run's paging ends and the next run retries it.
            return item(self._describe_failed(record, e, now, updated_at=now), "error")
        if not verdict.finished and dead:
            expired = self.storage.update(
                record.id,
                expect=DESCRIBABLE,
                status=Status.EXPIRED,
                passed=False,
                last_described_at=now,
                describe_count=record.describe_count + 1,
                updated_at=now,
            )
            if expired is not None:
                logger.info("record %s: %s -> expired", record.id, record.status)
                self._send(signals.certify_expired, expired)
                return item(expired, "expired")
            return item(self._reload(record), "unchanged")
        after = self._settle(record, verdict, client_status=record.client_status)
        return item(after, "verdict" if verdict.finished else "unchanged")

    # -- inspection (CLI) -------------------------------------------------------------------------

    def inspect(self, certify_id: str) -> tuple[Record | None, Verdict]:
        """The stored record (if any) and a fresh describe, without changing anything."""
        record = self.storage.get_by_certify_id(certify_id)
        return record, self.gateway.describe(
            record.certify_id if record and record.certify_id else certify_id
        )

    # -- shared path ------------------------------------------------------------------------------

    def _owned(self, certify_id: str, user_id: str | None) -> Record:
        record = self.storage.get_by_certify_id(certify_id)
        if record is None:
            raise NotFound()
        if record.user_id != user_id:
            logger.warning("record %s: access by another user refused", record.id)
            raise Forbidden()
        return record

    def _reload(self, record: Record) -> Record:
        return self.storage.get(record.id) or record

    def _describe(self, record: Record) -> Verdict:
        """Describe with the stored certify id; upstream trouble becomes a 503 (record kept)."""
        assert record.certify_id is not None
        try:
            return self.gateway.describe(record.certify_id)
        except CloudError as e:
            logger.warning("record %s: describe failed (%s code=%s)", record.id, type(e).__name__, e.code)
            if isinstance(e, CloudThrottled):
                raise UpstreamUnavailable(code="upstream_throttled", retry_after=_retry_after(e)) from e
            raise UpstreamUnavailable() from e

    def _describe_failed(self, record: Record, e: CloudError, now: datetime, **changes: Any) -> Record:
        """Note a describe that failed upstream (it still counts against the throttle); the
        stored state stays the answer."""
        logger.warning("record %s: describe failed (%s code=%s)", record.id, type(e).__name__, e.code)
        noted = self.storage.update(
            record.id,
            expect=NON_TERMINAL,
            last_described_at=now,
            describe_count=record.describe_count + 1,
            **changes,
        )
        return noted if noted is not None else self._reload(record)

    def _settle(
        self,
        record: Record,
        verdict: Verdict,
        *,
        client_status: str | None,
        claim: dict[str, str | None] | None = None,
    ) -> Record:
        """Apply a describe verdict through compare-and-set; the winner sends the signal.

        ``claim`` (a result post's ``client_status``/``client_error_code``) is written in the
        same compare-and-set as the outcome. A post that loses the race to a terminal outcome
        leaves no claim behind, exactly like a post that arrives after it.
        """
        now = self.clock()
        seen: dict[str, Any] = {
            "last_described_at": now,
            "describe_count": record.describe_count + 1,
            "updated_at": now,
            **(claim or {}),
        }
        if verdict.finished:
            status = Status.PASSED if verdict.passed else Status.FAILED
            new = self.storage.update(
                record.id,
                expect=DESCRIBABLE,
                status=status,
                passed=verdict.passed,
                sub_code=verdict.sub_code,
                **seen,
            )
            if new is None:
                return self._reload(record)
            logger.info("record %s: %s -> %s sub_code=%s", new.id, record.status, new.status, new.sub_code)
            self._send(signals.certify_passed if verdict.passed else signals.certify_failed, new)
            return new
        if client_status in ABANDON_STATUSES and record.status == Status.PENDING:
            new = self.storage.update(record.id, expect={Status.PENDING}, status=Status.ABANDONED, **seen)
            if new is not None:
                logger.info("record %s: pending -> abandoned", new.id)
                self._send(signals.certify_abandoned, new)
                return new
            record = self._reload(record)
            if record.terminal:
                return record
        touched = self.storage.update(record.id, expect=NON_TERMINAL, **seen)
        return touched if touched is not None else self._reload(record)

    def _send(self, signal: Signal, record: Record) -> None:
        signal.send(self.sender(), record=record)

    def _token_digest(self, token: str) -> str:
        return hmac.new(
            self.settings.pii_key, _CALLBACK_TOKEN_LABEL + token.encode("utf-8"), hashlib.sha256
        ).hexdigest()


def _validated(name: str, value: str, validator: Callable[[object], str]) -> str:
    try:
        return validator(value)
    except InvalidIdentity as e:
        raise InvalidInput(
            e.message_zh, e.message_en, fields={"serviceParameters": {name: [e.message_en]}}
        ) from None


def _must_match(name: str, client: str | None, expected: str, validator: Callable[[object], str]) -> None:
    """A real client value must equal the profile's; absent and placeholder values are ignored."""
    if client is None or not client.strip() or is_placeholder(client):
        return
    try:
        same = validator(client) == expected
    except InvalidIdentity:
        same = False
    if not same:
        raise IdentityMismatch(
            fields={"serviceParameters": {name: ["Does not match the identity on the account."]}}
        )


def _error_code(e: CloudError) -> str:
    code = e.code or type(e).__name__
    return code[:_MAX_ERROR_CODE]


def _retry_after(e: CloudThrottled) -> float:
    if e.retry_after is None or not math.isfinite(e.retry_after) or e.retry_after <= 0:
        return 1.0
    return e.retry_after


def _init_error(e: CloudError) -> ServiceError:
    """The HTTP-facing error for an Init failure (DESIGN §2: 429, 502 or 503)."""
    if isinstance(e, CloudThrottled):
        return UpstreamThrottled(retry_after=_retry_after(e))
    if isinstance(e, (CloudUnavailable, CredentialsMissing)):
        return UpstreamUnavailable()
    if isinstance(e, CloudBusinessError) and e.code == "418":
        return TooManyFailures()
    if isinstance(e, CloudBusinessError) and e.code in IdentityNotVerifiable.MESSAGES:
        return IdentityNotVerifiable(e.code)
    if isinstance(e, CloudMalformedResponse):
        return UpstreamError(code="upstream_malformed")
    return UpstreamError()
