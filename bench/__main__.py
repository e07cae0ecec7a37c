"""``python -m bench [p1 …] [--tiny] [--no-write] [--baseline PATH]``: run, print, write, exit 1 on a miss.

``--baseline PATH --label TEXT`` writes the run to PATH instead (the page's "before" column, read
from ``bench/baseline.json``): run it from an older checkout with this ``bench/`` copied in.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path

from . import FIGURES
from .common import Figure
from .report import print_table
from .report import render
from .report import write_all
from .report import write_baseline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("figures", nargs="*", metavar="FIGURE", help=f"any of {', '.join(FIGURES)} (all)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the suite runs, not speed")
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave results.json and docs alone"
    )
    parser.add_argument("--baseline", metavar="PATH", help="write the results to PATH (a baseline) only")
    parser.add_argument("--label", default="an earlier checkout", help="what the baseline was run on")
    parser.add_argument(
        "--render", action="store_true", help="rebuild docs/benchmarks.md from results.json; run nothing"
    )
    args = parser.parse_args(argv)
    if args.render:
        render()
        return 0
    keys = [k.lower() for k in args.figures] or list(FIGURES)
    unknown = [k for k in keys if k not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    figures: list[Figure] = []
    failed: list[str] = []
    for key in keys:
        print(f"running {key} …", file=sys.stderr, flush=True)
        module = importlib.import_module(FIGURES[key])
        try:
            figure: Figure = module.run("tiny" if args.tiny else "full")
        except Exception:  # noqa: BLE001 - a broken figure is reported, the others still run
            traceback.print_exc()
            failed.append(key)
            continue
        figures.append(figure)
        print(f"  {key}: {figure.seconds:.1f} s, {'met' if figure.met else 'MISSED'}", file=sys.stderr)
    print_table(figures)
    if args.baseline and not args.tiny:
        write_baseline(figures, Path(args.baseline), args.label)
    elif not args.no_write and not args.tiny:
        write_all(figures)
    if failed:
        print(f"figure(s) that crashed: {', '.join(failed)}", file=sys.stderr)
    return 0 if figures and all(f.met for f in figures) and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
