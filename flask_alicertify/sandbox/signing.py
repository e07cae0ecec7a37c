"""Build a V3-signed request the way the official SDK lays it out on the wire.

For tests and tools that talk to the fake (or check it) without going through a gateway: the
query is ``urlencode``d (space as ``+``), the form body likewise, every header set here is
signed, and STS tokens travel as ``x-acs-accesskey-id`` + ``x-acs-security-token``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode
from urllib.parse import urlsplit

import httpx

from ..cloud import signer
from .protocol import CLOUDAUTH_VERSION
from .protocol import FORM_TYPE


def sign_request(
    action: str,
    *,
    access_key_id: str,
    access_key_secret: str,
    url: str = "https://cloudauth.cn-shanghai.aliyuncs.com/",
    version: str = CLOUDAUTH_VERSION,
    query: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    security_token: str | None = None,
    method: str = "POST",
    extra_headers: Mapping[str, str] | None = None,
    date: str | None = None,
    nonce: str | None = None,
) -> httpx.Request:
    """An ``httpx.Request`` for ``action`` signed with ``ACS3-HMAC-SHA256``.

    ``extra_headers`` are signed too (like the SDK's ``user-agent``); add unsigned headers to
    the returned request afterwards if a test needs them.
    """
    parts = urlsplit(url)
    pathname = parts.path or "/"
    body = urlencode(sorted(form.items())).encode("utf-8") if form else b""
    payload_hash = signer.hash_payload(body)
    headers: dict[str, str] = {
        "host": parts.netloc,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": date or signer.timestamp(),
        "x-acs-signature-nonce": nonce or signer.nonce(),
        "accept": "application/json",
    }
    if body:
        headers["content-type"] = FORM_TYPE
    headers["x-acs-content-sha256"] = payload_hash
    if security_token is not None:
        headers["x-acs-accesskey-id"] = access_key_id
        headers["x-acs-security-token"] = security_token
    headers.update({k.lower(): v for k, v in (extra_headers or {}).items()})
    headers["authorization"] = signer.authorization(
        method=method,
        pathname=pathname,
        query=dict(query or {}),
        headers=headers,
        payload_hash=payload_hash,
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
    )
    target = f"{parts.scheme}://{parts.netloc}{pathname}"
    if query:
        target += "?" + urlencode(dict(query))
    return httpx.Request(method, target, headers=headers, content=body)
