"""Command line: ``python -m landscape audit FILE --rank k [options]`` and
``python -m landscape enumerate FILE --rank k [--out DIR] [--seed S] [--route msolve] [--route phc]``.

Argument parsing lives here only; the work is :func:`landscape.audit`.  Exit codes
(:mod:`landscape.runtime.exits`, the same for every command): 0 audit done, 1 the findings
contradict the applicable theorem, 2 bad input (one-line message on stderr, nothing
written), 3 environment failure (disk full, unwritable folder, ...), 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_DISAGREE, EXIT_BAD_INPUT = 0, 1, 2

#: Longest error line printed (a message never echoes more of a file than this).
MAX_ERROR_CHARS = 300


PROG = "python -m landscape"

#: The exit statuses, as ``python -m landscape audit --help`` lists them.
EXIT_STATUS_HELP = (
    "exit status: 0 audit done (the findings agree with the theorem that applies, or none applies); "
    "1 the findings contradict the applicable theorem; 2 bad input or arguments (one line on stderr, "
    "nothing written); 3 environment failure (disk full, unwritable folder, out of memory); 130 interrupted "
    "(Ctrl-C)"
)


def _error_line(message) -> str:
    """``python -m landscape: error: ...`` (the prefix of every command line's errors) on one
    printable line of at most :data:`MAX_ERROR_CHARS` characters."""
    text = " ".join(str(message).split()) or "bad input"
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    line = f"{PROG}: error: {text}"
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit status 2."""

    def error(self, message):  # noqa: D401 - argparse API
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    from ._search import SEARCH_METHODS

    p = _OneLineParser(prog=PROG, description="LoRA-ML loss-landscape tools (THEORY.md sections 4-8).",
                       epilog=EXIT_STATUS_HELP)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    a = sub.add_parser("audit", help="search, classify and certify critical points of given task matrices",
                       description="Search, classify and certify the critical points of the LoRA-ML loss of "
                                   "given task matrices, and judge them against THEORY.md (landscape.audit).",
                       epilog=EXIT_STATUS_HELP)
    a.add_argument("file", help=".npz (tasks, or A_star and U_star), .npy stack (T, d, d), or .json")
    a.add_argument("--rank", "-k", "--k", type=int, required=True, help="adapter rank k, 1 <= k < d")
    a.add_argument("--starts", type=int, default=None, help="number of random starts (default 100)")
    a.add_argument("--seed", type=int, default=0, help="seed of the numpy Generator (default 0)")
    a.add_argument("--out", default=None, help="output directory for report.json, report.md, run.json and plots "
                   "(created before the search; written atomically, report.json last)")
    a.add_argument("--json", dest="out", default=None, help=argparse.SUPPRESS)
    a.add_argument("--overwrite", action="store_true",
                   help="write into an --out folder holding files the audit did not write (refused otherwise)")
    a.add_argument("--method", action="append", choices=SEARCH_METHODS + ("all",), default=None,
                   help="search method (repeatable; default: all)")
    a.add_argument("--curvature", choices=("auto", "dense", "hvp"), default="auto",
                   help="dense Schur complement or Hessian-vector products (default: auto by size)")
    a.add_argument("--start", dest="start_file", default=None,
                   help="file with explicit starting points, shape (m, T, d, k), run with every method")
    a.add_argument("--max-iter", type=int, default=None, help="iteration cap per run (default per method)")
    a.add_argument("--no-certify", action="store_true", help="do not attempt certificates")
    a.add_argument("--no-plots", action="store_true", help="do not draw plots")
    a.add_argument("--max-seconds", type=float, default=None,
                   help="refuse (exit 2) when the up-front estimate of the time (CPU seconds of one idle core) "
                        "exceeds this")
    a.add_argument("--enumerate", dest="enumeration", action="store_const", const="on", default="auto",
                   help="also run the complete enumeration of critical points (default: only for small instances "
                        "when msolve is installed)")
    a.add_argument("--no-enumerate", dest="enumeration", action="store_const", const="off", help=argparse.SUPPRESS)
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary on stdout")
    a.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)
    a.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)
    from .runtime.executor import add_executor_arguments

    add_executor_arguments(a)
    _add_enumerate_parser(sub)
    from .runtime.cli import finish_parser

    return finish_parser(p)


def _add_enumerate_parser(sub):
    e = sub.add_parser("enumerate", help="every real critical point, certified (small instances; extra 'algebra')")
    e.add_argument("file", help="task file, same formats as audit")
    e.add_argument("--rank", "-k", "--k", type=int, required=True, help="adapter rank k, 1 <= k < d")
    e.add_argument("--out", default=None, help="output directory for enumeration.json, enumeration.md and the plot")
    e.add_argument("--seed", type=int, default=0, help="seed of the homotopy route's start system (default 0)")
    e.add_argument("--route", action="append", choices=("msolve", "phc"), default=None,
                   help="solver routes (repeatable; default msolve). '--route phc' alone: the homotopy route decides "
                        "completeness by counting (k = 1, T >= 3 with a start file); with '--route msolve' both run")
    e.add_argument("--timeout", type=float, default=600.0, help="seconds allowed to each solver call (default 600)")
    e.add_argument("--threads", type=int, default=1, help="threads of msolve / phc (default 1)")
    e.add_argument("--quiet", "-q", action="store_true", help="no summary on stdout")
    e.add_argument("--overwrite", action="store_true",
                   help="write into an --out folder that holds files this command did not write")


def _enumerate_main(args) -> int:
    from ._io import audit_problem, load_tasks
    from ._validation import LandscapeInputError
    from .enumeration import BackendError, enumerate_critical_points

    try:
        if args.timeout <= 0:
            raise LandscapeInputError(f"--timeout must be positive, got {args.timeout}")
        if args.threads < 1:
            raise LandscapeInputError(f"--threads must be at least 1, got {args.threads}")
        if args.out is not None:  # a folder holding files this command did not write: refused
            from .runtime.cli import UsageError
            from .runtime.outguard import claim_out_dir

            try:
                claim_out_dir(args.out, "landscape enumerate", overwrite=args.overwrite)
            except UsageError as exc:
                raise LandscapeInputError(str(exc)) from None
        problem = audit_problem(load_tasks(args.file), args.rank)
        routes = ("phc",) if args.route and set(args.route) == {"phc"} else \
            tuple(dict.fromkeys(["msolve"] + (args.route or [])))
        result = enumerate_critical_points(problem.tasks, problem.k, routes=routes, seed=args.seed,
                                           timeout=args.timeout, threads=args.threads)
    except LandscapeInputError as exc:
        print(_error_line(str(exc).splitlines()[0] if str(exc) else "bad input"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except BackendError as exc:  # the solver, not the input, failed: an environment failure (exit 3)
        from .runtime.exits import EXIT_ENVIRONMENT

        print(_error_line(f"solver failed: {exc}"), file=sys.stderr)
        return EXIT_ENVIRONMENT
    if args.out is not None:
        result.write(args.out)
    if not args.quiet:
        print(result.markdown)
    return EXIT_OK


def main(argv=None) -> int:
    """Entry point; returns the exit status instead of raising."""
    from .runtime.exits import cli_main

    return cli_main(PROG, _main, argv)


def _main(argv=None) -> int:
    from ._validation import LandscapeInputError

    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        print(_error_line(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.command == "audit":
        from ._audit import DEFAULT_STARTS, audit
        from .runtime.executor import executor_from_args

        try:
            if args.seed < 0:
                raise LandscapeInputError(f"--seed must be an integer >= 0, got {args.seed}")
            try:
                executor = executor_from_args(args)
            except (ValueError, ImportError) as exc:
                raise LandscapeInputError(f"--executor: {exc}") from None
            if args.out is not None:  # a folder holding files the audit did not write: refused
                from .runtime.cli import UsageError
                from .runtime.outguard import claim_out_dir

                try:
                    claim_out_dir(args.out, "landscape audit", overwrite=args.overwrite)
                except UsageError as exc:
                    raise LandscapeInputError(str(exc)) from None
            report = audit(
                args.file,
                args.rank,
                starts=DEFAULT_STARTS if args.starts is None else args.starts,
                seed=args.seed,
                out=args.out,
                methods=args.method or "all",
                curvature=args.curvature,
                extra_starts=args.start_file,
                max_iter=args.max_iter,
                certify=not args.no_certify,
                plots=not args.no_plots,
                progress=not args.quiet,
                executor=executor,
                max_seconds=args.max_seconds,
                enumeration=args.enumeration,
            )
        except LandscapeInputError as exc:
            print(_error_line(str(exc).splitlines()[0] if str(exc) else "bad input"), file=sys.stderr)
            return EXIT_BAD_INPUT
        except MemoryError:  # the machine, not the input, failed: exit 3 as the help and the README say
            from .runtime.exits import EnvironmentFailure

            raise EnvironmentFailure("out of memory: the problem or the number of starts is too large for this "
                                     "machine") from None
        if not args.quiet:
            print(report.markdown)
            t = report.data["timing"]
            print(f"Elapsed: {t['total_s']:.1f} s (search {t['search_s']:.1f} s).")
        return EXIT_DISAGREE if report.data["theory"]["agrees"] is False else EXIT_OK
    if args.command == "enumerate":
        return _enumerate_main(args)
    return EXIT_BAD_INPUT  # pragma: no cover - subparsers are required


if __name__ == "__main__":
    sys.exit(main())
