"""The Chinese docs (docs/zh_CN, README.zh-CN.md) stay in step with the English ones.

Each Chinese page records the fingerprint of the English text it translates (see
docs/zh_CN/sync.py); these tests fail when the English changed and the translation was not
refreshed, when a page has no translation, when a translation is not mostly Chinese, or when its
code differs from the English page's — the Chinese examples are not executed themselves, so they
must be the executed English ones (comments aside).
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
import tokenize
from pathlib import Path
from types import ModuleType

import pytest
from support.docs_blocks import Block
from support.docs_blocks import blocks
from support.sphinx_build import build_html

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ZH = DOCS / "zh_CN"
#: The least share of Chinese characters among the letters of a page's prose (code excluded).
#: The English pages are below 3 %; a Chinese page naming Flask, Redis and Alibaba's API actions
#: as it must still has well over 70 %.
MIN_CJK_SHARE = 0.6
#: Words of the project's internal planning that mean nothing to a reader.
JARGON = re.compile(r"DESIGN\b|§|\bissue\s+#?\d|\bthe seed\b|\bseed's\b", re.IGNORECASE)


def load_sync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_zh_sync", ZH / "sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


SYNC = load_sync()
PAIRS: dict[str, tuple[Path, Path]] = SYNC.pairs()


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_every_page_has_a_translation_and_no_translation_is_orphaned() -> None:
    missing = [f"{_rel(zh)} (translating {_rel(en)})" for en, zh in PAIRS.values() if not zh.is_file()]
    assert not missing, "pages without a Chinese translation: " + ", ".join(missing)
    orphans = sorted(p.name for p in ZH.glob("*.md") if p.name not in PAIRS)
    assert not orphans, f"docs/zh_CN pages with no English page: {orphans}"


def test_translations_are_in_step_with_the_english() -> None:
    problems = SYNC.stale()
    assert not problems, "\n".join(
        f"{why}; once the translation is up to date, run: python docs/zh_CN/sync.py {name}"
        for name, why in problems.items()
    )


def test_a_changed_english_page_makes_its_translation_stale(tmp_path: Path) -> None:
    (tmp_path / "zh_CN").mkdir()
    english, chinese = tmp_path / "flow.md", tmp_path / "zh_CN" / "flow.md"
    english.write_text("# The flow\n\nThree parties take part.\n", encoding="utf-8")
    pair = {"flow.md": (english, chinese)}
    assert "does not exist" in SYNC.stale(pair)["flow.md"]

    chinese.write_text("# 认证流程\n\n整个流程涉及三方。\n", encoding="utf-8")
    assert "lacks the first line" in SYNC.stale(pair)["flow.md"]

    header = (
        f"<!-- translated from flow.md @ sha256:{SYNC.fingerprint(SYNC.tracked_text(english, chinese))} -->"
    )
    chinese.write_text(header + "\n" + chinese.read_text(encoding="utf-8"), encoding="utf-8")
    assert SYNC.stale(pair) == {}

    english.write_text("# The flow\n\nFour parties take part.\n", encoding="utf-8")
    assert "changed since" in SYNC.stale(pair)["flow.md"]


def test_verbatim_includes_are_left_out_of_the_fingerprint() -> None:
    """The figure tables the benchmarks page includes from English never make it stale."""
    english, chinese = PAIRS["benchmarks.md"]
    source = SYNC.source_text(english)
    tracked = SYNC.tracked_text(english, chinese)
    assert "| figure |" in source and "| figure |" not in tracked
    assert "How each figure is measured" in tracked


# -- prose --------------------------------------------------------------------------------------

_CODE_FENCE = re.compile(r"^(`{3,}|~{3,})\s*(?P<info>.*)$")
#: Directives whose body is prose (translated); every other fenced block is code or markup.
_PROSE_DIRECTIVES = re.compile(r"^\{(admonition|note|tip|important|warning|caution|attention|confval)\}")


def prose(text: str) -> str:
    """The page's running text: no code blocks, inline code, link targets, HTML or comments."""
    out: list[str] = []
    fence: str | None = None
    keep = True
    for line in text.splitlines():
        if fence is None:
            match = _CODE_FENCE.match(line)
            if match:
                fence = match.group(1)
                keep = bool(_PROSE_DIRECTIVES.match(match.group("info")))
                continue
            out.append(line)
        elif line.startswith(fence) and not line[len(fence) :].strip():
            fence = None
        elif keep and not line.startswith(":"):
            out.append(line)
    body = "\n".join(out)
    body = re.sub(r"<!--.*?-->", " ", body, flags=re.DOTALL)
    body = re.sub(r"`[^`]*`", " ", body)
    body = re.sub(r"\]\([^)]*\)", "]", body)
    body = re.sub(r"https?://\S+", " ", body)
    body = re.sub(r"<[^>]+>", " ", body)
    return body


def cjk_share(text: str) -> float:
    cjk = len(re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return cjk / (cjk + latin) if cjk + latin else 0.0


def test_prose_measure_ignores_code() -> None:
    sample = "# 标题\n\n中文说明 `some_identifier` [链接](https://example.com/page)\n\n```python\nprint('x')\n```\n"
    assert cjk_share(prose(sample)) == 1.0
    assert cjk_share(prose((DOCS / "flow.md").read_text(encoding="utf-8"))) < 0.03


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_translation_is_mostly_chinese(name: str) -> None:
    chinese = PAIRS[name][1]
    if not chinese.is_file():
        pytest.fail(f"{_rel(chinese)} does not exist")
    share = cjk_share(prose(chinese.read_text(encoding="utf-8")))
    assert share >= MIN_CJK_SHARE, (
        f"{_rel(chinese)}: only {share:.0%} of the letters of its prose are Chinese "
        f"(at least {MIN_CJK_SHARE:.0%} expected): an untranslated passage?"
    )


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_translation_has_no_internal_jargon(name: str) -> None:
    chinese = PAIRS[name][1]
    if not chinese.is_file():
        pytest.fail(f"{_rel(chinese)} does not exist")
    found = [
        f"line {n}: {line.strip()}"
        for n, line in enumerate(chinese.read_text(encoding="utf-8").splitlines(), 1)
        if JARGON.search(line)
    ]
    assert not found, f"{_rel(chinese)} uses terms a reader cannot look up:\n" + "\n".join(found)


# -- code ---------------------------------------------------------------------------------------

_HASH_COMMENTS = {"sh", "bash", "shell", "console", "toml", "ini", "cfg", "yaml", "yml", "dotenv", "crontab"}
_SLASH_COMMENTS = {"js", "javascript", "ts", "typescript", "json5"}


def _without_python_comments(code: str) -> object:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return code
    skipped = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    return [(t.type, t.string) for t in tokens if t.type not in skipped]


def _without_line_comments(code: str, marker: str) -> str:
    lines = []
    for line in code.splitlines():
        line = re.sub(rf"(^|\s){re.escape(marker)}.*$", "", line).rstrip()
        if line:
            lines.append(line)
    return "\n".join(lines)


def comparable(block: Block, page: Path) -> tuple[object, ...]:
    """What of a fenced block must be the same in both languages (what may be translated is left out)."""
    info = block.info
    if info.startswith("{"):
        name, _, argument = info[1:].partition("}")
        argument = argument.strip()
        if name in ("include", "literalinclude", "image", "figure"):
            return (name, (page.parent / argument).resolve())
        if name == "toctree":
            return (name, [line.strip() for line in block.code.splitlines() if line.strip()])
        if name == "confval":
            return (name, argument)
        if name in ("code-block", "code", "sourcecode"):
            info = argument
        elif name != "eval-rst":
            return (name,)  # an admonition or similar: its text is translated
    language = info.split()[0] if info.split() else ""
    code: object = block.code
    if block.is_python:
        code = _without_python_comments(block.code)
    elif language in _HASH_COMMENTS:
        code = _without_line_comments(block.code, "#")
    elif language in _SLASH_COMMENTS:
        code = _without_line_comments(block.code, "//")
    module = block.module_name if block.is_python and not block.module_name.startswith("test_docs_") else None
    return (info, code, block.marker, module)


def test_comparison_ignores_comments_only() -> None:
    page = DOCS / "x.md"
    english = Block("x.md", 1, "python", "x = 1  # one\nprint(x)\n", "run")
    chinese = Block("x.md", 1, "python", "x = 1  # 一\nprint(x)\n", "run")
    different = Block("x.md", 1, "python", "x = 2  # one\nprint(x)\n", "run")
    assert comparable(english, page) == comparable(chinese, page)
    assert comparable(english, page) != comparable(different, page)
    unmarked = Block("x.md", 1, "python", english.code, None)
    assert comparable(english, page) != comparable(unmarked, page)
    shell = Block("x.md", 1, "sh", "make demo   # the demo\n", None)
    assert comparable(shell, page) == comparable(Block("x.md", 1, "sh", "make demo   # 演示\n", None), page)


def expanded_blocks(page: Path, tmp_path: Path) -> list[tuple[int, tuple[object, ...]]]:
    """The page's fenced blocks with its ``{include}``s written out (the contributing page's
    English is CONTRIBUTING.md), each with what must match."""
    text = SYNC.source_text(page)
    copy = tmp_path / page.parent.name / page.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(text, encoding="utf-8")
    return [(b.line, comparable(b, page)) for b in blocks(copy)]


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_translation_code_is_the_english_code(name: str, tmp_path: Path) -> None:
    english, chinese = PAIRS[name]
    if not chinese.is_file():
        pytest.fail(f"{_rel(chinese)} does not exist")
    theirs = expanded_blocks(english, tmp_path / "en")
    ours = expanded_blocks(chinese, tmp_path / "zh")
    for (en_line, en_block), (zh_line, zh_block) in zip(theirs, ours, strict=False):  # counts: below
        assert zh_block == en_block, (
            f"{_rel(chinese)}:{zh_line} differs from {_rel(english)}:{en_line} "
            "(code, marker or file reference; only comments and prose may be translated)"
        )
    assert len(ours) == len(theirs), (
        f"{_rel(chinese)} has {len(ours)} fenced blocks, {_rel(english)} has {len(theirs)}"
    )


# -- the built site -----------------------------------------------------------------------------


def test_readmes_link_to_each_other() -> None:
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    chinese = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "README.zh-CN.md" in english.split("\n\n", 1)[0], (
        "README.md should link to README.zh-CN.md at the top"
    )
    assert "(README.md)" in chinese
    for command in ("make demo", "make test", "pip install"):
        assert command in chinese


def test_chinese_site_builds_without_warnings(tmp_path: Path) -> None:
    out = tmp_path / "html" / "zh_CN"
    status = build_html(ZH, out, tmp_path / "doctrees", "-c", str(DOCS), "-D", "language=zh_CN")
    assert status == 0, "the Chinese docs build reported warnings or errors (see the captured stderr)"
    for name in PAIRS:
        if name == "README.md":
            continue
        page = out / name.replace(".md", ".html")
        assert page.is_file(), f"the Chinese site has no {page.name}"
        html = page.read_text(encoding="utf-8")
        assert '<html class="no-js" lang="zh-CN"' in html, f"{page.name} is not marked as Chinese"
        # The switch leads to the same page of the English site, built beside this one.
        assert f'href="../en/{page.name}" hreflang="en"' in html, f"{page.name} has no language switch"
    for picture in ("flow.svg", "status.svg"):
        assert (out / "_images" / picture).is_file() or (out / "_static" / picture).is_file()
    assert "_images/flow.svg" in (out / "flow.html").read_text(encoding="utf-8")
    # The search box finds Chinese words (Sphinx alone indexes none without jieba).
    index = (out / "searchindex.js").read_text(encoding="utf-8")
    assert '"\\u8ba4\\u8bc1"' in index or '"认证"' in index, "the search index has no Chinese terms"
