"""Keep personal data out of third-party logs.

The problem: Alibaba's wire format puts ``CertName`` and ``CertNo`` in the URL query string of
InitFaceVerify (as the SDK's ``Client.init_face_verify_with_options`` does), and the libraries
underneath log request URLs:

* ``httpx`` logs ``HTTP Request: POST https://…/?CertName=…&CertNo=… "HTTP/1.1 200 OK"`` at INFO;
* ``urllib3.connectionpool`` (used by the official SDK through ``requests``) logs the path and
  query at DEBUG;
* ``darabonba-core`` logs the path, query and every header (security token included) when the
  SDK runs with ``DEBUG=sdk``.

Why a log filter and not a different wire format: moving the PII into the form body would make
our requests differ from the SDK's (the service documents these fields as query parameters and
we do not know that it reads them from the body), and bypassing ``httpx.Client.send`` to avoid
its log line would mean reaching into private attributes and losing the client's behaviour.
A :class:`logging.Filter` attached to those libraries' loggers rewrites each record *before* any
handler sees it (logger-level filters run in ``Logger.handle`` ahead of propagation, so root
handlers, ``caplog`` and Sentry-style integrations all receive the redacted record). It changes
only the values of the sensitive parameters; the rest of the line (method, host, status) stays
useful. The filter is installed idempotently when a gateway is created, not at import.

Our own logger (``flask_alicertify.cloud``) never receives URLs or parameters in the first place.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

#: Parameters whose values never appear in logs: the identity (cloudauth query / SAF JSON), the
#: SAF ServiceParameters blob that carries it, and the per-session callback secret.
SENSITIVE_PARAMS: tuple[str, ...] = (
    "CertName",
    "CertNo",
    "certName",
    "certNo",
    "ServiceParameters",
    "CallbackToken",
    "callbackToken",
)
SENSITIVE_HEADERS: tuple[str, ...] = ("x-acs-security-token", "authorization")

#: Loggers of the libraries that can print a request URL or headers.
THIRD_PARTY_LOGGERS: tuple[str, ...] = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "urllib3.connectionpool",
    "darabonba-core",
)

_names = "|".join(re.escape(n) for n in SENSITIVE_PARAMS)
# k=v in a query string or form body (v ends at &, whitespace, a quote or #).
_QUERY_RE = re.compile(rf"(?<![A-Za-z0-9_])({_names})=([^&\s\"'#]*)")
# "k": "v" in JSON (also the escaped \"k\": \"v\" form inside a JSON string).
_JSON_RE = re.compile(rf"(\\?\"(?:{_names})\\?\"\s*:\s*)(\\?\")(.*?)(\2)")
# header lines as darabonba and some debug tools print them: "> name : value" or "name: value".
_HEADER_RE = re.compile(
    r"(?im)^([>< ]*(?:" + "|".join(re.escape(h) for h in SENSITIVE_HEADERS) + r")\s*:\s*)(.+)$"
)


def redact(text: str) -> str:
    """Replace the values of sensitive parameters and headers in ``text``."""
    if not text:
        return text
    text = _QUERY_RE.sub(rf"\1={REDACTED}", text)
    text = _JSON_RE.sub(rf"\1\2{REDACTED}\4", text)
    return _HEADER_RE.sub(rf"\1{REDACTED}", text)


def _redact_arg(arg: Any) -> Any:
    if isinstance(arg, (int, float, bool)) or arg is None:
        return arg
    if isinstance(arg, str):
        return redact(arg)
    if isinstance(arg, bytes):
        text = arg.decode("utf-8", "replace")
        cleaned = redact(text)
        return arg if cleaned == text else cleaned
    # httpx.URL, urllib3 objects, tuples of headers...: only replace when the text changes, so
    # objects that format with %r or %d keep working when there is nothing to hide.
    try:
        text = str(arg)
    except Exception:  # pragma: no cover - defensive: never break logging
        return arg
    cleaned = redact(text)
    return arg if cleaned == text else cleaned


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and arguments so sensitive values never reach a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.msg, str):
                record.msg = redact(record.msg)
            elif record.msg is not None and not isinstance(record.msg, (int, float)):
                record.msg = _redact_arg(record.msg)
            args = record.args
            if isinstance(args, tuple):
                record.args = tuple(_redact_arg(a) for a in args)
            elif isinstance(args, Mapping):
                record.args = {k: _redact_arg(v) for k, v in args.items()}
        except Exception:  # pragma: no cover - a filter must never break logging
            pass
        return True


_FILTER = RedactingFilter(name="")


def install_log_redaction(logger_names: Iterable[str] = THIRD_PARTY_LOGGERS) -> None:
    """Attach the redacting filter to each named logger, once."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(_FILTER)
