"""Command line of :mod:`empirics` (argument parsing and validation only; work is done by importable functions).

``python -m empirics synthetic-linear [options]``   linear model, THEORY.md 9.1
``python -m empirics synthetic-shallow [options]``  shallow network, THEORY.md 9.2
``python -m empirics vision|language [options]``    real data, added by :mod:`empirics.real.cli`
                                                    when that module is present.

Every argument and the ``--out`` location are checked before any work starts; a
``--out`` holding anything but a finished record of the same configuration is refused.
Shared flags: ``--out PATH`` (alias ``--json``), ``--rank K`` (alias ``--k``),
``--seed S``, ``--quiet`` (alias ``--no-progress``; ``--progress`` is accepted and does
nothing: bars are on by default), and the executor flags of
:func:`landscape.runtime.executor.add_executor_arguments`.
Exit codes (those of every command, :mod:`landscape.runtime.exits`): 0 ok, 2 bad input (one
line on stderr, nothing written), 3 environment failure (disk full, read-only HOME or
cache, ...; one line), 130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import sys

from landscape.runtime.cli import (
    OneLineParser,
    UsageError,
    add_out_argument,
    add_quiet_arguments,
    check_output_dir,
    check_output_file,
    nonneg_float,
    nonneg_int,
    positive_int,
)

EXIT_OK, EXIT_USAGE = 0, 2


def _sizes(p, D) -> None:
    for name, what in (("T", "retraining tasks"), ("d", "dimension"), ("N", "samples per retraining task"),
                       ("n", "fine-tuning samples of the test task")):
        p.add_argument(f"--{name}", type=positive_int, default=getattr(D, name),
                       help=f"{what} (default %(default)s)")
    p.add_argument("--rank", "--k", dest="k", type=positive_int, default=D.k, metavar="K",
                   help="adapter rank k of the ground truth and of retraining, 1 <= k <= d (default %(default)s)")
    p.add_argument("--sigma", type=nonneg_float, default=D.sigma, help="noise std (default %(default)s)")


def _linear_parser(sub) -> None:
    from ._linear import LINEAR_PAPER_DEFAULTS as D

    p = sub.add_parser("synthetic-linear", help="linear model: LoRA-ML vs SR (THEORY.md 9.1)",
                       description="Linear model, LoRA-ML vs SR (THEORY.md 9.1); seconds at the default sizes.")
    _sizes(p, D)
    p.add_argument("--outer-steps", type=nonneg_int, default=D.outer_steps, help="(default %(default)s)")
    p.add_argument("--inner-steps", type=nonneg_int, default=D.inner_steps, help="(default %(default)s)")
    p.add_argument("--sr-epochs", type=nonneg_int, default=D.sr_epochs, help="(default %(default)s)")
    p.add_argument("--finetune-iters", type=nonneg_int, default=D.finetune_iters, help="(default %(default)s)")
    p.add_argument("--finetune-rank", type=positive_int, default=None, help="k' (default: 3k if T=2 else k)")
    p.add_argument("--record-every", type=positive_int, default=D.record_every, help="(default %(default)s)")
    p.add_argument("--official", action="store_true", help="all official-code deviations (THEORY.md 9.5)")
    p.add_argument("--noise-std-squared", action="store_true", help="noise std sigma**2 (official code)")
    p.add_argument("--symmetric-a-star", action="store_true", help="symmetrised A* (official code)")
    p.add_argument("--sr-stray-adapters", action="store_true", help="random untrained adapters in SR (official)")
    p.add_argument("--independent-finetune-init", action="store_true", help="one fine-tuning init per method")
    _common(p, trials=5, seed=0)
    p.set_defaults(func=_run_linear, build=_linear_job)


def _shallow_parser(sub) -> None:
    from ._shallow import SHALLOW_PAPER_DEFAULTS as D

    p = sub.add_parser("synthetic-shallow", help="shallow network: LoRA-ML vs SR (THEORY.md 9.2)",
                       description="Shallow network, LoRA-ML vs SR (THEORY.md 9.2). At the paper's defaults "
                                   "(40000 + 15000 full-batch epochs, 10 trials) this takes about 15 minutes of one "
                                   "idle CPU core, up to about an hour of wall time on a busy shared machine; "
                                   "--workers 2 splits the trials over two processes.")
    _sizes(p, D)
    p.add_argument("--retrain-epochs", type=positive_int, default=D.retrain_epochs, help="(default %(default)s)")
    p.add_argument("--finetune-epochs", type=positive_int, default=D.finetune_epochs, help="(default %(default)s)")
    p.add_argument("--finetune-rank", type=positive_int, default=None, help="k' (default k)")
    p.add_argument("--record-every", type=positive_int, default=D.record_every, help="(default %(default)s)")
    _common(p, trials=10, seed=613)
    p.set_defaults(func=_run_shallow, build=_shallow_job)


def _common(p, *, trials: int, seed: int) -> None:
    from landscape.runtime.executor import add_executor_arguments

    p.add_argument("--trials", type=positive_int, default=trials, help="(default %(default)s)")
    p.add_argument("--seed", type=nonneg_int, default=seed, help="base seed, an integer >= 0 (default %(default)s)")
    add_out_argument(p, "JSON record path; finished units are kept in PATH.units/ and an interrupted run "
                        "resumes there; a record of the same configuration is reused, any other file refused")
    add_quiet_arguments(p)
    add_executor_arguments(p)


def _linear_job(args) -> dict:
    from ._linear import LinearConfig, LinearOptions
    from ._runs import linear_config

    cfg = LinearConfig(T=args.T, d=args.d, k=args.k, N=args.N, n=args.n, sigma=args.sigma,
                       outer_steps=args.outer_steps, inner_steps=args.inner_steps, sr_epochs=args.sr_epochs,
                       finetune_iters=args.finetune_iters, finetune_rank=args.finetune_rank,
                       record_every=args.record_every)
    opts = LinearOptions.official() if args.official else LinearOptions(
        noise_std_squared=args.noise_std_squared, symmetric_a_star=args.symmetric_a_star,
        sr_stray_adapters=args.sr_stray_adapters, shared_finetune_init=not args.independent_finetune_init)
    return {"cfg": cfg, "options": opts, "config": linear_config(cfg, opts, trials=args.trials, seed=args.seed)}


def _shallow_job(args) -> dict:
    from ._runs import shallow_config
    from ._shallow import ShallowConfig

    cfg = ShallowConfig(T=args.T, d=args.d, k=args.k, N=args.N, n=args.n, sigma=args.sigma,
                        retrain_epochs=args.retrain_epochs, finetune_epochs=args.finetune_epochs,
                        finetune_rank=args.finetune_rank, record_every=args.record_every)
    return {"cfg": cfg, "config": shallow_config(cfg, trials=args.trials, seed=args.seed)}


def _validate(args) -> dict:
    """The one validation step of a synthetic command: configuration, executor, ``--out``.

    Raises :class:`UsageError` (or ``ValueError``) before anything is computed or written.
    """
    from landscape.runtime.executor import executor_from_args

    from ._runs import existing_record, units_folder

    job = args.build(args)
    # the noise energy of one task, sigma^2 N d, must be a float64 number (sigma near 1e154
    # and above overflows it and every loss after it)
    try:
        energy = args.sigma ** 2 * args.N * args.d
    except OverflowError:
        energy = math.inf
    if not math.isfinite(energy):
        raise UsageError(f"--sigma {args.sigma:g}: sigma^2 N d overflows float64; use a smaller noise level")
    job["executor"] = executor_from_args(args)
    job["reuse"] = None
    if args.out is not None:
        out = check_output_file(args.out)
        check_output_dir(units_folder(out), "--out units folder")
        job["reuse"] = existing_record(out, job["config"])
    return job


def _run_linear(args, job) -> int:
    from ._runs import linear_record, summarize

    rec = job["reuse"] or linear_record(job["cfg"], job["options"], trials=args.trials, seed=args.seed,
                                        out=args.out, progress=not args.quiet, executor=job["executor"])
    print(summarize(rec) + ("\n  (finished record reused from --out)" if job["reuse"] else ""))
    return EXIT_OK


def _run_shallow(args, job) -> int:
    from ._runs import shallow_record, summarize

    rec = job["reuse"] or shallow_record(job["cfg"], trials=args.trials, seed=args.seed, out=args.out,
                                         progress=not args.quiet, executor=job["executor"])
    print(summarize(rec) + ("\n  (finished record reused from --out)" if job["reuse"] else ""))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m empirics", description="PEFT meta-learning experiments.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True)
    _linear_parser(sub)
    _shallow_parser(sub)
    # ---- real-data subcommands (vision | language): owned by empirics.real ----------------
    if importlib.util.find_spec("empirics.real.cli") is not None:
        from .real.cli import add_subcommands

        add_subcommands(sub)
    from landscape.runtime.cli import finish_parser

    return finish_parser(p)


def _version() -> str:
    from . import __version__

    return f"%(prog)s {__version__}"


def main(argv: list[str] | None = None) -> int:
    from landscape.runtime.exits import cli_main

    from ._runs import NonFiniteResult, RecordMismatch

    return cli_main("python -m empirics", _main, argv, input_errors=(NonFiniteResult, RecordMismatch))


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "build", None) is None:  # real-data subcommands validate themselves
        try:
            return int(args.func(args))
        except ValueError as exc:
            print(f"python -m empirics: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        job = _validate(args)
    except (UsageError, ValueError) as exc:
        print(f"python -m empirics {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return int(args.func(args, job))


if __name__ == "__main__":
    sys.exit(main())
