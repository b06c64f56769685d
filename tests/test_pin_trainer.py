"""The trainer's bookkeeping against what the loop did (``empirics/_trainer.py``): the
progress bar's total is the number of optimizer steps it is advanced by, losses are
recorded exactly at the multiples of ``log_every`` and at the last epoch, and selection
by a metric to maximise keeps the epoch with the largest validation value."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from empirics._shallow import ShallowConfig, ShallowFamily, draw_shallow_problem
from empirics._trainer import StageConfig, finetune, retrain

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _family(T=2):
    cfg = ShallowConfig(T=T, d=4, k=1, N=16, n=8)
    return ShallowFamily(draw_shallow_problem(cfg, np.random.default_rng(0)))


class _Bar:
    """Stands in for tqdm: records its total, where it starts and every advance."""
    made = []

    def __init__(self, *, desc=None, initial=0, total=None, unit=None, disable=None):
        self.total, self.n = total, initial
        _Bar.made.append(self)

    def update(self, n=1):
        self.n += n

    def set_postfix(self, *a, **kw):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("kw", [dict(method="sr"), dict(method="sr", step_per="batch"),
                                dict(method="lora-ml"), dict(method="lora-ml", inner_adapter_steps=2),
                                dict(method="last-layer-ml", step_per="batch")])
def test_progress_bar_total_is_the_number_of_optimizer_steps(monkeypatch, kw):
    import peft  # noqa: F401 - huggingface_hub subclasses tqdm on import: before the stand-in replaces it
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    _Bar.made = []
    fam = _family(T=3)
    cfg = StageConfig(epochs=3, lr=1e-2, progress=True, **kw)
    retrain(fam, cfg, torch.Generator().manual_seed(0))
    (bar,) = _Bar.made
    assert bar.total > 0 and bar.n == bar.total, (bar.n, bar.total)
    rounds = bar.total // 3
    per_round = (3 if kw.get("step_per") == "batch" else 1) * (1 + kw.get("inner_adapter_steps", 0))
    assert rounds % per_round == 0


@pytest.mark.parametrize("stage", ["retrain", "finetune"])
def test_losses_are_logged_at_multiples_of_log_every_and_at_the_last_epoch(stage):
    fam = _family()
    g = torch.Generator().manual_seed(0)
    if stage == "retrain":
        res = retrain(fam, StageConfig("sr", epochs=5, lr=1e-2, log_every=2), g)
    else:
        base = retrain(fam, StageConfig("sr", epochs=1, lr=1e-2), g).model
        res = finetune(fam, base, StageConfig("last-layer", epochs=5, lr=1e-2, log_every=2), g)
    logged = [h["epoch"] for h in res.history if "train_loss" in h]
    assert logged == [2, 4, 5]


def _max_family():
    """The shallow family selected by a score to maximise (score = -loss)."""
    fam = _family()
    plain = fam.evaluate

    def evaluate(model, task, split):
        out = dict(plain(model, task, split))
        out["score"] = -out["loss"]
        return out

    fam.evaluate, fam.selection_metric, fam.selection_mode = evaluate, "score", "max"
    return fam


def test_selection_by_a_metric_to_maximise_keeps_the_largest_validation_value():
    fam = _max_family()
    for t in fam._tasks:
        t.val = t.train
    res = retrain(fam, StageConfig("sr", epochs=6, lr=0.3, optimizer="sgd", validate_every=1, select_best=True),
                  torch.Generator().manual_seed(0))
    vals = [h["val_score"] for h in res.history]
    assert len(set(vals)) > 1
    assert res.best_epoch == res.history[int(np.argmax(vals))]["epoch"]
    got = np.mean([fam.evaluate(res.model, t, "val")["score"] for t in fam._tasks])
    assert got == pytest.approx(max(vals), rel=1e-5)
