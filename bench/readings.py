"""The page's "Reading the results": per figure, what the run's own numbers say stands where.

Generated from the values each figure stores in ``results.json`` (never typed in by hand), so the
explanation of a missed target always matches the run it explains. A figure stored by an older
version of the suite (without these values) gets no paragraph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} µs"


def _p2(v: dict[str, Any]) -> list[str]:
    parts, glue = v.get("parts_us"), v.get("glue_us")
    if not parts or not glue or "peer" not in v:
        return []
    ext, peer, minimal = (v[n]["median_ms"] * 1000.0 for n in ("extension", "peer", "minimal"))
    p = {k: (x if x is not None else float("nan")) for k, x in parts.items()}
    storage = p["claim"]
    statements = v.get("statements_per_request", {})
    text = [
        f"**P2.** Per request the extension takes {ext:.0f} µs, the minimal view {minimal:.0f} µs and the "
        f"peer {peer:.0f} µs (medians). The describe, a loopback round trip to the fake, is most of every "
        f"variant: {_us(parts.get('describe_extension'))} through the extension's gateway (the quota "
        f"guard included) vs {_us(parts.get('describe_minimal'))} with the guard off, and "
        f"{_us(parts.get('describe_sdk'))} through the official SDK. The extension's storage costs "
        f"{storage:.0f} µs ({statements.get('extension', '?')} statement(s): the describe claim, "
        "which also checks the owner and stores the client's claim) "
        f"against {_us(parts.get('raw_update'))} for the minimal view's raw `UPDATE` + commit and "
        f"{_us(parts.get('orm_read_write'))} for the peer's ORM load + commit "
        f"({statements.get('peer', '?')} statements). Validating the body costs "
        f"{_us(parts.get('validate'))}, the answer's JSON {_us(parts.get('answer_json'))}, picking the "
        f"language {_us(parts.get('choose_language'))}; Flask's own dispatch of a bare `POST` view is "
        f"{_us(parts.get('flask_floor'))}. Outside these parts (the blueprint's hooks, the user "
        f"loader, the service's logic, the error set-up) the extension spends {_us(glue.get('extension'))}, "
        f"the minimal view {_us(glue.get('minimal'))} (from whole requests timed beside the parts: "
        f"{_us(parts.get('whole_extension'))} and {_us(parts.get('whole_minimal'))}).",
        f"For `P2` ≤ 1.3× the extension may add {0.3 * minimal:.0f} µs to the minimal view; it adds "
        f"{ext - minimal:.0f} µs. For `P2peer` ≤ 0.5× it must take at most {0.5 * peer:.0f} µs. "
        "`python -m bench.profile` prints the same parts and a cProfile of the extension's request.",
    ]
    return text


def _median_latency(phases: list[dict[str, Any]]) -> float:
    values = sorted(p["median_latency_ms"] for p in phases if p["median_latency_ms"] is not None)
    return values[len(values) // 2] if values else float("nan")


def _p3(v: dict[str, Any]) -> list[str]:
    if "postgresql" not in v:
        return []
    threads = v["workers"] * v["threads"]
    out = []
    for kind in ("postgresql", "sqlite"):
        m = v[kind]
        ext, minimal = m["result_rps"], m["minimal_rps"]
        ceiling = threads / (v["upstream_latency_ms"] / 1000.0)
        lat_ext, lat_min = (_median_latency(m["phases"][name]) for name in ("result", "minimal"))
        out.append(
            f"**P3 ({kind}).** {ext:.0f} vs {minimal:.0f} req/s with {threads} server threads and a "
            f"{v['upstream_latency_ms']:.0f} ms upstream: the latency alone would allow {ceiling:.0f} req/s, "
            f"so the rest of each request's time is spent on the two CPUs (the server, the fake, the "
            f"load generator share them). Median latency at the load generator {lat_ext:.0f} ms vs "
            f"{lat_min:.0f} ms; by Little's law each request held a server thread "
            f"{threads / ext * 1000:.0f} ms vs {threads / minimal * 1000:.0f} ms. The fake used at most "
            f"{m['fake_cpu_share_max']:.0%} of one CPU; {m['errors']} errors."
        )
    return out


def _p5(v: dict[str, Any]) -> list[str]:
    ratios = v.get("ratio_per_run")
    if not ratios:
        return []
    runs = ", ".join(f"{r:.2f}" for r in ratios)
    return [
        f"**P5b.** Runs: {runs} (median {v['ratio']:.2f}×). The kit's test costs "
        f"{v['kit_overhead_ms']:.3f} ms beyond an empty test and the bare pytest-httpx one "
        f"{v['httpx_overhead_ms']:.3f} ms (medians over the runs)."
    ]


def _p6(v: dict[str, Any]) -> list[str]:
    if "init" not in v:
        return []
    parts = []
    for name in ("init", "result"):
        s = v[name]
        client = s["client"]
        parts.append(
            f"`{name}`: {s['calls']} calls reached the fake ({s['throttled_by_fake']} throttled), "
            f"busiest second {s['busiest_second']}, {s['quota_used']:.0%} of the quota used while sending "
            f"({s.get('quota_used_span', 0.0):.0%} from the first call to the last); "
            f"answers {s['answers']}, median {client['median_latency_ms']:.0f} ms, p99 "
            f"{client['p99_latency_ms']:.0f} ms, sends up to {client['max_send_lag_ms']:.0f} ms late"
        )
    return [
        f"**P6.** {v['processes']} processes × {v['threads']} threads, {v['burst_factor']}× the "
        f"{v['qps']} QPS quota per API for {v['sending_seconds']:.1f} s (answers drained "
        f"{v['draining_seconds']:.1f} s later). " + "; ".join(parts) + "."
    ]


READERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {"P2": _p2, "P3": _p3, "P5": _p5, "P6": _p6}


def readings(figure: dict[str, Any]) -> list[str]:
    """Paragraphs for one stored figure (``results.json``'s ``figures`` entry)."""
    key = figure.get("key") or figure.get("title", "")
    for name, reader in READERS.items():
        if key == name or figure.get("command", "").endswith(name.lower()):
            try:
                return reader(figure.get("values", {}))
            except (KeyError, TypeError, ZeroDivisionError, IndexError):
                return []
    return []
