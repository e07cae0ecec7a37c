"""One signed RPC call to Alibaba Cloud over a pooled ``httpx.Client``, with endpoint failover.

The request is built the way the official SDK builds it (``alibabacloud_tea_openapi``'s
``Client.do_rpcrequest``; the V3 signature is described at
https://help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature): the
business parameters in the query string (``urlencode``, space as ``+``), form fields in an
``application/x-www-form-urlencoded`` body, the V3 ``x-acs-*`` headers, and every header we set
signed. The ``httpx.Request`` is constructed directly and handed to ``Client.send`` because
``Client.build_request`` would add httpx's default headers (``accept: */*``, ``user-agent``,
``accept-encoding``, ``connection``) after signing, unsigned and overriding ours.

One ``httpx.Client`` per :class:`RpcClient`, for the life of the app: building a client costs
about 50 ms (SSL context, certifi), and reusing it keeps TCP/TLS connections alive between calls,
which is where the real latency to Alibaba is.

Error policy (the loop itself is :func:`.failover.with_failover`). Whatever goes wrong, the caller
gets one of :mod:`.errors`' types, never an httpx, zlib, json or Unicode exception:

* connect error, timeout (including the attempt's total deadline, :mod:`.deadline`), any other
  transport or protocol error, HTTP 5xx, body ``Code`` 500 -> try the next endpoint; when none is
  left, :class:`CloudUnavailable` with the last cause;
* throttling (HTTP 429, a ``Throttling*`` code, or an ``x-acs-retry-after`` header on an error) ->
  :class:`CloudThrottled` at once: the QPS quota is per account, another region does not help;
  the quota guard (:mod:`.quota`) raises the same before a call it holds back;
* HTTP 4xx -> :class:`CloudRejected`; never failed over (the same request would be rejected again);
* an answer that is not a JSON object, is nested absurdly deep, is over 1 MiB, or claims a
  compression it does not have -> :class:`CloudMalformedResponse` (failed over only when the
  status was 5xx, since that is a gateway error page);
* HTTP 200 with a business ``Code`` -> returned to the caller, who reads it with
  :mod:`.envelope`.

Tracebacks: an httpx exception's frames hold the request (its URL carries CertName and CertNo
when SM2 is off), so our errors are raised *after* the ``except`` block, from a frame that holds
only the masked parameters: no ``__cause__``, no ``__context__``. The original exception's type
and (redacted) message are kept in our error's message.
"""

from __future__ import annotations

import functools
import logging
import ssl
import time
import warnings
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple
from urllib.parse import urlencode
from urllib.parse import urlsplit

import httpx

from . import signer
from .base import CredentialsProvider
from .deadline import MAX_ANSWER_BYTES
from .deadline import arm
from .envelope import body_code
from .envelope import body_message
from .envelope import checked_init_result
from .envelope import clean_token
from .envelope import is_throttling
from .envelope import parse_object
from .errors import CloudMalformedResponse
from .errors import CloudRejected
from .errors import CloudThrottled
from .errors import CloudUnavailable
from .exchange import Fault
from .exchange import exchange
from .failover import Failover
from .failover import server_error
from .failover import with_failover
from .quota import QuotaGuard
from .redact import install_log_redaction
from .wire import WireEncoder

__all__ = [
    "USER_AGENT",
    "CallResult",
    "RpcClient",
    "body_code",
    "body_message",
    "checked_init_result",
    "default_ssl_context",
    "normalize_endpoint",
]

logger = logging.getLogger("flask_alicertify.cloud")

USER_AGENT = "flask-alicertify (httpx)"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class CallResult(NamedTuple):
    """The decoded JSON object, Alibaba's RequestId, and the endpoint that answered."""

    data: dict[str, Any]
    request_id: str | None
    endpoint: str


def normalize_endpoint(endpoint: str) -> str:
    """``host`` -> ``https://host``; a full ``http(s)://host[:port]`` URL is kept.

    Only the root path is allowed: the V3 signature covers the path, and every RPC action lives
    at ``/``.
    """
    endpoint = endpoint.strip()
    if not endpoint:
        raise ValueError("empty endpoint")
    if "://" not in endpoint:
        endpoint = f"https://{endpoint}"
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"endpoint must be a host or an http(s) URL, got {endpoint!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"endpoint must not have a path or query, got {endpoint!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _retry_after_seconds(headers: httpx.Headers) -> float | None:
    raw = headers.get("x-acs-retry-after")
    if raw is None or raw.strip() == "":
        return None
    try:
        millis = float(raw)
    except ValueError:
        return None
    return millis / 1000.0 if millis > 0 else None


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """One verifying SSL context per process, shared by every gateway's client.

    Building one loads the CA bundle and costs ~50 ms; an app factory called per test (or
    several extension instances) would otherwise pay it each time. A context is safe to share.
    """
    return httpx.create_ssl_context()


class RpcClient:
    """Signs and sends RPC calls; owns one pooled ``httpx.Client``.

    ``transport`` is an ``httpx.BaseTransport`` to send through (the fake cloud's, in tests);
    ``None`` uses httpx's default ``HTTPTransport``, which pytest-httpx can intercept.
    ``encoder`` turns parameters into wire text (SM2 when configured); ``guard`` holds calls under
    the account's QPS, keyed by ``quota_scope`` and the action.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        credentials: CredentialsProvider,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = USER_AGENT,
        encoder: WireEncoder | None = None,
        guard: QuotaGuard | None = None,
        quota_scope: str = "cloudauth",
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        self.endpoints: tuple[str, ...] = tuple(normalize_endpoint(e) for e in endpoints)
        if not self.endpoints:
            raise ValueError("at least one endpoint is required")
        # Parsed once: every call signs the ``host`` header of its endpoint.
        self._hosts: dict[str, str] = {e: urlsplit(e).netloc for e in self.endpoints}
        self.credentials = credentials
        self.timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        )
        #: One attempt (connect, TLS, send, every byte of the answer) ends within this many seconds.
        self.attempt_timeout = connect_timeout + read_timeout
        self.user_agent = user_agent
        self.encoder = encoder or WireEncoder()
        self.guard = guard
        self.quota_scope = quota_scope
        self.max_answer_bytes = max_answer_bytes
        install_log_redaction()
        # No redirects (a 3xx is not an Alibaba answer), no env proxies surprises beyond httpx's
        # defaults, one pool for every endpoint.
        if transport is None:
            verify = default_ssl_context()
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False, verify=verify)
            self.deadline_armed = arm(self._client)
        else:
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False, transport=transport)
            self.deadline_armed = False
        self._closed = False

    # -- building -----------------------------------------------------------------------------

    def build_request(
        self,
        endpoint: str,
        action: str,
        version: str,
        *,
        query: Mapping[str, Any],
        body: Mapping[str, Any] | None = None,
        date: str | None = None,
        nonce: str | None = None,
    ) -> httpx.Request:
        """The signed request for one attempt (fresh date and nonce unless given, for tests)."""
        clean_query = self.encoder.fields(query)
        host = self._hosts.get(endpoint) or urlsplit(endpoint).netloc
        headers: dict[str, str] = {
            "host": host,
            "x-acs-version": version,
            "x-acs-action": action,
            "user-agent": self.user_agent,
            "x-acs-date": date or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "x-acs-signature-nonce": nonce or signer.nonce(),
            "accept": "application/json",
        }
        content = b""
        if body is not None:
            content = urlencode(self.encoder.fields(body)).encode("utf-8")
            headers["content-type"] = FORM_CONTENT_TYPE
        payload_hash = signer.hash_payload(content)
        headers["x-acs-content-sha256"] = payload_hash
        creds = self.credentials.get()
        if creds.provider_name:
            headers["x-acs-credentials-provider"] = creds.provider_name
        if creds.security_token:
            headers["x-acs-accesskey-id"] = creds.access_key_id
            headers["x-acs-security-token"] = creds.security_token
        headers["Authorization"] = signer.authorization(
            method="POST",
            pathname="/",
            query=clean_query,
            headers=headers,
            payload_hash=payload_hash,
            access_key_id=creds.access_key_id,
            access_key_secret=creds.access_key_secret,
        )
        url = f"{endpoint}/"
        if clean_query:
            url += "?" + urlencode(clean_query)
        # Content-Length last and explicit, as the SDK sends it (unsigned, like the SDK's).
        headers["Content-Length"] = str(len(content))
        # A ready stream: httpx then takes our headers as they are instead of re-deriving
        # Host and Content-Length (a second header merge per call, for the same values).
        return httpx.Request("POST", url, headers=headers, stream=httpx.ByteStream(content))

    # -- calling ------------------------------------------------------------------------------

    def call(
        self,
        action: str,
        version: str,
        *,
        query: Mapping[str, Any],
        body: Mapping[str, Any] | None = None,
    ) -> CallResult:
        """Send ``action`` to each endpoint in turn until one gives a usable answer.

        Returns the JSON object of an HTTP 2xx answer whose ``Code`` is not 500; business codes
        are the caller's to interpret. Every attempt takes a quota slot (the quota is per
        account, whichever region answers); the wait for slots is bounded once per call.
        """
        if self._closed:
            raise RuntimeError("the RPC client is closed")
        guard = self.guard
        until = None if guard is None else time.monotonic() + guard.wait

        def attempt(endpoint: str) -> CallResult:
            if guard is not None:
                guard.acquire(self.quota_scope, action, until=until)
            return self._attempt(endpoint, action, version, query, body)

        return with_failover(action, self.endpoints, attempt)

    def _attempt(
        self,
        endpoint: str,
        action: str,
        version: str,
        query: Mapping[str, Any],
        body: Mapping[str, Any] | None,
    ) -> CallResult:
        started = time.perf_counter()
        answer = exchange(
            self._client,
            lambda: self.build_request(endpoint, action, version, query=query, body=body),
            attempt_timeout=self.attempt_timeout,
            cap=self.max_answer_bytes,
        )
        if isinstance(answer, Fault):
            raise self._fault_error(action, endpoint, answer, started)

        status = answer.status
        header_request_id = clean_token(answer.headers.get("x-acs-request-id"))
        data, problem = parse_object(answer.content)
        if data is None:
            self._log(action, endpoint, status, header_request_id, started, "malformed")
            malformed = CloudMalformedResponse(
                f"{action}: answer is {problem}",
                request_id=header_request_id,
                http_status=status,
                endpoint=endpoint,
            )
            if status >= 500:
                raise Failover(malformed)
            raise malformed

        request_id = clean_token(data.get("RequestId", data.get("requestId"))) or header_request_id
        code = body_code(data)
        message = body_message(data) or ""
        self._log(action, endpoint, status, request_id, started, f"code={code}")

        throttling_code = is_throttling(code)
        retry_after = _retry_after_seconds(answer.headers) if status >= 400 or throttling_code else None
        throttled = status == 429 or throttling_code or (status >= 400 and retry_after is not None)
        if throttled:
            raise CloudThrottled(
                f"{action}: throttled: {message}".rstrip(": "),
                retry_after=retry_after,
                code=code,
                request_id=request_id,
                http_status=status,
                endpoint=endpoint,
            )
        if status >= 500 or code == "500":
            raise server_error(
                action, message, code=code, request_id=request_id, http_status=status, endpoint=endpoint
            )
        if 400 <= status < 500:
            raise CloudRejected(
                f"{action}: rejected: {message}".rstrip(": "),
                code=code,
                request_id=request_id,
                http_status=status,
                endpoint=endpoint,
            )
        if not 200 <= status < 300:
            raise CloudMalformedResponse(
                f"{action}: unexpected HTTP status",
                code=code,
                request_id=request_id,
                http_status=status,
                endpoint=endpoint,
            )
        return CallResult(data, request_id, endpoint)

    def _fault_error(self, action: str, endpoint: str, fault: Fault, started: float) -> Exception:
        """The typed error (or :class:`Failover`) for a failed exchange."""
        # The fault's text is ours or a redacted library message: never a parameter value.
        self._log(action, endpoint, fault.status, fault.request_id, started, f"{fault.kind}: {fault.message}")
        if fault.error is not None:
            return fault.error
        if fault.kind in ("timeout", "transport"):
            return Failover(
                CloudUnavailable(
                    f"{action}: {fault.message}",
                    code="Timeout" if fault.kind == "timeout" else "TransportError",
                    endpoint=endpoint,
                )
            )
        if fault.kind == "request":
            return CloudRejected(f"{action}: {fault.message}", code="RequestNotEncodable", endpoint=endpoint)
        malformed = CloudMalformedResponse(
            f"{action}: {fault.message}",
            request_id=fault.request_id,
            http_status=fault.status,
            endpoint=endpoint,
        )
        return Failover(malformed) if fault.status is not None and fault.status >= 500 else malformed

    @staticmethod
    def _log(
        action: str,
        endpoint: str,
        status: int | None,
        request_id: str | None,
        started: float,
        outcome: str,
    ) -> None:
        # Only these fields, ever: no URL, no parameters, no body (personal data lives there).
        ms = (time.perf_counter() - started) * 1000.0
        ok = status is not None and 200 <= status < 300 and outcome.startswith("code=")
        logger.log(
            logging.DEBUG if ok else logging.WARNING,
            "alibaba %s endpoint=%s status=%s request_id=%s duration_ms=%.1f %s",
            action,
            endpoint,
            status,
            request_id,
            ms,
            outcome,
        )

    def close(self) -> None:
        """Close the pooled client (its keep-alive connections)."""
        if not self._closed:
            self._closed = True
            self._client.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if TYPE_CHECKING:
    #: Deprecated: the first name of :class:`RpcClient` (see ``__getattr__`` below).
    Transport = RpcClient


def __getattr__(name: str) -> Any:
    # ``Transport`` was this class's first name; it reads as an httpx transport to every httpx
    # user, while the class *takes* one. Kept importable for code written against it.
    if name == "Transport":
        warnings.warn(
            "flask_alicertify.cloud.transport.Transport is deprecated and will be removed in the"
            " next major release; use RpcClient.",
            DeprecationWarning,
            stacklevel=2,
        )
        return RpcClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
