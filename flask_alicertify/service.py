"""The verification state machine: start, confirm, call back, reconcile. No Flask here.

Every state change goes through :meth:`Storage.update`, an atomic compare-and-set on the record's
status. Whoever gets the new record back won the transition and is the only caller that sends
the matching signal, so an outcome is announced exactly once per record however many workers,
result posts, callbacks and reconcile runs race on it. Losers answer with what the winner stored.
The winner's send is durable (:mod:`.delivery`): a terminal record is marked delivered once
every receiver returned, and reconcile re-sends what a crash or a raising receiver left
undelivered.

Only DescribeFaceVerify decides a verdict (docs/flow.md): the mini-program's ``resultStatus`` is
a *claim*, only ever used to tell "abandoned" from "still pending" when Alibaba says "not
finished". Describe always uses the stored certify id, through :meth:`CertifyService.describe`,
and at most once per record per ``ALICERTIFY_DESCRIBE_MIN_INTERVAL`` on every path, claimed
atomically in storage (:meth:`CertifyService.claim`).

Starting is in :mod:`.starting`, input policy in :mod:`.policy`, the batch jobs in
:mod:`.reconcile`, :mod:`.deletion` and :mod:`.purge`, what a client is told in :mod:`.results`;
names that used to live here are re-exported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

from . import deletion
from . import purge
from . import signals
from . import starting
from .cloud.base import Gateway
from .cloud.base import Verdict
from .cloud.errors import CloudError
from .cloud.errors import CloudMalformedResponse
from .delivery import REDELIVER_AFTER
from .delivery import Announcer
from .errors import Forbidden
from .errors import InvalidCallbackToken
from .errors import NotFound
from .errors import describe_error
from .policy import ATTEMPT_WINDOW as ATTEMPT_WINDOW
from .policy import AttemptLimiter
from .policy import Value
from .policy import callback_token_matches
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
from .starting import Started as Started
from .starting import user_key
from .storage.base import Storage

logger = logging.getLogger("flask_alicertify")

Clock = Callable[[], datetime]

#: Client claims that mean "the user left": with describe saying "not finished", the record is abandoned.
ABANDON_STATUSES: frozenset[str] = frozenset(
    {ClientStatus.CANCELLED.value, ClientStatus.NETWORK_ERROR.value, ClientStatus.BUSINESS_ERROR.value}
)
#: Statuses of records that have a certify id and may still get a verdict.
DESCRIBABLE: frozenset[Status] = frozenset({Status.PENDING, Status.ABANDONED})


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class CertifyService:
    """The state machine for one extension instance.

    :param clock: returns the current time as an aware UTC datetime; tests inject their own.
    :param sender: returns the object signals are sent with (the Flask app); a callable so the
        service can hold a weak reference and never keep an app alive.
    :param extension: passed to signal receivers as ``extension`` (the ``AliCertify`` object).
    :param instance: the instance name its records carry; records of another instance (or of
        the other sandbox mode) sharing the store are never read, answered or changed here.
        Defaults to ``extension.name``, else ``"alicertify"``.
    """

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        gateway: Gateway,
        *,
        clock: Clock = utcnow,
        sender: Callable[[], Any] = lambda: None,
        extension: object = None,
        instance: str | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.gateway = gateway
        self.clock = clock
        self.sender = sender
        self.extension = extension
        self.instance: str = instance or getattr(extension, "name", None) or "alicertify"
        self.sandbox = bool(settings.sandbox)
        self.limiter = AttemptLimiter(storage, settings.max_attempts_per_day)
        self.announcer = Announcer(storage, lambda: self.clock(), lambda: self.sender(), extension)

    # -- start ------------------------------------------------------------------------------------

    def start(
        self,
        *,
        user_id: str | int | None,
        cert_no: Value | None,
        cert_name: Value | None,
        return_url: str | None = None,
        meta_info: str | None = None,
        profile: tuple[Value, Value] | None = None,
    ) -> Started:
        """Create the record, then call Init; answer the certify id and URL (:mod:`.starting`).

        ``user_id`` is what the user loader produced (stored as text, its type remembered);
        ``profile`` is ``(cert_name, cert_no)`` from the app's identity loader: it replaces the
        client's values, which must then be absent, placeholders, or equal. A difference is an
        ``init_failed`` attempt (``error_code="identity_mismatch"``, no Init call) and a 400
        that does not say what differs. The clear values stay :class:`~.identity.Sensitive`
        all the way into the :class:`~.cloud.base.InitRequest`.
        """
        return starting.start(
            self,
            user_id=user_id,
            cert_no=cert_no,
            cert_name=cert_name,
            return_url=return_url,
            meta_info=meta_info,
            profile=profile,
        )

    # -- confirm ----------------------------------------------------------------------------------

    def submit_result(
        self,
        *,
        user_id: str | int | None,
        certify_id: str,
        client_status: str,
        client_error_code: str | None = None,
        client_certify_id: str | None = None,
    ) -> Record:
        """Confirm the mini-program's claim with describe (unless terminal) and record the claim.

        The usual post is one storage statement before describe: the describe claim, keyed by
        the certify id, checks ownership and writes the client's claim in the same step. Only
        when it misses (another user's record, unknown, terminal, or described within the
        budget's interval) is the record read, to answer 404/403 or the stored state with the
        claim noted. A failed describe leaves the claim stored before the 503, so it is never
        lost; a post losing the race to an outcome stored meanwhile leaves its claim beside it.
        """
        now = self.clock()
        claim = {"client_status": client_status, "client_error_code": client_error_code}
        claimed = self.storage.claim_describe(
            certify_id=certify_id,
            now=now,
            not_since=self._not_since(now),
            match={"user_id": user_key(user_id)[0], "instance": self.instance, "sandbox": self.sandbox},
            changes={**claim, "updated_at": now},
        )
        if claimed is None:
            record = self._owned(certify_id, user_id)
            self._note_certify_id(record, client_certify_id)
            if record.terminal:
                return record
            logger.info("record %s: client claims %s", record.id, client_status)
            return self.note(record, self.clock(), updated_at=self.clock(), **claim)
        self._note_certify_id(claimed, client_certify_id)
        logger.info("record %s: client claims %s", claimed.id, client_status)
        try:
            verdict = self.describe(claimed)
        except CloudError as e:
            raise describe_error(e) from e
        return self.settle(claimed, verdict, client_status=client_status, touch=False)

    @staticmethod
    def _note_certify_id(record: Record, client_certify_id: str | None) -> None:
        if client_certify_id is not None and client_certify_id != record.certify_id:
            logger.info("record %s: the client's result.certifyId differs; ignored", record.id)

    def current(self, *, user_id: str | int | None, certify_id: str) -> Record:
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
        claimed = self.claim(record, now)
        if claimed is None:
            return record
        try:
            verdict = self.describe(claimed)
        except CloudError:
            return claimed
        return self.settle(claimed, verdict, client_status=claimed.client_status)

    def handle_callback(self, *, certify_id: str, token: str | None, passed: str | None = None) -> Record:
        """Alibaba's completion notice: check the token, then confirm with describe.

        ``passed`` is opaque (``T``/``F`` or a SubCode; see CallbackUrl on Alibaba's InitFaceVerify
        page) and never a verdict. A terminal record, or one described within the interval,
        is answered as stored, without asking Alibaba.
        """
        record = self._find(certify_id)
        if not callback_token_matches(self.settings.pii_key, token, record.callback_token_digest):
            logger.warning("record %s: callback with a missing or wrong token refused", record.id)
            raise InvalidCallbackToken()
        logger.info("record %s: callback received", record.id)
        if record.terminal:
            return record
        claimed = self.claim(record, self.clock())
        if claimed is None:
            return record
        try:
            verdict = self.describe(claimed)
        except CloudError as e:
            raise describe_error(e) from e
        return self.settle(claimed, verdict, client_status=claimed.client_status)

    # -- jobs (CLI) -------------------------------------------------------------------------------

    def reconcile(
        self,
        *,
        older_than: timedelta,
        limit: int | None = None,
        progress: Callable[[ReconcileItem], None] | None = None,
        batch_size: int = 100,
        redeliver_after: timedelta = REDELIVER_AFTER,
    ) -> ReconcileReport:
        """Settle stale records, re-send undelivered outcome signals and, with
        ``delete_at_alibaba``, delete results at Alibaba (:func:`~.reconcile.reconcile`)."""
        return reconcile(
            self,
            older_than=older_than,
            limit=limit,
            progress=progress,
            batch_size=batch_size,
            redeliver_after=redeliver_after,
        )

    def redact(self, **options: Any) -> ReconcileReport:
        """Delete terminal records' results at Alibaba (:func:`~.deletion.redact`)."""
        return deletion.redact(self, **options)

    def purge(self, *, retention: timedelta | None = None, **options: Any) -> ReconcileReport:
        """Clear the identity fields of records past the retention (:func:`~.purge.purge`);
        ``retention`` defaults to ``ALICERTIFY_RETENTION``."""
        if retention is None:
            if self.settings.retention is None:
                raise ValueError(f"{self.settings.key('RETENTION')} is not set: there is nothing to purge")
            retention = timedelta(seconds=self.settings.retention)
        return purge.purge(self, retention=retention, **options)

    def inspect(self, certify_id: str) -> tuple[Record | None, Verdict]:
        """The stored record (if it is ours) and a fresh describe, without changing anything."""
        record = self.storage.get_by_certify_id(certify_id)
        if record is not None and not self.owns(record):
            record = None
        stored = record.certify_id if record is not None else None
        return record, self.gateway.describe(stored or certify_id)

    # -- transitions and the one describe path ----------------------------------------------------

    def owns(self, record: Record) -> bool:
        """Whether ``record`` is this instance's, in this sandbox mode."""
        return record.instance == self.instance and record.sandbox == self.sandbox

    def claim(self, record: Record, now: datetime) -> Record | None:
        """The describe budget: the record as claimed for a describe now, or None when it was
        described within ``describe_min_interval`` (or is terminal). Atomic in storage, so of
        concurrent requests on any number of workers one describes."""
        return self.storage.claim_describe(record.id, now=now, not_since=self._not_since(now))

    def _not_since(self, now: datetime) -> datetime:
        """The describe budget's cutoff: a record described after it waits for the interval."""
        return now - timedelta(seconds=self.settings.describe_min_interval)

    def describe(self, record: Record) -> Verdict:
        """DescribeFaceVerify with the record's stored certify id: the one place a record is
        described. A failure is logged here and raised as a :class:`CloudError`, for the caller
        to answer 503 (:func:`~flask_alicertify.errors.describe_error`) or to note.
        """
        assert record.certify_id is not None
        try:
            return self.gateway.describe(record.certify_id)
        except CloudError as e:
            logger.warning("record %s: describe failed (%s code=%s)", record.id, type(e).__name__, e.code)
            raise
        except Exception as e:
            logger.error("record %s: describe raised %s", record.id, type(e).__name__, exc_info=True)
            raise CloudMalformedResponse(f"describe raised {type(e).__name__}") from e

    def note(self, record: Record, now: datetime, **changes: Any) -> Record:
        """Write ``changes`` to a non-terminal record (a claim, a failure's trace); the stored
        state is the answer either way."""
        noted = self.storage.update(record.id, expect=NON_TERMINAL, **changes)
        return noted if noted is not None else self.reload(record)

    def settle(
        self,
        record: Record,
        verdict: Verdict,
        *,
        client_status: str | None,
        touch: bool = True,
    ) -> Record:
        """Apply a describe verdict through compare-and-set; the winner sends the signal.

        A verdict that is not final changes nothing but ``updated_at`` (``touch``; a result
        post's claim already wrote it, so it passes False and writes nothing).
        """
        seen: dict[str, Any] = {"updated_at": self.clock()}
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
            return self.announcer.announce(new)
        if client_status in ABANDON_STATUSES and record.status == Status.PENDING:
            new = self.storage.update(record.id, expect={Status.PENDING}, status=Status.ABANDONED, **seen)
            if new is not None:
                logger.info("record %s: pending -> abandoned", new.id)
                self.announcer.send(signals.certify_abandoned, new)
                return new
            record = self.reload(record)
            if record.terminal:
                return record
        return self.note(record, self.clock(), **seen) if touch else record

    def expire(self, record: Record, now: datetime, *, error_code: str | None = None) -> Record | None:
        """Describable -> ``expired`` (the certify id is dead); None if another worker won."""
        expired = self.storage.update(
            record.id,
            expect=DESCRIBABLE,
            status=Status.EXPIRED,
            passed=False,
            updated_at=now,
            **({"error_code": error_code} if error_code else {}),
        )
        if expired is None:
            return None
        logger.info("record %s: %s -> expired", record.id, record.status)
        return self.announcer.announce(expired)

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
            delivered_at=now,
        )

    def reload(self, record: Record) -> Record:
        """The stored version of ``record`` (``record`` itself if it vanished)."""
        return self.storage.get(record.id) or record

    def _find(self, certify_id: str) -> Record:
        record = self.storage.get_by_certify_id(certify_id)
        if record is None or not self.owns(record):
            raise NotFound()
        return record

    def _owned(self, certify_id: str, user_id: str | int | None) -> Record:
        record = self._find(certify_id)
        if record.user_id != user_key(user_id)[0]:
            logger.warning("record %s: access by another user refused", record.id)
            raise Forbidden()
        return record
