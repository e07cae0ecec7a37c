"""The per-session secret of a sandbox ``certifyUrl``: only the holder of the link decides.

Alibaba's real ``certifyUrl`` is a single-use bearer link; the sandbox page must not be weaker,
or anyone who learns a certify id (it travels in logs, callbacks and ``/result`` bodies) could
decide somebody else's verification. So the URL the fake issues carries a secret, and the page
and its POST answer 404 without it.

The secret is ``HMAC-SHA256(key, certify_id)``, Base64url, with a random key per fake: the fake
stores no secret per session (nothing to leak from its state), and checking one is a constant-time
comparison. The secret travels as the ``token`` query parameter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import parse_qs
from urllib.parse import urlsplit

#: The query parameter of a certify URL that carries the session's secret.
TOKEN_PARAM = "token"


class LinkSigner:
    """Issues and checks the secret of each session's certify URL."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def secret(self, certify_id: str) -> str:
        digest = hmac.new(self._key, certify_id.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode("ascii")

    def check(self, certify_id: str, token: str | None) -> bool:
        """True when ``token`` is this session's secret (constant time; None is never right)."""
        if not token:
            return False
        return hmac.compare_digest(self.secret(certify_id).encode("ascii"), token.encode("utf-8", "replace"))

    def url(self, template: str, certify_id: str) -> str:
        """``template`` (with ``{certify_id}``) filled in, with the secret in its query."""
        base = template.format(certify_id=certify_id)
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}{TOKEN_PARAM}={self.secret(certify_id)}"


def token_of(url: str) -> str | None:
    """The secret carried by a certify URL, or None."""
    values = parse_qs(urlsplit(url).query).get(TOKEN_PARAM)
    return values[0] if values else None
