"""Build a docs site the way ``make docs`` does, warnings as errors, for the docs tests."""

from __future__ import annotations

import warnings
from pathlib import Path


def build_html(source: Path, out: Path, doctrees: Path, *options: str) -> int:
    """Sphinx's exit status for an HTML build of ``source`` into ``out`` with ``-W``.

    Python deprecation warnings of Sphinx and its extensions are shown, not fatal, as with
    ``python -m sphinx``; Sphinx's own warnings are fatal through ``-W``. ``options`` are more
    command-line options (``-c``, ``-D language=…``).
    """
    from sphinx.cmd.build import build_main

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # myst-parser's {include} touches an attribute Sphinx 9 deprecated; nothing we can change.
        warnings.filterwarnings(
            "ignore", message=r".*'sphinx\.environment\.BuildEnvironment\.app' is deprecated"
        )
        return build_main(
            ["-W", "--keep-going", "-q", "-b", "html", *options, "-d", str(doctrees), str(source), str(out)]
        )
