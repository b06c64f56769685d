"""The up-front cost estimate of real-data runs (empirics.real._cost): exact optimizer-step
counts against the trainer, the refusal over --max-seconds, the printed line, and the
committed benchmark record (estimate vs a measured tiny run within 2x, reproducible from
its stored inputs). No timing here: the time comparison lives in
benchmarks/bench_cost_estimate.py and its record."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from empirics.real import _cost, _fixtures  # noqa: E402
from empirics.real._config import LANGUAGE_PAPER, PAIRINGS, VISION_PAPER, RunConfig  # noqa: E402
from empirics.real._run import build_family, run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "records" / "cost_estimate.json"
TINY = dict(dataset="random", seeds=(1,), epochs=2, finetune_epochs=2, width=8, batch_size=16,
            max_per_task=40, max_eval_per_task=24, reptile_outer_epochs=1, reptile_inner_steps=3)


class StepCounter:
    """Every optimizer.step() of the process while active (torch's global post-step hook)."""

    def __enter__(self):
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.n = 0
        self.handle = register_optimizer_step_post_hook(lambda *a: setattr(self, "n", self.n + 1))
        return self

    def __exit__(self, *exc):
        self.handle.remove()


class Bar:
    """A stand-in for tqdm that records each bar's total and its updates."""

    made: list = []

    def __init__(self, iterable=None, *, total=None, initial=0, desc="", **kw):
        self.total, self.n, self.desc = total, initial, desc
        Bar.made.append(self)

    def update(self, n=1):
        self.n += n

    def close(self):
        pass


@pytest.mark.parametrize("extra", [{}, {"step_accounting": "official", "max_per_task": 50, "batch_size": 12,
                                        "retrain": ("sr", "last-layer-ml"), "peft": ("last-layer",)}])
def test_counted_steps_equal_the_trainers_steps_and_its_progress_bars(tmp_path, monkeypatch, extra):
    # 50 images per task in batches of 12: a partial last batch; official accounting: SR one step per task batch
    import tqdm.auto

    pytest.importorskip("peft")  # imported before the patch: huggingface_hub subclasses tqdm at import
    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    Bar.made = []
    cfg = dataclasses.replace(VISION_PAPER, **{**TINY, **extra})
    family = build_family(cfg, verbose=False)
    counts = _cost.run_counts(cfg, _cost.workload(family, "cpu"))
    with StepCounter() as c:
        run(cfg, tmp_path / "o", family=family, verbose=False, progress=True)
    assert counts["steps"] == c.n > 0
    assert counts["units"] == len(cfg.seeds) * len(cfg.retrain)
    # per-step progress: every stage's bar counts its optimizer steps (Reptile's outer
    # updates, one per task visit, are the only steps without a tick)
    stages = [b for b in Bar.made if b.desc.startswith(("retrain-", "finetune-"))]  # not the units bar
    assert len(stages) == len(cfg.retrain) + sum(len([p for p in PAIRINGS[m] if p in cfg.peft]) for m in cfg.retrain)
    assert all(b.n == b.total for b in stages)
    outer = cfg.reptile_outer_epochs * 4 if "reptile" in cfg.retrain else 0
    assert sum(b.total for b in stages) == c.n - outer


def test_counted_steps_equal_the_trainers_steps_for_language(tmp_path):
    d = tmp_path
    _fixtures.write_tiny_bert(d / "bert", hidden=16, layers=1)
    _fixtures.write_parlai_dialogues(d / "valid.txt", np.random.default_rng(0), episodes_per_persona=5, turns=2)
    _fixtures.write_persona_map(d / "maps")
    cfg = dataclasses.replace(LANGUAGE_PAPER, batch_size=3, model=str(d / "bert"), valid_file=str(d / "valid.txt"),
                              map_dir=str(d / "maps"), n_test=2, n_retrain=2, max_length=24, seeds=(0,), epochs=1,
                              finetune_epochs=1, reptile_outer_epochs=1, reptile_inner_steps=2,
                              retrain=("reptile",), peft=("lora",))
    family = build_family(cfg, verbose=False)
    load = _cost.workload(family, "cpu")
    assert len(load["tests"]) == 2 and all(t["work"] <= 24 for t in load["retrain"] + load["tests"])
    counts = _cost.run_counts(cfg, load)
    with StepCounter() as c:
        run(cfg, tmp_path / "o", family=family, verbose=False)
    assert counts["steps"] == c.n > 0


def test_counts_follow_the_configuration():
    load = {"retrain": [{"name": "a", "train": [4, 4, 2], "eval": 5, "work": 1.0},
                        {"name": "b", "train": [4], "eval": 3, "work": 2.0}],
            "tests": [{"name": "t", "train": [4, 1], "eval": 7, "work": 1.0}]}
    cfg = RunConfig(retrain=("sr",), peft=("lora",), seeds=(0,), epochs=3, finetune_epochs=2)
    c = _cost.unit_counts(cfg, load, "sr")
    # 3 rounds per epoch (the longest task), task b's single batch repeats in every round
    assert c["opt_steps"]["train"] == 3 * 3 and c["opt_steps"]["ft-lora"] == 2 * 2
    assert c["work"]["train"] == 3 * (10 + 2.0 * 12) and c["work"]["ft-lora"] == 2 * 5
    assert c["eval"] == 3 * (5 + 2.0 * 3) + 3 * 7
    official = _cost.unit_counts(dataclasses.replace(cfg, step_accounting="official"), load, "sr")
    assert official["opt_steps"]["train"] == 3 * 3 * 2  # one step per task batch
    rep = _cost.unit_counts(dataclasses.replace(cfg, reptile_outer_epochs=2, reptile_inner_steps=4,
                                                retrain=("reptile",)), load, "reptile")
    assert rep["opt_steps"]["train"] == 2 * 2 * (4 + 1)  # 2 outer epochs x 2 tasks x (4 inner + outer)
    assert rep["work"]["train"] == 2 * (1.0 * (4 + 4 + 2 + 4) + 2.0 * 16)
    total = _cost.run_counts(dataclasses.replace(cfg, seeds=(0, 1, 2)), load)
    assert total["steps"] == 3 * c["steps"] and total["units"] == 3


def test_seconds_are_linear_in_counts_and_rates():
    counts = {"work": {"train": 10.0, "lora-ml": 0.0, "ft-lora": 4.0, "ft-head": 0.0},
              "opt_steps": {"train": 3, "lora-ml": 0, "ft-lora": 2, "ft-head": 0},
              "stages": {"train": 1, "lora-ml": 0, "ft-lora": 1, "ft-head": 0}, "eval": 5.0, "steps": 5}
    rates = {"pass": {"train": 0.5, "ft-lora": 0.25}, "opt": {"train": 0.1, "ft-lora": 0.01},
             "build": {"train": 1.0, "ft-lora": 2.0}, "eval": 0.2}
    assert _cost.estimate_seconds(counts, rates) == pytest.approx(5 + 1 + 0.3 + 0.02 + 1 + 2 + 1)
    double = {k: ({kk: 2 * vv for kk, vv in v.items()} if isinstance(v, dict) else 2 * v) for k, v in rates.items()}
    assert _cost.estimate_seconds(counts, double) == pytest.approx(2 * _cost.estimate_seconds(counts, rates))


def _cli(tmp_path, *extra):
    from empirics.real.cli import main

    return main(["vision", "--dataset", "random", "--seeds", "1", "--epochs", "1", "--finetune-epochs", "1",
                 "--width", "8", "--batch-size", "16", "--max-per-task", "32", "--retrain", "sr", "--peft",
                 "last-layer", *extra])


def test_over_max_seconds_is_refused_with_one_line_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "new"
    assert _cli(tmp_path, "--max-seconds", "1e-6", "--out", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    estimate_line = [e for e in err if "cost estimate on cpu" in e]
    assert len(estimate_line) == 1 and "optimizer steps" in estimate_line[0]
    assert err[-1].startswith("python -m empirics vision: error: estimated ") and "exceeds --max-seconds" in err[-1]
    assert not out.exists()
    # an existing (empty) folder stays empty
    out.mkdir()
    assert _cli(tmp_path, "--max-seconds", "1e-6", "--out", str(out)) == 2
    assert list(out.iterdir()) == []


def test_the_estimate_is_printed_before_training_and_a_generous_limit_runs(tmp_path, capsys):
    assert _cli(tmp_path, "--max-seconds", "1e6", "--out", str(tmp_path / "o")) == 0
    err = capsys.readouterr().err
    line = next(e for e in err.splitlines() if "cost estimate" in e)
    steps = int(line.split(" optimizer steps")[0].rsplit(" ", 1)[1].replace(",", ""))
    rec = json.loads((tmp_path / "o" / "vision_record.json").read_text())
    assert rec["config"]["k"] == 1
    # sr: 1 epoch x 2 rounds (32 images, batch 16); last-layer: 1 epoch x 2 batches of the test task
    assert steps == 2 + 2
    # a rerun finds every unit done: nothing to estimate or refuse, the units are reused
    assert _cli(tmp_path, "--max-seconds", "1e-6", "--out", str(tmp_path / "o")) == 0
    err = capsys.readouterr().err
    assert "done earlier" in err and "cost estimate" not in err


def test_python_api_prints_the_estimate_and_refuses(tmp_path, capsys):
    from empirics.real._run import run_vision

    with pytest.raises(ValueError, match="exceeds --max-seconds"):
        run_vision(tmp_path / "v", max_seconds=1e-6, **{**TINY, "seeds": (1,)})
    assert "cost estimate on cpu" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


# ------------------------------------------------------------------ the committed record
@pytest.fixture(scope="module")
def record():
    return json.loads(RECORD.read_text())


def test_record_estimates_are_within_2x_of_the_measured_runs(record):
    assert record["measured"], "the record holds no measured run"
    for m in record["measured"]:
        ratio = m["estimate_s"] / m["measured_s"]
        assert m["ratio"] == pytest.approx(ratio)
        assert 0.5 <= ratio <= 2.0, (m["name"], ratio)
        assert m["estimated_steps"] == m["measured_steps"], m["name"]


def test_record_estimates_follow_from_their_stored_inputs(record):
    for entry in record["measured"] + record["paper"]:
        cfg = RunConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in entry["config"].items()})
        counts = _cost.run_counts(cfg, entry["workload"])
        assert counts == entry["counts"], entry["name"]
        assert _cost.estimate_seconds(counts, entry["rates"]) == pytest.approx(entry["estimate_s"], rel=1e-12, abs=0)
        if "gpu_estimate_s" in entry:
            gpu = _cost.run_counts(cfg, entry["gpu_workload"])
            assert _cost.gpu_seconds(gpu, entry["rates"], record["gpu_assumed"]) == \
                pytest.approx(entry["gpu_estimate_s"], rel=1e-12, abs=0)

