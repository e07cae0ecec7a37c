"""The fake as an httpx transport: requests are answered in-process, no sockets involved."""

from __future__ import annotations

from typing import Protocol

import httpx


class Handler(Protocol):
    """Anything that answers an ``httpx.Request`` the way Alibaba would (``FakeCloud`` does)."""

    def handle(self, request: httpx.Request) -> httpx.Response: ...


class FakeTransport(httpx.BaseTransport):
    """httpx transport that hands every request to a :class:`Handler` such as ``FakeCloud``."""

    def __init__(self, cloud: Handler) -> None:
        self.cloud = cloud

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.cloud.handle(request)
