"""Talking to Alibaba Cloud: signing, credentials, transport and the gateways. No Flask here."""

from .base import DeleteResult
from .base import Gateway
from .base import GatewayConfig
from .base import InitRequest
from .base import InitResult
from .base import Verdict
from .errors import CloudBusinessError
from .errors import CloudError
from .errors import CloudMalformedResponse
from .errors import CloudNotSupported
from .errors import CloudRejected
from .errors import CloudThrottled
from .errors import CloudUnavailable
from .errors import CredentialsMissing

__all__ = [
    "CloudBusinessError",
    "CloudError",
    "CloudMalformedResponse",
    "CloudNotSupported",
    "CloudRejected",
    "CloudThrottled",
    "CloudUnavailable",
    "CredentialsMissing",
    "DeleteResult",
    "Gateway",
    "GatewayConfig",
    "InitRequest",
    "InitResult",
    "Verdict",
]
