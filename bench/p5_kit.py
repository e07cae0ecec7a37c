"""P5 kit speed: what the pytest kit costs the suites that use it, measured the way users see it.

Generated test files run with pytest in subprocesses (``-p no:cacheprovider``, no project ini).
A small ``conftest.py`` hook sums each test's setup + call + teardown durations (the numbers
``--durations`` prints) into a JSON file, so interpreter start-up and collection are not counted.

* ``matrix``: one test using ``alicertify_case``, i.e. every row of ``pytest_alicertify.CASES``,
  each building the example backend (``create_app``, its own instance folder) wired to
  ``alicertify_cloud`` and driving ``run_flow``. The figure is the sum over the matrix.
* ``overhead``: three files of N tests each: ``empty`` (``pass``), ``httpx`` (a bare
  pytest-httpx test: ``httpx_mock.add_response`` with Alibaba's documented Init answer, then one
  signed InitFaceVerify through a module-level ``cloudauth`` gateway), ``kit``
  (``alicertify_cloud`` + the same signed InitFaceVerify through the same gateway, which the fake
  checks and answers). Both send the same request, so the difference is what the kit adds: the
  fixture, the signature check and the fake's session state — not the app's own signing cost.
  Per-test cost = median test duration minus the empty test's, per run; the figure is the median
  over 5 runs (the files alternate: A B C, then C B A, …) of each run's kit ÷ httpx, with the
  spread (lowest and highest run) beside it: one run on a busy 2-CPU machine moves by ±0.2.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from .common import BACKEND
from .common import PYTHON
from .common import Check
from .common import Figure
from .common import Size
from .common import command
from .common import median

CONFTEST = """
import json
import os

import pytest

DURATIONS = {}


def pytest_runtest_logreport(report):
    DURATIONS[report.nodeid] = DURATIONS.get(report.nodeid, 0.0) + report.duration
    if report.failed:
        DURATIONS.setdefault("__failed__", []).append(report.nodeid)


def pytest_sessionfinish(session):
    with open(os.environ["BENCH_TIMINGS"], "w") as f:
        json.dump(DURATIONS, f)
"""

MATRIX_CONFTEST = f"""
import importlib.util
import sys

import pytest

spec = importlib.util.spec_from_file_location("alicertify_demo_backend", {str(BACKEND)!r})
backend = importlib.util.module_from_spec(spec)
sys.modules["alicertify_demo_backend"] = backend
spec.loader.exec_module(backend)


@pytest.fixture
def app(alicertify_cloud, tmp_path):
    config = {{
        **alicertify_cloud.app_config,
        "TESTING": True,
        "SECRET_KEY": "test",
        "ALICERTIFY_ALLOW_ANONYMOUS": True,
    }}
    app = backend.create_app(config, instance_path=str(tmp_path))
    yield app
    backend.certify.close(app)


@pytest.fixture
def client(app):
    return app.test_client()
"""

MATRIX_TEST = """
from pytest_alicertify import run_flow


def test_every_outcome(client, alicertify_cloud, alicertify_case):
    flow = run_flow(client, alicertify_case, alicertify_cloud)
    assert flow.result_response.status_code == 200
    alicertify_case.check(flow.body)
    alicertify_cloud.assert_confirmed(flow.certify_id)
"""

OVERHEAD_TESTS = {
    "empty": """
import pytest


@pytest.mark.parametrize("i", range({n}))
def test_empty(i):
    pass
""",
    "httpx": """
import pytest

from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.gateways import make_gateway
from pytest_alicertify.options import DEFAULTS

GATEWAY = make_gateway(
    "cloudauth",
    GatewayConfig(
        DEFAULTS.scene_id,
        StaticCredentials(DEFAULTS.access_key_id, DEFAULTS.access_key_secret),
        upstream_qps=None,
    ),
)
ANSWER = {{
    "Code": "200",
    "Message": "success",
    "RequestId": "130A2C10-B9EE-4D84-88E3-5384FF039795",
    "ResultObject": {{"CertifyId": "91707dc296d469ad38e4c5efa6a0f24b", "CertifyUrl": "https://t.aliyun.com/x"}},
}}


@pytest.mark.parametrize("i", range({n}))
def test_httpx(httpx_mock, i):
    httpx_mock.add_response(json=ANSWER)
    request = InitRequest(outer_order_no=f"order{{i}}", cert_name="张三", cert_no="11010519491231002X")
    started = GATEWAY.init(request)
    assert started.certify_id
""",
    "kit": """
import pytest

from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.gateways import make_gateway
from pytest_alicertify.options import DEFAULTS

GATEWAY = make_gateway(
    "cloudauth",
    GatewayConfig(
        DEFAULTS.scene_id,
        StaticCredentials(DEFAULTS.access_key_id, DEFAULTS.access_key_secret),
        upstream_qps=None,
    ),
)


@pytest.mark.parametrize("i", range({n}))
def test_kit(alicertify_cloud, i):
    request = InitRequest(outer_order_no=f"order{{i}}", cert_name="张三", cert_no="11010519491231002X")
    started = GATEWAY.init(request)
    assert started.certify_id
""",
}


def _pytest(folder: Path, test_file: str) -> dict[str, float]:
    """Run one generated file; the per-test durations (seconds) by node id."""
    timings = folder / f"timings-{test_file}.json"
    env = {**os.environ, "BENCH_TIMINGS": str(timings)}
    env.pop("PYTEST_ADDOPTS", None)
    out = subprocess.run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", test_file],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    data: dict[str, Any] = json.loads(timings.read_text()) if timings.exists() else {}
    if out.returncode != 0 or "__failed__" in data:
        raise RuntimeError(f"pytest {test_file} failed:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    return {k: float(v) for k, v in data.items()}


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def matrix(root: Path, rounds: int) -> tuple[list[float], int]:
    folder = root / "matrix"
    _write(folder, {"conftest.py": CONFTEST + MATRIX_CONFTEST, "test_matrix.py": MATRIX_TEST})
    totals = []
    count = 0
    for _ in range(rounds):
        durations = _pytest(folder, "test_matrix.py")
        totals.append(sum(durations.values()))
        count = len(durations)
    return totals, count


def overhead(root: Path, tests: int, rounds: int) -> dict[str, list[float]]:
    folder = root / "overhead"
    files = {f"test_{name}.py": text.format(n=tests) for name, text in OVERHEAD_TESTS.items()}
    _write(folder, {"conftest.py": CONFTEST, **files})
    medians: dict[str, list[float]] = {name: [] for name in OVERHEAD_TESTS}
    names = list(OVERHEAD_TESTS)
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            durations = _pytest(folder, f"test_{name}.py")
            if len(durations) != tests:
                raise RuntimeError(f"test_{name}.py ran {len(durations)} tests, expected {tests}")
            medians[name].append(median(list(durations.values())))
    return medians


def per_run_ratios(medians: dict[str, list[float]]) -> list[float]:
    """Run i's kit cost ÷ its bare pytest-httpx cost, each minus run i's empty test."""
    return [
        (kit - empty) / (bare - empty)
        for kit, bare, empty in zip(medians["kit"], medians["httpx"], medians["empty"], strict=True)
    ]


def run(size: Size = "full") -> Figure:
    started = time.perf_counter()
    matrix_rounds, tests, rounds = (3, 200, 5) if size == "full" else (1, 20, 1)
    with tempfile.TemporaryDirectory(prefix="alicertify-bench-p5-") as tmp:
        root = Path(tmp)
        totals, cases = matrix(root, matrix_rounds)
        medians = overhead(root, tests, rounds)
    matrix_seconds = median(totals)
    ratios = per_run_ratios(medians)
    ratio = median(ratios)
    empty = median(medians["empty"])
    kit = median(medians["kit"]) - empty
    bare = median(medians["httpx"]) - empty
    spread = f"{min(ratios):.2f}–{max(ratios):.2f}"
    checks = [
        Check(
            "P5a",
            f"the whole CASES matrix ({cases} tests) against the example app, run by pytest "
            "(sum of setup + call + teardown)",
            matrix_seconds,
            "<=",
            1.0,
            unit="s",
            detail=f"{matrix_seconds:.3f} s ({matrix_seconds / cases * 1000:.1f} ms per case)",
        ),
        Check(
            "P5b",
            "per-test cost of `alicertify_cloud` + one signed call ÷ a bare pytest-httpx test doing one "
            f"request (median per-test duration minus an empty test's; median of {rounds} alternating runs)",
            ratio,
            "<=",
            1.5,
            detail=(
                f"{ratio:.2f}× (runs {spread}; {kit * 1000:.3f} ms vs {bare * 1000:.3f} ms per test, "
                f"{tests} tests each)"
            ),
        ),
    ]
    values: dict[str, Any] = {
        "matrix_cases": cases,
        "matrix_seconds_rounds": totals,
        "matrix_seconds": matrix_seconds,
        "overhead_tests_per_file": tests,
        "overhead_runs": rounds,
        "per_test_median_ms": {name: [v * 1000.0 for v in vs] for name, vs in medians.items()},
        "ratio_per_run": ratios,
        "ratio_spread": [min(ratios), max(ratios)],
        "kit_overhead_ms": kit * 1000.0,
        "httpx_overhead_ms": bare * 1000.0,
        "ratio": ratio,
    }
    return Figure("P5", "Kit speed", checks, values, command("p5"), seconds=time.perf_counter() - started)
