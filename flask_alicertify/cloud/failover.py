"""Endpoint failover: try each endpoint in turn, stop at the first usable answer.

Alibaba recommends configuring a primary and a backup region and switching when the primary
fails (服务接入点, https://help.aliyun.com/document_detail/173781.html). Both clients that talk
to Alibaba, our httpx :class:`~.transport.RpcClient` and the SDK gateway, run the same loop:

* an attempt that fails in a way another region might not (connect error, timeout, HTTP 5xx,
  body ``Code`` 500) raises :class:`Failover`, and the next endpoint is tried;
* any other error (throttling, a 4xx rejection, a malformed 2xx) propagates at once: the QPS
  quota is per account and a bad request is bad everywhere;
* when every endpoint failed, :class:`~.errors.CloudUnavailable` carries the last cause.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import TypeVar

from .errors import CloudError
from .errors import CloudUnavailable

T = TypeVar("T")
R = TypeVar("R")


class Failover(Exception):
    """Raised by one attempt: this endpoint failed in a way another endpoint might not."""

    def __init__(self, error: CloudError) -> None:
        super().__init__(error.message)
        self.error = error


def server_error(
    action: str,
    message: str | None,
    *,
    code: str | None,
    request_id: str | None,
    http_status: int | None,
    endpoint: str,
) -> Failover:
    """The failover for an HTTP 5xx or a body ``Code`` 500 (系统错误) answer."""
    return Failover(
        CloudUnavailable(
            f"{action}: server error: {message or ''}".rstrip(": "),
            code=code,
            request_id=request_id,
            http_status=http_status,
            endpoint=endpoint,
        )
    )


def with_failover(action: str, targets: Sequence[T], attempt: Callable[[T], R]) -> R:
    """``attempt(target)`` for each target in order until one does not raise :class:`Failover`."""
    last: CloudError | None = None
    for target in targets:
        try:
            return attempt(target)
        except Failover as failover:
            last = failover.error
    if last is None:
        raise ValueError("at least one endpoint is required")
    raise CloudUnavailable.after(action, len(targets), last) from last
