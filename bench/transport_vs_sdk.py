"""Time per DescribeFaceVerify: our httpx transport (``cloudauth`` gateway) vs the ``sdk`` gateway.

Both talk to the same fake cloud over real HTTP on loopback (one server each, so connection
counts are per gateway). Calls alternate httpx/sdk so drift on a noisy machine hits both
equally; 10 warm-up calls each, then N measured calls each; medians and p90 reported.

    .venv/bin/python bench/transport_vs_sdk.py [N]

Loopback only: this measures client-side cost plus the fake's own (pure Python, signature
checking) time, not the network to Alibaba, which dominates in production.
"""

from __future__ import annotations

import statistics
import sys
import time

from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.gateways import make_gateway
from flask_alicertify.sandbox.fake import FakeCloud

KEY_ID, SECRET, SCENE = "LTAI5tBench0000000001", "bench-secret", "1000000006"


def main(n: int = 200) -> None:
    cloud = FakeCloud(KEY_ID, SECRET, seed=1)
    creds = StaticCredentials(KEY_ID, SECRET)
    with cloud.serve() as httpx_url, cloud.serve() as sdk_url:
        gateways = {
            "httpx": make_gateway("cloudauth", GatewayConfig(SCENE, creds, endpoints=(httpx_url,))),
            "sdk": make_gateway("sdk", GatewayConfig(SCENE, creds, endpoints=(sdk_url,))),
        }
        request = InitRequest(outer_order_no="bench0001", cert_name="张三", cert_no="330103199001011234")
        ids = {name: gw.init(request).certify_id for name, gw in gateways.items()}
        for _ in range(10):
            for name, gw in gateways.items():
                gw.describe(ids[name])
        samples: dict[str, list[float]] = {name: [] for name in gateways}
        for _ in range(n):
            for name, gw in gateways.items():
                started = time.perf_counter()
                verdict = gw.describe(ids[name])
                samples[name].append((time.perf_counter() - started) * 1000.0)
                assert not verdict.finished
        for gw in gateways.values():
            gw.close()
        calls_per_host: dict[str, int] = {}
        for call in cloud.calls:
            calls_per_host[call.host] = calls_per_host.get(call.host, 0) + 1

    print(f"python {sys.version.split()[0]}, {n} sequential describe calls each, alternating, loopback")
    for name, values in samples.items():
        values.sort()
        p90 = values[int(len(values) * 0.9) - 1]
        print(
            f"{name:>6}: median {statistics.median(values):.3f} ms  p90 {p90:.3f} ms  "
            f"min {values[0]:.3f} ms  max {values[-1]:.3f} ms"
        )
    ratio = statistics.median(samples["sdk"]) / statistics.median(samples["httpx"])
    print(f"sdk/httpx median ratio: {ratio:.2f}")
    print(f"TCP connections accepted by the fake (both servers): {cloud.connections_opened}")
    print(f"calls per endpoint: {calls_per_host}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
