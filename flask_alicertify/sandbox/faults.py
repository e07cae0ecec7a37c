"""Fault injection: which calls fail, and what each failure looks like on the wire.

:class:`FaultPlan` holds what a test set up with ``FakeCloud.inject`` / ``endpoint_down``; it
has no lock of its own, the fake's lock guards it. :func:`transport_error` and
:func:`fault_response` turn a :class:`~flask_alicertify.sandbox.values.Fault` into what the
caller sees: an httpx error (in-process), or an answer Alibaba's gateway or a proxy would give.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from . import protocol
from .api_common import Incoming
from .values import Fault


def normalise_host(value: str) -> str:
    """Accept ``host``, ``host:port`` or a full URL wherever a host is named."""
    value = value.strip()
    if "://" in value:
        return urlsplit(value).netloc.lower()
    return value.rstrip("/").lower()


def host_matches(pattern: str, host: str) -> bool:
    """A pattern without a port matches the host on any port."""
    host = host.lower()
    return pattern == host or (":" not in pattern and pattern == host.rsplit(":", 1)[0])


def action_matches(pattern: str, action: str) -> bool:
    """``"ExecuteRequest"`` names both SAF methods; anything else must match exactly."""
    return pattern == action or (pattern == protocol.SAF_ACTION and action.startswith(pattern + ":"))


@dataclass
class _Entry:
    fault: Fault
    times: int
    remaining: int
    action: str | None
    host: str | None

    def describe(self) -> str:
        where = "".join(
            f", {name}={value!r}" for name, value in (("action", self.action), ("host", self.host)) if value
        )
        return f"inject({self.fault}, times={self.times}{where}): {self.remaining} of {self.times} not used"


class FaultPlan:
    """The faults still to be served, in injection order, and the endpoints that are down."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._down: set[str] = set()

    def inject(self, fault: Fault, times: int, action: str | None, host: str | None) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        self._entries.append(
            _Entry(fault, times, times, action, None if host is None else normalise_host(host))
        )

    def endpoint_down(self, host: str) -> None:
        self._down.add(normalise_host(host))

    def endpoint_up(self, host: str) -> None:
        self._down.discard(normalise_host(host))

    def is_down(self, host: str) -> bool:
        return any(host_matches(down, host) for down in self._down)

    def take(self, action: str, host: str) -> Fault | None:
        """The first fault with uses left that matches this call, counting one use of it."""
        for entry in self._entries:
            if entry.remaining <= 0:
                continue
            if entry.action is not None and not action_matches(entry.action, action):
                continue
            if entry.host is not None and not host_matches(entry.host, host):
                continue
            entry.remaining -= 1
            return entry.fault
        return None

    def unconsumed(self) -> list[str]:
        return [entry.describe() for entry in self._entries if entry.remaining]


def transport_error(fault: Fault, request: httpx.Request) -> httpx.TransportError | None:
    """The httpx error an in-process caller gets for a fault that never reaches an answer."""
    if fault.kind == "timeout":
        return httpx.ReadTimeout("[fake] injected read timeout", request=request)
    if fault.kind == "connect_error":
        return httpx.ConnectError("[fake] injected connect error", request=request)
    return None


def fault_response(
    fault: Fault, call: Incoming, business: Callable[[str], httpx.Response]
) -> tuple[httpx.Response, str | None]:
    """The answer for a fault that has one, and the ``Code`` it carries (None when it has none).

    ``business(code)`` answers a business error in the envelope of the call's API.
    """
    host = call.wire.host
    if fault.kind == "malformed":
        return protocol.malformed_response(), None
    if fault.kind == "http":
        status = fault.status or 503
        if fault.html:
            return protocol.html_error(status), None
        code, message = (
            protocol.SERVER_ERROR
            if status >= 500
            else protocol.HTTP_ERROR_CODES.get(status, (f"Http{status}", "The request failed."))
        )
        return protocol.gateway_error(status, code, message, call.request_id, host), code
    if fault.kind == "throttle":
        code, message = protocol.HTTP_ERROR_CODES[429]
        response = protocol.gateway_error(429, code, message, call.request_id, host)
        response.headers["x-acs-retry-after"] = str(round((fault.retry_after or 0.0) * 1000))
        return response, code
    # code_500, error: a business answer in the action's own envelope
    code = fault.code or "500"
    return business(code), code
