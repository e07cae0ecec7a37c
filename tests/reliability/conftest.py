"""Reliability suite: prints every R-test's figure at the end, writes docs/reliability.md at full size.

The reduced run (``make test``) never rewrites the document; only
``ALICERTIFY_RELIABILITY=full pytest tests/reliability`` (``make reliability``) does, and only
with the figures of the R-tests that ran.
"""

from __future__ import annotations

import os
import platform
import re
from datetime import datetime
from datetime import timezone
from pathlib import Path

import pytest
from support.reliability import FIGURES
from support.reliability import FULL
from support.reliability import MODE

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"

HEADER = """\
---
orphan: true
---

# Reliability figures

Measured by `make reliability` (`ALICERTIFY_RELIABILITY=full pytest tests/reliability -s`), which
writes this page; `make test` runs the same tests at reduced sizes and never rewrites it. Each row
is one test of `tests/reliability/`; the test fails when its target is missed.

"""


#: Strict-xfail tests that document a defect in code this suite does not own: reason -> test ids.
DEFECTS: dict[str, list[str]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    reason = getattr(report, "wasxfail", "")
    if report.skipped and reason.startswith("defect") and "/reliability/" in report.nodeid:
        DEFECTS.setdefault(reason, []).append(report.nodeid.rsplit("::", 1)[-1])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES.items:
        return
    terminalreporter.section(f"alicertify reliability figures ({MODE} size)")
    for figure in sorted(FIGURES.items.values(), key=lambda f: f.rid):
        status = "met" if figure.met else "MISSED"
        terminalreporter.write_line(f"{figure.rid} {figure.title}: {figure.line} [{status}]")
    for reason, ids in DEFECTS.items():
        terminalreporter.write_line(f"open defect ({len(ids)} strict-xfail probes): {reason}")
    if FULL:
        terminalreporter.write_line(f"written to {DOC}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not FULL or not FIGURES.items:
        return
    # A full run of only some R-tests (``-k R3``) updates their rows and keeps the others.
    rows: dict[str, str] = {}
    if DOC.exists():
        for line in DOC.read_text(encoding="utf-8").splitlines():
            match = re.match(r"^\| (R\d+) ", line)
            if match:
                rows[match.group(1)] = line
    for figure in FIGURES.items.values():
        cells = (
            f"{figure.rid} {figure.title}",
            figure.size,
            figure.line,
            figure.target,
            "yes" if figure.met else "**no**",
        )
        rows[figure.rid] = "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    table = ["| test | size | figure | target | met |", "| --- | --- | --- | --- | --- |"]
    table += [rows[rid] for rid in sorted(rows, key=lambda r: int(r[1:]))]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
    text = HEADER + "\n".join(table) + "\n"
    if DEFECTS:
        text += "\nOpen defects found by the suite (each probe is a strict xfail until the fix lands):\n\n"
        for reason, ids in DEFECTS.items():
            text += f"- {reason} ({len(ids)} probes: {', '.join(sorted(ids)[:4])}, ...)\n"
    text += f"\nLast run: {when}, {machine}.\n"
    DOC.write_text(text, encoding="utf-8")
