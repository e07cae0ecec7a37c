"""Keep Alibaba's callback token out of request logs.

Alibaba calls ``GET {prefix}/callback?certifyId=…&callbackToken=…``: the token authenticates the
callback, so whoever reads it from a log can forge one for that record. Werkzeug's development
server logs every request line on the ``"werkzeug"`` logger; :func:`install` adds a filter there
that rewrites the token's value (``callbackToken`` and ``CallbackToken``, any case) to
``[redacted]`` in the message and its arguments before any handler sees them. Production
servers keep their own access logs: docs/operations.md gives a gunicorn format without the
query string.
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: ``callbackToken=<value>`` in a query string, up to the next separator.
TOKEN = re.compile(r"(?i)(callbacktoken=)[^&\s\"'#]*")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with every callback token value replaced by ``[redacted]``."""
    return TOKEN.sub(lambda m: m.group(1) + REDACTED, text)


class RedactCallbackToken(logging.Filter):
    """A filter that redacts callback tokens in a record's message and string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_arg(value) for key, value in record.args.items()}
        return True


def _redact_arg(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def install(logger_name: str = "werkzeug") -> RedactCallbackToken:
    """Add the filter to ``logger_name`` once per process; answer the installed filter."""
    logger = logging.getLogger(logger_name)
    for existing in logger.filters:
        if isinstance(existing, RedactCallbackToken):
            return existing
    installed = RedactCallbackToken()
    logger.addFilter(installed)
    return installed
