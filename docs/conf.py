"""Sphinx configuration: furo theme, Markdown pages through MyST, API pages through autodoc.

Build with warnings as errors (``make docs``)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

No intersphinx: the build must work offline, so links to Flask, pytest or httpx are written
as plain URLs where they matter.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Autodoc imports the packages from the checkout even when they are not installed.
sys.path.insert(0, str(ROOT))

project = "flask-alicertify"
author = "flask-alicertify developers"
copyright = "flask-alicertify developers"
try:
    release = importlib.metadata.version("flask-alicertify")
except importlib.metadata.PackageNotFoundError:
    release = "0.1.0.dev0"
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "diagrams/*.txt", "Thumbs.db", ".DS_Store"]
language = "en"

myst_enable_extensions = ["colon_fence", "deflist"]
# "Choosing the server API" and friends link to each other's sections by heading.
myst_heading_anchors = 3

autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}

nitpicky = False

html_theme = "furo"
html_title = f"flask-alicertify {release}"
html_static_path = ["_static"]
pygments_style = "default"
pygments_dark_style = "monokai"


def _write_openapi(app: object) -> None:
    """Generate the OpenAPI document the openapi page includes, from the code, at every build."""
    import json

    from flask_alicertify.openapi import build_openapi

    out = Path(__file__).resolve().parent / "_generated" / "openapi.json"
    out.parent.mkdir(exist_ok=True)
    text = json.dumps(build_openapi("/alicertify"), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")


def setup(app: object) -> None:
    app.connect("builder-inited", _write_openapi)  # type: ignore[attr-defined]
