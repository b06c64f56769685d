"""Command line of :mod:`empirics` (argument parsing only; work is done by importable functions).

``python -m empirics synthetic-linear [options]``   linear model, THEORY.md 9.1
``python -m empirics synthetic-shallow [options]``  shallow network, THEORY.md 9.2
``python -m empirics vision|language [options]``    real data, added by :mod:`empirics.real.cli`
                                                    when that module is present.
Exit codes: 0 ok, 2 bad input.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys


def _linear_parser(sub) -> None:
    from ._linear import LINEAR_PAPER_DEFAULTS as D

    p = sub.add_parser("synthetic-linear", help="linear model: LoRA-ML vs SR (THEORY.md 9.1)")
    for name in ("T", "d", "k", "N", "n"):
        p.add_argument(f"--{name}", type=int, default=getattr(D, name), help="(default %(default)s)")
    p.add_argument("--sigma", type=float, default=D.sigma, help="noise std (default %(default)s)")
    p.add_argument("--outer-steps", type=int, default=D.outer_steps)
    p.add_argument("--inner-steps", type=int, default=D.inner_steps)
    p.add_argument("--sr-epochs", type=int, default=D.sr_epochs)
    p.add_argument("--finetune-iters", type=int, default=D.finetune_iters)
    p.add_argument("--finetune-rank", type=int, default=None, help="k' (default: 3k if T=2 else k)")
    p.add_argument("--record-every", type=int, default=D.record_every)
    p.add_argument("--official", action="store_true", help="all official-code deviations (THEORY.md 9.5)")
    p.add_argument("--noise-std-squared", action="store_true", help="noise std sigma**2 (official code)")
    p.add_argument("--symmetric-a-star", action="store_true", help="symmetrised A* (official code)")
    p.add_argument("--sr-stray-adapters", action="store_true", help="random untrained adapters in SR (official)")
    p.add_argument("--independent-finetune-init", action="store_true", help="one fine-tuning init per method")
    _common(p, trials=5, seed=0)
    p.set_defaults(func=_run_linear)


def _shallow_parser(sub) -> None:
    from ._shallow import SHALLOW_PAPER_DEFAULTS as D

    p = sub.add_parser("synthetic-shallow", help="shallow network: LoRA-ML vs SR (THEORY.md 9.2)")
    for name in ("T", "d", "k", "N", "n"):
        p.add_argument(f"--{name}", type=int, default=getattr(D, name), help="(default %(default)s)")
    p.add_argument("--sigma", type=float, default=D.sigma)
    p.add_argument("--retrain-epochs", type=int, default=D.retrain_epochs)
    p.add_argument("--finetune-epochs", type=int, default=D.finetune_epochs)
    p.add_argument("--finetune-rank", type=int, default=None, help="k' (default k)")
    p.add_argument("--record-every", type=int, default=D.record_every)
    _common(p, trials=10, seed=613)
    p.set_defaults(func=_run_shallow)


def _common(p, *, trials: int, seed: int) -> None:
    p.add_argument("--trials", type=int, default=trials, help="(default %(default)s)")
    p.add_argument("--seed", type=int, default=seed, help="base seed (default %(default)s)")
    p.add_argument("--out", default=None, help="JSON record path (reused if its config matches)")
    p.add_argument("--progress", action="store_true", help="show progress bars")


def _run_linear(args) -> int:
    from ._linear import LinearConfig, LinearOptions
    from ._runs import linear_record, summarize

    cfg = LinearConfig(T=args.T, d=args.d, k=args.k, N=args.N, n=args.n, sigma=args.sigma,
                       outer_steps=args.outer_steps, inner_steps=args.inner_steps, sr_epochs=args.sr_epochs,
                       finetune_iters=args.finetune_iters, finetune_rank=args.finetune_rank,
                       record_every=args.record_every)
    opts = LinearOptions.official() if args.official else LinearOptions(
        noise_std_squared=args.noise_std_squared, symmetric_a_star=args.symmetric_a_star,
        sr_stray_adapters=args.sr_stray_adapters, shared_finetune_init=not args.independent_finetune_init)
    print(summarize(linear_record(cfg, opts, trials=args.trials, seed=args.seed, out=args.out,
                                  progress=args.progress)))
    return 0


def _run_shallow(args) -> int:
    from ._runs import shallow_record, summarize
    from ._shallow import ShallowConfig

    cfg = ShallowConfig(T=args.T, d=args.d, k=args.k, N=args.N, n=args.n, sigma=args.sigma,
                        retrain_epochs=args.retrain_epochs, finetune_epochs=args.finetune_epochs,
                        finetune_rank=args.finetune_rank, record_every=args.record_every)
    print(summarize(shallow_record(cfg, trials=args.trials, seed=args.seed, out=args.out, progress=args.progress)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m empirics", description="PEFT meta-learning experiments.")
    sub = p.add_subparsers(dest="command", required=True)
    _linear_parser(sub)
    _shallow_parser(sub)
    # ---- real-data subcommands (vision | language): owned by empirics.real ----------------
    if importlib.util.find_spec("empirics.real.cli") is not None:
        from .real.cli import add_subcommands

        add_subcommands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
