"""What every figure shares: the result types, the fake cloud's keys, timing and app helpers.

A figure module exposes ``run(size: str) -> Figure``; ``size`` is ``"full"`` (``python -m
bench``) or ``"tiny"`` (the smoke test). A :class:`Figure` holds one or more :class:`Check`
rows, each a measured ratio (or count) against its target (see docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

if TYPE_CHECKING:
    from flask_alicertify.cloud.base import GatewayConfig

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "examples" / "backend" / "app.py"
PYTHON = sys.executable

KEY_ID = "LTAI5tBench0000000001"
KEY_SECRET = "bench-secret"
SCENE_ID = "1000000006"
#: A valid GB 11643 number that belongs to nobody (the standard's own example).
CERT_NO = "11010519491231002X"
CERT_NAME = "张三"

#: Bumped when a figure's definition changes: stored results of an earlier suite are flagged.
SUITE = 2

Size = Literal["full", "tiny"]
Op = Literal["<=", ">=", "=="]


@dataclass
class Check:
    """One target: ``value`` (a ratio or a count) compared with ``target`` by ``op``."""

    name: str
    what: str
    value: float
    op: Op
    target: float
    unit: str = "×"
    #: Human text for the table's result column (the numbers behind the ratio).
    detail: str = ""
    #: Extra conditions that must also hold (e.g. zero errors), name -> held.
    conditions: dict[str, bool] = field(default_factory=dict)
    #: False for a row that is reported but has no target of its own (it never fails the run).
    required: bool = True

    @property
    def met(self) -> bool:
        if self.op == "<=":
            ok = self.value <= self.target + 1e-9
        elif self.op == ">=":
            ok = self.value >= self.target - 1e-9
        else:
            ok = abs(self.value - self.target) < 1e-9
        return ok and all(self.conditions.values())

    def target_text(self) -> str:
        if not self.required:
            return "(reported)"
        if self.unit == "×":
            return f"{self.op} {self.target:g}×"
        return f"{self.op} {self.target:g} {self.unit}".rstrip()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["met"] = self.met
        data["target_text"] = self.target_text()
        return data


@dataclass
class Figure:
    """One figure (P1…P5): its checks, the raw measurements and how to reproduce it."""

    key: str
    title: str
    checks: list[Check]
    values: dict[str, Any]
    command: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return all(check.met for check in self.checks if check.required)


def gateway_config(url: str, *, guard: bool = True, **extra: Any) -> GatewayConfig:
    """A ``cloudauth`` gateway's config for the fake at ``url``; ``guard=False`` turns the quota
    guard off (the hand-written views have none)."""
    from dataclasses import fields

    from flask_alicertify.cloud.base import GatewayConfig
    from flask_alicertify.cloud.credentials import StaticCredentials

    if not guard and "upstream_qps" in {f.name for f in fields(GatewayConfig)}:
        extra["upstream_qps"] = None
    return GatewayConfig(SCENE_ID, StaticCredentials(KEY_ID, KEY_SECRET), endpoints=(url,), **extra)


def command(key: str) -> str:
    return f".venv/bin/python -m bench {key}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def interleave(variants: dict[str, Callable[[], float]], rounds: int, warmup: int) -> dict[str, list[float]]:
    """Run each variant ``rounds`` times, alternating (ABAB, then BABA…), so machine noise hits both.

    Each callable returns the seconds it measured itself (setup stays outside the timed part).
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(variants[name]())
    return samples


def nproc() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_backend(name: str = "alicertify_bench_backend") -> ModuleType:
    """The example backend (examples/backend/app.py) as a module; it is not a package."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BACKEND)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def ms(seconds: float) -> str:
    return f"{seconds * 1000.0:.3f} ms"
