"""Benchmark of the up-front cost estimate of real-data runs (empirics.real._cost).

Two parts, one record (default ``benchmarks/records/cost_estimate.json``):

* **measured**: small runs of ``vision`` (CIFAR-10) and ``language`` (ConvAI2, MiniLM) are
  estimated (counts, rates calibrated in this process) and then run in the same process;
  the record stores the estimate, the measured wall time of the training, their ratio
  and the optimizer steps counted by torch's global post-step hook;
* **paper**: the README's commands and the paper-scale defaults are estimated on this
  machine (CPU rates measured here) and for one GPU (FLOPs counted on the calibration
  passes at the assumed rate of ``empirics.real._cost.GPU_ASSUMED``: not measured).

Every entry stores its configuration, workload, counts and rates, so the tests recompute
each estimate from its stored inputs (tests/test_cost_estimate.py) and check the ratios of
the measured runs within [1/2, 2]; tests/test_readme_claims.py checks the README's table
against the paper entries.

Usage::

    python benchmarks/bench_cost_estimate.py --model PATH_TO_MINILM [--threads 1] [--skip-paper]

It takes about 15-30 minutes on 2 shared CPU cores (the paper-scale language calibration
is most of it).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MEASURED = {
    "vision-small": dict(experiment="vision", seeds=(1,), epochs=2, finetune_epochs=2, max_per_task=256,
                         max_eval_per_task=128, width=64, reptile_outer_epochs=1, reptile_inner_steps=10),
    "language-small": dict(experiment="language", seeds=(0,), retrain=("sr", "lora-ml"), peft=("lora",), epochs=1,
                           finetune_epochs=1, n_retrain=2, n_test=1, max_per_task=4, max_eval_per_task=2,
                           batch_size=2, max_length=32),
}
PAPER = {
    "vision-readme": dict(experiment="vision", retrain=("lora-ml", "sr", "reptile"), peft=("lora", "last-layer"),
                          seeds=(1, 2, 3, 4, 5)),
    "vision-paper": dict(experiment="vision"),
    "language-readme": dict(experiment="language", retrain=("lora-ml", "sr"), peft=("lora",), seeds=(0,)),
    "language-paper": dict(experiment="language"),
}
#: Configuration fields that name local paths: never stored in the record.
PATH_FIELDS = ("model", "valid_file", "train_file", "map_dir", "data_root", "archive", "cache")


def _cfg(settings: dict, model):
    from empirics.real._config import LANGUAGE_PAPER, VISION_PAPER

    base = VISION_PAPER if settings["experiment"] == "vision" else LANGUAGE_PAPER
    extra = {"model": model} if settings["experiment"] == "language" else {}
    return dataclasses.replace(base, **settings, **extra)


def _stored_config(cfg) -> dict:
    d = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    for k in PATH_FIELDS:
        d[k] = None
    return d


def _entry(name, cfg, family, flops):
    from empirics.real import _cost

    est = _cost.estimate(cfg, family, flops=flops)
    e = {"name": name, "config": _stored_config(cfg), "workload": est.workload, "counts": est.counts,
         "rates": est.rates, "estimate_s": est.seconds, "estimated_steps": est.steps,
         "calibration_s": est.calibration_s}
    if flops:
        e["gpu_workload"] = _cost.workload(family, "cuda")
        e["gpu_estimate_s"] = _cost.gpu_seconds(_cost.run_counts(cfg, e["gpu_workload"]), est.rates)
    print(f"{name}: {est.steps:,} steps, estimate {est.seconds:.1f} s on cpu"
          + (f", {e['gpu_estimate_s']:.1f} s on one GPU (assumed rate)" if flops else ""), flush=True)
    return e


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="local all-MiniLM-L6-v2 folder (the 'language' extra's)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--skip-paper", action="store_true")
    p.add_argument("--only", nargs="*", default=None, help="entry names to (re)compute; others kept from --out")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "records" / "cost_estimate.json"))
    args = p.parse_args(argv)

    import tempfile

    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from empirics.real import _cost
    from empirics.real._run import build_family, run

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    old = json.loads(out.read_text()) if out.is_file() else {"measured": [], "paper": []}
    keep = lambda part: [e for e in old.get(part, []) if args.only is not None and e["name"] not in args.only]  # noqa: E731
    record = {"benchmark": "bench_cost_estimate", "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
              "load_average_at_start": list(os.getloadavg()), "gpu_assumed": _cost.GPU_ASSUMED,
              "measured": keep("measured"), "paper": keep("paper")}
    steps = [0]
    register_optimizer_step_post_hook(lambda *a: steps.__setitem__(0, steps[0] + 1))
    for name, settings in MEASURED.items():
        if args.only is not None and name not in args.only:
            continue
        cfg = _cfg(settings, args.model)
        family = build_family(cfg, verbose=False)
        e = _entry(name, cfg, family, flops=False)
        steps[0] = 0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run(cfg, Path(tmp) / "o", family=family, verbose=False)
            e["measured_s"] = time.perf_counter() - t0
        e["measured_steps"] = steps[0]
        e["ratio"] = e["estimate_s"] / e["measured_s"]
        print(f"{name}: measured {e['measured_s']:.1f} s, {steps[0]:,} steps; estimate / measured = {e['ratio']:.2f}",
              flush=True)
        record["measured"].append(e)
        del family
    if not args.skip_paper:
        families = {}
        for name, settings in PAPER.items():
            if args.only is not None and name not in args.only:
                continue
            cfg = _cfg(settings, args.model)
            key = cfg.experiment
            if key not in families:
                families.clear()
                families[key] = build_family(cfg, verbose=False)
            record["paper"].append(_entry(name, cfg, families[key], flops=True))
    record["load_average_at_end"] = list(os.getloadavg())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
