"""The quota guard: hold our calls under Alibaba's per-account QPS before Alibaba has to.

Alibaba allows 50 calls per second per API for each main account, shared by every RAM user,
process and host of that account, and 10 per second for DeleteFaceVerifyResult ("服务端API
QPS限制",
https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/product-overview/qps-limits-of-server-side-api-operations).
Past that it answers ``Throttling``. A burst that our own users cause should wait a moment on our
side, or be refused at once with a clear ``Retry-After``, instead of spending a round trip to learn
it was throttled.

How (the ``limits`` library, the engine behind Flask-Limiter):

* a **moving window** per API action (``InitFaceVerify``, ``DescribeFaceVerify``,
  ``DeleteFaceVerifyResult``, SAF's ``ExecuteRequest``): at most N calls in *any* 1-second
  interval, which also bounds every fixed 1-second window Alibaba might count in;
* N is 95 % of the configured QPS, rounded down (47 of 50, 9 of 10): the rest absorbs the
  difference between when we admit a call and when it reaches Alibaba (network jitter, clock
  skew between hosts) so that the window Alibaba counts never sees more than the quota;
* the window lives in Redis (or any ``limits`` storage URL) when ``rate_limit_url`` is set, so
  every process and host that shares it shares one window; otherwise in this process only (then
  divide the QPS by the number of processes, or share a Redis);
* within a process, admissions are also spaced ``1/N`` seconds apart (see :meth:`QuotaGuard._pace`
  for the measurement that asks for it), so that a freed window does not release a burst;
* a call waits up to ``upstream_wait`` seconds for a slot, then raises :class:`CloudThrottled`
  without calling Alibaba; ``retry_after`` says when to try again;
* if the shared storage fails (Redis down), calls are held by an in-process window for the next
  5 seconds, then the storage is tried again, and a warning is logged (at most once a minute): a
  limiter outage must not stop verifications, and Alibaba's own throttling remains the backstop.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping

from limits import RateLimitItem
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.storage import MovingWindowSupport
from limits.storage import SlidingWindowCounterSupport
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from limits.strategies import RateLimiter
from limits.strategies import SlidingWindowCounterRateLimiter

from .errors import CloudThrottled

__all__ = ["ACTION_CAPS", "HEADROOM", "KEY_PREFIX", "QuotaGuard", "admitted_per_window"]

logger = logging.getLogger("flask_alicertify.cloud")

#: Actions whose own documented quota is below the account-wide one. They are held under it
#: even when ``upstream_qps`` is None: only the batch jobs call them, and a job that runs into
#: Alibaba's throttling only produces failures to retry.
ACTION_CAPS: Mapping[str, float] = {"DeleteFaceVerifyResult": 10.0}
#: Share of the quota the guard admits; the remainder absorbs jitter between us and Alibaba.
HEADROOM = 0.95
#: Key prefix in a shared Redis.
KEY_PREFIX = "alicertify-quota"
_REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster", "valkey", "valkeys")
_WARN_EVERY = 60.0
_RETRY_SHARED_AFTER = 5.0


def admitted_per_window(qps: float) -> RateLimitItem:
    """The ``limits`` item for ``qps``: ``floor(qps × HEADROOM)`` per second, or 1 per k seconds."""
    if not qps > 0 or math.isinf(qps):
        raise ValueError(f"a QPS must be a positive number, got {qps!r}")
    rate = qps * HEADROOM
    if rate >= 1:
        return RateLimitItemPerSecond(int(rate), 1, namespace=KEY_PREFIX)
    return RateLimitItemPerSecond(1, math.ceil(1 / rate), namespace=KEY_PREFIX)


def _limiter(storage: object) -> RateLimiter:
    if isinstance(storage, MovingWindowSupport):
        return MovingWindowRateLimiter(storage)  # type: ignore[arg-type]
    if isinstance(storage, SlidingWindowCounterSupport):
        return SlidingWindowCounterRateLimiter(storage)  # type: ignore[arg-type]
    raise ValueError(f"{type(storage).__name__} supports neither a moving nor a sliding window")


class QuotaGuard:
    """Admits calls per API action under a QPS shared through ``storage_url`` (or in process).

    ``qps`` None disables the account-wide limit (the :data:`ACTION_CAPS` still apply).
    """

    def __init__(
        self,
        qps: float | None,
        *,
        wait: float = 1.0,
        storage_url: str | None = None,
        caps: Mapping[str, float] = ACTION_CAPS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if wait < 0 or math.isnan(wait):
            raise ValueError(f"upstream_wait must be >= 0, got {wait!r}")
        self.qps = qps
        self.wait = wait
        self.storage_url = storage_url
        self._default = None if qps is None else admitted_per_window(qps)
        self._caps = {action: admitted_per_window(min(cap, qps or cap)) for action, cap in caps.items()}
        self._sleep = sleep
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared: RateLimiter | None = None
        if storage_url:
            options: dict[str, float | str | bool] = {}
            if storage_url.split("://", 1)[0].lower() in _REDIS_SCHEMES:
                # A slow Redis must not hold requests; past these it is "down" (see _hit).
                options = {"key_prefix": KEY_PREFIX, "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
            try:
                self._shared = _limiter(storage_from_string(storage_url, **options))
            except Exception as exc:
                # Not chained, and the URL left out: it may carry a Redis password.
                detail = str(exc).replace(storage_url, "<rate_limit_url>")
                raise ValueError(
                    f"rate_limit_url is not a usable limits storage: {type(exc).__name__}: {detail}"
                ) from None
        self._shared_down_until = -math.inf
        self._next_slot: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._refused = 0
        self._storage_errors = 0
        self._last_warning = -math.inf

    @property
    def shared(self) -> bool:
        """True when the window is shared through a storage (Redis), False when per process."""
        return self._shared is not None

    def item_for(self, action: str) -> RateLimitItem | None:
        """The limit that applies to ``action``, or None when it is not limited."""
        return self._caps.get(action, self._default)

    def _hit(self, item: RateLimitItem, keys: tuple[str, str]) -> tuple[bool, float]:
        """(admitted, seconds until the window frees a slot)."""
        limiter = self._shared
        if limiter is not None and time.monotonic() >= self._shared_down_until:
            try:
                if limiter.hit(item, *keys):
                    return True, 0.0
                return False, max(limiter.get_window_stats(item, *keys).reset_time - time.time(), 0.0)
            except Exception as exc:  # the shared storage is down or misbehaving
                # Skip it for a while: a blackholed Redis would otherwise cost its timeout per call.
                self._shared_down_until = time.monotonic() + _RETRY_SHARED_AFTER
                self._note("storage", exc)
        if self._local.hit(item, *keys):
            return True, 0.0
        return False, max(self._local.get_window_stats(item, *keys).reset_time - time.time(), 0.0)

    def acquire(self, scope: str, action: str, *, until: float | None = None) -> None:
        """Take a slot for one ``action`` call (``scope``: "cloudauth" or "saf").

        Waits until ``until`` (a ``time.monotonic()`` value; default ``now + wait``), then raises
        :class:`CloudThrottled`. Never calls Alibaba and never raises anything else.
        """
        item = self.item_for(action)
        if item is None:
            return
        if until is None:
            until = time.monotonic() + self.wait
        keys = (scope, action)
        self._pace(item, keys, until)
        while True:
            admitted, delay = self._hit(item, keys)
            if admitted:
                return
            # Waiters wake a little apart so they do not all race for the same freed slot.
            delay += random.uniform(0.0, 0.005)
            if time.monotonic() + delay > until:
                raise self._refusal(action, item, delay)
            self._sleep(delay)

    def _pace(self, item: RateLimitItem, keys: tuple[str, str], until: float) -> None:
        """Space this process's admissions ``1/rate`` apart before they reach the shared window.

        Why: the moving window alone admits a whole second's worth at once when slots free up,
        and the threads it releases then contend for the GIL: measured with 16 threads at 50 QPS,
        calls reached the upstream up to 43 ms after admission, and 51-53 arrived within one
        second although the window never admitted more than 47. Spaced admissions keep the
        arrivals as even as the admissions (see the tests' busiest-window measurement).
        """
        interval = item.get_expiry() / item.amount
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(keys, now))
            if slot > until:
                # No time to wait for our turn: let the window decide at once. Pacing smooths,
                # it never refuses a call the window would admit (upstream_wait=0 keeps its meaning).
                return
            self._next_slot[keys] = slot + interval
        if slot > now:
            self._sleep(slot - now)

    def _refusal(self, action: str, item: RateLimitItem, delay: float) -> CloudThrottled:
        self._note("refused", None)
        return CloudThrottled(
            f"{action}: held back by the quota guard ({item.amount} per {item.get_expiry()} s)",
            retry_after=max(1.0, round(delay, 3)),
            code="Throttling.QuotaGuard",
        )

    def _note(self, what: str, exc: BaseException | None) -> None:
        with self._lock:
            if what == "refused":
                self._refused += 1
            else:
                self._storage_errors += 1
            now = time.monotonic()
            if now - self._last_warning < _WARN_EVERY:
                return
            self._last_warning = now
            refused, errors = self._refused, self._storage_errors
            self._refused = self._storage_errors = 0
        if errors:
            logger.warning(
                "quota guard: the shared rate-limit storage failed (%s); holding calls in this process"
                " only (%d storage errors, %d calls refused since the last warning)",
                type(exc).__name__ if exc is not None else "error",
                errors,
                refused,
            )
        else:
            logger.warning(
                "quota guard: %d call(s) refused after waiting %.1f s for a slot (the account's QPS is"
                " saturated; raise upstream_wait or the quota)",
                refused,
                self.wait,
            )

    def __repr__(self) -> str:
        where = "shared" if self._shared is not None else "per process"
        return f"QuotaGuard(qps={self.qps!r}, wait={self.wait!r}, {where})"
