"""flask-alicertify's benchmark suite: ``python -m bench [p1 p2 p3 p4 p5 p6]``.

One module per figure (``p1_upstream`` … ``p6_quota``), each with ``run(size) -> Figure``. The
runner prints a table, writes ``bench/results.json`` and ``docs/benchmarks.md``, and exits
non-zero when a target is missed. Benchmarks never run under pytest: ``tests/test_bench_smoke.py``
runs the figures at tiny sizes and checks what is exact (call counts, answers), never a timing.
``python -m bench.profile`` profiles the P2 extension path.
"""

from __future__ import annotations

#: Figure key -> module name, in run order.
FIGURES: dict[str, str] = {
    "p1": "bench.p1_upstream",
    "p2": "bench.p2_overhead",
    "p3": "bench.p3_throughput",
    "p4": "bench.p4_transport",
    "p5": "bench.p5_kit",
    "p6": "bench.p6_quota",
}
