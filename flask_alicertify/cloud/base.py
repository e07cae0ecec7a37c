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
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from ..identity import Sensitive

if TYPE_CHECKING:
    from .quota import QuotaGuard

DEFAULT_CLOUDAUTH_ENDPOINTS: tuple[str, ...] = (
    "cloudauth.cn-shanghai.aliyuncs.com",
    "cloudauth.cn-beijing.aliyuncs.com",
)
DEFAULT_SAF_ENDPOINTS: tuple[str, ...] = ("saf.cn-shanghai.aliyuncs.com",)

#: Alibaba's documented SM2 public key for CertName/CertNo encryption (a compressed point on
#: sm2p256v1), from "参数加密说明":
#: https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/description-of-parameter-encryption
ALIBABA_SM2_PUBLIC_KEY = "02cd77e007bdc86eeaf9a479ba7a2c22bc0a517ccb3a6975c3f94b4ac93347dea6"
#: The only ``EncryptType`` Alibaba documents.
ENCRYPT_TYPES: tuple[str, ...] = ("SM2",)
#: Alibaba's per-account quota for most server APIs of this product (calls per second, per API).
DEFAULT_UPSTREAM_QPS = 50.0


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
    #: ``"SM2"``: Init sends CertName and CertNo SM2-encrypted (see :mod:`.sm2`); None: in clear.
    encrypt_type: str | None = None
    #: Hex SM2 public key (compressed or uncompressed); None means Alibaba's documented key.
    sm2_public_key: str | None = None
    #: Calls per second per API action held by the quota guard; None turns the guard off.
    upstream_qps: float | None = DEFAULT_UPSTREAM_QPS
    #: Seconds a call may wait for a quota slot before it is refused with CloudThrottled.
    upstream_wait: float = 1.0
    #: A ``limits`` storage URL (``redis://…``) shared by every process and host of the account;
    #: None keeps the guard's window in this process only.
    rate_limit_url: str | None = None
    #: A ready guard to use instead of building one from the three fields above (tests, or
    #: several gateways of one app sharing one window).
    limiter: QuotaGuard | None = field(default=None, compare=False)


@dataclass(frozen=True)
class InitRequest:
    """One InitFaceVerify (or SAF ``method=init``) call. ``cert_*`` are never in the repr.

    ``cert_name``/``cert_no`` are best given as :class:`~flask_alicertify.identity.Sensitive`:
    the gateways wrap a plain ``str`` into one anyway, and only the wire encoder reveals it.
    """

    outer_order_no: str
    cert_name: str | Sensitive = field(repr=False)
    cert_no: str | Sensitive = field(repr=False)
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


@dataclass(frozen=True)
class DeleteResult:
    """What DeleteFaceVerifyResult said.

    ``deleted`` is True when Alibaba deleted the data now *or* had already deleted it
    (``reason == "NOT_DELETE_REPEATEDLY"``); False with ``reason == "NEED_QUERY_VERIFY_RESULT"``
    means the verification must be described first, then the deletion asked again.
    """

    deleted: bool
    reason: str | None = None
    request_id: str | None = None


class Gateway(Protocol):
    """Init, describe and delete one verification. Implementations raise :mod:`.errors` types only."""

    api: str

    def init(self, request: InitRequest) -> InitResult: ...

    def describe(self, certify_id: str) -> Verdict: ...

    def delete(self, certify_id: str) -> DeleteResult: ...

    def close(self) -> None: ...
