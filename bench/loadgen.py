"""A small closed-loop load generator, run as its own process by P3.

``python -m bench.loadgen SPEC_JSON``: SPEC has ``url``, ``method``, ``seconds`` (how long the
phase lasts), ``threads``, ``headers`` and, for POST, ``bodies`` (JSON bodies used in turn). Each
thread owns a keep-alive ``httpx.Client`` and sends requests back to back until the time is up.
Prints one JSON line: requests, errors (non-200 or transport errors, with the first few
reasons), seconds, rps, median latency.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from typing import Any

import httpx


def main(spec: dict[str, Any]) -> dict[str, Any]:
    duration, threads = float(spec["seconds"]), int(spec["threads"])
    bodies: list[Any] = spec.get("bodies") or [None]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        mine: list[float] = []
        bad: list[str] = []
        with httpx.Client(headers=spec.get("headers") or {}, timeout=30.0) as client:
            barrier.wait()
            deadline = time.perf_counter() + duration
            i = 0
            while time.perf_counter() < deadline:
                i += 1
                body = bodies[(index + i * threads) % len(bodies)]
                started = time.perf_counter()
                try:
                    response = client.request(spec["method"], spec["url"], json=body)
                    if response.status_code != 200:
                        bad.append(f"HTTP {response.status_code}: {response.text[:120]}")
                except httpx.HTTPError as e:
                    bad.append(f"{type(e).__name__}: {e}")
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "median_latency_ms": statistics.median(latencies) * 1000.0 if latencies else None,
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
