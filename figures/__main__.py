"""Command line: ``python -m figures list | make NAME [--smoke] [--out DIR] [--quiet] | redraw NAME --out DIR``.

Only argument parsing and validation live here; everything is done by :mod:`figures`
functions. Every argument, the output folder and (for ``redraw``) the saved data are
checked before anything is computed or written. ``make`` runs the figures' units on
``--executor local`` (default; ``--workers N`` processes, else each figure's own
default) or ``--executor ray [--ray-address A]``. ``--no-progress`` is a hidden alias
of ``--quiet``. Exit codes: 0 ok, 2 bad input (unknown figure, bad option, unusable
output folder, no saved data, stored data failing its integrity check), one line on
stderr; 3 environment failure (disk full, unwritable folder, a terminal encoding that
cannot show the output); 130 interrupted (finished units are kept and a rerun resumes).
The codes are those of every command (:mod:`landscape.runtime.exits`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from landscape.runtime.cli import OneLineParser, UsageError, add_quiet_arguments, check_output_dir, finish_parser

from landscape.runtime.executor import add_executor_arguments


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m figures", description="Regenerate the paper's figures and tables.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list registered figures and tables")
    mk = sub.add_parser("make", help="compute (or reuse saved data), save and render figures")
    mk.add_argument("names", nargs="+", metavar="NAME", help="figure names, or 'all'")
    mk.add_argument("--smoke", action="store_true", help="tiny configuration (seconds)")
    mk.add_argument("--out", default=None, help="output folder (default: out/figures)")
    mk.add_argument("--recompute", action="store_true", help="ignore saved data and finished units")
    mk.add_argument("--overwrite", action="store_true",
                    help="write into an --out folder that holds files 'figures make' did not write "
                         "(refused otherwise; only the figures' own file names are replaced)")
    add_quiet_arguments(mk)
    mk.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help='override a configuration entry, e.g. --set trials=3 --set \'sweeps=["T","d"]\'')
    add_executor_arguments(mk, workers_default=None)
    rd = sub.add_parser("redraw", help="render again from saved data")
    rd.add_argument("names", nargs="+", metavar="NAME")
    rd.add_argument("--out", required=True, help="folder holding the saved data")
    rd.add_argument("--smoke", action="store_true")
    return finish_parser(p)


def _version() -> str:
    from landscape.runtime.version import __version__

    return __version__


def _check_saved_data(figures, names, out, smoke: bool) -> None:
    """``redraw``: every named figure must have readable saved data in ``out`` (UsageError otherwise)."""
    out = Path(out)
    if not out.is_dir():
        raise UsageError(f"--out {out} is not a folder holding saved figure data")
    for name in names:
        stem = f"{name}-smoke" if smoke else name
        if not (out / f"{stem}.json").is_file():
            raise UsageError(f"no saved data for {name} in {out} (expected {stem}.json); "
                             f"run 'python -m figures make {name}{' --smoke' if smoke else ''} --out {out}' first")
        try:
            figures.load_data(out, stem)
        except figures.SavedDataError as exc:
            raise UsageError(f"saved data of {name} in {out} is unreadable ({exc}); "
                             "recompute it with 'python -m figures make --recompute'") from None
    check_output_dir(out)


def main(argv: list[str] | None = None) -> int:
    from landscape.runtime.exits import cli_main

    import figures

    return cli_main("python -m figures", _main, argv, input_errors=(figures.SavedDataError,))


def _main(argv: list[str] | None = None) -> int:
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
            print(f"python -m figures: error: --set expects KEY=JSON, got {item!r}", file=sys.stderr)
            return 2
    names = figures.names() if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in figures.REGISTRY]
    if unknown:
        print(f"python -m figures: error: unknown figure(s) {', '.join(unknown)}; run 'python -m figures list'", file=sys.stderr)
        return 2
    # validation step, before any figure is computed or drawn
    try:
        if args.command == "make":
            from landscape.runtime.executor import check_executor_args

            try:
                check_executor_args(args)  # every execution flag, before the output folder exists
            except (ValueError, ImportError) as exc:
                raise UsageError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
            from figures._registry import check_overrides

            for name in names:
                spec = figures.get(name)
                try:
                    check_overrides(name, spec.smoke if args.smoke else spec.paper, overrides)
                except ValueError as exc:
                    raise UsageError(str(exc)) from None
            from landscape.runtime.outguard import claim_out_dir

            out = check_output_dir(figures.DEFAULT_OUT if args.out is None else args.out)
            claim_out_dir(out, "figures make", overwrite=args.overwrite)
        else:
            _check_saved_data(figures, names, args.out, args.smoke)
    except UsageError as exc:
        print(f"python -m figures: error: {exc}", file=sys.stderr)
        return 2
    if args.command == "make":
        return _make(figures, names, args, overrides)
    for name in names:
        files = figures.redraw(name, args.out, smoke=args.smoke)
        print(f"{name}: " + ", ".join(str(f) for f in files))
    return 0


def _make(figures, names, args, overrides) -> int:
    from landscape.runtime.executor import executor_from_args

    try:
        executor = executor_from_args(args)  # validates every execution flag first
        if args.executor == "local" and args.workers is None:
            executor = None  # each figure's own local default (the shallow sweeps' trial chunks in processes)
    except ValueError as exc:
        print(f"python -m figures: error: {exc}", file=sys.stderr)
        return 2
    try:
        for name in names:
            try:
                res = figures.make(name, smoke=args.smoke, out=args.out, progress=not args.quiet,
                                   recompute=args.recompute, overrides=overrides or None, executor=executor)
            except ValueError as exc:
                print(f"python -m figures: error: {exc}", file=sys.stderr)
                return 2
            how = "reused saved data (--recompute computes it again)" if res["source"] == "reused" else "computed"
            print(f"{name}: {how}, {res['seconds']:.1f} s -> " + ", ".join(str(f) for f in res["files"]))
    except KeyboardInterrupt:
        print("interrupted: finished units are kept; the same command resumes", file=sys.stderr)
        return 130
    finally:
        if executor is not None:
            executor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
