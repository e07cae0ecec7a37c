"""docs/integrating.md shows the reference app itself, and its testing section passes against it.

The page's ``run`` blocks are executed by the docs suite like every page's. What only this suite
can do: check that the app on the page *is* ``refapp.py`` (so the app the integration tests run
is the one readers copy), and run the page's ``conftest.py`` and test (marked ``no-run`` there,
because they import the app module) with that module beside them, through the installed plugin.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from support.docs_blocks import blocks

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "integrating.md"
REFAPP = Path(__file__).resolve().parent / "refapp.py"


def page_files() -> dict[str, str]:
    """The page's Python blocks that are files (first line ``# name.py``), without that line."""
    files = {}
    for block in blocks(PAGE):
        lines = block.code.splitlines(keepends=True)
        match = re.match(r"^#\s*(\w+\.py)\s*$", lines[0].strip()) if lines else None
        if block.is_python and match:
            files[match.group(1)] = "".join(lines[1:])
    return files


def test_the_page_shows_the_reference_app():
    files = page_files()
    assert "yourapp.py" in files, "docs/integrating.md lost its '# yourapp.py' block"
    assert files["yourapp.py"] == REFAPP.read_text(encoding="utf-8"), (
        "the app on docs/integrating.md differs from tests/integration/refapp.py: change both"
    )


def test_the_pages_tests_pass_against_the_app(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    files = page_files()
    tests = {name: code for name, code in files.items() if name.startswith("test_")}
    assert tests and "conftest.py" in files
    pytester.makepyfile(yourapp=files["yourapp.py"])
    pytester.makeconftest(files["conftest.py"])
    pytester.makepyfile(**{name.removesuffix(".py"): code for name, code in tests.items()})
    for name in ("yourapp", "conftest"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", "-W", "error")

    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 20 and not (
        outcomes.get("failed") or outcomes.get("errors") or outcomes.get("skipped")
    ), result.stdout.str()
