"""The benchmark suite has not rotted: tiny runs and its arithmetic (no timing is asserted).

Benchmarks never run under pytest. This runs P1 and P2 at tiny sizes and checks what is exact
(P1's call counts; P2's "every timed request described upstream", which ``run`` raises on), the
pure functions the served figures are computed with, the load generator's open loop against a
small local server, and the page generator. P3 and P6 need gunicorn, PostgreSQL and Redis and
take half a minute even tiny: ``python -m bench p3 p6 --tiny`` runs them by hand.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))
    import bench

    return bench


def test_every_figure_is_registered(bench: ModuleType) -> None:
    assert set(bench.FIGURES) == {"p1", "p2", "p3", "p4", "p5", "p6"}


def test_one_result_post_costs_one_init_and_one_describe(bench: ModuleType) -> None:
    from bench import p1_upstream

    assert p1_upstream.one_post(sessions=3) == 2.0


def test_p1_tiny_figure(bench: ModuleType) -> None:
    from bench import p1_upstream

    figure = p1_upstream.run("tiny")
    checks = {check.name: check for check in figure.checks}
    assert checks["P1a"].value == 2.0 and checks["P1a"].met
    # Polls after the confirming result post never re-describe a terminal record.
    assert figure.values["calls_per_verification_polls_after_post"] == 2.0
    # The throttle keeps pending polls well under one describe per poll.
    assert (
        figure.values["calls_per_verification_polls_pending"]
        < figure.values["calls_per_verification_polls_pending_naive"]
    )


def test_p2_tiny_figure_describes_upstream_for_every_timed_request(bench: ModuleType) -> None:
    from bench import p2_overhead

    figure = p2_overhead.run("tiny")
    assert [c.name for c in figure.checks] == ["P2peer", "P2"]
    values = figure.values
    requests = (values["requests_each"] + values["warmup_each"]) * 3
    assert values["upstream_describes"] == requests
    for name in ("extension", "peer", "minimal"):
        assert values[name]["median_ms"] > 0
    # The peer loads the row and writes it back; the extension's claim checks the owner and
    # stores the client's claim in one statement (the sessions never finish: nothing more).
    assert values["statements_per_request"]["peer"] >= 2
    assert values["statements_per_request"]["extension"] == 1
    assert values["statements_per_request"]["minimal"] == 1
    assert values["sqlite"]["journal_mode"] == "wal"


def test_busiest_second_is_a_sliding_half_open_window(bench: ModuleType) -> None:
    from bench.p6_quota import busiest_second

    assert busiest_second([]) == 0
    assert busiest_second([0.0, 1.0, 2.0]) == 1  # [t, t + 1) never holds two of these
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    # A fixed window per wall-clock second would say 2; a sliding one sees the 4 in [0.6, 1.6).
    assert busiest_second([0.6, 0.9, 1.1, 1.5, 3.0]) == 4


def test_p6_analysis_counts_throttles_windows_quota_and_bad_answers(bench: ModuleType) -> None:
    from bench.p6_quota import QPS
    from bench.p6_quota import analyse

    start = 1000.0
    arrivals = [(start + i / 40, "InitFaceVerify", 200) for i in range(80)]  # 40/s for 2 s
    arrivals += [(start + 0.5, "DescribeFaceVerify", 429), (start - 5.0, "DescribeFaceVerify", 200)]
    client = {"median_latency_ms": 1.0, "p99_latency_ms": 2.0, "max_send_lag_ms": 0.0, "error_samples": []}
    burst = {
        "started_at": start,
        "sent_until": start + 2.0,
        "init": {"statuses": {"200": 70, "429": 10}, "no_retry_after": 3, "errors": 0, **client},
        "result": {"statuses": {"200": 1, "500": 2}, "no_retry_after": 0, "errors": 1, **client},
    }
    out = analyse(arrivals, burst)
    assert out["init"]["busiest_second"] == 40
    assert out["init"]["quota_used"] == pytest.approx(80 / (QPS * 2.0))
    assert out["init"]["bad_answers"] == 3  # 429s without Retry-After
    assert out["result"]["throttled_by_fake"] == 1
    assert out["result"]["calls"] == 1  # the set-up call before the burst is not counted
    assert out["result"]["bad_answers"] == 3  # two 500s and a transport error


def test_p5b_is_the_median_of_per_run_ratios(bench: ModuleType) -> None:
    from bench.p5_kit import per_run_ratios

    medians = {"empty": [1.0, 1.0, 2.0], "httpx": [2.0, 3.0, 3.0], "kit": [3.0, 4.0, 4.5]}
    assert per_run_ratios(medians) == [2.0, 1.5, 2.5]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = 200 if self.path == "/ok" else 429
        body = b"{}"
        self.send_response(status)
        if self.path == "/polite":
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def local_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_open_loop_load_counts_statuses_and_missing_retry_after(bench: ModuleType, local_server: str) -> None:
    from bench import loadgen

    def stream(name: str, path: str) -> dict[str, Any]:
        item = {"url": f"{local_server}{path}", "method": "POST", "json": {"n": 1}}
        return {"name": name, "rate": 20, "requests": [item]}

    spec = {
        "mode": "open",
        "seconds": 0.5,
        "streams": [stream("ok", "/ok"), stream("polite", "/polite"), stream("rude", "/rude")],
    }
    out = loadgen.main(spec)
    assert out["ok"]["statuses"] == {"200": 10}
    assert out["polite"]["statuses"] == {"429": 10} and out["polite"]["no_retry_after"] == 0
    assert out["rude"]["statuses"] == {"429": 10} and out["rude"]["no_retry_after"] == 10
    assert out["started_at"] <= out["sent_until"] <= out["ended_at"]


def test_load_generator_refuses_anything_but_loopback(bench: ModuleType) -> None:
    from bench import loadgen

    with pytest.raises(SystemExit):
        loadgen.main({"url": "http://example.com/", "method": "GET", "seconds": 0.1, "threads": 1})


def test_page_lists_every_check_and_marks_reported_rows(bench: ModuleType) -> None:
    from bench.common import Check
    from bench.common import Figure
    from bench.report import figure_json
    from bench.report import markdown

    required = Check("PX", "a ratio", 2.0, "<=", 1.0, detail="2.00×")
    reported = Check("PXinfo", "the same elsewhere", 3.0, "<=", 1.0, detail="3.00×", required=False)
    figure = Figure("PX", "Example", [required, reported], {}, "python -m bench px")
    assert not figure.met  # the required row missed
    assert Figure("PY", "Example", [reported], {}, "python -m bench py").met  # a reported row never fails
    data = {
        "generated": "2026-01-01T00:00:00+00:00",
        "machine": {"nproc": 2, "python": "3.11", "platform": "Linux"},
        "figures": {"PX": figure_json(figure, "2026-01-01T00:00:00+00:00")},
    }
    baseline = {"generated": "2025-12-01", "label": "v0", "machine": {"nproc": 2}, "figures": json.loads(
        json.dumps(data["figures"]))}  # fmt: skip
    page = markdown(data, baseline)
    assert "| PX | a ratio | 2.00× | <= 1× | **no** |" in page
    assert "| PXinfo | the same elsewhere | 3.00× | (reported) | — |" in page
    assert "## Before and after" in page and "v0, 2025-12-01" in page
