"""The gateway seam: what the service needs from Alibaba, independent of which API serves it.

Alibaba documents two server APIs for this flow (cloudauth InitFaceVerify/DescribeFaceVerify and
SAF ``fin_face_verify``; docs/apis.md compares them), and some teams prefer the official SDK. All
three hide behind :class:`Gateway`, so the state machine never knows which one it talks to.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Protocol

DEFAULT_CLOUDAUTH_ENDPOINTS: tuple[str, ...] = (
    "cloudauth.cn-shanghai.aliyuncs.com",
    "cloudauth.cn-beijing.aliyuncs.com",
)
DEFAULT_SAF_ENDPOINTS: tuple[str, ...] = ("saf.cn-shanghai.aliyuncs.com",)


@dataclass(frozen=True)
class Credentials:
    """An access key pair, optionally with an STS token. Never printed in full."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    provider_name: str | None = None


class CredentialsProvider(Protocol):
    """Returns current credentials; called once per request so STS tokens can refresh."""

    def get(self) -> Credentials: ...


@dataclass(frozen=True)
class GatewayConfig:
    """Everything a gateway needs besides the request itself."""

    scene_id: str
    credentials: CredentialsProvider
    endpoints: Sequence[str] = DEFAULT_CLOUDAUTH_ENDPOINTS
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    product_code: str = "ID_PRO"


@dataclass(frozen=True)
class InitRequest:
    """One InitFaceVerify (or SAF ``method=init``) call. ``cert_*`` are never in the repr."""

    outer_order_no: str
    cert_name: str = field(repr=False)
    cert_no: str = field(repr=False)
    cert_type: str = "IDENTITY_CARD"
    return_url: str | None = None
    callback_url: str | None = None
    callback_token: str | None = field(default=None, repr=False)
    meta_info: str | None = None
    user_id: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class InitResult:
    certify_id: str
    certify_url: str = field(repr=False)
    request_id: str | None = None


@dataclass(frozen=True)
class Verdict:
    """What describe said. ``finished`` is False for "not finished" (cloudauth Code 424/403).

    ``passed`` is True only when Alibaba said ``Passed = "T"``; everything else is not passed.
    """

    finished: bool
    passed: bool
    sub_code: str | None = None
    request_id: str | None = None
    code: str = "200"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


class Gateway(Protocol):
    """Init and describe one verification. Implementations raise :mod:`.errors` types only."""

    api: str

    def init(self, request: InitRequest) -> InitResult: ...

    def describe(self, certify_id: str) -> Verdict: ...

    def close(self) -> None: ...
