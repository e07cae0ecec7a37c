"""Alibaba Cloud V3 request signature (``ACS3-HMAC-SHA256``).

The algorithm is Alibaba's "V3版本请求体&签名机制":
https://help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature

Kept tiny and dependency-free on purpose: it is the one piece that must match Alibaba byte for
byte, so it is proven against the official SDK's own ``get_authorization`` by a property test
rather than by reading it side by side.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime
from datetime import timezone
from urllib.parse import quote

ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding: unreserved characters literal, everything else ``%XX`` of UTF-8."""
    return quote(value, safe="~")


def hash_payload(body: bytes) -> str:
    """Lower-case hex SHA-256 of the exact body bytes (also sent as ``x-acs-content-sha256``)."""
    return hashlib.sha256(body).hexdigest()


def canonical_query(query: Mapping[str, str | None]) -> str:
    """Sorted ``k=v`` pairs joined by ``&``; None values dropped, empty values kept as ``k=``.

    Keys are left as they are, like the SDK: Alibaba's parameter names are ASCII letters, so
    encoding them or not gives the same bytes, and copying the SDK keeps the property test exact.
    """
    return "&".join(
        f"{key}={percent_encode(value)}" for key, value in sorted(query.items()) if value is not None
    )


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """``(canonical_headers, signed_headers)``: every header, lower-cased, sorted, values trimmed."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        lowered[name.lower()] = value.strip()
    names = sorted(lowered)
    return "".join(f"{n}:{lowered[n]}\n" for n in names), ";".join(names)


def string_to_sign(
    method: str,
    pathname: str,
    query: Mapping[str, str | None],
    headers: Mapping[str, str],
    payload_hash: str,
) -> tuple[str, str]:
    """``(string_to_sign, signed_headers)`` for one request."""
    canon_headers, signed = canonical_headers(headers)
    request = "\n".join(
        [method.upper(), pathname or "/", canonical_query(query), canon_headers, signed, payload_hash]
    )
    digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{digest}", signed


def signature(secret: str, to_sign: str) -> str:
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    *,
    method: str,
    pathname: str,
    query: Mapping[str, str | None],
    headers: Mapping[str, str],
    payload_hash: str,
    access_key_id: str,
    access_key_secret: str,
) -> str:
    """The ``Authorization`` header value for the given request parts."""
    to_sign, signed = string_to_sign(method, pathname, query, headers, payload_hash)
    sig = signature(access_key_secret, to_sign)
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={signed},Signature={sig}"


def timestamp(now: datetime | None = None) -> str:
    """``x-acs-date``: UTC ``YYYY-MM-DDThh:mm:ssZ``."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def nonce() -> str:
    """``x-acs-signature-nonce``: fresh per request, so a captured request cannot be replayed."""
    return secrets.token_hex(16)


def parse_authorization(value: str) -> tuple[str, str, list[str], str]:
    """Split an Authorization header into ``(algorithm, access_key_id, signed_headers, sig)``.

    Used by the fake cloud to verify requests; raises ValueError when the header is not V3.
    """
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ValueError(f"unsupported signature algorithm {algorithm!r}")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            raise ValueError("malformed Authorization header")
        parts[key] = val
    try:
        return algorithm, parts["Credential"], parts["SignedHeaders"].split(";"), parts["Signature"]
    except KeyError as exc:
        raise ValueError(f"Authorization header lacks {exc.args[0]}") from None
