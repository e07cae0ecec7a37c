"""The verification state machine: start, confirm, call back, reconcile. No Flask here.

Every state change goes through :meth:`Storage.update`, an atomic compare-and-set on the record's
status. Whoever gets the new record back won the transition and is the only caller that sends
the matching signal, so an outcome is announced exactly once per record however many workers,
result posts, callbacks and reconcile runs race on it. Losers answer with what the winner stored.

Only DescribeFaceVerify decides a verdict (docs/flow.md): the mini-program's ``resultStatus`` is
a *claim*, only ever used to tell "abandoned" from "still pending" when Alibaba says "not
finished". Describe always uses the stored certify id, through :meth:`CertifyService.describe`.
Input policy is in :mod:`.policy`, the batch job in :mod:`.reconcile`, what a client is told in
:mod:`.results`; names that used to live here are re-exported.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

from blinker import Signal

from . import signals
from .cloud.base import Gateway
from .cloud.base import InitRequest
from .cloud.base import Verdict
from .cloud.errors import CloudError
from .errors import AttemptsExhausted
from .errors import Forbidden
from .errors import InvalidCallbackToken
from .errors import NotFound
from .errors import UpstreamMalformed
from .errors import UpstreamUnavailable
from .errors import describe_error
from .errors import init_error
from .identity import cert_no_digest
from .identity import mask_cert_name
from .identity import mask_cert_no
from .policy import ATTEMPT_WINDOW as ATTEMPT_WINDOW
from .policy import AttemptLimiter
from .policy import allowed_return_url
from .policy import callback_token_digest
from .policy import callback_token_matches
from .policy import new_callback_token
from .policy import resolve_identity
from .reconcile import ReconcileItem as ReconcileItem
from .reconcile import ReconcileReport as ReconcileReport
from .reconcile import reconcile
from .records import NON_TERMINAL
from .records import ClientStatus
from .records import Record
from .records import Status
from .results import RETRYABLE_STATUSES as RETRYABLE_STATUSES
from .results import result_body as result_body
from .results import retryable as retryable
from .results import user_message as user_message
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

_MAX_ERROR_CODE = 64


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Started:
    """What :meth:`CertifyService.start` returns. ``certify_url`` is never stored anywhere."""

    record: Record
    certify_url: str = field(repr=False)


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
        self.limiter = AttemptLimiter(storage, settings.max_attempts_per_day)

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
        return_url = allowed_return_url(
            return_url, configured=self.settings.return_url, hosts=self.settings.return_url_hosts
        )
        name, number = resolve_identity(cert_name, cert_no, profile)
        callback_token = new_callback_token() if self.settings.callback_url else None
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
            self._fail_init(record, (e.code or type(e).__name__)[:_MAX_ERROR_CODE])
            logger.warning(
                "record %s: init failed (%s code=%s request_id=%s)",
                record.id,
                type(e).__name__,
                e.code,
                e.request_id,
            )
            raise init_error(e) from e
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
            raise UpstreamMalformed() from None
        if pending is None:
            logger.error("record %s: left the initiating state while Init was running", record.id)
            raise UpstreamUnavailable()
        logger.info("record %s: pending certify_id=%s", pending.id, pending.certify_id)
        self._send(signals.certify_initiated, pending)
        return Started(record=pending, certify_url=result.certify_url)

    def _create(self, user_id: str | None, name: str, number: str, callback_token: str | None) -> Record:
        """Write the initiating record within the per-user daily attempt limit (see
        :class:`~flask_alicertify.policy.AttemptLimiter`)."""
        key = self.settings.pii_key
        token_digest = callback_token_digest(key, callback_token) if callback_token else None
        with self.limiter.hold(user_id):
            now = self.clock()
            self.limiter.check(user_id, now)
            record = Record(
                id=uuid.uuid4().hex,
                status=Status.INITIATING,
                created_at=now,
                updated_at=now,
                user_id=user_id,
                api=self.gateway.api,
                cert_no_digest=cert_no_digest(number, key),
                cert_no_masked=mask_cert_no(number),
                cert_name_masked=mask_cert_name(name),
                callback_token_digest=token_digest,
            )
            self.storage.create(record)
            if self.limiter.exceeded(user_id, now):
                self._fail_init(record, "attempts_exhausted")
                logger.info("record %s: refused, another worker took the last attempt", record.id)
                raise AttemptsExhausted()
        logger.info("record %s: initiating", record.id)
        return record

    def _fail_init(self, record: Record, error_code: str) -> None:
        self.storage.update(
            record.id,
            expect={Status.INITIATING},
            status=Status.INIT_FAILED,
            passed=False,
            error_code=error_code,
            updated_at=self.clock(),
        )

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
            verdict = self.describe(record)
        except BaseException as e:
            self._record_claim(record, claim)
            if isinstance(e, CloudError):
                raise describe_error(e) from e
            raise
        return self.settle(record, verdict, client_status=client_status, claim=claim)

    def _record_claim(self, record: Record, claim: dict[str, str | None]) -> Record:
        claimed = self.storage.update(record.id, expect=NON_TERMINAL, updated_at=self.clock(), **claim)
        return claimed if claimed is not None else self.reload(record)

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
            verdict = self.describe(record)
        except CloudError:
            return self.describe_failed(record, now)
        return self.settle(record, verdict, client_status=record.client_status)

    def handle_callback(self, *, certify_id: str, token: str | None, passed: str | None = None) -> Record:
        """Alibaba's completion notice: check the token, then confirm with describe.

        ``passed`` is opaque (``T``/``F`` or a SubCode; see CallbackUrl on Alibaba's InitFaceVerify
        page) and never a verdict.
        """
        record = self.storage.get_by_certify_id(certify_id)
        if record is None:
            raise NotFound()
        if not callback_token_matches(self.settings.pii_key, token, record.callback_token_digest):
            logger.warning("record %s: callback with a missing or wrong token refused", record.id)
            raise InvalidCallbackToken()
        logger.info("record %s: callback received", record.id)
        if record.terminal:
            return record
        try:
            verdict = self.describe(record)
        except CloudError as e:
            raise describe_error(e) from e
        return self.settle(record, verdict, client_status=record.client_status)

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

        See :func:`flask_alicertify.reconcile.reconcile`.
        """
        return reconcile(self, older_than=older_than, limit=limit, progress=progress, batch_size=batch_size)

    # -- inspection (CLI) -------------------------------------------------------------------------

    def inspect(self, certify_id: str) -> tuple[Record | None, Verdict]:
        """The stored record (if any) and a fresh describe, without changing anything."""
        record = self.storage.get_by_certify_id(certify_id)
        stored = record.certify_id if record is not None else None
        return record, self.gateway.describe(stored or certify_id)

    # -- transitions and the one describe path ----------------------------------------------------

    def describe(self, record: Record) -> Verdict:
        """DescribeFaceVerify with the record's stored certify id: the one place a record is
        described. A failure is logged here and re-raised, for the caller to answer 503
        (:func:`~flask_alicertify.errors.describe_error`) or to note (:meth:`describe_failed`).
        """
        assert record.certify_id is not None
        try:
            return self.gateway.describe(record.certify_id)
        except CloudError as e:
            logger.warning("record %s: describe failed (%s code=%s)", record.id, type(e).__name__, e.code)
            raise

    def describe_failed(self, record: Record, now: datetime, **changes: Any) -> Record:
        """Note a describe that failed upstream (it still counts against the throttle); the
        stored state stays the answer."""
        noted = self.storage.update(
            record.id,
            expect=NON_TERMINAL,
            last_described_at=now,
            describe_count=record.describe_count + 1,
            **changes,
        )
        return noted if noted is not None else self.reload(record)

    def settle(
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
                return self.reload(record)
            logger.info("record %s: %s -> %s sub_code=%s", new.id, record.status, new.status, new.sub_code)
            self._send(signals.certify_passed if verdict.passed else signals.certify_failed, new)
            return new
        if client_status in ABANDON_STATUSES and record.status == Status.PENDING:
            new = self.storage.update(record.id, expect={Status.PENDING}, status=Status.ABANDONED, **seen)
            if new is not None:
                logger.info("record %s: pending -> abandoned", new.id)
                self._send(signals.certify_abandoned, new)
                return new
            record = self.reload(record)
            if record.terminal:
                return record
        touched = self.storage.update(record.id, expect=NON_TERMINAL, **seen)
        return touched if touched is not None else self.reload(record)

    def expire(self, record: Record, now: datetime) -> Record | None:
        """Describable -> ``expired`` (the certify id is dead); None if another worker won."""
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
        return expired

    def interrupt(self, record: Record, now: datetime) -> Record | None:
        """``initiating`` -> ``init_failed`` for a record whose Init never finished (the process
        died during it); None if another worker won."""
        return self.storage.update(
            record.id,
            expect={Status.INITIATING},
            status=Status.INIT_FAILED,
            passed=False,
            error_code="interrupted",
            updated_at=now,
        )

    def reload(self, record: Record) -> Record:
        """The stored version of ``record`` (``record`` itself if it vanished)."""
        return self.storage.get(record.id) or record

    def _owned(self, certify_id: str, user_id: str | None) -> Record:
        record = self.storage.get_by_certify_id(certify_id)
        if record is None:
            raise NotFound()
        if record.user_id != user_id:
            logger.warning("record %s: access by another user refused", record.id)
            raise Forbidden()
        return record

    def _send(self, signal: Signal, record: Record) -> None:
        signal.send(self.sender(), record=record)
