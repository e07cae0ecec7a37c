"""Keep the Chinese pages in step with the English ones they translate.

Each page in ``docs/zh_CN/`` (and ``README.zh-CN.md``) starts with a line naming the English page
it translates and a fingerprint of that page's text at the time::

    <!-- translated from flow.md @ sha256:0123456789ab -->

``tests/docs/test_docs_i18n.py`` fails when the English text no longer has that fingerprint.
After updating the translation, record the new fingerprint::

    python docs/zh_CN/sync.py flow.md          # shows the English diff, then records it
    python docs/zh_CN/sync.py --diff flow.md   # only shows what changed in English
    python docs/zh_CN/sync.py --check          # lists the pages that are out of step

The diff is found by looking for the recorded fingerprint in the English page's git history
(read-only). Recording refuses when the English text changed but the translation is the same
as in the last commit: a fingerprint is a claim that the translation was updated. For English
edits that need no change in Chinese (a reflowed line, a typo), pass ``--no-translation-change``.

The fingerprint covers what the translation depends on: the English page with the files it
``{include}``s, minus any part the Chinese page itself includes verbatim (the generated figure
tables of the benchmark and reliability pages, the changelog), which is always current.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ZH = Path(__file__).resolve().parent
DOCS = ZH.parent
ROOT = DOCS.parent
HEADER = re.compile(r"^<!-- translated from (?P<page>\S+) @ sha256:(?P<hash>[0-9a-f]{12}) -->$")
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\{include\}\s+(?P<path>\S+)\s*$")
_OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")

#: Reads a file by its path relative to the repository root (the working tree, or a commit).
Reader = Callable[[str], str]


def pairs() -> dict[str, tuple[Path, Path]]:
    """English page name -> (English file, Chinese file), for every page that needs a translation."""
    found = {p.name: (p, ZH / p.name) for p in sorted(DOCS.glob("*.md"))}
    found["README.md"] = (ROOT / "README.md", ROOT / "README.zh-CN.md")
    return found


def read_worktree(path: str) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


def _relative(path: Path) -> str:
    """The path relative to the repository root (absolute when outside it: a test's copy)."""
    path = path.resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()


def _includes(text: str) -> list[tuple[int, int, str, dict[str, str]]]:
    """The ``{include}`` directives of a page: (first line, line after the end, path, options)."""
    lines = text.splitlines()
    found = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, options = i, {}
        i += 1
        while i < len(lines) and (option := _OPTION.match(lines[i])):
            options[option.group("key")] = option.group("value").strip().strip("\"'")
            i += 1
        while i < len(lines) and not lines[i].startswith(match.group("fence")):
            i += 1
        found.append((start, i + 1, match.group("path"), options))
        i += 1
    return found


def _slice(text: str, options: dict[str, str]) -> str:
    """The part of a file an ``{include}`` with these options shows, as MyST selects it."""
    lines = text.splitlines(keepends=True)
    start = int(options.get("start-line", 0))
    end = int(options["end-line"]) if "end-line" in options else None
    text = "".join(lines[start:end])
    if after := options.get("start-after"):
        if after not in text:
            raise ValueError(f"start-after text not found: {after!r}")
        text = text.split(after, 1)[1]
    if before := options.get("end-before"):
        if before not in text:
            raise ValueError(f"end-before text not found: {before!r}")
        text = text.split(before, 1)[0]
    return text


def source_text(english: Path, read: Reader = read_worktree) -> str:
    """The English page with each file it includes written out in place."""
    text = read(_relative(english))
    lines = text.splitlines(keepends=True)
    for start, end, path, options in reversed(_includes(text)):
        included = _slice(read(_relative(english.parent / path)), options)
        lines[start:end] = [included]
    return "".join(lines)


def tracked_text(english: Path, chinese: Path, read: Reader = read_worktree) -> str:
    """What the translation depends on: the source text minus what the Chinese page includes verbatim."""
    text = source_text(english, read)
    if chinese.is_file():
        page = chinese.read_text(encoding="utf-8")
        for _start, _end, path, options in _includes(page):
            target = (chinese.parent / path).resolve()
            if target.parent not in (DOCS, ROOT, english.parent.resolve()):
                continue
            verbatim = _slice(read(_relative(target)), options)
            if verbatim.strip():
                text = text.replace(verbatim, "", 1)
    return text


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def recorded(chinese: Path) -> tuple[str, str] | None:
    """(English page name, fingerprint) from the Chinese page's first line, or None."""
    if not chinese.is_file():
        return None
    first = chinese.read_text(encoding="utf-8").split("\n", 1)[0]
    match = HEADER.match(first.strip())
    return (match.group("page"), match.group("hash")) if match else None


def stale(checked: dict[str, tuple[Path, Path]] | None = None) -> dict[str, str]:
    """Page name -> why its translation is out of step, for every page (of ``checked``) that is."""
    problems = {}
    for name, (english, chinese) in (pairs() if checked is None else checked).items():
        if not chinese.is_file():
            problems[name] = f"{_relative(chinese)} does not exist: translate {_relative(english)}"
            continue
        header = recorded(chinese)
        if header is None or header[0] != name:
            problems[name] = f"{_relative(chinese)} lacks the first line '<!-- translated from {name} @ …'"
            continue
        try:
            current = fingerprint(tracked_text(english, chinese))
        except ValueError as e:  # an {include} whose start-after/end-before text is gone
            problems[name] = (
                f"{_relative(chinese)} includes part of {_relative(english)} that has changed: {e}"
            )
            continue
        if header[1] != current:
            problems[name] = f"{_relative(english)} changed since {_relative(chinese)} was translated"
    return problems


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout


def previous_text(english: Path, chinese: Path, wanted: str) -> str | None:
    """The English text that had the recorded fingerprint, from the git history, if it is there."""
    paths = {_relative(english)}
    for _start, _end, path, _options in _includes(read_worktree(_relative(english))):
        paths.add(_relative(english.parent / path))
    log = _git("log", "--format=%H", "-n", "200", "--", *sorted(paths))
    for commit in (log or "").split():

        def read(path: str, commit: str = commit) -> str:
            shown = _git("show", f"{commit}:{path}")
            if shown is None:
                raise FileNotFoundError(path)
            return shown

        try:
            text = tracked_text(english, chinese, read)
        except (FileNotFoundError, ValueError):
            continue
        if fingerprint(text) == wanted:
            return text
    return None


def _translation_untouched(chinese: Path) -> bool:
    """True when the Chinese page (below its first line) is as in the last commit."""
    committed = _git("show", f"HEAD:{_relative(chinese)}")
    if committed is None:
        return False
    body = chinese.read_text(encoding="utf-8").split("\n", 1)[-1]
    return committed.split("\n", 1)[-1] == body


def show_diff(name: str) -> bool:
    """Print what changed in English since the translation; False when nothing did."""
    english, chinese = pairs()[name]
    now = tracked_text(english, chinese)
    header = recorded(chinese)
    if header is not None and header[1] == fingerprint(now):
        print(f"{name}: the translation is up to date")
        return False
    before = previous_text(english, chinese, header[1]) if header else None
    if before is None:
        print(f"{name}: the English version it was translated from is not in the git history;")
        print(f"compare {_relative(chinese)} with {_relative(english)} by hand.")
    else:
        print(f"{name}: what changed in English since the translation:")
        diff = difflib.unified_diff(
            before.splitlines(keepends=True),
            now.splitlines(keepends=True),
            fromfile=f"{name} (translated)",
            tofile=f"{name} (now)",
        )
        sys.stdout.writelines(diff)
    return True


def record(name: str, *, no_translation_change: bool = False) -> int:
    english, chinese = pairs()[name]
    if not chinese.is_file():
        print(f"{_relative(chinese)} does not exist: write the translation first", file=sys.stderr)
        return 1
    if not show_diff(name) and recorded(chinese) is not None:
        return 0
    if recorded(chinese) is not None and _translation_untouched(chinese) and not no_translation_change:
        print(
            f"\nnot recorded: {_relative(chinese)} is unchanged since the last commit. Update the "
            "translation for the diff above; if the English change needs none, pass --no-translation-change.",
            file=sys.stderr,
        )
        return 1
    header = f"<!-- translated from {name} @ sha256:{fingerprint(tracked_text(english, chinese))} -->"
    text = chinese.read_text(encoding="utf-8")
    if recorded(chinese) is not None:
        text = text.split("\n", 1)[-1]
    chinese.write_text(header + "\n" + text, encoding="utf-8")
    print(f"recorded: {_relative(chinese)} translates {name} as it is now")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Keep docs/zh_CN in step with the English pages.")
    parser.add_argument("pages", nargs="*", help="English page names, e.g. flow.md or README.md")
    parser.add_argument("--diff", action="store_true", help="show the English changes, record nothing")
    parser.add_argument("--check", action="store_true", help="list the pages whose translation is stale")
    parser.add_argument(
        "--no-translation-change",
        action="store_true",
        help="record even though the translation did not change (the English change needs none)",
    )
    args = parser.parse_args(argv)
    if args.check or not args.pages:
        problems = stale()
        for name, why in problems.items():
            print(f"{name}: {why}")
        return 1 if problems else 0
    args.pages = [Path(p).name for p in args.pages]  # docs/flow.md and flow.md alike
    unknown = [p for p in args.pages if p not in pairs()]
    if unknown:
        parser.error(f"not an English docs page: {', '.join(unknown)}")
    if args.diff:
        for name in args.pages:
            show_diff(name)
        return 0
    status = 0
    for name in args.pages:
        status |= record(name, no_translation_change=args.no_translation_change)
    return status


if __name__ == "__main__":
    sys.exit(main())
