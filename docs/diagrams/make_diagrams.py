"""Draw the docs' diagrams as SVG from the text sources kept beside this script.

    python docs/diagrams/make_diagrams.py            # rewrite docs/_static/*.svg
    python docs/diagrams/make_diagrams.py --check    # exit 1 if a committed SVG is out of date

Plain Python and the standard library only: no Graphviz or other binary to install, and the
output is byte-for-byte deterministic, so a test can compare the committed SVGs with what this
script would write. Each source file documents its own small syntax in its header comment.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
STATIC = HERE.parent / "_static"

FONT = "ui-sans-serif, system-ui, -apple-system, 'Segoe UI', 'PingFang SC', 'Noto Sans CJK SC', sans-serif"
MONO = "ui-monospace, 'SFMono-Regular', Menlo, Consolas, 'Noto Sans Mono CJK SC', monospace"
INK = "#1f2328"
MUTED = "#57606a"
LINE = "#57606a"
BOX = "#f6f8fa"
ACCENT = "#0969da"
NOTE = "#fff8c5"
TERMINAL = "#ddf4ff"


def text_width(text: str, size: float) -> float:
    """A conservative width estimate: East Asian wide characters are one em, others ~0.6 em."""
    width = 0.0
    for ch in text:
        width += size if unicodedata.east_asian_width(ch) in "WF" else size * 0.6
    return width


def fmt(value: float) -> str:
    """Numbers as short, stable text (no ``-0``, no float noise)."""
    rounded = round(value, 1)
    if rounded == 0:
        return "0"
    return f"{rounded:.1f}".rstrip("0").rstrip(".")


class Svg:
    """A minimal SVG writer: elements are appended as text, in drawing order."""

    def __init__(self, width: float, height: float, title: str) -> None:
        self.width = width
        self.height = height
        self.title = title
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def rect(
        self, x: float, y: float, w: float, h: float, *, fill: str, stroke: str = LINE, rx: float = 6
    ) -> None:
        self.add(
            f'<rect x="{fmt(x)}" y="{fmt(y)}" width="{fmt(w)}" height="{fmt(h)}" rx="{fmt(rx)}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.2"/>'
        )

    def line(
        self, x1: float, y1: float, x2: float, y2: float, *, dashed: bool = False, color: str = LINE
    ) -> None:
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        self.add(
            f'<line x1="{fmt(x1)}" y1="{fmt(y1)}" x2="{fmt(x2)}" y2="{fmt(y2)}" '
            f'stroke="{color}" stroke-width="1.4"{dash}/>'
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float = 12,
        anchor: str = "middle",
        color: str = INK,
        weight: str = "normal",
        family: str = FONT,
    ) -> None:
        self.add(
            f'<text x="{fmt(x)}" y="{fmt(y)}" font-family="{escape(family, {chr(39): "&apos;"})}" '
            f'font-size="{fmt(size)}" font-weight="{weight}" text-anchor="{anchor}" fill="{color}">'
            f"{escape(text)}</text>"
        )

    def arrowhead(self, x: float, y: float, angle: float, *, color: str = LINE) -> None:
        """A filled triangle with its tip at (x, y), pointing along ``angle`` (radians)."""
        length, half = 10.0, 4.5
        bx, by = x - length * math.cos(angle), y - length * math.sin(angle)
        nx, ny = -math.sin(angle) * half, math.cos(angle) * half
        points = f"{fmt(x)},{fmt(y)} {fmt(bx + nx)},{fmt(by + ny)} {fmt(bx - nx)},{fmt(by - ny)}"
        self.add(f'<polygon points="{points}" fill="{color}"/>')

    def render(self) -> str:
        head = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{fmt(self.width)}" height="{fmt(self.height)}" '
            f'viewBox="0 0 {fmt(self.width)} {fmt(self.height)}" '
            f'role="img" aria-label="{escape(self.title)}">\n'
            f"<title>{escape(self.title)}</title>\n"
            f'<rect x="0" y="0" width="{fmt(self.width)}" height="{fmt(self.height)}" fill="#ffffff"/>\n'
        )
        return head + "\n".join(self.parts) + "\n</svg>\n"


def source_lines(text: str) -> list[tuple[int, str]]:
    """Non-blank, non-comment lines with their line numbers (for error messages)."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append((number, line))
    return lines


class SourceError(ValueError):
    def __init__(self, name: str, number: int, problem: str) -> None:
        super().__init__(f"{name}:{number}: {problem}")


# -- sequence diagram --------------------------------------------------------------------------


@dataclass
class Participant:
    key: str
    lines: list[str]


@dataclass
class Step:
    kind: str  # "message", "answer", "note", "section"
    text: list[str]
    source: str = ""
    target: str = ""


@dataclass
class Sequence:
    participants: list[Participant] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


_MESSAGE = re.compile(r"^(\w+)\s*(-->|->)\s*(\w+)\s*:\s*(.+)$")


def parse_sequence(text: str, name: str = "flow.txt") -> Sequence:
    seq = Sequence()
    known: set[str] = set()
    for number, line in source_lines(text):
        if line.startswith("participant "):
            parts = [p.strip() for p in line[len("participant ") :].split("|")]
            seq.participants.append(Participant(parts[0], parts[1:] or [parts[0]]))
            known.add(parts[0])
        elif line.startswith("section "):
            seq.steps.append(Step("section", [line[len("section ") :].strip()]))
        elif line.startswith("note "):
            key, _, note = line[len("note ") :].partition(":")
            if key.strip() not in known:
                raise SourceError(name, number, f"unknown participant {key.strip()!r}")
            seq.steps.append(Step("note", note.strip().split("\\n"), key.strip()))
        elif match := _MESSAGE.match(line):
            source, arrow, target, label = match.groups()
            for key in (source, target):
                if key not in known:
                    raise SourceError(name, number, f"unknown participant {key!r}")
            kind = "answer" if arrow == "-->" else "message"
            seq.steps.append(Step(kind, label.strip().split("\\n"), source, target))
        else:
            raise SourceError(name, number, f"cannot read {line!r}")
    return seq


def draw_sequence(seq: Sequence, title: str) -> str:
    gap, margin, head_h = 380.0, 130.0, 52.0
    xs = {p.key: margin + i * gap for i, p in enumerate(seq.participants)}
    width = margin * 2 + gap * (len(seq.participants) - 1)

    # First pass: the y of every step, so the lifelines can be drawn before the steps.
    y = 20 + head_h + 24
    placed: list[tuple[Step, float]] = []
    for step in seq.steps:
        if step.kind == "section":
            y += 14
            placed.append((step, y))
            y += 30
        elif step.kind == "note":
            placed.append((step, y))
            y += 18 * len(step.text) + 20
        else:
            y += 16 * len(step.text)
            placed.append((step, y))
            y += 22
    height = y + 10

    svg = Svg(width, height, title)
    for step, sy in placed:
        if step.kind == "section":
            svg.rect(8, sy - 4, width - 16, 24, fill="#eef1f4", stroke="#eef1f4", rx=4)
            svg.text(16, sy + 12, step.text[0], size=12.5, anchor="start", color=MUTED, weight="bold")
    for p in seq.participants:
        x = xs[p.key]
        svg.line(x, 20 + head_h, x, height - 8, dashed=True, color="#afb8c1")
    for p in seq.participants:
        x = xs[p.key]
        w = max(text_width(line, 13) for line in p.lines) + 28
        svg.rect(x - w / 2, 20, w, head_h, fill=BOX)
        for i, line in enumerate(p.lines):
            svg.text(
                x, 20 + 21 + i * 18, line, size=13 if i == 0 else 12, weight="bold" if i == 0 else "normal"
            )

    for step, sy in placed:
        if step.kind == "note":
            x = xs[step.source]
            w = max(text_width(line, 12) for line in step.text) + 20
            h = 18 * len(step.text) + 8
            svg.rect(x - w / 2, sy, w, h, fill=NOTE, stroke="#d4a72c", rx=3)
            for i, line in enumerate(step.text):
                svg.text(x, sy + 17 + 18 * i, line, size=12)
        elif step.kind in ("message", "answer"):
            x1, x2 = xs[step.source], xs[step.target]
            direction = 1 if x2 > x1 else -1
            color = ACCENT if step.kind == "message" else LINE
            svg.line(x1, sy, x2 - direction * 2, sy, dashed=step.kind == "answer", color=color)
            svg.arrowhead(x2, sy, 0 if direction > 0 else math.pi, color=color)
            mid = (x1 + x2) / 2
            for i, line in enumerate(step.text):
                offset = (len(step.text) - i) * 16 - 4
                svg.text(mid, sy - offset, line, size=12, family=MONO)
    return svg.render()


# -- state diagram ----------------------------------------------------------------------------


@dataclass
class State:
    name: str
    x: float
    y: float
    terminal: bool
    w: float = 0.0
    h: float = 34.0


@dataclass
class Edge:
    source: str
    target: str
    label: list[str]
    bend: float = 0.0
    dx: float = 0.0
    dy: float = 0.0


_STATE = re.compile(r"^(state|terminal)\s+(\w+)\s*@\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)$")
_EDGE = re.compile(r"^edge\s+(\w+)\s*->\s*(\w+)\s*:\s*(.*?)((?:\s*\[\w+=-?\d+(?:\.\d+)?\])*)$")
_OPTION = re.compile(r"\[(\w+)=(-?\d+(?:\.\d+)?)\]")


def parse_states(text: str, name: str = "status.txt") -> tuple[dict[str, State], list[Edge]]:
    states: dict[str, State] = {}
    edges: list[Edge] = []
    for number, line in source_lines(text):
        if match := _STATE.match(line):
            kind, state, x, y = match.groups()
            states[state] = State(state, float(x), float(y), kind == "terminal")
            states[state].w = text_width(state, 14) + 36
        elif match := _EDGE.match(line):
            source, target, label, options = match.groups()
            for key in (source, target):
                if key not in states:
                    raise SourceError(name, number, f"unknown state {key!r} (declare states before edges)")
            edge = Edge(source, target, label.strip().split("\\n"))
            for option, value in _OPTION.findall(options):
                if option not in ("bend", "dx", "dy"):
                    raise SourceError(name, number, f"unknown option {option!r}")
                setattr(edge, option, float(value))
            edges.append(edge)
        else:
            raise SourceError(name, number, f"cannot read {line!r}")
    return states, edges


def box_exit(state: State, towards: tuple[float, float]) -> tuple[float, float]:
    """Where the ray from the box centre towards a point leaves the box (plus a small gap)."""
    dx, dy = towards[0] - state.x, towards[1] - state.y
    if dx == 0 and dy == 0:
        return state.x, state.y
    half_w, half_h = state.w / 2 + 3, state.h / 2 + 3
    scale = min(half_w / abs(dx) if dx else math.inf, half_h / abs(dy) if dy else math.inf)
    return state.x + dx * scale, state.y + dy * scale


def draw_states(states: dict[str, State], edges: list[Edge], title: str) -> str:
    width = max(s.x + s.w / 2 for s in states.values()) + 30
    height = max(s.y + s.h / 2 for s in states.values()) + 30
    svg = Svg(width, height, title)
    labels: list[Callable[[], None]] = []

    for edge in edges:
        a, b = states[edge.source], states[edge.target]
        mx, my = (a.x + b.x) / 2, (a.y + b.y) / 2
        length = math.hypot(b.x - a.x, b.y - a.y)
        nx, ny = (b.y - a.y) / length, -(b.x - a.x) / length
        cx, cy = mx + nx * edge.bend, my + ny * edge.bend
        start = box_exit(a, (cx, cy))
        end = box_exit(b, (cx, cy))
        if edge.bend:
            svg.add(
                f'<path d="M {fmt(start[0])} {fmt(start[1])} '
                f'Q {fmt(cx)} {fmt(cy)} {fmt(end[0])} {fmt(end[1])}" '
                f'fill="none" stroke="{LINE}" stroke-width="1.4"/>'
            )
            angle = math.atan2(end[1] - cy, end[0] - cx)
            lx, ly = 0.25 * start[0] + 0.5 * cx + 0.25 * end[0], 0.25 * start[1] + 0.5 * cy + 0.25 * end[1]
        else:
            angle = math.atan2(end[1] - start[1], end[0] - start[0])
            tip_x, tip_y = end[0] - 2 * math.cos(angle), end[1] - 2 * math.sin(angle)
            svg.line(start[0], start[1], tip_x, tip_y)
            lx, ly = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        svg.arrowhead(end[0], end[1], angle)

        def label(edge: Edge = edge, lx: float = lx + edge.dx, ly: float = ly + edge.dy) -> None:
            w = max(text_width(line, 12) for line in edge.label) + 10
            h = 16 * len(edge.label) + 4
            svg.rect(lx - w / 2, ly - h / 2, w, h, fill="#ffffff", stroke="#ffffff", rx=3)
            for i, line in enumerate(edge.label):
                svg.text(lx, ly - h / 2 + 14 + 16 * i, line, size=12, color=MUTED)

        labels.append(label)

    for draw_label in labels:  # labels above every line, so no line crosses a label's text
        draw_label()
    for state in states.values():
        left, top = state.x - state.w / 2, state.y - state.h / 2
        svg.rect(left, top, state.w, state.h, fill=TERMINAL if state.terminal else BOX, rx=8)
        if state.terminal:
            svg.rect(left + 3, top + 3, state.w - 6, state.h - 6, fill="none", stroke=LINE, rx=6)
        svg.text(state.x, state.y + 5, state.name, size=14, family=MONO, weight="bold")
    return svg.render()


# -- entry point ------------------------------------------------------------------------------

DIAGRAMS: dict[str, tuple[str, Callable[[str], str]]] = {
    "flow.svg": (
        "flow.txt",
        lambda text: draw_sequence(
            parse_sequence(text), "Sequence: mini-program, Flask app with flask_alicertify, Alibaba Cloud"
        ),
    ),
    "status.svg": (
        "status.txt",
        lambda text: draw_states(*parse_states(text), "Record statuses and the transitions between them"),
    ),
}


def render_all(source_dir: Path = HERE) -> dict[str, str]:
    """Every diagram's SVG text, keyed by output file name."""
    return {
        output: draw((source_dir / source).read_text(encoding="utf-8"))
        for output, (source, draw) in DIAGRAMS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report out-of-date SVGs")
    parser.add_argument("--out", type=Path, default=STATIC, help="output directory (default docs/_static)")
    args = parser.parse_args(argv)
    stale = []
    for name, svg in render_all().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != svg:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(svg, encoding="utf-8", newline="\n")
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python docs/diagrams/make_diagrams.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
