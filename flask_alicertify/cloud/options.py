"""From :class:`~.base.GatewayConfig` to what every gateway shares: the wire encoder and the quota guard.

Kept apart from the gateways so that the three of them (cloudauth, SAF, SDK) read the SM2 and
quota settings the same way, and so that a bad key or limiter URL fails when the app starts,
not on a user's first Init.
"""

from __future__ import annotations

from . import sm2
from .base import ALIBABA_SM2_PUBLIC_KEY
from .base import ENCRYPT_TYPES
from .base import GatewayConfig
from .credentials import StaticCredentials
from .quota import QuotaGuard
from .quota import account_tag
from .wire import WireEncoder

__all__ = ["encoder_for", "guard_for", "sm2_key_for"]


def sm2_key_for(config: GatewayConfig) -> sm2.PublicKey | None:
    """The SM2 key when ``encrypt_type`` is "SM2" (validated, its tables built now), else None."""
    if config.encrypt_type is None:
        return None
    if config.encrypt_type.strip().upper() not in ENCRYPT_TYPES:
        raise ValueError(
            f"encrypt_type must be one of {', '.join(ENCRYPT_TYPES)} or None, got {config.encrypt_type!r}"
        )
    try:
        key = sm2.public_key(config.sm2_public_key or ALIBABA_SM2_PUBLIC_KEY)
    except sm2.SM2Error as exc:
        raise ValueError(f"sm2_public_key: {exc}") from None
    # Build both comb tables (~60 ms, once per process) at start-up rather than in the first Init.
    sm2.encrypt_bytes(key, b"warm-up")
    return key


def encoder_for(config: GatewayConfig) -> WireEncoder:
    return WireEncoder(sm2_key_for(config))


def guard_for(config: GatewayConfig) -> QuotaGuard | None:
    """``config.limiter`` if given, else a guard built from the quota settings.

    There is always a guard, even with ``upstream_qps`` None, because DeleteFaceVerifyResult's own
    10 QPS still applies (see :data:`.quota.ACTION_CAPS`).
    """
    if config.limiter is not None:
        return config.limiter
    return QuotaGuard(
        config.upstream_qps,
        wait=config.upstream_wait,
        storage_url=config.rate_limit_url,
        account=account_tag(_fixed_key_id(config)),
    )


def _fixed_key_id(config: GatewayConfig) -> str | None:
    """The access key id when it is fixed (a RAM user's key), else None.

    A chain or STS key id changes as tokens rotate: keyed on it, the processes of one account
    would stop sharing a schedule, so those share the default namespace of their Redis.
    """
    if not isinstance(config.credentials, StaticCredentials):
        return None
    credentials = config.credentials.get()
    if credentials.security_token is not None or credentials.access_key_id.startswith("STS."):
        return None
    return credentials.access_key_id
