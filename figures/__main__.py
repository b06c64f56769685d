"""Command line: ``python -m figures list | make NAME [--smoke] [--out DIR] | redraw NAME --out DIR``.

``make`` runs the figures' units on ``--executor local`` (default; ``--workers N``
processes, else each figure's own default) or ``--executor ray [--ray-address A]``.
Only argument parsing lives here; everything is done by :mod:`figures` functions.
Exit codes: 0 ok, 2 bad input (unknown figure, bad option), 130 interrupted (finished
units are kept and a rerun resumes).
"""
from __future__ import annotations

import argparse
import json
import sys

from landscape.executor import add_executor_arguments


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m figures", description="Regenerate the paper's figures and tables.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list registered figures and tables")
    mk = sub.add_parser("make", help="compute (or reuse saved data), save and render figures")
    mk.add_argument("names", nargs="+", metavar="NAME", help="figure names, or 'all'")
    mk.add_argument("--smoke", action="store_true", help="tiny configuration (seconds)")
    mk.add_argument("--out", default=None, help="output folder (default: out/figures)")
    mk.add_argument("--recompute", action="store_true", help="ignore saved data and finished units")
    mk.add_argument("--no-progress", action="store_true", help="hide progress bars")
    mk.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help='override a configuration entry, e.g. --set trials=3 --set \'sweeps=["T","d"]\'')
    add_executor_arguments(mk, workers_default=None)
    rd = sub.add_parser("redraw", help="render again from saved data")
    rd.add_argument("names", nargs="+", metavar="NAME")
    rd.add_argument("--out", required=True, help="folder holding the saved data")
    rd.add_argument("--smoke", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import figures

    if args.command == "list":
        for name in figures.names():
            spec = figures.get(name)
            print(f"{name:18s} {spec.kind:6s} {spec.description}")
        return 0
    overrides = {}
    for item in getattr(args, "set", []):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            overrides[key] = json.loads(value)
        except ValueError:
            print(f"error: --set expects KEY=JSON, got {item!r}", file=sys.stderr)
            return 2
    names = figures.names() if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in figures.REGISTRY]
    if unknown:
        print(f"error: unknown figure(s) {', '.join(unknown)}; run 'python -m figures list'", file=sys.stderr)
        return 2
    if args.command == "make":
        return _make(figures, names, args, overrides)
    for name in names:
        files = figures.redraw(name, args.out, smoke=args.smoke)
        print(f"{name}: " + ", ".join(str(f) for f in files))
    return 0


def _make(figures, names, args, overrides) -> int:
    from landscape.executor import executor_from_args

    try:
        executor = executor_from_args(args)  # validates every execution flag first
        if args.executor == "local" and args.workers is None:
            executor = None  # each figure's own local default (the shallow sweeps' trial chunks in processes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        for name in names:
            try:
                res = figures.make(name, smoke=args.smoke, out=args.out, progress=not args.no_progress,
                                   recompute=args.recompute, overrides=overrides or None, executor=executor)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"{name}: {res['seconds']:.1f} s -> " + ", ".join(str(f) for f in res["files"]))
    except KeyboardInterrupt:
        print("interrupted: finished units are kept; the same command resumes", file=sys.stderr)
        return 130
    finally:
        if executor is not None:
            executor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
