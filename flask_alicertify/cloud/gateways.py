"""Pick a gateway by name: the one switch ``ALICERTIFY_API`` turns."""

from __future__ import annotations

import httpx

from .base import Gateway
from .base import GatewayConfig
from .cloudauth import CloudauthGateway
from .saf import SafGateway

APIS: tuple[str, ...] = ("cloudauth", "saf", "sdk")


def make_gateway(api: str, config: GatewayConfig, transport: httpx.BaseTransport | None = None) -> Gateway:
    """Build the gateway for ``api``.

    ``transport`` (an ``httpx.BaseTransport``, e.g. the fake cloud's) applies to ``cloudauth``
    and ``saf``; the ``sdk`` gateway talks HTTP through Alibaba's client and refuses one. The SDK
    module is imported only when ``"sdk"`` is asked for, so the extra stays optional.
    """
    if api == "cloudauth":
        return CloudauthGateway(config, transport=transport)
    if api == "saf":
        return SafGateway(config, transport=transport)
    if api == "sdk":
        from .sdk import SdkGateway

        return SdkGateway(config, transport=transport)
    raise ValueError(f"unknown Alibaba API {api!r}; choose one of: {', '.join(APIS)}")
