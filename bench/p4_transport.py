"""P4 transport: per-call time of our httpx RPC client vs the official SDK, and connection reuse.

Both gateways talk to the fake cloud over real HTTP on loopback (``FakeCloud.serve()`` in a
separate process, :mod:`bench.fake_server`, so the server never competes for this process's
GIL; one server each, so connection counts are per gateway): ``cloudauth`` (our signed
:class:`~flask_alicertify.cloud.transport.RpcClient` over httpx) and ``sdk``
(``alibabacloud_cloudauth20190307`` through the project's ``sdk`` gateway). Each call is one
``describe`` of an unfinished session (Code 424). Calls alternate httpx/sdk (then
sdk/httpx) so drift on a noisy machine hits both; warm-up calls first; medians compared.

Then a fresh server and a fresh ``cloudauth`` gateway make 100 sequential calls, and the
server counts the TCP connections it accepted (``FakeCloud.connections_opened``): one means
the pooled client kept a single keep-alive connection.

This measures client-side cost plus the fake's own (pure Python, signature-checking) time on
loopback, not the network to Alibaba, which dominates in production and makes connection
reuse (no new TCP + TLS handshake per call) the bigger win there.
"""

from __future__ import annotations

import time
from typing import Any

from flask_alicertify.cloud.base import Gateway
from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.gateways import make_gateway

from .common import CERT_NAME
from .common import CERT_NO
from .common import KEY_ID
from .common import KEY_SECRET
from .common import SCENE_ID
from .common import Check
from .common import Figure
from .common import Size
from .common import command
from .common import interleave
from .common import median
from .common import ms
from .common import percentile
from .fake_server import FakeServers


def _gateway(api: str, url: str) -> Gateway:
    # The quota guard is off: this compares transports, not the guard's pacing (P6 measures it).
    config = GatewayConfig(
        SCENE_ID, StaticCredentials(KEY_ID, KEY_SECRET), endpoints=(url,), upstream_qps=None
    )
    return make_gateway(api, config)


def _timed_describe(gateway: Gateway, certify_id: str, cpu: list[float]) -> Any:
    """A timed describe; the client thread's CPU time goes to ``cpu`` (the fake's is not in it)."""

    def once() -> float:
        cpu_started = time.thread_time()
        started = time.perf_counter()
        verdict = gateway.describe(certify_id)
        elapsed = time.perf_counter() - started
        cpu.append(time.thread_time() - cpu_started)
        if verdict.finished:
            raise RuntimeError("the fake finished a session nobody completed")
        return elapsed

    return once


def per_call(calls: int, warmup: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    request = InitRequest(outer_order_no="bench0004", cert_name=CERT_NAME, cert_no=CERT_NO)
    with FakeServers(2) as servers:
        httpx_url, sdk_url = servers.urls
        gateways = {"httpx": _gateway("cloudauth", httpx_url), "sdk": _gateway("sdk", sdk_url)}
        try:
            cpu: dict[str, list[float]] = {name: [] for name in gateways}
            variants = {
                name: _timed_describe(gw, gw.init(request).certify_id, cpu[name])
                for name, gw in gateways.items()
            }
            wall = interleave(variants, rounds=calls, warmup=warmup)
            return wall, {name: values[warmup:] for name, values in cpu.items()}
        finally:
            for gw in gateways.values():
                gw.close()


def connections(calls: int, api: str = "cloudauth") -> int:
    """TCP connections a fresh server accepted for ``calls`` sequential calls of one gateway."""
    request = InitRequest(outer_order_no="bench0005", cert_name=CERT_NAME, cert_no=CERT_NO)
    with FakeServers(1) as servers:
        gateway = _gateway(api, servers.urls[0])
        try:
            certify_id = gateway.init(request).certify_id
            for _ in range(calls - 1):
                gateway.describe(certify_id)
        finally:
            gateway.close()
        stats = servers.stats()
        if stats["calls"][0] != calls:
            raise RuntimeError(f"the fake saw {stats['calls'][0]} calls, expected {calls}")
        return int(stats["connections"][0])


def run(size: Size = "full") -> Figure:
    started = time.perf_counter()
    calls, warmup, sequential = (500, 20, 100) if size == "full" else (20, 2, 10)
    samples, cpu = per_call(calls, warmup)
    httpx_median, sdk_median = median(samples["httpx"]), median(samples["sdk"])
    ratio = httpx_median / sdk_median
    ours = connections(sequential)
    theirs = connections(sequential, api="sdk")
    checks = [
        Check(
            "P4a",
            "per-call time of our httpx transport ÷ the official SDK's, same loopback fake "
            f"(median of {calls} sequential describes each, alternating)",
            ratio,
            "<=",
            0.9,
            detail=(
                f"{ratio:.2f}× (median {ms(httpx_median)} vs {ms(sdk_median)}; client CPU "
                f"{ms(median(cpu['httpx']))} vs {ms(median(cpu['sdk']))})"
            ),
        ),
        Check(
            "P4b",
            f"TCP connections opened by our transport for {sequential} sequential calls",
            float(ours),
            "==",
            1.0,
            unit="connection",
            detail=f"{ours} (the SDK: {theirs})",
        ),
    ]
    values: dict[str, Any] = {"calls_each": calls, "warmup_each": warmup}
    for name, values_s in samples.items():
        values[name] = {
            "median_ms": median(values_s) * 1000.0,
            "p10_ms": percentile(values_s, 0.1) * 1000.0,
            "p90_ms": percentile(values_s, 0.9) * 1000.0,
            "client_cpu_median_ms": median(cpu[name]) * 1000.0,
        }
    values["ratio_httpx_over_sdk"] = ratio
    values["sequential_calls"] = sequential
    values["connections_httpx"] = ours
    values["connections_sdk"] = theirs
    return Figure(
        "P4",
        "Our transport vs the official SDK",
        checks,
        values,
        command("p4"),
        seconds=time.perf_counter() - started,
    )
