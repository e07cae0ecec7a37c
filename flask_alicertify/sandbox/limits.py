"""The fake's own QPS limit, like Alibaba's per-account flow control (off unless configured).

Alibaba allows a number of calls per second per API and main account (50 for Init/Describe,
10 for DeleteFaceVerifyResult) and answers the rest with ``Throttling.User``. A client that
claims to stay under the quota (the extension's quota guard) can only be tested against a fake
that enforces one. The window is a sliding second, the strictest reading of "per second": any
1-second span holds at most ``limit`` accepted calls. Throttled calls do not count.

:class:`QpsLimiter` has no lock of its own; the fake's lock guards it. Its clock is monotonic by
default, so time travel in a test (time-machine, freezegun) never empties or fills a window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from collections.abc import Mapping

from .faults import action_matches

#: Alibaba's documented per-API QPS (per main account), by the fake's action names.
#: https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/product-overview/qps-limits-of-server-side-api-operations
ALIBABA_QPS: Mapping[str, float] = {
    "InitFaceVerify": 50,
    "DescribeFaceVerify": 50,
    "DeleteFaceVerifyResult": 10,
    "ExecuteRequest": 50,
}


class QpsLimiter:
    """Per-action sliding one-second windows. ``limits`` maps an action (or ``ExecuteRequest``,
    which covers both SAF methods) to the calls allowed in any second."""

    def __init__(self, limits: Mapping[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        for action, limit in limits.items():
            if limit <= 0:
                raise ValueError(f"the QPS limit of {action} must be > 0, got {limit!r}")
        self.limits = dict(limits)
        self.clock = clock
        self._windows: dict[str, deque[float]] = {action: deque() for action in self.limits}

    def take(self, action: str) -> float | None:
        """Count one call of ``action``; None when allowed, else the seconds until a slot frees."""
        now = self.clock()
        matching = [key for key in self.limits if action_matches(key, action)]
        wait = 0.0
        for key in matching:
            window = self._windows[key]
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= self.limits[key]:
                wait = max(wait, window[0] + 1.0 - now)
        if wait > 0.0:
            return wait
        for key in matching:
            self._windows[key].append(now)
        return None

    def reset(self) -> None:
        for window in self._windows.values():
            window.clear()
