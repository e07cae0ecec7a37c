"""The load generator, run as its own process (``python -m bench.loadgen SPEC_JSON``); loopback only.

Its HTTP/1.1 client is a few lines of asyncio (keep-alive connections, ``Content-Length``
bodies, JSON in and out), so that the generator spends little of the machine's CPU that the
server under test needs: httpx's async pool scans every connection for every request, which at
hundreds of connections made the generator the bottleneck. Two modes, both bounded in time and in
count, printing one JSON line:

* closed loop (``"mode": "closed"``, P3): ``threads`` clients, each with its own connection, send
  ``method url`` back to back (POST bodies from ``bodies``, in turn) until ``seconds`` are up or
  ``max_requests`` were sent. Prints requests, errors (non-200 answers or transport errors, with
  the first few reasons), seconds, rps, median latency.
* open loop (``"mode": "open"``, P6): each of ``streams`` (``name``, ``rate``, ``requests``: a list
  of ``{"url", "method", "headers", "json"}`` used in turn) sends at its fixed rate for
  ``seconds`` whatever the answers, like a crowd of clients, at most ``max_in_flight`` at once.
  Prints per stream the answers by status, the 429/503 answers without ``Retry-After``, transport
  errors, latencies, how late the sends ran, and the burst's start and end (``time.time()``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class Client:
    """Keep-alive HTTP/1.1 over asyncio streams; idle connections are reused per host and port."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def request(
        self, method: str, url: str, headers: dict[str, str] | None = None, payload: Any = None
    ) -> Answer:
        return await asyncio.wait_for(self._request(method, url, headers or {}, payload), self.timeout)

    async def _request(self, method: str, url: str, headers: dict[str, str], payload: Any) -> Answer:
        parts = urlsplit(url)
        if parts.hostname not in LOOPBACK:
            raise SystemExit(f"the load generator only targets loopback, not {url!r}")
        key = (parts.hostname, parts.port or 80)
        idle = self._idle.setdefault(key, [])
        reader, writer = idle.pop() if idle else await asyncio.open_connection(*key)
        body = b"" if payload is None else json.dumps(payload).encode()
        lines = [f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1"]
        lines.append(f"Host: {parts.netloc}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        if payload is not None:
            lines.append("Content-Type: application/json")
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("the server closed the connection without answering")
            answer_headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                answer_headers[name.strip().lower()] = value.strip()
            content = await reader.readexactly(int(answer_headers.get("content-length", "0")))
        except BaseException:
            writer.close()
            raise
        if answer_headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            idle.append((reader, writer))
        return Answer(int(status_line.split()[1]), answer_headers, content)

    def close(self) -> None:
        for connections in self._idle.values():
            for _, writer in connections:
                writer.close()
        self._idle.clear()


async def _closed(spec: dict[str, Any]) -> dict[str, Any]:
    duration, clients = float(spec["seconds"]), int(spec["threads"])
    budget = iter(range(int(spec.get("max_requests", 1_000_000))))
    bodies: list[Any] = spec.get("bodies") or [None]
    headers = spec.get("headers") or {}
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + duration

    async def worker() -> None:
        client = Client(timeout=30.0)  # one client each: its own keep-alive connection
        try:
            while time.perf_counter() < deadline and (i := next(budget, None)) is not None:
                t0 = time.perf_counter()
                try:
                    answer = await client.request(
                        spec["method"], spec["url"], headers, bodies[i % len(bodies)]
                    )
                    if answer.status != 200:
                        errors.append(f"HTTP {answer.status}: {answer.body[:120]!r}")
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                    errors.append(f"{type(e).__name__}: {e}")
                latencies.append(time.perf_counter() - t0)
        finally:
            client.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "median_latency_ms": statistics.median(latencies) * 1000.0 if latencies else None,
    }


async def _open(spec: dict[str, Any]) -> dict[str, Any]:
    seconds = float(spec["seconds"])
    streams: list[dict[str, Any]] = spec["streams"]
    in_flight = asyncio.Semaphore(int(spec.get("max_in_flight", 1000)))
    client = Client(timeout=float(spec.get("timeout", 30.0)))
    results: dict[str, dict[str, Any]] = {
        s["name"]: {"statuses": {}, "no_retry_after": 0, "errors": [], "latencies": [], "lag": []}
        for s in streams
    }

    async def send(name: str, item: dict[str, Any]) -> None:
        out = results[name]
        async with in_flight:
            t0 = time.perf_counter()
            try:
                answer = await client.request(
                    item["method"], item["url"], item.get("headers"), item.get("json")
                )
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                out["errors"].append(f"{type(e).__name__}: {e}")
                return
            out["latencies"].append(time.perf_counter() - t0)
            code = str(answer.status)
            out["statuses"][code] = out["statuses"].get(code, 0) + 1
            if answer.status in (429, 503) and "retry-after" not in answer.headers:
                out["no_retry_after"] += 1

    tasks: list[asyncio.Task[None]] = []

    async def stream_loop(stream: dict[str, Any], t0: float) -> None:
        rate = float(stream["rate"])
        requests = stream["requests"]
        for i in range(int(seconds * rate)):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            results[stream["name"]]["lag"].append(max(0.0, -delay))
            tasks.append(asyncio.create_task(send(stream["name"], requests[i % len(requests)])))

    started_at = time.time()
    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(stream_loop(s, t0) for s in streams))
        sent_until = time.time()
        await asyncio.gather(*tasks)
    finally:
        client.close()
    ended_at = time.time()
    summary: dict[str, Any] = {"started_at": started_at, "sent_until": sent_until, "ended_at": ended_at}
    for name, out in results.items():
        latencies = sorted(out.pop("latencies"))
        lag = out.pop("lag")
        out["answers"] = len(latencies)
        out["error_samples"] = out["errors"][:3]
        out["errors"] = len(out["errors"])
        out["median_latency_ms"] = statistics.median(latencies) * 1000.0 if latencies else None
        out["p99_latency_ms"] = latencies[int(0.99 * (len(latencies) - 1))] * 1000.0 if latencies else None
        out["max_send_lag_ms"] = max(lag) * 1000.0 if lag else None
        summary[name] = out
    return summary


def _check(spec: dict[str, Any]) -> None:
    urls = [spec["url"]] if "url" in spec else [i["url"] for s in spec["streams"] for i in s["requests"]]
    for url in urls:
        if urlsplit(url).hostname not in LOOPBACK:
            raise SystemExit(f"the load generator only targets loopback, not {url!r}")


def main(spec: dict[str, Any]) -> dict[str, Any]:
    _check(spec)
    if spec.get("mode", "closed") == "open":
        return asyncio.run(_open(spec))
    return asyncio.run(_closed(spec))


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
