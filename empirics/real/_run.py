"""Run the real-data protocols through the PEFT-ML trainer and write result records.

One retraining per (method, seed), then each applicable fine-tuning on the unseen
task(s). Table rows (Tables 1-3 of the paper) pair the methods as

* LoRA fine-tuning: ``lora-ml``, ``sr``, ``reptile`` retraining;
* last-layer fine-tuning: ``last-layer-ml``, ``sr``, ``reptile`` retraining.

Each finished (method, seed) unit is written to ``<out>/units/`` at once, so an
interrupted run resumes without redoing it, and several processes (for example one per
seed on one GPU) can share an output folder; :func:`summarize` merges the units.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ROWS", "PAIRINGS", "RunConfig", "VISION_PAPER", "LANGUAGE_PAPER", "run", "summarize",
           "stage_generator", "format_summary"]

#: (retraining method, fine-tuning PEFT) rows of the paper's tables, in display order.
ROWS = (("lora-ml", "lora"), ("sr", "lora"), ("reptile", "lora"),
        ("last-layer-ml", "last-layer"), ("sr", "last-layer"), ("reptile", "last-layer"))
#: Which fine-tuning methods follow each retraining method.
PAIRINGS = {"lora-ml": ("lora",), "last-layer-ml": ("last-layer",), "sr": ("lora", "last-layer"),
            "reptile": ("lora", "last-layer")}
#: Learning-rate schedules; mirrors ``empirics._trainer.SCHEDULES`` (not imported here:
#: this module does not import torch at import time).
SCHEDULES = ("constant", "linear", "cosine")
#: Per-experiment schedule defaults of the official code. Vision: ``CosineAnnealingLR`` to
#: 0 in every stage (``vision/train_utils.py``). ConvAI2: ``get_linear_schedule_with_warmup``
#: with ``num_warmup_steps = 0.1 * batches of one task * epochs`` (``convai/lora-ml.py``,
#: ``convai/lora.py``); the trainer takes one optimizer step per round of one batch per
#: task, so that is 10% of its steps.
PAPER_SCHEDULES = {"vision": ("cosine", 0.0), "language": ("linear", 0.1)}
ROW_LABELS = {("lora-ml", "lora"): "LoRA-ML", ("sr", "lora"): "SR + LoRA", ("reptile", "lora"): "Reptile + LoRA",
              ("last-layer-ml", "last-layer"): "Last-Layer-ML", ("sr", "last-layer"): "SR + Last-Layer",
              ("reptile", "last-layer"): "Reptile + Last-Layer"}


@dataclass(frozen=True)
class RunConfig:
    """Hyperparameters of one real-data experiment (defaults: the vision paper protocol).

    The paper's values are in THEORY.md 9.5; ``VISION_PAPER`` and ``LANGUAGE_PAPER``
    hold them. Size-reduction fields (``max_per_task`` ...) exist for CPU runs.

    ``schedule`` and ``warmup_fraction`` (``None``: the experiment's default of
    :data:`PAPER_SCHEDULES`, cosine for vision, linear with 10% warmup for language)
    apply to every stage: retraining, fine-tuning, and Reptile's outer step size (see
    :class:`~empirics._trainer.StageConfig`).
    """

    experiment: str = "vision"
    retrain: tuple = ("lora-ml", "sr", "reptile", "last-layer-ml")
    peft: tuple = ("lora", "last-layer")
    seeds: tuple = (1, 2, 3, 4, 5)
    device: str = "cpu"
    bf16: bool = False
    epochs: int = 100
    finetune_epochs: int = 100
    lr: float = 1e-4
    finetune_lr: float = 5e-4
    optimizer: str = "adam"
    weight_decay: float = 1e-5
    batch_size: int = 256
    rank: int = 1
    finetune_rank: int | None = None
    lora_alpha: float | None = None
    lora_dropout: float = 0.0
    reptile_outer_epochs: int = 5
    reptile_inner_steps: int = 20
    reptile_inner_lr: float = 1e-2
    reptile_outer_lr: float = 0.5
    # data
    dataset: str = "cifar10"
    data_root: str | None = None
    archive: str | None = None
    cache: str | None = None
    max_per_task: int | None = None
    max_eval_per_task: int | None = None
    augment: bool = True
    width: int = 512
    depth: int = 1
    # language
    model: str | None = None
    valid_file: str | None = None
    train_file: str | None = None
    map_dir: str | None = None
    n_test: int = 10
    n_retrain: int = 10
    max_length: int = 128
    note: str = ""
    schedule: str | None = None
    warmup_fraction: float | None = None

    def __post_init__(self):
        if self.experiment not in ("vision", "language"):
            raise ValueError(f"experiment must be vision|language, got {self.experiment!r}")
        schedule, warmup = PAPER_SCHEDULES[self.experiment]
        if self.schedule is None:  # frozen: resolve the experiment's default in place
            object.__setattr__(self, "schedule", schedule)
        if self.warmup_fraction is None:
            object.__setattr__(self, "warmup_fraction", warmup if self.schedule != "constant" else 0.0)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.warmup_fraction and self.schedule == "constant":
            raise ValueError("a warmup fraction > 0 needs schedule linear or cosine, not constant")
        bad = [m for m in self.retrain if m not in PAIRINGS]
        if bad:
            raise ValueError(f"unknown retraining method(s) {bad}; choose from {tuple(PAIRINGS)}")
        bad = [p for p in self.peft if p not in ("lora", "last-layer")]
        if bad:
            raise ValueError(f"unknown PEFT method(s) {bad}; choose lora|last-layer")
        if not self.seeds:
            raise ValueError("at least one seed is needed")

    def rows(self) -> list:
        return [r for r in ROWS if r[0] in self.retrain and r[1] in self.peft]


#: THEORY.md 9.5: vision (official ``vision/scripts``); cosine annealing as the official code.
VISION_PAPER = RunConfig()
#: THEORY.md 9.5: ConvAI2 (official ``convai/scripts``): AdamW lr 5e-5, batch 8, 10 epochs,
#: LoRA rank 8, alpha 16, dropout 0.1; Reptile outer lr 1e-4, 20 inner steps; the
#: fine-tuning lr 1e-4 of ``convai/scripts/lora.sh``; linear warmup (10%) and decay.
LANGUAGE_PAPER = RunConfig(
    experiment="language", seeds=(0, 1, 2, 3, 4), epochs=10, finetune_epochs=10, lr=5e-5, finetune_lr=1e-4,
    optimizer="adamw", weight_decay=0.01, batch_size=8, rank=8, lora_alpha=16, lora_dropout=0.1,
    reptile_outer_epochs=10, reptile_inner_steps=20, reptile_inner_lr=1e-3, reptile_outer_lr=0.5,
)

VISION_NOTES = (
    "Vision: MLP-Mixer (patch 4, width {width}, depth {depth}; the paper: 512, 1) on binary class-pair tasks, "
    "label = class mod 2; "
    "retraining pairs (0,1),(2,3),(4,5),(6,7) validated on the test split, test task (8,9).",
    "Differences from the paper: learning rate {schedule} (the official code: cosine annealing to 0, "
    "stepped once per epoch); SR sums one batch of each task per step (effective batch 4x256); "
    "Reptile = first-order interpolation theta <- theta + eps (phi - theta) with the correct sign, eps "
    "= reptile_outer_lr (the official outer step is Adam at lr 1e-5 on a sign-reversed pseudo-gradient).",
)
LANGUAGE_NOTES = (
    "Language: pretrained encoder {model} (the paper: RoBERTa-base) scoring (history, candidate) "
    "pairs; accuracy = hits@1 among 20 candidates.",
    "Differences from the paper: learning rate {schedule} (official: linear warmup over 10% of one task's "
    "batches x epochs, then linear decay over a horizon stretched by --sm, 6.67 in lora-ml.sh, so it does not "
    "reach 0); LoRA-ML uses one shared head (LoRA also on the head's Linear layers) instead of per-task heads; "
    "Reptile inner steps are SGD (official: AdamW) with eps = reptile_outer_lr; dropout masks are drawn per "
    "batch from the run's generator (the forward runs in a forked, reseeded RNG), so language runs are "
    "bitwise reproducible on CPU for a seed.",
)


def schedule_text(cfg: RunConfig) -> str:
    """Plain words for the learning-rate schedule of ``cfg`` (used in the records' notes)."""
    warm = (f"linear warmup over {100 * cfg.warmup_fraction:g}% of the optimizer steps, then "
            if cfg.warmup_fraction else "")
    return {"constant": "constant",
            "linear": f"{warm}linear decay to 0 over each stage's optimizer steps",
            "cosine": f"{warm}cosine annealing to 0 over each stage's optimizer steps"}[cfg.schedule] + (
        " (Reptile: its outer step size eps follows it)" if cfg.schedule != "constant" else "")


def stage_generator(seed: int, *keys: int):
    """A torch Generator for one stage, derived from (seed, keys) by ``SeedSequence``.

    Retraining uses keys ``(0,)`` for every method, so all methods of a seed start from
    the same initial weights (paired comparison).
    """
    import torch

    state = np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


# ------------------------------------------------------------------------------------------
# families
# ------------------------------------------------------------------------------------------

def build_family(cfg: RunConfig, *, verbose: bool = True):
    """The vision or language family of ``cfg``, with its data on ``cfg.device``."""
    if cfg.experiment == "vision":
        from ._cifar import DEFAULT_ARCHIVE, load_cifar10
        from ._fmnist import load_fashion_mnist
        from ._vision import VisionFamily
        from ._vision_data import build_vision_tasks

        if cfg.dataset == "cifar10":
            arrays = load_cifar10(cfg.data_root, archive=cfg.archive or DEFAULT_ARCHIVE, cache=cfg.cache,
                                  verbose=verbose)
        elif cfg.dataset == "fashion-mnist":
            arrays = load_fashion_mnist(cfg.data_root, verbose=verbose)
        elif cfg.dataset == "random":  # smoke tests only: random pixels in the CIFAR-10 shape
            from ._fixtures import random_vision_arrays

            arrays = random_vision_arrays(np.random.default_rng(0))
        else:
            raise ValueError(f"dataset must be cifar10|fashion-mnist|random, got {cfg.dataset!r}")
        rng = np.random.default_rng(0)  # the subsample is part of the data, fixed across seeds
        tasks = build_vision_tasks(arrays, device=cfg.device, max_per_task=cfg.max_per_task,
                                   max_eval_per_task=cfg.max_eval_per_task, rng=rng)
        fam = VisionFamily(tasks, batch_size=cfg.batch_size, augment=cfg.augment, dim=cfg.width, depth=cfg.depth)
        fam.reader = arrays.reader
        return fam
    from ._convai2 import build_persona_split
    from ._text import LanguageFamily

    split = build_persona_split(cfg.valid_file, train_file=cfg.train_file, map_dir=cfg.map_dir,
                                n_test=cfg.n_test, n_retrain=cfg.n_retrain)
    if verbose:
        print(split.note, file=sys.stderr)
    return LanguageFamily(split, model_path=cfg.model, batch_size=cfg.batch_size, max_length=cfg.max_length,
                          max_train_turns=cfg.max_per_task, max_eval_turns=cfg.max_eval_per_task,
                          device=cfg.device)


def _stage_configs(cfg: RunConfig, method: str, n_tasks: int):
    from .._trainer import StageConfig

    common = dict(optimizer=cfg.optimizer, weight_decay=cfg.weight_decay, device=cfg.device, bf16=cfg.bf16,
                  lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, schedule=cfg.schedule,
                  warmup_fraction=cfg.warmup_fraction)
    if method == "reptile":
        # one outer iteration per task visit: the official "outer epoch" visits every task once
        rt = StageConfig(method="reptile", epochs=cfg.reptile_outer_epochs * n_tasks, lr=cfg.reptile_outer_lr,
                         reptile_inner_steps=cfg.reptile_inner_steps, reptile_inner_lr=cfg.reptile_inner_lr,
                         rank=cfg.rank, validate_every=n_tasks, select_best=True, **common)
    else:
        rt = StageConfig(method=method, epochs=cfg.epochs, lr=cfg.lr, rank=cfg.rank, validate_every=1,
                         select_best=True, **common)
    ft = {p: StageConfig(method=p, epochs=cfg.finetune_epochs, lr=cfg.finetune_lr,
                         rank=cfg.finetune_rank or cfg.rank, **common) for p in PAIRINGS[method] if p in cfg.peft}
    return rt, ft


def _compact_history(history: list) -> dict:
    keys = sorted({k for h in history for k in h if isinstance(h.get(k), (int, float)) and k != "epoch"})
    out = {"epoch": [h["epoch"] for h in history]}
    for k in keys:
        out[k] = [h.get(k) for h in history]
    if any("val" in h for h in history):
        out["val_accuracy_per_task"] = [[v.get("accuracy") for v in h["val"]] if "val" in h else None
                                        for h in history]
    return out


def _run_unit(cfg: RunConfig, family, method: str, seed: int, progress: bool) -> dict:
    from .._trainer import finetune, retrain

    n_tasks = len(family.retrain_tasks())
    rt_cfg, ft_cfgs = _stage_configs(cfg, method, n_tasks)
    t0 = time.perf_counter()
    res = retrain(family, dataclasses.replace(rt_cfg, progress=progress), stage_generator(seed, 0))
    rt_wall = time.perf_counter() - t0
    unit = {"retrain": method, "seed": seed, "retrain_wall_s": rt_wall, "best_epoch": res.best_epoch,
            "retrain_history": _compact_history(res.history), "finetune": {}}
    n_tests = len(getattr(family, "test_names", [None]))
    for pi, (peft, ft_cfg) in enumerate(ft_cfgs.items()):
        tests = []
        for ti in range(n_tests):
            if hasattr(family, "select_test"):
                family.select_test(ti)
            t1 = time.perf_counter()
            fr = finetune(family, res.model, dataclasses.replace(ft_cfg, progress=progress),
                          stage_generator(seed, 1, pi, ti), eval_every=1)
            per_epoch = [h["test"]["accuracy"] for h in fr.history if "test" in h and not h.get("final")]
            final = fr.history[-1]["test"]
            tests.append({"task": family.test_task().name, "accuracy": final["accuracy"], "loss": final["loss"],
                          "best_accuracy_over_epochs": max(per_epoch) if per_epoch else final["accuracy"],
                          "accuracy_per_epoch": per_epoch, "wall_s": time.perf_counter() - t1})
        unit["finetune"][peft] = tests
    unit["wall_s"] = time.perf_counter() - t0
    return unit


def _unit_path(out: Path, method: str, seed: int) -> Path:
    return out / "units" / f"{method}_seed{seed}.json"


def run(cfg: RunConfig, out: str | Path, *, progress: bool = False, resume: bool = True,
        verbose: bool = True, compute: bool = True) -> dict:
    """Run every (retraining method, seed) of ``cfg``, write units and the summary record.

    Parameters
    ----------
    compute : bool
        False: train nothing, only merge the units already in ``out`` (for example after
        several processes, one per seed, shared the folder).

    Returns
    -------
    dict
        The record written to ``<out>/<experiment>_record.json`` (see :func:`summarize`).
    """
    from .._records import write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not compute:
        cfg_file = out / f"{cfg.experiment}_config.json"
        desc = json.loads(cfg_file.read_text()).get("family") if cfg_file.is_file() else None
        record = summarize(out, cfg, family_description=desc)
        write_json(out / f"{cfg.experiment}_record.json", record)
        return record
    family = build_family(cfg, verbose=verbose)
    setup_s = time.perf_counter() - t0
    write_json(out / f"{cfg.experiment}_config.json",
               {"config": cfg, "family": family.describe(), "setup_wall_s": setup_s,
                "reader": getattr(family, "reader", None)})
    for method in cfg.retrain:
        for seed in cfg.seeds:
            path = _unit_path(out, method, seed)
            if resume and path.is_file():
                if verbose:
                    print(f"[{cfg.experiment}] {method} seed {seed}: done earlier ({path.name})", file=sys.stderr)
                continue
            unit = _run_unit(cfg, family, method, seed, progress)
            unit["config_hash"] = _config_key(cfg)
            write_json(path, unit)
            if verbose:
                accs = {p: [round(t["accuracy"], 4) for t in ts] for p, ts in unit["finetune"].items()}
                print(f"[{cfg.experiment}] {method} seed {seed}: best epoch {unit['best_epoch']}, "
                      f"fine-tuned accuracy {accs} ({unit['wall_s']:.1f} s)", file=sys.stderr)
    record = summarize(out, cfg, family_description=family.describe())
    record["total_wall_s"] = time.perf_counter() - t0
    write_json(out / f"{cfg.experiment}_record.json", record)
    return record


def _config_key(cfg: RunConfig) -> str:
    d = dataclasses.asdict(cfg)
    for k in ("seeds", "retrain", "peft", "device", "note"):
        d.pop(k)
    return json.dumps(d, sort_keys=True, default=str)


def _mean_se(values) -> dict:
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return {"mean": float(v.mean()), "se": se, "n": int(len(v)), "values": v.tolist()}


def summarize(out: str | Path, cfg: RunConfig, *, family_description: dict | None = None) -> dict:
    """Merge the finished units in ``<out>/units`` into a record with per-row mean +- SE.

    Only units produced with the same hyperparameters as ``cfg`` are merged.
    """
    from .._records import provenance

    out = Path(out)
    key = _config_key(cfg)
    units = []
    for p in sorted((out / "units").glob("*.json")):
        u = json.loads(p.read_text())
        if u.get("config_hash") == key and u["seed"] in cfg.seeds and u["retrain"] in cfg.retrain:
            units.append(u)
    rows = []
    for method, peft in cfg.rows():
        mine = sorted((u for u in units if u["retrain"] == method and peft in u["finetune"]), key=lambda u: u["seed"])
        if not mine:
            continue
        tests = [t["task"] for t in mine[0]["finetune"][peft]]
        per_task = {name: _mean_se([u["finetune"][peft][i]["accuracy"] for u in mine])
                    for i, name in enumerate(tests)}
        per_task_best = {name: _mean_se([u["finetune"][peft][i]["best_accuracy_over_epochs"] for u in mine])
                         for i, name in enumerate(tests)}
        avg = _mean_se([np.mean([t["accuracy"] for t in u["finetune"][peft]]) for u in mine])
        avg_best = _mean_se([np.mean([t["best_accuracy_over_epochs"] for t in u["finetune"][peft]]) for u in mine])
        rows.append({"row": ROW_LABELS[(method, peft)], "retrain": method, "peft": peft,
                     "seeds": [u["seed"] for u in mine], "accuracy": avg, "best_accuracy_over_epochs": avg_best,
                     "per_task": per_task, "per_task_best": per_task_best,
                     "retrain_wall_s": [u["retrain_wall_s"] for u in mine],
                     "best_epoch": [u["best_epoch"] for u in mine]})
    notes = list(VISION_NOTES if cfg.experiment == "vision" else LANGUAGE_NOTES)
    notes[1] = notes[1].format(schedule=schedule_text(cfg))
    if cfg.experiment == "vision":
        notes[0] = notes[0].format(width=cfg.width, depth=cfg.depth)
    if cfg.experiment == "language":
        model = (family_description or {}).get("model") or cfg.model or "all-MiniLM-L6-v2"
        notes[0] = notes[0].format(model=model)
    if cfg.experiment == "language" and family_description:
        notes.insert(0, family_description.get("note", ""))
    if cfg.note:
        notes.insert(0, cfg.note)
    return {"kind": "loraml.real", "experiment": cfg.experiment, "config": dataclasses.asdict(cfg),
            "family": family_description, "rows": rows, "notes": notes,
            "schedule": {"name": cfg.schedule, "warmup_fraction": cfg.warmup_fraction,
                         "description": schedule_text(cfg)},
            "metric": ("fine-tuned test accuracy after the last fine-tuning epoch (also the maximum over "
                       "epochs, the official code's 'best')" if cfg.experiment == "vision" else
                       "hits@1 among 20 candidates on the held-out dialogues of each test persona, after "
                       "the last fine-tuning epoch (also the maximum over epochs)"),
            "provenance": provenance(device=cfg.device)}


def format_mean_se(ms: dict) -> str:
    """``mean ± SE`` in percent; the SE of a single seed is undefined and shown as n/a."""
    try:
        se = float(ms.get("se"))  # a JSON record may hold null or a "NaN" string
    except (TypeError, ValueError):
        se = float("nan")
    se_txt = f"{100 * se:.2f}" if np.isfinite(se) else "n/a"
    return f"{100 * ms['mean']:.2f} ± {se_txt}"


def format_summary(record: dict) -> str:
    """Plain-text table of a record (mean +- SE over seeds, in percent)."""
    lines = [f"{record['experiment']}: " + "; ".join(n for n in record["notes"] if n)[:2000], ""]
    lines.append(f"{'method':24s} {'accuracy %':>16s} {'best-epoch acc %':>18s}  seeds")
    for r in record["rows"]:
        a, b = r["accuracy"], r["best_accuracy_over_epochs"]
        lines.append(f"{r['row']:24s} {format_mean_se(a):>16s} {format_mean_se(b):>18s}  {r['seeds']}")
    return "\n".join(lines)
