"""``ALICERTIFY_*`` configuration, read once into a frozen, validated :class:`Settings`.

Framework-free: :meth:`Settings.from_mapping` takes any mapping (``app.config``) plus the few
app facts it needs (instance path, testing flag, secret key), so it is testable without Flask.
Every problem raises :class:`~flask_alicertify.errors.ConfigurationError` naming the key (with
the instance's prefix) and saying what is wrong, at ``init_app`` time rather than on the first
user's request.

Values may be the natural Python type or a string (``app.config.from_prefixed_env`` and
``.env`` files give strings): ``"true"``/``"false"`` for booleans, numbers for numbers, and a
comma-separated string for lists.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import urlsplit

from .cloud.base import DEFAULT_CLOUDAUTH_ENDPOINTS
from .cloud.base import DEFAULT_SAF_ENDPOINTS
from .cloud.gateways import APIS
from .errors import ConfigurationError
from .storage.loader import configured_storage

#: Alibaba's documented lifetime of a certify id / certify URL, in seconds: 30 minutes (see
#: https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/initfaceverify).
CERTIFY_ID_LIFETIME = 30 * 60

#: Label mixed into SECRET_KEY to derive the PII key, so the two keys are never the same bytes.
PII_KEY_LABEL = b"flask-alicertify pii-key v1"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """One extension instance's configuration. docs/configuration.md describes each key."""

    prefix: str = "ALICERTIFY_"
    access_key_id: str | None = None
    access_key_secret: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    scene_id: str | None = None
    api: str = "cloudauth"
    product_code: str = "ID_PRO"
    endpoints: tuple[str, ...] = DEFAULT_CLOUDAUTH_ENDPOINTS
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    url_prefix: str = "/alicertify"
    #: A built-in backend name (lower case), an import path, or a storage instance; see
    #: :func:`~flask_alicertify.storage.loader.storage_from_config`.
    storage: Any = "memory"
    database_url: str | None = None
    #: True when ``database_url`` is our default SQLite file (the instance folder must exist).
    database_url_is_default: bool = False
    redis_url: str | None = None
    callback_url: str | None = None
    return_url: str | None = None
    return_url_hosts: frozenset[str] = frozenset()
    #: Init calls per user per 24 h; None means no limit.
    max_attempts_per_day: int | None = 5
    describe_min_interval: float = 2.0
    #: Seconds after Init before ``GET /result`` describes a record with no client claim yet.
    unclaimed_describe_after: float = 60.0
    pii_key: bytes = field(default=b"", repr=False)
    sandbox: bool = False
    #: Serve ``{prefix}/openapi.json`` (an OpenAPI 3.1 document built from the schemas).
    openapi: bool = True
    allow_anonymous: bool = False
    #: Largest accepted request body on the blueprint, in bytes.
    max_body_size: int = 16 * 1024
    #: Default language of user-facing messages, "zh" or "en" (Accept-Language can pick the other).
    language: str = "zh"
    #: Seconds after the certify id lifetime before reconcile expires a still-unfinished record.
    expire_grace: float = 300.0

    def key(self, name: str) -> str:
        """The full config key for a setting name, e.g. ``key("SCENE_ID")``."""
        return self.prefix + name

    @property
    def expire_after(self) -> float:
        """Seconds after creation when an unfinished record is expired by reconcile."""
        return CERTIFY_ID_LIFETIME + self.expire_grace

    @classmethod
    def from_mapping(
        cls,
        config: Mapping[str, Any],
        *,
        prefix: str = "ALICERTIFY_",
        instance_path: str | None = None,
        testing: bool = False,
        secret_key: str | bytes | None = None,
    ) -> Settings:
        """Read and validate every ``{prefix}*`` key of ``config``."""
        r = _Reader(config, prefix)
        sandbox = r.boolean("SANDBOX", False)
        api = r.choice("API", "cloudauth", APIS)
        access_key_id = r.text("ACCESS_KEY_ID")
        access_key_secret = r.text("ACCESS_KEY_SECRET")
        security_token = r.text("SECURITY_TOKEN")
        if sandbox and (access_key_id or access_key_secret):
            raise ConfigurationError(
                r.key("SANDBOX"),
                "cannot be combined with real credentials: unset "
                f"{r.key('ACCESS_KEY_ID')} and {r.key('ACCESS_KEY_SECRET')} "
                "(sandbox mode never calls Alibaba)",
            )
        scene_id = r.text("SCENE_ID")
        if scene_id is None and not sandbox:
            raise ConfigurationError(
                r.key("SCENE_ID"), "is required (the scene id from the Alibaba Cloud console)"
            )
        default_endpoints = DEFAULT_SAF_ENDPOINTS if api == "saf" else DEFAULT_CLOUDAUTH_ENDPOINTS
        endpoints = r.endpoints("ENDPOINTS", default_endpoints)

        storage: Any = config.get(r.key("STORAGE"))
        if storage is None or (isinstance(storage, str) and not storage.strip()):
            storage = "memory" if testing else "sqlalchemy"
        database_url = r.text("DATABASE_URL")
        database_url_is_default = False
        if database_url is None and instance_path:
            database_url = "sqlite:///" + os.path.join(instance_path, "alicertify.sqlite3")
            database_url_is_default = True
        redis_url = r.text("REDIS_URL")
        storage = configured_storage(storage, database_url=database_url, redis_url=redis_url, key=r.key)

        callback_url = r.url("CALLBACK_URL", allow_http=sandbox)
        return_url = r.url("RETURN_URL", allow_http=sandbox)
        return_url_hosts = frozenset(h.lower().rstrip(".") for h in r.strings("RETURN_URL_HOSTS", ()))
        for host in return_url_hosts:
            if not host or "/" in host or "@" in host or ":" in host.strip("[]"):
                raise ConfigurationError(
                    r.key("RETURN_URL_HOSTS"), f"must list bare host names (like example.com), got {host!r}"
                )

        return cls(
            prefix=prefix,
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            scene_id=scene_id,
            api=api,
            product_code=r.text("PRODUCT_CODE") or "ID_PRO",
            endpoints=endpoints,
            connect_timeout=r.number("CONNECT_TIMEOUT", 5.0, minimum=0.0, exclusive=True),
            read_timeout=r.number("READ_TIMEOUT", 10.0, minimum=0.0, exclusive=True),
            url_prefix=r.url_prefix("URL_PREFIX", "/alicertify"),
            storage=storage,
            database_url=database_url,
            database_url_is_default=database_url_is_default,
            redis_url=redis_url,
            callback_url=callback_url,
            return_url=return_url,
            return_url_hosts=return_url_hosts,
            max_attempts_per_day=r.optional_int("MAX_ATTEMPTS_PER_DAY", 5, minimum=1),
            describe_min_interval=r.number("DESCRIBE_MIN_INTERVAL", 2.0, minimum=0.0),
            unclaimed_describe_after=r.number("UNCLAIMED_DESCRIBE_AFTER", 60.0, minimum=0.0),
            pii_key=r.pii_key(secret_key),
            sandbox=sandbox,
            openapi=r.boolean("OPENAPI", True),
            allow_anonymous=r.boolean("ALLOW_ANONYMOUS", False),
            max_body_size=int(r.number("MAX_BODY_SIZE", 16 * 1024, minimum=256.0)),
            language=r.choice("LANGUAGE", "zh", ("zh", "en")),
            expire_grace=r.number("EXPIRE_GRACE", 300.0, minimum=0.0),
        )


class _Reader:
    """Typed access to ``{prefix}NAME`` keys, raising :class:`ConfigurationError` on bad values."""

    def __init__(self, config: Mapping[str, Any], prefix: str) -> None:
        self.config = config
        self.prefix = prefix

    def key(self, name: str) -> str:
        return self.prefix + name

    def raw(self, name: str) -> Any:
        return self.config.get(self.key(name))

    def fail(self, name: str, problem: str) -> ConfigurationError:
        return ConfigurationError(self.key(name), problem)

    def text(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {type(value).__name__}")
        value = value.strip()
        return value or None

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise self.fail(name, f"must be True or False, got {value!r}")

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise self.fail(name, f"must be one of {allowed}, got {value!r}")
        return value.lower()

    def number(self, name: str, default: float, *, minimum: float, exclusive: bool = False) -> float:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            raise self.fail(name, f"must be a number, got {value!r}")
        try:
            number = float(value.strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise self.fail(name, f"must be a number, got {value!r}") from None
        if not math.isfinite(number) or number < minimum or (exclusive and number == minimum):
            relation = "greater than" if exclusive else "at least"
            raise self.fail(name, f"must be a number {relation} {minimum:g}, got {value!r}")
        return number

    def optional_int(self, name: str, default: int, *, minimum: int) -> int | None:
        if self.key(name) in self.config and self.raw(name) is None:
            return None
        value = self.raw(name)
        if value is None:
            return default
        try:
            if isinstance(value, bool) or isinstance(value, float):
                raise ValueError
            number = int(value.strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            raise self.fail(name, f"must be a whole number (or None for no limit), got {value!r}") from None
        if number < minimum:
            raise self.fail(name, f"must be at least {minimum} (or None for no limit), got {value!r}")
        return number

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
        parts = urlsplit(value)
        schemes = ("https", "http") if allow_http else ("https",)
        if parts.scheme not in schemes or not parts.hostname:
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

    def pii_key(self, secret_key: str | bytes | None) -> bytes:
        value = self.raw("PII_KEY")
        if value is not None:
            if isinstance(value, str):
                value = value.encode("utf-8")
            if not isinstance(value, bytes):
                raise self.fail("PII_KEY", f"must be a string or bytes, got {type(value).__name__}")
            if len(value) < 16:
                raise self.fail("PII_KEY", "must be at least 16 bytes long (use a random secret)")
            return value
        if secret_key:
            secret = secret_key.encode("utf-8") if isinstance(secret_key, str) else bytes(secret_key)
            return hmac.new(secret, PII_KEY_LABEL, hashlib.sha256).digest()
        raise self.fail(
            "PII_KEY",
            "is required when SECRET_KEY is not set (it keys the HMAC digest of stored ID numbers); "
            "set SECRET_KEY or " + self.key("PII_KEY"),
        )
