"""Where the access key comes from: explicit values, the environment, or Alibaba's credential chain.

The order mirrors what Alibaba's own tools do, with one difference that matters for a web app:
nothing happens at import time. The environment is read when :func:`resolve_credentials` is
called (so ``monkeypatch.setenv`` and late configuration work), and the optional
``alibabacloud_credentials`` package is imported only the first time a request needs a key.

Why the chain is deferred (see ``alibabacloud_credentials.provider``): importing it reads
the ``ALIBABA_CLOUD_*`` variables into module globals *at its import*, and building its default
chain starts an ``APScheduler`` background thread and, on a machine that is not an ECS instance,
may probe ``100.100.100.200`` with a one second timeout. Neither belongs in ``import flask_alicertify``
or in app start-up of a process that has explicit keys. Set
``ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`` in tests and CI if the chain is ever reached there.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any

from .base import Credentials
from .base import CredentialsProvider
from .errors import CredentialsMissing

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"

_CHAIN_PACKAGE = "alibabacloud_credentials"


class StaticCredentials:
    """A fixed access key pair, optionally with an STS token.

    STS tokens expire; a static provider is right for long-lived RAM user keys and for tests.
    For rotating STS credentials use the chain (or any object with a ``get()`` method).
    """

    def __init__(self, access_key_id: str, access_key_secret: str, security_token: str | None = None) -> None:
        if not access_key_id or not access_key_secret:
            raise CredentialsMissing("both an access key id and an access key secret are required")
        self._credentials = Credentials(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token or None,
        )

    def get(self) -> Credentials:
        return self._credentials

    def __repr__(self) -> str:
        sts = ", sts" if self._credentials.security_token else ""
        return f"StaticCredentials({self._credentials.access_key_id!r}{sts})"


class ChainCredentials:
    """Alibaba's default credential chain, built on first use and asked on every call.

    Asking per call lets the chain refresh STS / RAM-role / OIDC credentials itself (its
    ``get_credential()`` costs about 5 µs when warm). The chain object is built once, under a lock,
    because building it is what starts the APScheduler thread.
    """

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()

    def _chain(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        from alibabacloud_credentials.client import Client
                    except ImportError as exc:  # pragma: no cover - checked by resolve_credentials
                        raise CredentialsMissing(
                            "no access key configured and alibabacloud-credentials is not installed;"
                            " set ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET or"
                            " pip install flask-alicertify[sdk]"
                        ) from exc
                    self._client = Client()
        return self._client

    def get(self) -> Credentials:
        try:
            credential = self._chain().get_credential()
        except CredentialsMissing:
            raise
        except Exception as exc:
            # CredentialException('unable to load credentials from any of the providers ...')
            raise CredentialsMissing(
                "no access key found: not configured explicitly, not in ALIBABA_CLOUD_ACCESS_KEY_ID /"
                f" ALIBABA_CLOUD_ACCESS_KEY_SECRET, and the alibabacloud-credentials chain failed: {exc}"
            ) from exc
        access_key_id = getattr(credential, "access_key_id", None)
        access_key_secret = getattr(credential, "access_key_secret", None)
        if not access_key_id or not access_key_secret:
            raise CredentialsMissing("the alibabacloud-credentials chain returned no access key pair")
        return Credentials(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=getattr(credential, "security_token", None) or None,
            provider_name=getattr(credential, "provider_name", None) or None,
        )

    def __repr__(self) -> str:
        return "ChainCredentials(alibabacloud_credentials default chain)"


def chain_available() -> bool:
    """True when ``alibabacloud_credentials`` can be imported (without importing it)."""
    return importlib.util.find_spec(_CHAIN_PACKAGE) is not None


def resolve_credentials(
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
) -> CredentialsProvider:
    """Pick the credentials source: explicit values, else the environment, else the chain.

    Raises :class:`CredentialsMissing` right away when only half a key pair is given, or when
    nothing is configured and the chain package is not installed, so a misconfigured app fails
    at start-up instead of on the first user's request.
    """
    if access_key_id or access_key_secret:
        if not (access_key_id and access_key_secret):
            missing = "access key secret" if access_key_id else "access key id"
            raise CredentialsMissing(f"an access key was configured without its {missing}")
        return StaticCredentials(access_key_id, access_key_secret, security_token)

    env_id = os.environ.get(ENV_ACCESS_KEY_ID, "").strip()
    env_secret = os.environ.get(ENV_ACCESS_KEY_SECRET, "").strip()
    if env_id or env_secret:
        if not (env_id and env_secret):
            present, absent = (
                (ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET)
                if env_id
                else (ENV_ACCESS_KEY_SECRET, ENV_ACCESS_KEY_ID)
            )
            raise CredentialsMissing(f"{present} is set but {absent} is not")
        env_token = security_token or os.environ.get(ENV_SECURITY_TOKEN, "").strip() or None
        return StaticCredentials(env_id, env_secret, env_token)

    if chain_available():
        return ChainCredentials()

    raise CredentialsMissing(
        "no Alibaba Cloud access key: pass access_key_id/access_key_secret, set "
        f"{ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET}, or pip install flask-alicertify[sdk] "
        "to use the alibabacloud-credentials chain (profiles, RAM roles, OIDC)"
    )
