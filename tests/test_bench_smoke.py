"""The benchmark suite imports and its P1 figure counts exactly (no timing is asserted).

Benchmarks never run under pytest; this only proves ``python -m bench`` has not rotted: P1 at a
tiny size, whose upstream call count is exact, not a measurement of speed.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bench_p1(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))
    import bench
    from bench import p1_upstream

    assert set(bench.FIGURES) == {"p1", "p2", "p3", "p4", "p5"}
    return p1_upstream


def test_one_result_post_costs_one_init_and_one_describe(bench_p1: ModuleType) -> None:
    assert bench_p1.one_post(sessions=3) == 2.0


def test_p1_tiny_figure(bench_p1: ModuleType) -> None:
    figure = bench_p1.run("tiny")
    checks = {check.name: check for check in figure.checks}
    assert checks["P1a"].value == 2.0 and checks["P1a"].met
    # Polls after the confirming result post never re-describe a terminal record.
    assert figure.values["calls_per_verification_polls_after_post"] == 2.0
    # The throttle keeps pending polls well under one describe per poll.
    assert (
        figure.values["calls_per_verification_polls_pending"]
        < figure.values["calls_per_verification_polls_pending_naive"]
    )
