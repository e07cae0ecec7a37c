"""Find the code blocks of the docs pages and what each is marked to do.

The convention (also described in CONTRIBUTING.md): an HTML comment on the line right before a
fenced block says how the test suite uses it. HTML comments are invisible in the rendered docs
and on any Markdown viewer, so the pages read normally.

``<!-- run -->``
    Executed. The run blocks of one page share one namespace, in page order, like a reader
    following the page top to bottom.
``<!-- conftest -->``
    The ``conftest.py`` for the page's pytest blocks.
``<!-- pytest -->``
    A test module, run with pytester (so through the installed plugin); every test must pass.
``<!-- pytest: fails -->``
    A test module that must fail; the ``text`` block right after it lists lines the failure
    output must contain, in order.
``<!-- no-run: <reason> -->``
    Deliberately not executed; the reason is required.

Every Python block must carry one of these, so an example can never silently go unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
_MARKER = re.compile(
    r"^<!--\s*(?P<kind>run|conftest|pytest: fails|pytest|no-run)(?::\s*(?P<arg>.*?))?\s*-->$"
)
_PYTHON_INFO = re.compile(r"^(python|py|python3|\{code-block\}\s+python|\{code\}\s+python)\b")
#: Packages whose absence means "the project is not built yet" rather than "the example is wrong".
OWN_PACKAGES = ("flask_alicertify", "pytest_alicertify")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    info: str
    code: str
    marker: str | None  # run, conftest, pytest, pytest: fails, no-run
    reason: str | None = None

    @property
    def is_python(self) -> bool:
        return bool(_PYTHON_INFO.match(self.info))

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def module_name(self) -> str:
        """``test_x.py`` when the block's first line is a ``# test_x.py`` comment."""
        first = self.code.lstrip().splitlines()[0] if self.code.strip() else ""
        match = re.match(r"^#\s*(test_\w+\.py)\s*$", first)
        return match.group(1) if match else f"test_docs_{Path(self.page).stem}_{self.line}.py"


def pages() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md"))


def blocks(path: Path) -> list[Block]:
    """Every fenced block of one page, with the marker on the line before it (if any)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group("fence"), match.group("info").strip()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        code = "\n".join(_directive_body(body, info)) + "\n"
        marker = reason = None
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        if previous >= 0 and (m := _MARKER.match(lines[previous].strip())):
            marker, reason = m.group("kind"), m.group("arg")
        found.append(Block(path.name, start + 1, info, code, marker, reason))
    return found


def _directive_body(body: list[str], info: str) -> list[str]:
    """The code of a MyST ``{code-block}`` (without its ``:option:`` lines), else the body."""
    if not info.startswith("{"):
        return body
    out = list(body)
    while out and re.match(r"^:[\w-]+:", out[0]):
        out.pop(0)
    return out


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]
