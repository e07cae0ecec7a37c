"""The docs build with Sphinx, warnings as errors, the way ``make docs`` builds them."""

from __future__ import annotations

import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    from sphinx.cmd.build import build_main

    # Python deprecation warnings of Sphinx and its extensions are shown, not fatal, as with
    # `python -m sphinx`; Sphinx's own warnings are fatal through -W.
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # myst-parser's {include} touches an attribute Sphinx 9 deprecated; nothing we can change.
        warnings.filterwarnings(
            "ignore", message=r".*'sphinx\.environment\.BuildEnvironment\.app' is deprecated"
        )
        status = build_main(
            [
                "-W",
                "--keep-going",
                "-q",
                "-b",
                "html",
                "-d",
                str(tmp_path / "doctrees"),
                str(DOCS),
                str(tmp_path / "html"),
            ]
        )
    assert status == 0, "the docs build reported warnings or errors (see the captured stderr)"
    assert (tmp_path / "html" / "index.html").is_file()
    assert (tmp_path / "html" / "_static" / "flow.svg").is_file()
