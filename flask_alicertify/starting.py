"""Starting a verification: the attempt's record, the Init call, and every way it can fail.

:meth:`CertifyService.start <flask_alicertify.service.CertifyService.start>` calls
:func:`start`. The record is written (``initiating``, under the daily attempt limit) *before*
Alibaba is called, so a billed Init is never without a record; afterwards the record is either
``pending`` with its certify id or ``init_failed`` with the reason, never left ``initiating``
unless the process itself dies (reconcile then marks it ``interrupted``):

* an Init that fails upstream (any :class:`~.cloud.errors.CloudError`) -> the error's code, and
  the matching 4xx/5xx answer; an exception of any other type from the gateway (a bug in it)
  -> ``internal_error`` and 502, never a 500 with a half-made record;
* an Init answer whose CertifyId cannot be a certify id (empty, too long, control characters,
  lone surrogates: PostgreSQL refuses NUL, UTF-8 encoders refuse surrogates) -> 502
  ``upstream_malformed`` before anything tries to store it;
* storing the certify id fails -> ``storage_error`` when the store still answers, an ERROR line
  with the record id and certify id either way (the Init was billed: support can find it), and
  503: the client can only start again later.

A client identity that differs from the app's profile is an attempt too: an ``init_failed``
record with ``error_code="identity_mismatch"``, counted by the attempt limit, with no Init.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from dataclasses import field
from typing import NoReturn
from typing import Protocol

from . import signals
from .cloud.base import InitRequest
from .cloud.errors import CloudError
from .errors import AttemptsExhausted
from .errors import IdentityMismatch
from .errors import UpstreamError
from .errors import UpstreamMalformed
from .errors import UpstreamUnavailable
from .errors import init_error
from .identity import cert_no_digest
from .jobs import JobTarget
from .policy import AttemptLimiter
from .policy import Identity
from .policy import Value
from .policy import allowed_return_url
from .policy import callback_token_digest
from .policy import new_callback_token
from .policy import resolve_identity
from .records import Record
from .records import Status
from .records import user_id_text
from .storage.base import RecordExists

logger = logging.getLogger("flask_alicertify")

_MAX_ERROR_CODE = 64
#: The longest certify id the HTTP contract accepts back from a client (schemas.MAX_CERTIFY_ID).
MAX_CERTIFY_ID = 128
_UNUSABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")

User = tuple[str | None, str]


class StartTarget(JobTarget, Protocol):
    """What starting needs from :class:`~flask_alicertify.service.CertifyService`."""

    @property
    def limiter(self) -> AttemptLimiter: ...

    @property
    def instance(self) -> str: ...

    @property
    def sandbox(self) -> bool: ...


@dataclass(frozen=True)
class Started:
    """What :meth:`CertifyService.start` returns. ``certify_url`` is never stored anywhere."""

    record: Record
    certify_url: str = field(repr=False)


def user_key(user_id: str | int | None) -> User:
    """``(text, type)`` of a user id as the loader produced it (None: anonymous)."""
    return (None, "str") if user_id is None else user_id_text(user_id)


def usable_certify_id(value: object) -> bool:
    """Whether an Init answer's CertifyId can be stored, sent back and described."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_CERTIFY_ID
        and value.strip() == value
        and _UNUSABLE.search(value) is None
    )


def start(
    service: StartTarget,
    *,
    user_id: str | int | None,
    cert_no: Value | None,
    cert_name: Value | None,
    return_url: str | None,
    meta_info: str | None,
    profile: tuple[Value, Value] | None,
) -> Started:
    settings = service.settings
    user = user_key(user_id)
    return_url = allowed_return_url(
        return_url, configured=settings.return_url, hosts=settings.return_url_hosts
    )
    identity = resolve_identity(cert_name, cert_no, profile)
    if identity.mismatch:
        refuse_mismatch(service, user, identity)
    callback_token = new_callback_token() if settings.callback_url else None
    record = create(service, user, identity, callback_token)
    request = InitRequest(
        outer_order_no=record.id,
        cert_name=identity.name,
        cert_no=identity.number,
        return_url=return_url,
        callback_url=settings.callback_url,
        callback_token=callback_token,
        meta_info=meta_info,
    )
    try:
        result = service.gateway.init(request)
    except CloudError as e:
        fail_init(service, record, (e.code or type(e).__name__)[:_MAX_ERROR_CODE])
        logger.warning(
            "record %s: init failed (%s code=%s request_id=%s)",
            record.id,
            type(e).__name__,
            e.code,
            e.request_id,
        )
        raise init_error(e) from e
    except Exception as e:
        fail_init(service, record, "internal_error")
        logger.error("record %s: init raised %s", record.id, type(e).__name__, exc_info=True)
        raise UpstreamError() from e
    except BaseException:
        fail_init(service, record, "interrupted")
        raise
    if not usable_certify_id(result.certify_id):
        fail_init(service, record, "upstream_malformed")
        logger.error("record %s: Init answered an unusable CertifyId; init_failed", record.id)
        raise UpstreamMalformed()
    pending = store_certify_id(service, record, result.certify_id)
    logger.info("record %s: pending certify_id=%s", pending.id, pending.certify_id)
    service.announcer.send(signals.certify_initiated, pending)
    return Started(record=pending, certify_url=result.certify_url)


def store_certify_id(service: StartTarget, record: Record, certify_id: str) -> Record:
    """initiating -> pending with the certify id of a billed Init."""
    try:
        pending = service.storage.update(
            record.id,
            expect={Status.INITIATING},
            status=Status.PENDING,
            certify_id=certify_id,
            updated_at=service.clock(),
        )
    except RecordExists:
        fail_init(service, record, "duplicate_certify_id")
        logger.error("record %s: Alibaba returned a certify id another record already has", record.id)
        raise UpstreamMalformed() from None
    except Exception as e:
        # The client can only start again; the log line is how support finds the billed Init.
        logger.error(
            "record %s: Init succeeded (certify_id=%s) but storing it failed (%s)",
            record.id,
            certify_id,
            type(e).__name__,
            exc_info=True,
        )
        try:
            fail_init(service, record, "storage_error")
        except Exception:  # noqa: BLE001 - the store is down; reconcile marks it interrupted later
            logger.error("record %s: left initiating; reconcile will mark it interrupted", record.id)
        raise UpstreamUnavailable() from e
    if pending is None:
        logger.error("record %s: left the initiating state while Init was running", record.id)
        raise UpstreamUnavailable()
    return pending


def create(
    service: StartTarget,
    user: User,
    identity: Identity,
    callback_token: str | None,
    *,
    error_code: str | None = None,
) -> Record:
    """Write the attempt's record within the per-user daily attempt limit (see
    :class:`~flask_alicertify.policy.AttemptLimiter`): ``initiating``, or, with an
    ``error_code``, an ``init_failed`` attempt refused before any Init."""
    key = service.settings.pii_key
    token_digest = callback_token_digest(key, callback_token) if callback_token else None
    user_id, user_type = user
    limiter = service.limiter
    with limiter.hold(user_id):
        now = service.clock()
        limiter.check(user_id, now)
        record = Record(
            id=uuid.uuid4().hex,
            status=Status.INIT_FAILED if error_code else Status.INITIATING,
            created_at=now,
            updated_at=now,
            user_id=user_id,
            user_id_type=user_type,
            api=service.gateway.api,
            cert_no_digest=cert_no_digest(identity.number.reveal(), key),
            cert_no_masked=identity.number.masked,
            cert_name_masked=identity.name.masked,
            callback_token_digest=token_digest,
            instance=service.instance,
            sandbox=service.sandbox,
            # A refused attempt is born init_failed, which has no outcome signal to deliver.
            passed=False if error_code else None,
            error_code=error_code,
            delivered_at=now if error_code else None,
        )
        service.storage.create(record)
        if limiter.exceeded(user_id, now):
            if not error_code:
                fail_init(service, record, "attempts_exhausted")
            logger.info("record %s: refused, another worker took the last attempt", record.id)
            raise AttemptsExhausted()
    logger.info("record %s: %s", record.id, record.status)
    return record


def refuse_mismatch(service: StartTarget, user: User, identity: Identity) -> NoReturn:
    """Store the mismatch as a spent attempt, then refuse it: probing the stored identity costs
    what a real attempt costs, and leaves a trail (the answer names no field)."""
    record = create(service, user, identity, None, error_code="identity_mismatch")
    logger.warning("record %s: identity_mismatch: the submitted identity is not the account's", record.id)
    raise IdentityMismatch()


def fail_init(service: StartTarget, record: Record, error_code: str) -> None:
    """initiating -> init_failed (marked delivered: init_failed has no outcome signal)."""
    now = service.clock()
    service.storage.update(
        record.id,
        expect={Status.INITIATING},
        status=Status.INIT_FAILED,
        passed=False,
        error_code=error_code,
        updated_at=now,
        delivered_at=now,
    )
