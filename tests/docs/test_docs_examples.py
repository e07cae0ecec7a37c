"""Every Python example in docs/*.md is executed, so the docs cannot drift from the code.

See :mod:`support.docs_blocks` for the marker convention. ``run`` blocks execute in a fresh
namespace per page (shared by that page's blocks, in order) inside a temporary working directory;
``pytest`` blocks run through pytester with the page's ``conftest`` block, which exercises the
installed pytest plugin exactly as a user's suite does.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest
from support.docs_blocks import Block
from support.docs_blocks import all_blocks

pytest_plugins = ["pytester"]

BLOCKS = all_blocks()
RUN_PAGES: dict[str, list[Block]] = defaultdict(list)
for _block in BLOCKS:
    if _block.marker == "run":
        RUN_PAGES[_block.page].append(_block)
CONFTESTS = {b.page: b for b in BLOCKS if b.marker == "conftest"}
PYTEST_BLOCKS = [b for b in BLOCKS if b.marker in ("pytest", "pytest: fails")]


def test_every_python_block_is_marked() -> None:
    unmarked = [b.id for b in BLOCKS if b.is_python and b.marker is None]
    assert not unmarked, (
        "these Python blocks are not executed by any test; mark each with <!-- run -->, "
        "<!-- pytest -->, <!-- conftest --> or <!-- no-run: reason -->: " + ", ".join(unmarked)
    )


def test_markers_are_used_correctly() -> None:
    problems = []
    for b in BLOCKS:
        if b.marker is not None and not b.is_python:
            problems.append(f"{b.id}: marker {b.marker!r} on a {b.info or 'plain'} block")
        if b.marker == "no-run" and not (b.reason or "").strip():
            problems.append(f"{b.id}: no-run needs a reason")
    for page, conftests in _group(b for b in BLOCKS if b.marker == "conftest").items():
        if len(conftests) > 1:
            problems.append(f"{page}: more than one conftest block")
    for b in PYTEST_BLOCKS:
        if b.page not in CONFTESTS:
            continue
        if BLOCKS.index(CONFTESTS[b.page]) > BLOCKS.index(b):
            problems.append(f"{b.id}: the page's conftest block comes after this test")
    assert not problems, "\n".join(problems)


def _group(blocks: object) -> dict[str, list[Block]]:
    grouped: dict[str, list[Block]] = defaultdict(list)
    for b in blocks:  # type: ignore[attr-defined]
        grouped[b.page].append(b)
    return grouped


@pytest.mark.parametrize("page", sorted(RUN_PAGES))
def test_run_blocks(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = RUN_PAGES[page]
    monkeypatch.chdir(tmp_path)
    saved_env = dict(os.environ)  # examples may set variables; keep them out of other tests
    namespace: dict[str, object] = {"__name__": f"docs_{Path(page).stem}"}
    try:
        for block in blocks:
            code = compile(block.code, f"docs/{block.id}", "exec")
            try:
                exec(code, namespace)
            except Exception as e:
                raise AssertionError(f"the example at docs/{block.id} failed: {type(e).__name__}: {e}") from e
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        _close_apps(namespace)


def _close_apps(namespace: dict[str, object]) -> None:
    """Close what the examples' extensions opened (pools, SQLite files) before tmp_path goes."""
    from flask import Flask

    for value in namespace.values():
        if isinstance(value, Flask):
            for state in value.extensions.get("alicertify", {}).values():
                state.finalizer()


@pytest.mark.parametrize("block", PYTEST_BLOCKS, ids=[b.id for b in PYTEST_BLOCKS])
def test_pytest_blocks(block: Block, pytester: pytest.Pytester) -> None:
    conftest = CONFTESTS.get(block.page)
    if conftest is not None:
        pytester.makeconftest(conftest.code)
    pytester.makepyfile(**{block.module_name[: -len(".py")]: block.code})
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error")
    outcomes = result.parseoutcomes()
    if block.marker == "pytest":
        assert outcomes.get("passed", 0) >= 1 and not (
            outcomes.get("failed") or outcomes.get("errors") or outcomes.get("skipped")
        ), f"docs/{block.id}: expected every test to pass, got {outcomes}\n" + result.stdout.str()
    else:
        failures = outcomes.get("failed", 0) + outcomes.get("errors", 0)
        assert failures >= 1, f"docs/{block.id}: expected a failure or an error, got {outcomes}"
        expected = _expected_output(block)
        assert expected, f"docs/{block.id}: a 'pytest: fails' block needs a text block with the output"
        # Each documented line must appear, in order (as a substring: pytest indents and prefixes).
        out = result.stdout.lines
        position = 0
        for wanted in expected:
            for index in range(position, len(out)):
                if wanted.strip() in out[index]:
                    position = index + 1
                    break
            else:
                raise AssertionError(
                    f"docs/{block.id}: the documented output line {wanted!r} is not in the output:\n"
                    + result.stdout.str()
                )


def _expected_output(block: Block) -> list[str]:
    index = BLOCKS.index(block)
    if index + 1 < len(BLOCKS):
        following = BLOCKS[index + 1]
        if following.page == block.page and following.info == "text":
            return [line for line in following.code.splitlines() if line.strip()]
    return []
