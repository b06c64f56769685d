"""Command line: ``python -m theory [--only ID ...] [--seed N] [--scale quick|paper] [--out PATH] [--quiet]``
and ``python -m theory atlas [--smoke] [--out DIR] [--seed S] [--quiet] [--executor ...]``.

Argument parsing and validation only (every argument is checked, and the ``--out``
location too, before any check runs); the work is done by :func:`theory.run` and
:func:`theory.atlas`. ``--json`` and ``--no-progress`` are kept as hidden aliases of
``--out`` and ``--quiet``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from landscape.runtime.cli import (UsageError, add_out_argument, add_quiet_arguments, check_output_file, finish_parser,
                                   nonneg_int, positive_int)
from landscape.runtime.exits import EXIT_DISAGREE, EXIT_OK, EXIT_USAGE, cli_main
from landscape.runtime.version import __version__
from landscape.runtime.atomic import atomic_write_text

from ._registry import DEFAULT_SCALE, REGISTRY, SCALES, UnknownCheckError, get_check, run

EXIT_FAILED = EXIT_DISAGREE


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def resolve_ids(tokens):
    """Map ``--only`` tokens to registry ids; an unquoted id split at its spaces
    (``--only Thm 3.1``) is re-joined greedily."""
    out, i = [], 0
    longest = max(len(c.id.split()) for c in REGISTRY)  # 'Remark 3.2 / Cor 2 / Cor 4': 8 tokens
    while i < len(tokens):
        for j in range(min(len(tokens), i + longest), i, -1):
            try:
                out.append(get_check(" ".join(tokens[i:j])).id)
            except UnknownCheckError:
                continue
            i = j
            break
        else:
            get_check(tokens[i])  # raises with the list of known ids
    return out


def build_parser() -> argparse.ArgumentParser:
    width = max(len(c.id) for c in REGISTRY)
    ids = "\n".join(f"  {c.id:<{width}}  {c.title}" for c in REGISTRY)
    p = _Parser(
        prog="python -m theory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Check every statement of THEORY.md numerically (paper: 'Provable Meta-Learning with "
            "Low-Rank Adaptations').\n\n"
            "Prints one row per statement: the prediction, the measurement and PASS/FAIL. "
            "Tolerances are derived from the mathematics (4 standard errors for Monte-Carlo "
            "means, SVD/eigenvalue error bounds for ranks and zeros, residual bounds at "
            "numerically found points, ball arithmetic for the F.2 certificate). Rows whose id "
            "contains 'control' are negative controls: a hypothesis is violated on purpose and "
            "the row passes when the conclusion fails as predicted."
        ),
        epilog=(
            "exit status: 0 all checks pass, 1 a check failed, 2 bad arguments, 3 environment failure "
            "(disk full, unwritable folder, terminal encoding)\n\n"
            "check ids (case and spaces are ignored; Lemmas 3-7, Cor 5-6 and eq. (35) are cases of "
            "'Thm 3.4'):\n" + ids + "\n\nsubcommand: 'python -m theory atlas --help' (where the landscape "
            "theorems hold over a (d, k, T) grid)"
        ),
    )
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these checks")
    p.add_argument("--seed", type=nonneg_int, default=0, help="master seed, an integer >= 0 (default 0)")
    p.add_argument(
        "--scale",
        choices=SCALES,
        default=DEFAULT_SCALE,
        help=f"problem sizes: 'quick' (tests) or 'paper' (THEORY.md sizes); default {DEFAULT_SCALE}",
    )
    add_out_argument(p, "also write the full results as JSON to this file")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case of every check")
    add_quiet_arguments(p)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return finish_parser(p)


ATLAS_DEFAULT_OUT = Path("theory-atlas")


def build_atlas_parser() -> argparse.ArgumentParser:
    from landscape.runtime.executor import add_executor_arguments

    p = _Parser(
        prog="python -m theory atlas",
        description=(
            "Sweep (d, k, T) over d/k = 1..4, T = 2..6 (several random instances per cell) and measure, "
            "with the landscape tools, non-uniqueness of the global minimum (Thm 3.3), spurious local "
            "minima and their frequency from random starts (App F.2), the strict-saddle property "
            "(Thm 3.4) and how often the paper's gradient descent reaches a global minimum. Writes "
            "atlas.json, one heat map per property and SUMMARY.md into --out; each cell is stored under "
            "--out/cells as soon as it is done, so a run resumes where it stopped."
        ),
        epilog="exit status: 0 done, 1 a measurement contradicts a theorem inside its hypotheses, 2 bad arguments "
               "or a stored cell that fails its integrity check, 3 environment failure (disk full, ...)",
    )
    p.add_argument("--smoke", action="store_true", help="tiny grid (k=1, d/k in 1..3, T in 2..3; seconds)")
    p.add_argument("--out", type=Path, default=ATLAS_DEFAULT_OUT, metavar="DIR",
                   help=f"output folder (default ./{ATLAS_DEFAULT_OUT})")
    p.add_argument("--seed", type=int, default=0, help="base seed of the instances (default 0)")
    p.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an --out folder holding files 'theory atlas' did not write (refused otherwise)")
    p.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)  # accepted, the default
    p.add_argument("--starts", type=positive_int, default=None, metavar="N",
                   help="random starts per instance of the grid (default 100; half as many more go to "
                        "Levenberg-Marquardt); fewer make every count a weaker lower bound")
    p.add_argument("--effort-sweep", metavar="D,K,T", default=None,
                   help="instead of the grid: the counts of cell (D, K, T) (1 <= K < D, T >= 2) against the "
                        "number of starts per instance (--sweep-starts), written to DIR/effort-sweep-dD-kK-tT.json")
    p.add_argument("--sweep-starts", metavar="N,N,...", default="12,25,50,100,200",
                   help="starts per instance of --effort-sweep (default 12,25,50,100,200)")
    p.add_argument("--sweep-instances", type=int, default=4, metavar="N",
                   help="instances of the --effort-sweep cell (default 4, as the atlas)")
    add_executor_arguments(p)
    return finish_parser(p)


def atlas_main(argv) -> int:
    from landscape.runtime.store import ConfigMismatch
    from landscape.runtime.executor import executor_from_args

    from ._atlas import atlas, contradictions

    args = build_atlas_parser().parse_args(argv)
    err = None
    sweep = None
    if args.effort_sweep is not None:
        try:
            sweep = tuple(int(x) for x in args.effort_sweep.split(","))
            starts = tuple(int(x) for x in args.sweep_starts.split(","))
            if len(sweep) != 3 or min(sweep) < 1 or sweep[2] < 2 or not starts or min(starts) < 1:
                raise ValueError
        except ValueError:
            err = (f"--effort-sweep needs D,K,T (positive integers, T >= 2) and --sweep-starts positive integers, "
                   f"got {args.effort_sweep!r} and {args.sweep_starts!r}")
        else:
            if args.sweep_instances < 1:
                err = f"--sweep-instances must be >= 1, got {args.sweep_instances}"
            elif sweep[1] >= sweep[0]:
                err = f"--effort-sweep: the rank K = {sweep[1]} must be below D = {sweep[0]} (1 <= K < D)"
    if err is None and args.seed < 0:
        err = f"--seed must be >= 0, got {args.seed}"
    elif args.out.exists() and not args.out.is_dir():
        err = f"--out {args.out} exists and is not a folder"
    else:
        from landscape.runtime.outguard import claim_out_dir

        try:
            claim_out_dir(args.out, "theory atlas", overwrite=args.overwrite)
        except UsageError as exc:
            err = str(exc)
    if err is None:
        try:
            executor = executor_from_args(args)
        except (ValueError, ImportError) as exc:
            err = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if err is None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            if not os.access(args.out, os.W_OK):
                raise PermissionError("not writable")
        except OSError as exc:
            err = f"cannot write {args.out}: {getattr(exc, 'strerror', None) or exc}"
    if err is not None:
        sys.stderr.write(f"python -m theory atlas: error: {err}\n")
        return EXIT_USAGE
    if sweep is not None:
        from ._atlas_effort import effort_sweep

        executor.close()
        d, k, T = sweep
        res = effort_sweep(d, k, T, seed=args.seed, instances=args.sweep_instances, starts=starts)
        path = args.out / f"effort-sweep-d{d}-k{k}-T{T}.json"
        atomic_write_text(path, json.dumps(res, indent=1) + "\n")
        for row in res["rows"]:
            print(f"starts {row['starts']:>4}: spurious instances {row['spurious'][0]}/{row['spurious'][1]}, "
                  f"distinct spurious classes {row['spurious_classes'][0]}, certified "
                  f"{row['spurious_certified'][0]}, second minimisers {row['second_minimisers_search'][0]}")
        from ._atlas_effort import effort_markdown

        sweeps = [json.loads(f.read_text()) for f in sorted(args.out.glob("effort-sweep-d*-k*-T*.json"))]
        atomic_write_text(args.out / "EFFORT.md", effort_markdown(
            [s for s in sweeps if s.get("format") == "loraml-atlas-effort-sweep" and s.get("nested")]) + "\n")
        print(f"counts stopped growing at: {res['stopped_growing_at']} starts; wrote {path} and EFFORT.md")
        return EXIT_OK
    try:
        config = None
        if args.starts is not None:
            from dataclasses import replace as _replace

            from ._atlas import FULL, SMOKE

            config = _replace(SMOKE if args.smoke else FULL, starts=args.starts, lm_starts=max(1, args.starts // 2))
        result = atlas(smoke=args.smoke, config=config, seed=args.seed, out=args.out, executor=executor,
                       progress=not args.quiet)
    except ConfigMismatch as exc:
        sys.stderr.write(f"python -m theory atlas: error: {exc}\n")
        return EXIT_USAGE
    finally:
        executor.close()
    for f in result["findings"]:
        print(f"{f['theorem']:<36} {f['property']:<19} {f['region']:<44} {f['count']:>4}/{f['trials']:<4}")
    bad = contradictions(result["cells"])
    for b in bad:
        print(f"CONTRADICTION: {b}")
    print(f"atlas: {len(result['cells'])} cells, {result['cell_seconds']:.0f} s of cell time; wrote {args.out}")
    return EXIT_FAILED if bad else EXIT_OK


def main(argv=None) -> int:
    """Entry point; returns the exit status (landscape.runtime.exits: 0, 1, 2, 3 or 130)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "atlas":
        return cli_main("python -m theory atlas", atlas_main, argv[1:], input_errors=(UnknownCheckError,))
    return cli_main("python -m theory", _main, argv, input_errors=(UnknownCheckError,))


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    # validation step: ids and the output location, before any check runs
    try:
        ids = None if args.only is None else resolve_ids(args.only)
        out = None if args.out is None else check_output_file(args.out)
    except (UnknownCheckError, UsageError) as exc:
        sys.stderr.write(f"python -m theory: error: {exc}\n")
        return EXIT_USAGE
    report = run(ids, seed=args.seed, scale=args.scale, progress=not args.quiet)
    print(report.table(verbose=args.verbose))
    if out is not None:  # checked above; a failure now is the machine's (exit 3, landscape.runtime.exits)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(report.to_dict(), indent=2) + "\n")
    return EXIT_OK if report.passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
