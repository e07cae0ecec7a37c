"""R7 upstream faults: answers no parser should trust, on every path; 0 HTTP 500, reconcile completes.

An httpx transport between the gateway and the fake cloud turns chosen answers into what a
broken proxy or a hostile upstream sends: a garbled gzip body, JSON nested 200,000 deep, a
slow drip (a byte every 0.2 s, for ever), a 200 MB body, an Init answer whose CertifyId is
unusable (empty, 129 characters, NUL, a lone surrogate), and a connect error. Each kind is
served to Init, to the describe of a result post, of a poll, and of reconcile.

Then: no answer is a 500 (each has the documented status for its path: 502/503 for Init, 503
for a result post, 200 with the stored state for a poll); a dripping upstream holds a request
no longer than the gateway's timeouts allow; the big body is abandoned near the 1 MiB cap
instead of being read; every Init that failed left an ``init_failed`` record; and one
reconcile run over records whose describes all fault completes, with one ``error`` row per
faulted record and the healthy records behind them settled.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
from support.reliability import CERT_NOS
from support.reliability import NAMES
from support.reliability import PREFIX
from support.reliability import Clock
from support.reliability import fake_app
from support.reliability import is_error_shape
from support.reliability import report
from support.reliability import size

from flask_alicertify.records import Status
from flask_alicertify.sandbox.fake import Outcome

ROUNDS = size(10, 1)
CONNECT_TIMEOUT = 0.3
READ_TIMEOUT = 0.5
DRIP_EVERY = 0.2
HUGE = 200 * 1024 * 1024
CHUNK = 64 * 1024

BODY_FAULTS = ("garbled_gzip", "deep_json", "slow_drip", "huge_body", "connect_error")
CERTIFY_ID_FAULTS = ("certify_id_empty", "certify_id_long", "certify_id_nul", "certify_id_surrogate")
#: What each path may answer when upstream misbehaves (docs/tables.md); 500 never.
ALLOWED = {"init": {502, 503}, "result": {503}, "poll": {200}}


class Drip(httpx.SyncByteStream):
    """A body that never ends: one byte every ``DRIP_EVERY`` seconds (stops after 60 s, so a
    missing deadline fails the test instead of hanging it)."""

    def __iter__(self) -> Iterator[bytes]:
        started = time.monotonic()
        yield b'{"Code": "200", '
        while time.monotonic() - started < 60:
            time.sleep(DRIP_EVERY)
            yield b" "


class Huge(httpx.SyncByteStream):
    """200 MB of JSON-looking bytes, produced lazily; counts what the reader pulled."""

    def __init__(self, pulled: list[int]) -> None:
        self.pulled = pulled

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"Code": "200", "Message": "'
        for _ in range(HUGE // CHUNK):
            self.pulled[0] += CHUNK
            yield b"x" * CHUNK


class Faulty(httpx.BaseTransport):
    """Serves the next planned fault for a matching action, else the fake's own answer."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.plan: dict[str, list[str]] = defaultdict(list)
        self.lock = threading.Lock()
        self.pulled: list[list[int]] = []
        self.served: Counter[str] = Counter()

    def inject(self, action: str, kind: str) -> None:
        with self.lock:
            self.plan[action].append(kind)

    def poison(self, certify_id: str, kind: str) -> None:
        """Every describe of ``certify_id`` gets ``kind``."""
        with self.lock:
            self.plan["CertifyId=" + certify_id].append(kind)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        action = request.headers.get("x-acs-action", "")
        by_id = "CertifyId=" + request.url.params.get("CertifyId", "")
        with self.lock:
            if self.plan[by_id]:
                kind: str | None = self.plan[by_id][0]
            else:
                kind = self.plan[action].pop(0) if self.plan[action] else None
        if kind is None:
            return self.inner.handle_request(request)
        self.served[kind] += 1
        if kind == "connect_error":
            raise httpx.ConnectError("[R7] connection refused", request=request)
        real = self.inner.handle_request(request)  # the fake still sees the call (Init is billed)
        real.read()
        headers = {"content-type": "application/json", "x-acs-request-id": "R7-FAULT"}
        if kind == "garbled_gzip":
            garbled = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xde\xad\xbe\xef" * 64
            return httpx.Response(200, headers={**headers, "content-encoding": "gzip"}, content=garbled)
        if kind == "deep_json":
            return httpx.Response(200, headers=headers, content=b"[" * 200_000 + b"]" * 200_000)
        if kind == "slow_drip":
            return httpx.Response(200, headers=headers, stream=Drip())
        if kind == "huge_body":
            pulled = [0]
            self.pulled.append(pulled)
            return httpx.Response(200, headers=headers, stream=Huge(pulled))
        data = json.loads(real.content)
        data.setdefault("ResultObject", {})["CertifyId"] = {
            "certify_id_empty": "",
            "certify_id_long": "c" * 129,
            "certify_id_nul": "sha1\x00tail",
            "certify_id_surrogate": "sha1\ud800tail",
        }[kind]
        return httpx.Response(200, headers=headers, content=json.dumps(data).encode("ascii"))


def test_r7_upstream_faults_are_typed_on_every_path() -> None:
    clock = Clock()
    transports: list[Faulty] = []

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        transports.append(Faulty(inner))
        return transports[-1]

    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    unexpected: list[tuple[str, str, int, Any]] = []
    drip_seconds: list[float] = []
    lost = 0
    with fake_app(
        clock=clock,
        wrap_transport=wrap,
        timeouts=(CONNECT_TIMEOUT, READ_TIMEOUT),
        ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None,
        ALICERTIFY_DESCRIBE_MIN_INTERVAL=0,
        ALICERTIFY_UNCLAIMED_DESCRIBE_AFTER=0,
    ) as h:
        faulty = transports[0]

        def check(path: str, kind: str, response: Any, seconds: float) -> None:
            status = response.status_code
            statuses[kind][status] += 1
            if kind == "slow_drip":
                drip_seconds.append(seconds)
            body = response.get_json(silent=True)
            if status not in ALLOWED[path] or (status != 200 and not is_error_shape(body)):
                unexpected.append((path, kind, status, body))

        def timed(call: Any) -> tuple[Any, float]:
            started = time.monotonic()
            response = call()
            return response, time.monotonic() - started

        for i in range(ROUNDS):
            identity = {"name": NAMES[i % len(NAMES)], "number": CERT_NOS[i % len(CERT_NOS)]}
            for kind in BODY_FAULTS + CERTIFY_ID_FAULTS:
                faulty.inject("InitFaceVerify", kind)
                response, seconds = timed(lambda identity=identity: h.init("alice", **identity))
                check("init", kind, response, seconds)
            for kind in BODY_FAULTS:
                cid = h.start("alice", **identity)
                h.cloud.complete(cid, passed=True)
                faulty.inject("DescribeFaceVerify", kind)
                response, seconds = timed(lambda cid=cid: h.post_result(cid, "9000"))
                check("result", kind, response, seconds)
                assert h.record(cid).client_status == "9000"  # the claim is kept
                faulty.inject("DescribeFaceVerify", kind)
                poll = h.client("alice")
                response, seconds = timed(lambda cid=cid, poll=poll: poll.get(f"{PREFIX}/result/{cid}"))
                check("poll", kind, response, seconds)
        # Every Init the fake saw has a record, and none of them is left initiating.
        for call in h.cloud.calls_for("InitFaceVerify"):
            record = h.storage.get(call.params.get("OuterOrderNo", ""))
            lost += record is None or record.status == Status.INITIATING

        # Reconcile: dead records whose describes all fault, then healthy ones behind them.
        poisoned, healthy = [], []
        for kind in BODY_FAULTS:
            cid = h.start("bob")
            faulty.poison(cid, kind)
            poisoned.append(cid)
        for _ in range(3):
            h.cloud.script_next(Outcome.passes())
            healthy.append(h.start("carol"))
        clock.advance(3600)
        pending_before = sum(1 for r in h.storage.stale(updated_before=clock(), limit=1000))
        started = time.monotonic()
        result = h.cli("reconcile", "--older-than", "0s")
        reconcile_seconds = time.monotonic() - started
        table = result.output
        settled = [h.record(cid).status for cid in healthy]
        poisoned_after = [h.record(cid).status for cid in poisoned]

    pulled_max = max((p[0] for p in faulty.pulled), default=0)
    total = {kind: sum(c.values()) for kind, c in statuses.items()}
    five_hundreds = sum(c[500] for c in statuses.values())
    drip_max = max(drip_seconds, default=0.0)
    drip_bound = CONNECT_TIMEOUT + READ_TIMEOUT + 2 * DRIP_EVERY + 0.5
    match = re.search(r"^outcome: error\s+(\d+)$", table, re.MULTILINE)
    error_rows = int(match.group(1)) if match else 0
    reconcile_ok = (
        result.exit_code == 0
        and error_rows == len(poisoned)
        and all(s == Status.PASSED for s in settled)
        and all(s == Status.PENDING for s in poisoned_after)
    )
    per_kind = "; ".join(f"{kind} {dict(sorted(statuses[kind].items()))}" for kind in sorted(statuses))
    line = (
        f"{sum(total.values())} requests meeting a faulty upstream (init, result post, poll) — {per_kind}; "
        f"{five_hundreds} HTTP 500; slow drip held a request at most {drip_max:.2f} s "
        f"(timeouts {CONNECT_TIMEOUT}+{READ_TIMEOUT} s); the 200 MB body was abandoned after "
        f"{pulled_max / 1024 / 1024:.2f} MiB; {lost} Init without a settled record; reconcile over "
        f"{pending_before} stale records with {len(poisoned)} faulting describes completed in "
        f"{reconcile_seconds:.1f} s (exit {result.exit_code}), {error_rows} error rows, "
        f"{sum(s == Status.PASSED for s in settled)}/{len(settled)} healthy records behind them settled"
    )
    met = (
        not unexpected
        and five_hundreds == 0
        and drip_max <= drip_bound
        and pulled_max <= 2 * 1024 * 1024
        and lost == 0
        and reconcile_ok
    )
    report(
        "R7",
        "upstream faults",
        line,
        target="0 HTTP 500; drip bounded by the timeouts; body cap 1 MiB; reconcile completes",
        met=met,
        size=f"{ROUNDS} rounds × {len(BODY_FAULTS) + len(CERTIFY_ID_FAULTS)} fault kinds × 3 paths",
    )
    assert not unexpected, unexpected[:5]
    assert drip_max <= drip_bound, drip_seconds
    assert pulled_max <= 2 * 1024 * 1024, pulled_max
    assert lost == 0
    assert result.exit_code == 0, table
    assert reconcile_ok, (settled, poisoned_after, table)
