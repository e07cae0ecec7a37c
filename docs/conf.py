"""Sphinx configuration: furo theme, Markdown pages through MyST, API pages through autodoc.

One configuration serves two sites: the English pages in ``docs/`` and their Simplified
Chinese counterparts in ``docs/zh_CN/`` (same file names), which are a separate source
directory rather than gettext catalogues so that each Chinese page can be written as a whole.
``make docs`` builds both, with warnings as errors::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html/en
    .venv/bin/python -m sphinx -W --keep-going -b html -c docs -D language=zh_CN \
        docs/zh_CN docs/_build/html/zh_CN

Every page gets a language switch (``_templates/sidebar/language-switch.html``) linking to the
same page in the other site, which is why the two sites are built side by side.

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
# zh_CN/ is the Chinese site's own source directory, never pages of the English one.
exclude_patterns = ["_build", "_templates", "diagrams/*.txt", "zh_CN", "Thumbs.db", ".DS_Store"]
# The Chinese build overrides this with -D language=zh_CN.
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
templates_path = ["_templates"]
# furo's default sidebar, with the language switch under the project name.
html_sidebars = {
    "**": [
        "sidebar/brand.html",
        "sidebar/language-switch.html",
        "sidebar/search.html",
        "sidebar/scroll-start.html",
        "sidebar/navigation.html",
        "sidebar/ethical-ads.html",
        "sidebar/scroll-end.html",
        "sidebar/variant-selector.html",
    ]
}
#: The sites ``make docs`` builds, as language -> (directory under docs/_build/html, switch label).
SITES = {"en": ("en", "English"), "zh_CN": ("zh_CN", "简体中文")}
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


def _language_links(
    app: object, pagename: str, templatename: str, context: dict[str, object], doctree: object
) -> None:
    """Give every page the links to itself in each site, for the language switch and hreflang.

    The sites are siblings (``html/en``, ``html/zh_CN``) and have the same page names, so the
    other language's page is one directory up from this site's root.
    """
    current = app.config.language  # type: ignore[attr-defined]
    target = app.builder.get_target_uri(pagename)  # type: ignore[attr-defined]
    up = "../" * (pagename.count("/") + 1)
    context["alicertify_languages"] = [
        {
            "code": code,
            "tag": code.replace("_", "-"),
            "label": label,
            "href": f"{up}{directory}/{target}",
            "current": code == current,
        }
        for code, (directory, label) in SITES.items()
    ]


def _chinese_search(app: object) -> None:
    """Index Chinese text for the search box even without jieba.

    Sphinx's Chinese search splits text into words with jieba and, when jieba is not installed,
    indexes no Chinese at all. Without it, each run of Chinese characters is indexed by its
    two-character pieces, which is what most search words (认证, 刷脸, 回调) are.
    """
    import re

    from sphinx.search import zh

    class ChineseSearch(zh.SearchChinese):
        def split(self, input: str) -> list[str]:
            words = super().split(input)
            if zh.JIEBA_DEFAULT_DICT:  # jieba is installed and did the work
                return words
            for run in re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff]+", input):
                words.extend(run[i : i + 2] for i in range(len(run) - 1))
            return words

    app.add_search_language(ChineseSearch)  # type: ignore[attr-defined]


def setup(app: object) -> None:
    app.connect("builder-inited", _write_openapi)  # type: ignore[attr-defined]
    app.connect("html-page-context", _language_links)  # type: ignore[attr-defined]
    _chinese_search(app)
