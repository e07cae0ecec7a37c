"""The docs build with Sphinx, warnings as errors, the way ``make docs`` builds them."""

from __future__ import annotations

from pathlib import Path

from support.sphinx_build import build_html

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    status = build_html(DOCS, tmp_path / "html", tmp_path / "doctrees")
    assert status == 0, "the docs build reported warnings or errors (see the captured stderr)"
    assert (tmp_path / "html" / "index.html").is_file()
    assert (tmp_path / "html" / "_static" / "flow.svg").is_file()
