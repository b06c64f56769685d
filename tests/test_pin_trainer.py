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


def _logged_losses_are_step_means(monkeypatch, run):
    """Run ``run()`` (three optimizer steps per epoch, two epochs, a loss logged every epoch)
    with the trainer's step recorded: each logged loss is the mean of its epoch's steps."""
    import empirics._trainer as tr

    steps = []
    real = tr._step

    def recording(*a, **k):
        out = real(*a, **k)
        steps.append(float(out))
        return out

    monkeypatch.setattr(tr, "_step", recording)
    logged = [h["train_loss"] for h in run().history if "train_loss" in h]
    assert len(steps) == 6 and len(logged) == 2
    for e, value in enumerate(logged):
        assert value == pytest.approx(np.mean(steps[3 * e:3 * e + 3]), rel=1e-6)


def test_the_logged_fine_tuning_loss_is_the_mean_of_the_epoch_s_steps(monkeypatch):
    import dataclasses

    fam = _family()
    fam._test = dataclasses.replace(fam._test, batch_size=3)  # 8 samples: three steps per epoch
    g = torch.Generator().manual_seed(0)
    base = retrain(fam, StageConfig("sr", epochs=1, lr=1e-2), g).model
    _logged_losses_are_step_means(
        monkeypatch, lambda: finetune(fam, base, StageConfig("last-layer", epochs=2, lr=1e-2, log_every=1), g))


def test_reptile_visits_the_tasks_in_the_order_drawn_for_each_cycle(monkeypatch):
    """Each cycle of T outer iterations draws a permutation and visits its entries in turn,
    the first iteration of the cycle the permutation's first entry."""
    drawn = []

    def rolled(n, *a, **k):
        drawn.append(n)
        return torch.arange(n).roll(len(drawn))  # a different, known permutation per draw

    fam = _family(T=3)
    monkeypatch.setattr(torch, "randperm", rolled)
    res = retrain(fam, StageConfig("reptile", epochs=6, lr=1e-2, reptile_inner_steps=1), torch.Generator().manual_seed(0))
    tasks = [h["task"] for h in res.history]
    perms = [torch.arange(3).roll(i + 1).tolist() for i in range(2)]
    assert drawn == [3, 3] and tasks == perms[0] + perms[1]


def test_the_logged_retraining_loss_is_the_mean_of_the_epoch_s_rounds(monkeypatch):
    import dataclasses

    fam = _family()
    fam._tasks = [dataclasses.replace(t, batch_size=6) for t in fam._tasks]  # 16 samples: three rounds per epoch
    _logged_losses_are_step_means(
        monkeypatch, lambda: retrain(fam, StageConfig("sr", epochs=2, lr=1e-2, log_every=1), torch.Generator().manual_seed(0)))


def test_select_best_keeps_the_lowest_validation_loss_not_the_last_change(monkeypatch):
    """Validation losses 0.5, 0.2, 0.4, 0.3, 0.6 over five epochs: epoch 2 is selected, though
    later epochs differ from it."""
    import numpy as np
    import torch

    from empirics._shallow import ShallowConfig, ShallowFamily, draw_shallow_problem
    from empirics._trainer import StageConfig, retrain

    fam = ShallowFamily(draw_shallow_problem(ShallowConfig(T=2, d=4, k=1, N=16, n=8), np.random.default_rng(0)))
    for t in fam._tasks:
        t.val = t.train
    losses = iter(np.repeat([0.5, 0.2, 0.4, 0.3, 0.6], len(fam._tasks)))
    orig = type(fam).evaluate

    def scripted(self, model, task, split, *a, **k):
        out = orig(self, model, task, split, *a, **k)
        if split == "val":
            out = {**out, "loss": float(next(losses))}
        return out

    monkeypatch.setattr(type(fam), "evaluate", scripted)
    res = retrain(fam, StageConfig("sr", epochs=5, lr=0.1, optimizer="sgd", validate_every=1, select_best=True),
                  torch.Generator().manual_seed(0))
    assert [round(h["val_loss"], 12) for h in res.history if "val_loss" in h] == [0.5, 0.2, 0.4, 0.3, 0.6]
    assert res.best_epoch == 2


@pytest.mark.parametrize("epochs", [5, 300])
def test_reptile_and_fine_tuning_log_at_multiples_of_log_every_and_at_the_last_epoch(epochs):
    """Reptile's outer iterations and fine-tuning's epochs: losses at multiples of log_every and
    at the last epoch (also past 256, where ints are no longer one shared object); a
    fine-tuning epoch with nothing to log leaves no record."""
    fam = _family()
    g = torch.Generator().manual_seed(0)
    every = 2 if epochs == 5 else 1000
    want = [2, 4, 5] if epochs == 5 else [300]
    if epochs == 5:
        rep = retrain(fam, StageConfig("reptile", epochs=5, lr=1e-2, log_every=2, reptile_inner_steps=2), g)
        assert [h["epoch"] for h in rep.history if "train_loss" in h] == want
    base = retrain(fam, StageConfig("sr", epochs=1, lr=1e-2), g).model
    res = finetune(fam, base, StageConfig("last-layer", epochs=epochs, lr=1e-2, log_every=every), g)
    assert [h["epoch"] for h in res.history if not h.get("final")] == want


def test_alternating_lora_ml_schedules_the_adapter_steps_over_all_of_them(monkeypatch):
    """inner_adapter_steps = 2: the base optimizer's schedule spans the stage's rounds, the
    adapters' spans twice as many steps (two adapter steps per round)."""
    import empirics._trainer as TR

    seen = []
    real = TR.make_scheduler
    monkeypatch.setattr(TR, "make_scheduler", lambda cfg, opt, total: (seen.append(total), real(cfg, opt, total))[1])
    retrain(_family(T=3), StageConfig("lora-ml", epochs=3, lr=1e-2, inner_adapter_steps=2), torch.Generator().manual_seed(0))
    assert len(seen) == 2 and seen[0] > 0 and seen[1] == 2 * seen[0]


@pytest.mark.parametrize("method", ["last-layer", "lora"])
def test_finetune_schedule_spans_exactly_the_steps_it_takes(monkeypatch, method):
    """Fine-tuning's scheduler is built over epochs x rounds-per-epoch steps and the run takes
    exactly that many (a cosine schedule reaches 0 at the last step, not before or after)."""
    import empirics._trainer as TR

    made = []
    real = TR.make_scheduler
    monkeypatch.setattr(TR, "make_scheduler",
                        lambda cfg, opt, total: (made.append((total, real(cfg, opt, total))), made[-1][1])[1])
    fam = _family(T=3)
    g = torch.Generator().manual_seed(0)
    base = retrain(fam, StageConfig("sr", epochs=1, lr=1e-2), g).model
    made.clear()
    finetune(fam, base, StageConfig(method, epochs=3, lr=1e-2, k=1, schedule="cosine"), g)
    ((total, sched),) = made
    assert total >= 3 and total % 3 == 0
    assert sched.last_epoch == total
