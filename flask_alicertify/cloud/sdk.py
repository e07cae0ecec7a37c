"""The ``sdk`` gateway: InitFaceVerify / DescribeFaceVerify through Alibaba's official client.

For teams that prefer Alibaba's own ``alibabacloud_cloudauth20190307`` client. It honours the same
:class:`~.base.Gateway` protocol and raises the same typed errors as the ``cloudauth`` gateway:

* the SDK does not check the body ``Code`` (``alibabacloud_tea_openapi``'s ``Client.call_api``
  returns any HTTP 2xx body as it came), so we do, with the very functions the ``cloudauth``
  gateway uses (:func:`.cloudauth.init_result`, :func:`.cloudauth.verdict`);
* the SDK does not fail over, so we loop over the endpoints ourselves with the loop our httpx
  client uses (:func:`.failover.with_failover`);
* ``ThrottlingException`` -> :class:`CloudThrottled`, ``ClientException`` (4xx) ->
  :class:`CloudRejected`, ``ServerException`` (5xx) and connection errors / timeouts ->
  next endpoint, then :class:`CloudUnavailable`; unparsable answers -> :class:`CloudMalformedResponse`.

Limits of the SDK that we cannot paper over: it sends through ``requests`` (a process-wide
session per host, not the app's httpx client, so pytest-httpx cannot see it: test it against the
fake served on loopback); when an answer is not JSON it drops the HTTP status, so a 5xx HTML
error page is reported as malformed and not failed over; and it reads answers whole with
per-operation timeouts, so the total deadline per attempt and the 1 MiB answer cap of the
``cloudauth`` gateway (:mod:`.deadline`) cannot be applied here. Prefer ``cloudauth`` where a
misbehaving upstream (or a middlebox) is a concern. What *is* applied: the quota guard, SM2
(the SDK's ``encrypt_type`` field), and the rule that every failure becomes one of our typed
errors (a deeply nested or undecodable answer included).

Personal data: ``requests`` puts the full URL (with CertName/CertNo) into connection error
messages, and the SDK's frames hold the request, so the SDK's exceptions are never chained into
ours: the request model is built and sent inside :meth:`SdkGateway._invoke`, which turns any
exception into plain text, and our error is raised afterwards, outside the ``except`` block.
The ``urllib3`` and ``darabonba-core`` loggers get the redacting filter (see :mod:`.redact`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx

from .base import DeleteResult
from .base import GatewayConfig
from .base import InitRequest
from .base import InitResult
from .base import Verdict
from .cloudauth import DELETE
from .cloudauth import DESCRIBE
from .cloudauth import INIT
from .cloudauth import delete_result
from .cloudauth import init_result
from .cloudauth import verdict
from .envelope import MAX_DEPTH
from .envelope import body_code
from .envelope import body_message
from .envelope import clean_token
from .envelope import is_throttling
from .envelope import json_depth
from .errors import CloudError
from .errors import CloudMalformedResponse
from .errors import CloudRejected
from .errors import CloudThrottled
from .errors import CloudUnavailable
from .errors import CredentialsMissing
from .failover import Failover
from .failover import server_error
from .failover import with_failover
from .options import encoder_for
from .options import guard_for
from .redact import install_log_redaction
from .redact import redact
from .transport import normalize_endpoint
from .wire import sensitive

INSTALL_HINT = "the 'sdk' gateway needs Alibaba's official client: pip install flask-alicertify[sdk]"


class _CredentialAdapter:
    """Feeds our :class:`CredentialsProvider` to the SDK, asked once per request like the SDK's own."""

    def __init__(self, gateway: SdkGateway) -> None:
        self._gateway = gateway

    def get_credential(self) -> Any:
        creds = self._gateway.config.credentials.get()
        return self._gateway._models.CredentialModel(
            access_key_id=creds.access_key_id,
            access_key_secret=creds.access_key_secret,
            security_token=creds.security_token,
            type="sts" if creds.security_token else "access_key",
            provider_name=creds.provider_name,
        )


class _SdkModules:
    """The SDK's classes, imported when the gateway is built (never at our import time)."""

    def __init__(self) -> None:
        try:
            from alibabacloud_cloudauth20190307 import models as cloudauth_models
            from alibabacloud_cloudauth20190307.client import Client
            from alibabacloud_credentials.models import CredentialModel
            from alibabacloud_tea_openapi import exceptions
            from alibabacloud_tea_openapi.utils_models import Config
            from darabonba.exceptions import RetryError as DaraRetryError
            from darabonba.exceptions import UnretryableException
            from darabonba.runtime import RuntimeOptions
            from Tea.exceptions import RetryError as TeaRetryError
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        self.Client = Client
        self.Config = Config
        self.RuntimeOptions = RuntimeOptions
        self.CredentialModel = CredentialModel
        self.InitFaceVerifyRequest = cloudauth_models.InitFaceVerifyRequest
        self.DescribeFaceVerifyRequest = cloudauth_models.DescribeFaceVerifyRequest
        self.DeleteFaceVerifyResultRequest = cloudauth_models.DeleteFaceVerifyResultRequest
        self.ThrottlingException = exceptions.ThrottlingException
        self.ClientException = exceptions.ClientException
        self.ServerException = exceptions.ServerException
        self.AlibabaCloudException = exceptions.AlibabaCloudException
        self.UnretryableException = UnretryableException
        self.RetryErrors = (DaraRetryError, TeaRetryError)


def _clean(value: Any) -> str | None:
    """The SDK formats missing fields as the string "None"; anything unusable is dropped too."""
    if value is None:
        return None
    text = clean_token(value)
    return None if text in (None, "None") else text


class _Raise(NamedTuple):
    """An attempt's failure, to be raised by the caller outside any ``except`` block."""

    error: CloudError
    failover: bool = False

    def exception(self) -> Exception:
        return Failover(self.error) if self.failover else self.error


class SdkGateway:
    """Cloudauth through ``alibabacloud_cloudauth20190307.client.Client``, one client per endpoint."""

    api = "sdk"

    def __init__(self, config: GatewayConfig, transport: httpx.BaseTransport | None = None) -> None:
        if transport is not None:
            raise ValueError(
                "the 'sdk' gateway sends through the official SDK (requests) and cannot use an httpx"
                " transport; point its endpoints at a server instead (e.g. the fake's cloud.serve())"
            )
        self._models = _SdkModules()
        self.config = config
        self.encoder = encoder_for(config)
        self.guard = guard_for(config)
        install_log_redaction()
        self.endpoints: tuple[str, ...] = tuple(normalize_endpoint(e) for e in config.endpoints)
        if not self.endpoints:
            raise ValueError("at least one endpoint is required")
        credential = _CredentialAdapter(self)
        self._clients: list[tuple[str, Any]] = []
        for endpoint in self.endpoints:
            parts = urlsplit(endpoint)
            sdk_config = self._models.Config(
                endpoint=parts.netloc,
                protocol=parts.scheme,
                connect_timeout=int(config.connect_timeout * 1000),
                read_timeout=int(config.read_timeout * 1000),
                credential=credential,
            )
            self._clients.append((endpoint, self._models.Client(sdk_config)))

    def _runtime(self) -> Any:
        return self._models.RuntimeOptions(
            connect_timeout=int(self.config.connect_timeout * 1000),
            read_timeout=int(self.config.read_timeout * 1000),
        )

    def _call(
        self, action: str, method_name: str, build: Callable[[], Any]
    ) -> tuple[dict[str, Any], str | None, str]:
        """Run ``method_name`` with a fresh ``build()`` request on each endpoint in turn.

        ``build`` is called inside :meth:`_invoke`, so the SDK request model (which holds the
        revealed or encrypted identity) never sits in a frame of a raised exception.
        """
        guard = self.guard
        until = None if guard is None else time.monotonic() + guard.wait

        def attempt(target: tuple[str, Any]) -> tuple[dict[str, Any], str | None, str]:
            if guard is not None:
                guard.acquire("cloudauth", action, until=until)
            return self._attempt(action, target[0], getattr(target[1], method_name), build)

        return with_failover(action, self._clients, attempt)

    def _invoke(self, action: str, endpoint: str, method: Any, build: Callable[[], Any]) -> Any:
        """The SDK's response, or a :class:`_Raise`. Never raises (see the module docstring)."""
        m = self._models
        try:
            return method(build(), self._runtime())
        except m.ThrottlingException as exc:
            return _Raise(self._throttled(action, endpoint, exc))
        except m.ClientException as exc:
            if exc.status_code == 429 or is_throttling(_clean(exc.code)):
                return _Raise(self._throttled(action, endpoint, exc))
            data = exc.data if isinstance(getattr(exc, "data", None), dict) else {}
            message = body_message(data) or ""
            return _Raise(
                CloudRejected(
                    f"{action}: rejected: {message}".rstrip(": "),
                    code=_clean(exc.code),
                    request_id=_clean(exc.request_id),
                    http_status=exc.status_code,
                    endpoint=endpoint,
                )
            )
        except m.ServerException as exc:
            failover = server_error(
                action,
                None,
                code=_clean(exc.code),
                request_id=_clean(exc.request_id),
                http_status=exc.status_code,
                endpoint=endpoint,
            )
            return _Raise(failover.error, failover=True)
        except m.UnretryableException as exc:
            inner = exc.inner_exception
            if isinstance(inner, CredentialsMissing):
                return _Raise(CredentialsMissing(inner.message, code=inner.code))
            text = redact(str(getattr(inner, "message", None) or inner))[:300]
            if isinstance(inner, m.RetryErrors):
                timed_out = "timed out" in text.lower() or "timeout" in text.lower()
                unavailable = CloudUnavailable(
                    f"{action}: {'timed out' if timed_out else 'connection failed'}: {text}",
                    code="Timeout" if timed_out else "TransportError",
                    endpoint=endpoint,
                )
                return _Raise(unavailable, failover=True)
            return _Raise(CloudMalformedResponse(f"{action}: unreadable answer: {text}", endpoint=endpoint))
        except CloudError as exc:
            return _Raise(exc.with_traceback(None))
        except (RecursionError, ValueError) as exc:  # the SDK's JSON reading (deep, invalid, not UTF-8)
            return _Raise(
                CloudMalformedResponse(
                    f"{action}: unreadable answer ({type(exc).__name__})", endpoint=endpoint
                )
            )
        except Exception as exc:  # anything else from inside the SDK: treat like the official sample
            unavailable = CloudUnavailable(
                f"{action}: {type(exc).__name__}: {redact(str(exc))[:300]}",
                code="SdkError",
                endpoint=endpoint,
            )
            return _Raise(unavailable, failover=True)

    def _attempt(
        self, action: str, endpoint: str, method: Any, build: Callable[[], Any]
    ) -> tuple[dict[str, Any], str | None, str]:
        response = self._invoke(action, endpoint, method, build)
        if isinstance(response, _Raise):
            raise response.exception()

        headers = getattr(response, "headers", None) or {}
        status = getattr(response, "status_code", None)
        body = getattr(response, "body", None)
        data = body.to_map() if body is not None and hasattr(body, "to_map") else None
        if not isinstance(data, dict) or not data or json_depth(data) > MAX_DEPTH:
            raise CloudMalformedResponse(
                f"{action}: answer is not the documented JSON object",
                request_id=_clean(headers.get("x-acs-request-id")),
                http_status=status,
                endpoint=endpoint,
            )
        request_id = _clean(data.get("RequestId")) or _clean(headers.get("x-acs-request-id"))
        code = body_code(data)
        if code == "500":
            raise server_error(
                action,
                body_message(data),
                code=code,
                request_id=request_id,
                http_status=status,
                endpoint=endpoint,
            )
        if is_throttling(code):
            raise CloudThrottled(
                f"{action}: throttled",
                code=code,
                request_id=request_id,
                http_status=status,
                endpoint=endpoint,
            )
        return data, request_id, endpoint

    @staticmethod
    def _throttled(action: str, endpoint: str, exc: Any) -> CloudThrottled:
        retry_after = getattr(exc, "retry_after", None)
        return CloudThrottled(
            f"{action}: throttled",
            retry_after=None if not retry_after else float(retry_after) / 1000.0,
            code=_clean(exc.code),
            request_id=_clean(getattr(exc, "request_id", None)),
            http_status=getattr(exc, "status_code", None),
            endpoint=endpoint,
        )

    def _scene_id(self) -> Any:
        # The SDK models SceneId as a Long and sends str(value); an int keeps its wire form identical.
        scene = str(self.config.scene_id)
        return int(scene) if scene.isdigit() else scene

    def init(self, request: InitRequest) -> InitResult:
        cert_name = sensitive(request.cert_name, "cert_name")
        cert_no = sensitive(request.cert_no, "cert_no")
        encode = self.encoder.value

        def build() -> Any:
            # The wire encoder reveals (or SM2-encrypts) the identity here and nowhere else.
            return self._models.InitFaceVerifyRequest(
                product_code=self.config.product_code,
                scene_id=self._scene_id(),
                outer_order_no=request.outer_order_no,
                cert_type=request.cert_type,
                cert_name=encode(cert_name),
                cert_no=encode(cert_no),
                encrypt_type="SM2" if self.encoder.encrypting else None,
                return_url=request.return_url,
                callback_url=request.callback_url,
                callback_token=request.callback_token,
                meta_info=request.meta_info,
                user_id=request.user_id,
                model=request.model,
            )

        data, request_id, endpoint = self._call(INIT, "init_face_verify_with_options", build)
        return init_result(data, request_id, endpoint)

    def describe(self, certify_id: str) -> Verdict:
        def build() -> Any:
            return self._models.DescribeFaceVerifyRequest(certify_id=certify_id, scene_id=self._scene_id())

        data, request_id, endpoint = self._call(DESCRIBE, "describe_face_verify_with_options", build)
        return verdict(data, request_id, endpoint)

    def delete(self, certify_id: str) -> DeleteResult:
        def build() -> Any:
            return self._models.DeleteFaceVerifyResultRequest(certify_id=certify_id, delete_after_query="Y")

        data, request_id, endpoint = self._call(DELETE, "delete_face_verify_result_with_options", build)
        return delete_result(data, request_id, endpoint)

    def close(self) -> None:
        """Nothing to close: the SDK's ``requests`` sessions are process-wide (DaraCore._sessions)."""

    def __repr__(self) -> str:
        return f"SdkGateway(endpoints={list(self.endpoints)!r})"
