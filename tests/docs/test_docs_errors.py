"""docs/tables.md's error table is the error catalogue: the same codes, each with its one status."""

from __future__ import annotations

import re
from pathlib import Path

from flask_alicertify.errors import CATALOGUE

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tables.md"
SECTION = "## The extension's own error codes"


def documented_codes() -> list[tuple[int, str]]:
    """``(status, code)`` for every code of every row of the page's error table, in page order."""
    text = PAGE.read_text(encoding="utf-8")
    assert SECTION in text, f"{PAGE.name} lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    pairs = []
    for line in section.splitlines():
        match = re.match(r"^\|\s*(\d{3})\s*\|([^|]*)\|", line)
        if match is None:
            continue
        codes = re.findall(r"`([a-z_]+)`", match.group(2))
        assert codes, f"a row without a code: {line}"
        pairs += [(int(match.group(1)), code) for code in codes]
    return pairs


def test_the_table_lists_each_code_once() -> None:
    codes = [code for _, code in documented_codes()]
    assert codes, f"no error table rows found in {PAGE.name}"
    assert sorted({c for c in codes if codes.count(c) > 1}) == []


def test_the_table_is_the_catalogue() -> None:
    documented = dict((code, status) for status, code in documented_codes())
    catalogue = {code: spec.status for code, spec in CATALOGUE.items()}
    assert set(documented) - set(catalogue) == set(), "documented codes the catalogue does not define"
    assert set(catalogue) - set(documented) == set(), f"catalogue codes missing from {PAGE.name}"
    assert documented == catalogue, "a code is documented with another status than the catalogue's"


def test_every_code_has_one_status_and_both_messages() -> None:
    for code, spec in CATALOGUE.items():
        assert spec.code == code
        assert re.fullmatch(r"[a-z][a-z_]*", code), code
        assert 400 <= spec.status <= 599, (code, spec.status)
        assert spec.message_zh and spec.message_en, code
