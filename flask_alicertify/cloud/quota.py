"""The quota guard: hold our calls under Alibaba's per-account QPS before Alibaba has to.

Alibaba allows 50 calls per second per API for each main account, shared by every RAM user,
process and host of that account, and 10 per second for DeleteFaceVerifyResult ("服务端API
QPS限制",
https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/product-overview/qps-limits-of-server-side-api-operations).
Past that it answers ``Throttling``. A burst that our own users cause should wait a moment on our
side, or be refused at once with a clear ``Retry-After``, instead of spending a round trip to learn
it was throttled.

How (GCRA, the generic cell rate algorithm):

* per API action (``InitFaceVerify``, ``DescribeFaceVerify``, ``DeleteFaceVerifyResult``, SAF's
  ``ExecuteRequest``) one number, the *theoretical arrival time* (TAT): the earliest instant the
  next call may go. A call takes the slot ``max(now, TAT)`` and moves the TAT ``1/rate`` later, so
  admissions are spaced evenly, ``1/rate`` apart, whichever process or thread asks. A caller whose
  slot is more than its wait away does not take it and is refused at once;
* the rate is :data:`HEADROOM` (94 %) of the configured QPS: 47 of 50, 9.4 of 10. Evenly spaced
  calls at 47/s leave three intervals (~64 ms) of jitter between admission and arrival at Alibaba
  (thread wake-up, GIL, network) before any sliding second can hold 51; the burst tolerance is
  0 calls for the same reason. Measured with bench P6 (busiest sliding second at the fake /
  calls throttled / quota used, init and result): 96 % gave 53-56 / 5-7 / 74-79 % and 92-95 %;
  94 % gave 52-53 / 2-3 / 85 % and 90-92 %. What is left is a stall at the start of the burst
  (~100 ms without arrivals, then 9 within 50 ms), not the schedule: no headroom that keeps
  90 % of the quota absorbs it;
* a thread that wakes up more than :data:`LATE` intervals after its slot gives the slot up and
  takes the next one, once. Its process was short of CPU (logging the sends inside the servers
  showed the crowding there, after the guard's decision: a sliding window checked at that point
  still let 51-56 calls into one second), so the calls scheduled after it are starting too. P6
  with this rule at 3 intervals: 0 throttled and at most 49-50 calls in any second in 4 of 4
  runs, against 4-6 throttled and 52-55 without it; the price is the slots given up (80-92 % of
  the quota used while a 4× burst overloads the 2-CPU host, against 78-94 %; three processes of
  24 threads on an idle host still use 93-95 %). At 1 or 2 intervals more slots are given up
  (66-87 % and 80-90 % in P6, and the idle three-process test fell to 89 %); at 4, 0-10 calls
  were throttled;
* the TAT lives in Redis when ``rate_limit_url`` is set, updated by one small Lua script that reads
  the Redis server's ``TIME``, so the clocks of the hosts do not matter and every process and host
  using that Redis shares one schedule. Otherwise it lives in this process (a lock and a float;
  then divide the QPS by the number of processes, or share a Redis);
* keys are ``alicertify-quota:<account>:<scope>:<action>``, ``<account>`` a hash of the access
  key id (see :func:`account_tag`), so that two accounts sharing one Redis do not share a quota;
* a call waits up to ``upstream_wait`` seconds for its slot, then raises :class:`CloudThrottled`
  without calling Alibaba; ``retry_after`` says when a slot is free again;
* if Redis fails, calls are held by the in-process schedule for the next 5 seconds, then Redis is
  tried again, and a warning is logged (at most once a minute): a limiter outage must not stop
  verifications, and Alibaba's own throttling remains the backstop.

Why not the ``limits`` library's moving window (used before): it admits up to N calls in any
second *at once* whenever slots free up; the batches admitted in different processes then reached
Alibaba in the same second. Measured with bench P6 (3 gunicorn processes, 4× burst, Redis): the
busiest sliding second held 57 DescribeFaceVerify calls and the fake throttled 18 calls; with
this schedule, see the tests' busiest-window measurements and docs/benchmarks.md.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from .errors import CloudThrottled

__all__ = ["ACTION_CAPS", "BURST", "HEADROOM", "KEY_PREFIX", "QuotaGuard", "account_tag", "admitted_rate"]

logger = logging.getLogger("flask_alicertify.cloud")

#: Actions whose own documented quota is below the account-wide one. They are held under it
#: even when ``upstream_qps`` is None: only the batch jobs call them, and a job that runs into
#: Alibaba's throttling only produces failures to retry.
ACTION_CAPS: Mapping[str, float] = {"DeleteFaceVerifyResult": 10.0}
#: Share of the quota the guard admits; the remainder absorbs jitter between us and Alibaba.
HEADROOM = 0.94
#: Calls that may go ahead of the even schedule (GCRA's burst tolerance, in calls).
BURST = 0
#: Intervals a call may start after its slot; a later one gives the slot up for the next, once.
LATE = 3.0
#: Key prefix in a shared Redis.
KEY_PREFIX = "alicertify-quota"
#: The namespace when the account is not known (one schedule for everything sharing that Redis).
DEFAULT_ACCOUNT = "default"
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_WARN_EVERY = 60.0
_RETRY_SHARED_AFTER = 5.0

# KEYS[1]: the TAT key. ARGV: interval (s), burst tolerance (s), the most the caller may wait (s).
# Returns {1, delay} (a slot taken, go in ``delay`` seconds) or {0, delay} (refused, the next
# slot is ``delay`` away). Numbers go back as strings: Redis truncates a Lua number to an integer.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local slot = tat - tolerance
if slot < now then slot = now end
local delay = slot - now
if delay > budget then
  return {0, string.format('%.6f', delay)}
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', next_tat), 'PX', math.ceil((next_tat - now) * 1000) + 1000)
return {1, string.format('%.6f', delay)}
"""


def admitted_rate(qps: float) -> float:
    """Calls per second the guard admits for a quota of ``qps``: ``qps × HEADROOM``."""
    if not qps > 0 or math.isinf(qps):
        raise ValueError(f"a QPS must be a positive number, got {qps!r}")
    return qps * HEADROOM


def account_tag(access_key_id: str | None) -> str:
    """The key namespace for an access key id: 12 hex digits of its SHA-256 (never the id itself).

    None (an unknown or rotating key, e.g. STS) gives :data:`DEFAULT_ACCOUNT`.
    """
    if not access_key_id:
        return DEFAULT_ACCOUNT
    return hashlib.sha256(access_key_id.encode()).hexdigest()[:12]


class _LocalSchedule:
    """GCRA in this process: a lock and one TAT per key (``time.monotonic`` seconds)."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, key: str, interval: float, tolerance: float, budget: float) -> tuple[bool, float]:
        with self._lock:
            now = time.monotonic()
            tat = max(self._tat.get(key, now), now)
            delay = max(tat - tolerance, now) - now
            if delay > budget:
                return False, delay
            self._tat[key] = tat + interval
            return True, delay


class QuotaGuard:
    """Admits calls per API action under a QPS shared through Redis at ``storage_url`` (or in process).

    ``qps`` None disables the account-wide limit (the :data:`ACTION_CAPS` still apply).
    ``account`` namespaces the keys (see :func:`account_tag`).
    """

    def __init__(
        self,
        qps: float | None,
        *,
        wait: float = 1.0,
        storage_url: str | None = None,
        caps: Mapping[str, float] = ACTION_CAPS,
        sleep: Callable[[float], None] = time.sleep,
        account: str = DEFAULT_ACCOUNT,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        if wait < 0 or math.isnan(wait):
            raise ValueError(f"upstream_wait must be >= 0, got {wait!r}")
        self.qps = qps
        self.wait = wait
        self.storage_url = storage_url
        self.account = account
        self._prefix = f"{key_prefix}:{account}"
        self._default = None if qps is None else admitted_rate(qps)
        self._caps = {action: admitted_rate(min(cap, qps or cap)) for action, cap in caps.items()}
        self._sleep = sleep
        self._local = _LocalSchedule()
        self._script: Any = None
        if storage_url and storage_url.split("://", 1)[0].lower() != "memory":
            self._script = _redis_script(storage_url)
        self._shared_down_until = -math.inf
        self._lock = threading.Lock()
        self._refused = 0
        self._storage_errors = 0
        self._last_warning = -math.inf

    @property
    def shared(self) -> bool:
        """True when the schedule is shared through Redis, False when per process."""
        return self._script is not None

    def rate_for(self, action: str) -> float | None:
        """Calls per second admitted for ``action``, or None when it is not limited."""
        return self._caps.get(action, self._default)

    def key_for(self, scope: str, action: str) -> str:
        """The Redis key of ``action``'s schedule."""
        return f"{self._prefix}:{scope}:{action}"

    def _take(self, key: str, interval: float, budget: float) -> tuple[bool, float]:
        """(slot taken, seconds until the slot): Redis when it works, else this process."""
        tolerance = BURST * interval
        script = self._script
        if script is not None and time.monotonic() >= self._shared_down_until:
            try:
                taken, delay = script(keys=[key], args=[repr(interval), repr(tolerance), repr(budget)])
                return bool(int(taken)), float(delay)
            except Exception as exc:  # Redis is down or misbehaving
                # Skip it for a while: a blackholed Redis would otherwise cost its timeout per call.
                self._shared_down_until = time.monotonic() + _RETRY_SHARED_AFTER
                self._note("storage", exc)
        return self._local.take(key, interval, tolerance, budget)

    def acquire(self, scope: str, action: str, *, until: float | None = None) -> None:
        """Take a slot for one ``action`` call (``scope``: "cloudauth" or "saf").

        Waits until ``until`` (a ``time.monotonic()`` value; default ``now + wait``), then raises
        :class:`CloudThrottled`. Never calls Alibaba and never raises anything else.
        """
        rate = self.rate_for(action)
        if rate is None:
            return
        if until is None:
            until = time.monotonic() + self.wait
        key, interval = self.key_for(scope, action), 1.0 / rate
        for attempt in range(2):
            asked = time.monotonic()
            taken, delay = self._take(key, interval, max(until - asked, 0.0))
            if not taken:
                raise self._refusal(action, rate, delay)
            if delay > 0:
                self._sleep(delay)
            if attempt or time.monotonic() - (asked + delay) <= LATE * interval:
                return

    def _refusal(self, action: str, rate: float, delay: float) -> CloudThrottled:
        self._note("refused", None)
        return CloudThrottled(
            f"{action}: held back by the quota guard ({rate:g} calls per second)",
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
        where = "shared" if self._script is not None else "per process"
        return f"QuotaGuard(qps={self.qps!r}, wait={self.wait!r}, {where})"


def _redis_script(url: str) -> Any:
    """The GCRA script bound to a client for ``url``; a ValueError (URL left out) if unusable."""
    scheme = url.split("://", 1)[0].lower()
    try:
        if scheme not in _REDIS_SCHEMES:
            raise ValueError(f"the scheme {scheme!r} is not one of {', '.join(_REDIS_SCHEMES)}")
        import redis

        # A slow Redis must not hold requests; past these it is "down" (see _take).
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return client.register_script(_GCRA_LUA)
    except Exception as exc:
        # Not chained, and the URL left out: it may carry a Redis password.
        detail = str(exc).replace(url, "<rate_limit_url>")
        raise ValueError(
            f"rate_limit_url is not a usable Redis URL: {type(exc).__name__}: {detail}"
        ) from None
