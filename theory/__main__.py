"""Command line: ``python -m theory [--only ID ...] [--seed N] [--scale quick|paper] [--json PATH]``.

Argument parsing only; the work is done by :func:`theory.run`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._registry import DEFAULT_SCALE, REGISTRY, SCALES, UnknownCheckError, get_check, run

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def resolve_ids(tokens):
    """Map ``--only`` tokens to registry ids; an unquoted id split at its spaces
    (``--only Thm 3.1``) is re-joined greedily."""
    out, i = [], 0
    while i < len(tokens):
        for j in range(min(len(tokens), i + 6), i, -1):
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
            "exit status: 0 all checks pass, 1 a check failed, 2 bad arguments\n\n"
            "check ids (case and spaces are ignored; Lemmas 3-7, Cor 5-6 and eq. (35) are cases of "
            "'Thm 3.4'):\n" + ids
        ),
    )
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these checks")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument(
        "--scale",
        choices=SCALES,
        default=DEFAULT_SCALE,
        help=f"problem sizes: 'quick' (tests) or 'paper' (THEORY.md sizes); default {DEFAULT_SCALE}",
    )
    p.add_argument("--json", metavar="PATH", type=Path, help="also write the full results as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case of every check")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        ids = None if args.only is None else resolve_ids(args.only)
        report = run(ids, seed=args.seed, scale=args.scale, progress=not args.no_progress)
    except UnknownCheckError as exc:
        sys.stderr.write(f"python -m theory: error: {exc}\n")
        return EXIT_USAGE
    print(report.table(verbose=args.verbose))
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        except OSError as exc:
            sys.stderr.write(f"python -m theory: error: cannot write {args.json}: {exc.strerror or exc}\n")
            return EXIT_USAGE
    return EXIT_OK if report.passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
