"""Input policy: what a start request may contain, decided before anything is stored or sent.

* :func:`resolve_identity`: the name and ID number to verify (as :class:`~.identity.Sensitive`),
  from the app's profile (the client's values must then be absent, placeholders, or equal) or
  from the client;
* :func:`allowed_return_url`: the configured return URL, or a client one that is https on an
  allowed host;
* :func:`new_callback_token` / :func:`callback_token_digest` / :func:`callback_token_matches`:
  the per-record secret that authenticates Alibaba's callback, stored only as an HMAC digest;
* :class:`AttemptLimiter`: the per-user daily attempt limit, exact under concurrency.

Framework-free; the service calls these and raises what they raise.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Set
from contextlib import contextmanager
from datetime import datetime
from datetime import timedelta
from typing import NamedTuple
from urllib.parse import urlsplit

from .errors import AttemptsExhausted
from .errors import InvalidCertName
from .errors import InvalidInput
from .errors import InvalidReturnUrl
from .identity import InvalidIdentity
from .identity import Sensitive
from .identity import is_placeholder
from .identity import reveal
from .identity import validate_cert_name
from .identity import validate_cert_no
from .storage.base import Storage

logger = logging.getLogger("flask_alicertify")

#: The window the daily attempt limit counts Init calls in.
ATTEMPT_WINDOW = timedelta(hours=24)

_CALLBACK_TOKEN_LABEL = b"flask-alicertify callback-token v1\x00"
_LOCK_STRIPES = 64


# -- identity ---------------------------------------------------------------------------------

#: A client value: clear text, or wrapped so that no frame's ``repr`` shows it.
Value = str | Sensitive


class Identity(NamedTuple):
    """The name and ID number to verify, validated and wrapped; ``mismatch`` is True when the
    client sent a real value that differs from the app's profile (the request is then refused,
    and recorded as an attempt)."""

    name: Sensitive
    number: Sensitive
    mismatch: bool = False


def resolve_identity(
    cert_name: Value | None, cert_no: Value | None, profile: tuple[Value, Value] | None
) -> Identity:
    """The validated name and number to send, from the profile or from the client.

    ``profile`` is ``(cert_name, cert_no)`` from the app's identity loader: it replaces the
    client's values, which must then be absent, placeholders (``1******************9``), or
    equal to it. A difference is reported as ``mismatch`` rather than raised, and never says
    which value differs or how: an answer that named the field let a caller recover a stored ID
    number digit by digit. Both values are always compared, in constant time.
    """
    if profile is not None:
        try:
            name = Sensitive(validate_cert_name(reveal(profile[0])), kind="cert_name")
            number = Sensitive(validate_cert_no(reveal(profile[1])), kind="cert_no")
        except InvalidIdentity as e:
            logger.warning("identity_loader returned an invalid identity (%s)", e.code)
            raise InvalidInput(
                "账户中的身份信息无效", "The identity stored for this account is not valid."
            ) from None
        same_number = _matches(cert_no, number, validate_cert_no)
        same_name = _matches(cert_name, name, validate_cert_name)
        return Identity(name, number, mismatch=not (same_number and same_name))
    missing: dict[str, list[str]] = {}
    if cert_no is None or not reveal(cert_no).strip():
        missing["certNo"] = ["Missing data for required field."]
    if cert_name is None or not reveal(cert_name).strip():
        missing["certName"] = ["Missing data for required field."]
    if missing:
        raise InvalidInput("请填写姓名和身份证号码", fields={"serviceParameters": missing})
    assert cert_no is not None and cert_name is not None
    try:
        number = Sensitive(validate_cert_no(reveal(cert_no)), kind="cert_no")
    except InvalidIdentity as e:
        raise InvalidInput(
            e.message_zh, e.message_en, fields={"serviceParameters": {"certNo": [e.message_en]}}
        ) from None
    try:
        name = Sensitive(validate_cert_name(reveal(cert_name)), kind="cert_name")
    except InvalidIdentity as e:
        raise InvalidCertName(
            e.message_zh, e.message_en, fields={"serviceParameters": {"certName": [e.message_en]}}
        ) from None
    return Identity(name, number)


def _matches(client: Value | None, expected: Sensitive, validator: Callable[[object], str]) -> bool:
    """Whether a client value agrees with the profile's: absent and placeholder values do."""
    if client is None or not reveal(client).strip() or is_placeholder(reveal(client)):
        return True
    try:
        # Sensitive's == compares in constant time.
        return Sensitive(validator(reveal(client)), kind="cert_no") == expected
    except InvalidIdentity:
        return False


# -- return URL -------------------------------------------------------------------------------


def allowed_return_url(client_value: str | None, *, configured: str | None, hosts: Set[str]) -> str | None:
    """The configured return URL, else an allowed client one (https, listed host), else None.

    With neither setting, a client's URL is dropped, not refused: an Alipay mini-program comes
    back through the ``open-certify`` callback, never through ``returnUrl``, and Alibaba's own
    sample body sends one. Once either setting exists, a client URL is refused (400
    ``invalid_return_url``) unless it is plain https on one of ``hosts``: no credentials, no
    whitespace, control characters or backslashes that browsers and URL parsers read differently.
    """
    if configured:
        return configured
    if not hosts:
        return None
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
    if host.rstrip(".") not in hosts:
        raise InvalidReturnUrl(fields=fields)
    return value


# -- callback token ---------------------------------------------------------------------------


def new_callback_token() -> str:
    """A fresh token for one record's callback URL (Alibaba's ``CallbackToken``)."""
    return secrets.token_hex(16)


def callback_token_digest(pii_key: bytes, token: str) -> str:
    """What the record stores instead of the token: a keyed digest, useless to a reader."""
    return hmac.new(pii_key, _CALLBACK_TOKEN_LABEL + token.encode("utf-8"), hashlib.sha256).hexdigest()


def callback_token_matches(pii_key: bytes, token: str | None, expected: str | None) -> bool:
    """Whether a callback's token is the record's (constant-time; a missing one never matches)."""
    if not token or not expected:
        return False
    return hmac.compare_digest(callback_token_digest(pii_key, token), expected)


# -- attempt limit ----------------------------------------------------------------------------


class AttemptLimiter:
    """The per-user daily limit on Init calls (``ALICERTIFY_MAX_ATTEMPTS_PER_DAY``).

    The limit holds under concurrency. Inside one process, :meth:`hold` serialises a user's
    count and insert (a lock per user, striped over a fixed set), so exactly N of any number of
    parallel inits proceed. Across processes, each new record counts the records that exist
    after its own insert (:meth:`exceeded`); the k-th inserted sees at least k, so never more
    than N proceed (under a cross-process race a few may be refused that could have gone
    through). Anonymous starts (no user id) and ``limit=None`` are not limited.
    """

    def __init__(self, storage: Storage, limit: int | None, *, window: timedelta = ATTEMPT_WINDOW) -> None:
        self.storage = storage
        self.limit = limit
        self.window = window
        self._locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))

    @contextmanager
    def hold(self, user_id: str | None) -> Iterator[None]:
        """Hold ``user_id``'s lock around the check, the insert and the re-count."""
        if user_id is None:
            yield
            return
        with self._locks[hash(user_id) % _LOCK_STRIPES]:
            yield

    def check(self, user_id: str | None, now: datetime) -> None:
        """Refuse (429 ``attempts_exhausted``) a user who already used every attempt."""
        if self.limit is None or user_id is None:
            return
        if self.storage.count_inits(user_id, since=now - self.window) >= self.limit:
            logger.info("init refused: attempt limit reached")
            raise AttemptsExhausted()

    def exceeded(self, user_id: str | None, now: datetime) -> bool:
        """After inserting a record: whether other workers took the last attempts meanwhile."""
        if self.limit is None or user_id is None:
            return False
        return self.storage.count_inits(user_id, since=now - self.window) > self.limit
