"""The committed SVGs are what docs/diagrams/make_diagrams.py draws from its source files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

DIAGRAMS = Path(__file__).resolve().parents[2] / "docs" / "diagrams"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_diagrams", DIAGRAMS / "make_diagrams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_committed_svgs_are_up_to_date() -> None:
    script = load_script()
    for name, svg in script.render_all().items():
        committed = script.STATIC / name
        assert committed.is_file(), f"{committed} is missing: run python docs/diagrams/make_diagrams.py"
        assert committed.read_text(encoding="utf-8") == svg, (
            f"{committed.name} is out of date with its source: run python docs/diagrams/make_diagrams.py"
        )


def test_every_status_is_drawn() -> None:
    from flask_alicertify.records import TERMINAL
    from flask_alicertify.records import Status

    script = load_script()
    states, edges = script.parse_states((DIAGRAMS / "status.txt").read_text(encoding="utf-8"))
    assert set(states) == {s.value for s in Status}
    assert {name for name, state in states.items() if state.terminal} == {s.value for s in TERMINAL}
    assert not [e for e in edges if states[e.source].terminal], "an arrow leaves a terminal status"


def test_a_bad_source_line_is_reported_with_its_number() -> None:
    script = load_script()
    with pytest.raises(ValueError, match=r"flow.txt:3: unknown participant 'nobody'"):
        script.parse_sequence("participant a | A\n\na -> nobody : hello\n")


def test_check_mode_reports_a_stale_svg(tmp_path: Path) -> None:
    script = load_script()
    assert script.main(["--out", str(tmp_path)]) == 0
    assert script.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "status.svg").write_text("<svg/>", encoding="utf-8")
    assert script.main(["--check", "--out", str(tmp_path)]) == 1
