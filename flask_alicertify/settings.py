"""``ALICERTIFY_*`` configuration, read once into a frozen, validated :class:`Settings`.

Framework-free: :meth:`Settings.from_mapping` takes any mapping (``app.config``) plus the few
app facts it needs (instance path, testing flag, secret key), so it is testable without Flask.
Every problem raises :class:`~flask_alicertify.errors.ConfigurationError` naming the key (with
the instance's prefix) and saying what is wrong, at ``init_app`` time rather than on the first
user's request.

Every key accepts what Flask's loaders produce (``from_prefixed_env``'s JSON-decoded values,
``from_object``/``from_pyfile``/``from_file`` natural types, ``.env`` strings); the typed reading
is :class:`~flask_alicertify.config_values.Reader`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from .cloud import sm2
from .cloud.base import ALIBABA_SM2_PUBLIC_KEY as ALIBABA_SM2_PUBLIC_KEY
from .cloud.base import DEFAULT_CLOUDAUTH_ENDPOINTS
from .cloud.base import DEFAULT_SAF_ENDPOINTS
from .cloud.gateways import APIS
from .config_values import Reader
from .config_values import is_http_url
from .config_values import parse_duration as parse_duration
from .errors import ConfigurationError
from .storage.loader import configured_storage

#: Alibaba's documented lifetime of a certify id / certify URL, in seconds: 30 minutes (see
#: https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/initfaceverify).
CERTIFY_ID_LIFETIME = 30 * 60

#: Label mixed into SECRET_KEY to derive the PII key, so the two keys are never the same bytes.
PII_KEY_LABEL = b"flask-alicertify pii-key v1"

#: Alibaba's SceneId is a Long: at most 2**63 - 1.
_MAX_SCENE_ID = 2**63 - 1


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
    #: Sandbox mode: ``{prefix}SANDBOX`` is True (the in-process fake) or a URL (:attr:`sandbox_url`).
    sandbox: bool = False
    #: The shared sandbox server's URL when ``{prefix}SANDBOX`` is one, else None.
    sandbox_url: str | None = None
    #: The Flask-SQLAlchemy bind whose database keeps the records (None: the default engine).
    sqlalchemy_bind: str | None = None
    #: ``"SM2"``: send CertName/CertNo encrypted with :attr:`sm2_public_key`; None: in clear (TLS).
    encrypt_type: str | None = None
    sm2_public_key: str = ALIBABA_SM2_PUBLIC_KEY
    #: Call DeleteFaceVerifyResult for terminal records (reconcile, ``redact``); cloudauth only.
    delete_at_alibaba: bool = False
    #: Seconds after creation when the purge clears a record's identity fields; None keeps them.
    retention: float | None = None
    #: Upstream calls per second per API for the whole account (None: no guard).
    upstream_qps: float | None = 50.0
    #: Seconds a call waits for a quota slot before taking the throttled path.
    upstream_wait: float = 1.0
    #: Where the quota guard's counters live (a ``redis://`` URL); None: the Redis storage, else per process.
    rate_limit_url: str | None = None
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
        r = Reader(config, prefix)
        sandbox, sandbox_url = _sandbox(r)
        api = r.choice("API", "cloudauth", APIS)
        access_key_id = r.text("ACCESS_KEY_ID")
        access_key_secret = r.text("ACCESS_KEY_SECRET", secret=True)
        security_token = r.text("SECURITY_TOKEN", secret=True)
        if sandbox and (access_key_id or access_key_secret):
            raise ConfigurationError(
                r.key("SANDBOX"),
                "cannot be combined with real credentials: unset "
                f"{r.key('ACCESS_KEY_ID')} and {r.key('ACCESS_KEY_SECRET')} "
                "(sandbox mode never calls Alibaba)",
            )
        scene_id = r.whole_digits("SCENE_ID", max_value=_MAX_SCENE_ID)
        if scene_id is None and not sandbox:
            raise ConfigurationError(
                r.key("SCENE_ID"), "is required (the scene id from the Alibaba Cloud console)"
            )
        default_endpoints = DEFAULT_SAF_ENDPOINTS if api == "saf" else DEFAULT_CLOUDAUTH_ENDPOINTS
        endpoints = r.endpoints("ENDPOINTS", default_endpoints)

        storage: Any = config.get(r.key("STORAGE"))
        if storage is None or (isinstance(storage, str) and not storage.strip()):
            storage = "memory" if testing else "sqlalchemy"
        database_url = r.text("DATABASE_URL", secret=True)
        database_url_is_default = False
        if database_url is None and instance_path:
            database_url = "sqlite:///" + os.path.join(instance_path, "alicertify.sqlite3")
            database_url_is_default = True
        redis_url = r.text("REDIS_URL", secret=True)
        storage = configured_storage(storage, database_url=database_url, redis_url=redis_url, key=r.key)

        callback_url = r.url("CALLBACK_URL", allow_http=sandbox)
        return_url = r.url("RETURN_URL", allow_http=sandbox)
        return_url_hosts = frozenset(h.lower().rstrip(".") for h in r.strings("RETURN_URL_HOSTS", ()))
        for host in return_url_hosts:
            if not host or "/" in host or "@" in host or ":" in host.strip("[]"):
                raise ConfigurationError(
                    r.key("RETURN_URL_HOSTS"), f"must list bare host names (like example.com), got {host!r}"
                )
        delete_at_alibaba = r.boolean("DELETE_AT_ALIBABA", False)
        if delete_at_alibaba and api == "saf":
            raise ConfigurationError(
                r.key("DELETE_AT_ALIBABA"),
                f'cannot be used with {r.key("API")} = "saf": Alibaba documents no deletion of '
                "verification results for the SAF API (DeleteFaceVerifyResult is a cloudauth action)",
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
            pii_key=_pii_key(r, secret_key),
            sandbox=sandbox,
            sandbox_url=sandbox_url,
            sqlalchemy_bind=r.text("SQLALCHEMY_BIND"),
            encrypt_type=_encrypt_type(r),
            sm2_public_key=_sm2_public_key(r),
            delete_at_alibaba=delete_at_alibaba,
            retention=r.duration("RETENTION"),
            upstream_qps=r.optional_number("UPSTREAM_QPS", 50.0, minimum=0.0),
            upstream_wait=r.number("UPSTREAM_WAIT", 1.0, minimum=0.0),
            rate_limit_url=_rate_limit_url(r),
            openapi=r.boolean("OPENAPI", True),
            allow_anonymous=r.boolean("ALLOW_ANONYMOUS", False),
            max_body_size=int(r.number("MAX_BODY_SIZE", 16 * 1024, minimum=256.0)),
            language=r.choice("LANGUAGE", "zh", ("zh", "en")),
            expire_grace=r.number("EXPIRE_GRACE", 300.0, minimum=0.0),
        )


def _sandbox(r: Reader) -> tuple[bool, str | None]:
    """``{prefix}SANDBOX``: a boolean (the in-process fake), or the shared sandbox server's URL."""
    value = r.raw("SANDBOX")
    problem = f"must be True or False, or the sandbox server's http(s) URL, got {value!r}"
    if isinstance(value, str) and "://" in value:
        url = value.strip().rstrip("/")
        if not is_http_url(url, allow_http=True):
            raise r.fail("SANDBOX", problem)
        return True, url
    try:
        return r.boolean("SANDBOX", False), None
    except ConfigurationError:
        raise r.fail("SANDBOX", problem) from None


def _pii_key(r: Reader, secret_key: str | bytes | None) -> bytes:
    value = r.secret_bytes("PII_KEY")
    if value is not None:
        if len(value) < 16:
            raise r.fail("PII_KEY", "must be at least 16 bytes long (use a random secret)")
        return value
    if secret_key:
        secret = secret_key.encode("utf-8") if isinstance(secret_key, str) else bytes(secret_key)
        return hmac.new(secret, PII_KEY_LABEL, hashlib.sha256).digest()
    raise r.fail(
        "PII_KEY",
        "is required when SECRET_KEY is not set (it keys the HMAC digest of stored ID numbers); "
        "set SECRET_KEY or " + r.key("PII_KEY"),
    )


def _encrypt_type(r: Reader) -> str | None:
    value = r.text("ENCRYPT_TYPE")
    if value is None or value.lower() in ("none", "off"):
        return None
    if value.upper() != "SM2":
        raise r.fail("ENCRYPT_TYPE", f'must be "SM2" or None, got {value!r}')
    return "SM2"


def _sm2_public_key(r: Reader) -> str:
    """The hex key, checked to be a point on sm2p256v1 now rather than at the first Init."""
    value = r.text("SM2_PUBLIC_KEY")
    if value is None:
        return ALIBABA_SM2_PUBLIC_KEY
    key = value.lower().removeprefix("0x")
    try:
        sm2.public_key(key)
    except ValueError as e:
        raise r.fail(
            "SM2_PUBLIC_KEY",
            "must be a hex SM2 public key: 66 hex digits starting 02 or 03 (compressed) or "
            f"130 starting 04 (uncompressed) ({e})",
        ) from None
    return key


def _rate_limit_url(r: Reader) -> str | None:
    value = r.text("RATE_LIMIT_URL", secret=True)
    if value is not None and "://" not in value:
        raise r.fail("RATE_LIMIT_URL", "must be a storage URL such as redis://host:6379/0")
    return value
