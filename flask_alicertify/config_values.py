"""Typed reading of configuration values, as Flask's config loaders really deliver them.

Framework-free. One setting can arrive in many shapes, and each must mean the same thing:

* ``app.config.from_prefixed_env()`` JSON-decodes every value it can: ``FLASK_X_SCENE_ID=1000000006``
  is the ``int`` 1000000006, ``true`` is ``True``, ``1`` is ``1``, ``null`` is ``None``,
  ``["a", "b"]`` a list, and anything that is not JSON (``a.com, b.com``) stays a string;
* ``from_object`` / ``from_pyfile`` / ``from_file`` (JSON, TOML) give natural Python types (TOML
  has no null, so "off" is written ``false``);
* ``.env`` files and ``os.environ`` give plain strings.

So a text key takes an ``int`` as its digits (a digits-only secret decodes to one), a boolean
takes ``0``/``1`` and the usual words, a number takes its text, a list takes a comma-separated
string. A value whose decoding may have lost information (a ``float`` where text was meant:
``"1.50"`` decodes to ``1.5``) is refused with the way to quote it, never silently changed.
Every refusal is a :class:`~flask_alicertify.errors.ConfigurationError` naming the full key;
secrets are never repeated in a message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
#: Words that switch an optional limit off (``None`` itself, and ``False`` from TOML, too).
_OFF = frozenset({"none", "null", "off", "false"})

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_QUOTE_HINT = (
    "; Flask's from_prefixed_env decodes an unquoted number as JSON, so quote the value "
    "(FLASK_{key}='\"...\"') or set it as a string"
)


def parse_duration(value: str) -> timedelta:
    """``"90s"``, ``"10m"``, ``"2h"``, ``"180d"``, ``"2w"`` or plain seconds (``"3600"``)."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 10m, 2h, 180d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


class Reader:
    """Typed access to the ``{prefix}NAME`` keys of one mapping."""

    def __init__(self, config: Mapping[str, Any], prefix: str) -> None:
        self.config = config
        self.prefix = prefix

    def key(self, name: str) -> str:
        return self.prefix + name

    def raw(self, name: str) -> Any:
        return self.config.get(self.key(name))

    def fail(self, name: str, problem: str) -> ConfigurationError:
        return ConfigurationError(self.key(name), problem)

    def text(self, name: str, *, secret: bool = False) -> str | None:
        """A string setting; an ``int`` is taken as its digits. Blank is unset (None)."""
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            shown = "" if secret else f" {value!r}"
            raise self.fail(name, f"must be a string, got the number{shown}" + self._hint(name))
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {type(value).__name__}")
        value = value.strip()
        return value or None

    def _hint(self, name: str) -> str:
        return _QUOTE_HINT.format(key=self.key(name))

    def whole_digits(self, name: str, *, max_value: int) -> str | None:
        """A non-negative whole number, given as an ``int`` or a string of digits, as text."""
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        elif isinstance(value, str):
            text = value.strip()
            if not text:
                return None
        else:
            raise self.fail(name, f"must be a whole number (digits only), got {value!r}")
        if not (text.isascii() and text.isdigit()) or int(text) > max_value:
            raise self.fail(name, f"must be a whole number (digits only), got {value!r}")
        return text

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            word = value.strip().lower()
            if not word:
                return default
            if word in _TRUE | _FALSE:
                return word in _TRUE
        raise self.fail(name, f"must be True or False, got {value!r}")

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise self.fail(name, f"must be one of {allowed}, got {value!r}")
        return value.lower()

    def _number(self, name: str, value: Any) -> float:
        if isinstance(value, bool):
            raise self.fail(name, f"must be a number, got {value!r}")
        try:
            number = float(value.strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise self.fail(name, f"must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise self.fail(name, f"must be a number, got {value!r}")
        return number

    def number(self, name: str, default: float, *, minimum: float, exclusive: bool = False) -> float:
        value = self.raw(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return default
        number = self._number(name, value)
        if number < minimum or (exclusive and number == minimum):
            relation = "greater than" if exclusive else "at least"
            raise self.fail(name, f"must be a number {relation} {minimum:g}, got {value!r}")
        return number

    def is_off(self, name: str) -> bool:
        """Whether the key is set to "no limit": None, False, or one of the words for it."""
        if self.key(name) not in self.config:
            return False
        value = self.raw(name)
        if value is None or value is False:
            return True
        return isinstance(value, str) and value.strip().lower() in _OFF

    def optional_int(self, name: str, default: int, *, minimum: int) -> int | None:
        if self.is_off(name):
            return None
        value = self.raw(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return default
        try:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                value = int(value)
            number = int(value.strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            raise self.fail(name, f"must be a whole number (or None for no limit), got {value!r}") from None
        if number < minimum:
            raise self.fail(name, f"must be at least {minimum} (or None for no limit), got {value!r}")
        return number

    def optional_number(self, name: str, default: float | None, *, minimum: float) -> float | None:
        """A positive number, or None (no limit) when set to None/False/"none"/"off"."""
        if self.is_off(name):
            return None
        value = self.raw(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return default
        number = self._number(name, value)
        if number <= minimum:
            raise self.fail(name, f"must be a number greater than {minimum:g} (or None), got {value!r}")
        return number

    def duration(self, name: str) -> float | None:
        """Seconds, from a number or a duration string such as ``"180d"``; None when unset/off."""
        if self.is_off(name):
            return None
        value = self.raw(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, timedelta):
            seconds = value.total_seconds()
        elif isinstance(value, str):
            try:
                seconds = parse_duration(value).total_seconds()
            except ValueError:
                raise self.fail(
                    name, f"must be a duration such as 180d, 12h or 3600, got {value!r}"
                ) from None
        else:
            seconds = self._number(name, value)
        if seconds <= 0:
            raise self.fail(name, f"must be a positive duration, got {value!r}")
        return seconds

    def strings(self, name: str, default: Sequence[str]) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return tuple(default)
        if isinstance(value, str):
            items = [part.strip() for part in value.split(",")]
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = []
            for item in value:
                if not isinstance(item, str):
                    raise self.fail(name, f"must contain only strings, got {item!r}")
                items.append(item.strip())
        else:
            raise self.fail(name, f"must be a list or a comma-separated string, got {type(value).__name__}")
        return tuple(item for item in items if item)

    def endpoints(self, name: str, default: Sequence[str]) -> tuple[str, ...]:
        endpoints = self.strings(name, default)
        if not endpoints:
            raise self.fail(name, "must name at least one endpoint")
        for endpoint in endpoints:
            if "://" in endpoint:
                parts = urlsplit(endpoint)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise self.fail(name, f"must be host names or http(s) URLs, got {endpoint!r}")
            elif "/" in endpoint or " " in endpoint:
                raise self.fail(name, f"must be host names or http(s) URLs, got {endpoint!r}")
        return endpoints

    def url(self, name: str, *, allow_http: bool) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        if not is_http_url(value, allow_http=allow_http):
            need = "an absolute http(s) URL" if allow_http else "an absolute https:// URL"
            raise self.fail(name, f"must be {need}, got {value!r}")
        return value

    def url_prefix(self, name: str, default: str) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {type(value).__name__}")
        value = value.strip().rstrip("/")
        if value and not value.startswith("/"):
            raise self.fail(name, f"must start with '/', got {value!r}")
        return value

    def secret_bytes(self, name: str) -> bytes | None:
        """A key given as text (kept exactly, spaces included), bytes, or a digits-only key that
        JSON decoding turned into an ``int``; None when unset."""
        value = self.raw(name)
        if value is None or isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value).encode("ascii")
        if isinstance(value, float):
            raise self.fail(name, "must be a string or bytes, got a number" + self._hint(name))
        raise self.fail(name, f"must be a string or bytes, got {type(value).__name__}")


def is_http_url(value: str, *, allow_http: bool) -> bool:
    """An absolute ``https://`` URL with a host (or ``http://`` too, when allowed)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    schemes = ("https", "http") if allow_http else ("https",)
    return parts.scheme in schemes and bool(parts.hostname)
