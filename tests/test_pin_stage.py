"""empirics._stage pinned at its boundaries: every refusal of StageConfig exactly at the edge of
what it accepts, the closed-form learning-rate factor against exact rationals (warmup, decay,
the clip after the last step), the optimizer each stage builds (class, learning rate, weight
decay, empty groups dropped), Reptile's inner optimizer, its two outer steps (interpolation by
epsilon; the official pseudo-gradient (theta - phi) / T into Adam from theta) and the warmup
factor checkpoints keep.
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest
import torch

from empirics import _stage as S
from empirics._stage import StageConfig


def test_names_and_constants():
    assert S.RETRAIN_METHODS == ("sr", "lora-ml", "last-layer-ml", "reptile")
    assert S.FINETUNE_METHODS == ("lora", "last-layer") and S.FINETUNE_ADAPTER == "finetune"
    assert S.SCHEDULES == ("constant", "linear", "cosine") and S.STEP_ACCOUNTING == ("round", "batch")
    assert [S.task_adapter_name(t) for t in (0, 3, 12)] == ["task_0", "task_3", "task_12"]


def test_defaults():
    c = StageConfig("sr", epochs=1, lr=0.1)
    assert (c.optimizer, c.weight_decay, c.k, c.lora_alpha, c.lora_dropout) == ("adamw", 0.0, 1, None, 0.0)
    assert (c.inner_adapter_steps, c.reptile_inner_steps, c.reptile_inner_lr, c.reptile_inner_optimizer) == (
        0, 20, 1e-2, "sgd")
    assert (c.reptile_outer, c.lora_heads, c.step_per, c.schedule, c.warmup_fraction) == (
        "interpolate", False, "round", "constant", 0.0)
    assert (c.device, c.bf16, c.validate_every, c.select_best, c.log_every, c.checkpoint_every) == (
        "cpu", False, 0, False, 1, 0)


ACCEPTED = [dict(epochs=0), dict(k=1), dict(inner_adapter_steps=0), dict(reptile_inner_steps=1),
            dict(select_best=True, validate_every=1), dict(schedule="linear", warmup_fraction=0.0),
            dict(schedule="cosine", warmup_fraction=math.nextafter(1.0, 0.0)), dict(step_per="batch"),
            dict(step_per="round", inner_adapter_steps=2)] + \
           [dict(optimizer=o) for o in ("sgd", "adam", "adamw")] + \
           [dict(reptile_inner_optimizer=o) for o in ("sgd", "adam", "adamw")] + \
           [dict(reptile_outer=o) for o in ("interpolate", "adam", "adamw")]
REFUSED = [(dict(epochs=-1), "epochs must be >= 0, got -1"), (dict(k=0), "LoRA rank k must be >= 1, got 0"),
           (dict(inner_adapter_steps=-1), "inner_adapter_steps must be >= 0"),
           (dict(reptile_inner_steps=0), "reptile_inner_steps >= 1"),
           (dict(select_best=True, validate_every=0), "select_best needs validate_every >= 1"),
           (dict(schedule="linear", warmup_fraction=1.0), r"warmup_fraction must be in \[0, 1\), got 1.0"),
           (dict(schedule="linear", warmup_fraction=-1e-300), "warmup_fraction must be in"),
           (dict(warmup_fraction=0.5), "needs schedule 'linear' or 'cosine'"),
           (dict(step_per="batch", inner_adapter_steps=1), "step_per='batch' is not defined"),
           (dict(step_per="epoch"), "step_per must be one of"), (dict(schedule="step"), "schedule must be one of"),
           (dict(optimizer="rmsprop"), "optimizer must be"), (dict(reptile_inner_optimizer="rmsprop"),
                                                              "reptile_inner_optimizer must be"),
           (dict(reptile_outer="sgd"), "reptile_outer must be")]


@pytest.mark.parametrize("kw", ACCEPTED)
def test_accepted_at_the_edge(kw):
    assert StageConfig("sr", epochs=kw.pop("epochs", 1), lr=0.1, **kw).lr == 0.1


@pytest.mark.parametrize("kw, message", REFUSED)
def test_refused_just_beyond_the_edge(kw, message):
    with pytest.raises(ValueError, match=message):
        StageConfig("sr", epochs=kw.pop("epochs", 1), lr=0.1, **kw)


@pytest.mark.parametrize("method", S.RETRAIN_METHODS + S.FINETUNE_METHODS)
def test_every_method_is_a_stage(method):
    assert StageConfig(method, epochs=1, lr=0.1).method == method
    with pytest.raises(ValueError, match="method must be one of"):
        StageConfig(method.upper(), epochs=1, lr=0.1)


def _exact_factor(schedule, step, total, warmup):
    if schedule == "constant":
        return Fraction(1)
    if step < warmup:
        return Fraction(step, max(1, warmup))
    p = min(Fraction(1), Fraction(step - warmup, max(1, total - warmup)))
    if schedule == "linear":
        return max(Fraction(0), 1 - p)
    return Fraction((1 + math.cos(math.pi * p)) / 2)


@pytest.mark.parametrize("schedule", S.SCHEDULES)
@pytest.mark.parametrize("total, warmup", [(10, 0), (10, 3), (7, 6), (1, 0), (5, 5), (4, 1)])
def test_lr_factor_exactly(schedule, total, warmup):
    for step in range(total + 3):
        got = S.lr_factor(schedule, step, total, warmup)
        want = _exact_factor(schedule, step, total, warmup)
        if schedule == "cosine" and step >= warmup:
            assert got == pytest.approx(float(want), abs=1e-15)
        else:  # one rounding of 1 - p
            assert abs(Fraction(got) - want) <= Fraction(1, 2**53), (step, got, want)


def test_lr_factor_landmarks():
    # warmup: the first step has factor 0, the last warmup step (W - 1) / W, then the peak 1
    assert [S.lr_factor("linear", s, 10, 4) for s in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1 - 1 / 6]
    # after the last step the factor stays 0 (never negative, never rising again)
    assert [S.lr_factor("linear", s, 10, 4) for s in (10, 11, 50)] == [0.0, 0.0, 0.0]
    assert [S.lr_factor("cosine", s, 8, 0) for s in (0, 4, 8, 12)] == pytest.approx([1.0, 0.5, 0.0, 0.0], abs=1e-16)
    assert S.lr_factor("cosine", 2, 8, 0) == pytest.approx((1 + math.sqrt(0.5)) / 2, abs=1e-16)
    assert S.lr_factor("constant", 10**6, 3, 2) == 1.0
    with pytest.raises(ValueError, match="schedule must be one of"):
        S.lr_factor("step", 5, 10, 0)


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_linear_warmup_factor(steps):
    w = S.LinearWarmup(steps)
    assert [w(s) for s in range(steps + 3)] == [min(1.0, s / steps) for s in range(steps + 3)]
    assert w(0) == 0.0 and w(steps) == 1.0 and w(10 * steps) == 1.0


@pytest.mark.parametrize("fraction, total, warmup", [(0.14, 50, 8), (0.25, 8, 2), (0.3, 10, 3), (0.01, 10, 1),
                                                     (0.0, 10, 0)])
def test_warmup_steps_round_up_as_hf(fraction, total, warmup):
    """ceil(fraction * total) in floating point, as HF's Trainer (0.14 * 50 = 7.000000000000001: 8)."""
    assert math.ceil(fraction * total) == warmup
    cfg = StageConfig("sr", epochs=1, lr=1.0, schedule="linear", warmup_fraction=fraction)
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=1.0)
    sched = S.make_scheduler(cfg, opt, total)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = lrs.index(max(lrs))
    assert peak == warmup and lrs[0] == (0.0 if warmup else 1.0)


def _params(*vals):
    return [torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)) for v in vals]


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW)])
def test_make_optimizer(name, cls):
    cfg = StageConfig("sr", epochs=1, lr=0.125, optimizer=name, weight_decay=0.375)
    a, b = _params([1.0], [2.0])
    opt = S.make_optimizer(cfg, [{"params": [a]}, {"params": []}, {"params": [b], "lr": 0.5}])
    assert type(opt) is cls
    assert [len(g["params"]) for g in opt.param_groups] == [1, 1]  # the empty group is dropped
    assert [g["lr"] for g in opt.param_groups] == [0.125, 0.5]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.375, 0.375]


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW)])
def test_reptile_inner_optimizer(name, cls):
    cfg = StageConfig("reptile", epochs=1, lr=0.5, optimizer="adamw", weight_decay=0.25, reptile_inner_lr=0.0625,
                      reptile_inner_optimizer=name)
    opt = S.reptile_inner_optimizer(cfg, _params([1.0]))
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.0625
    # plain SGD as the official vision code: no weight decay; Adam(W) with the stage's
    assert opt.param_groups[0]["weight_decay"] == (0.0 if name == "sgd" else 0.25)


def test_reptile_interpolation_moves_theta_a_fraction_eps_toward_phi():
    phi = _params([3.0, -1.0], [0.5])
    theta = [torch.tensor([1.0, 1.0], dtype=torch.float64), torch.tensor([2.5], dtype=torch.float64)]
    outer = S.ReptileOuter(phi, lr=0.25)
    cfg = StageConfig("reptile", epochs=1, lr=0.25)
    S.reptile_outer_step(cfg, outer, phi, theta, T=4)
    assert phi[0].tolist() == [1.5, 0.5] and phi[1].tolist() == [2.0]


def test_reptile_outer_lrs_per_group_and_anchor_count():
    a, b = _params([2.0], [2.0])
    outer = S.ReptileOuter([{"params": [a], "lr": 0.5}, {"params": [b], "lr": 0.125}], lr=1.0)
    outer.step([torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    assert a.item() == 1.0 and b.item() == 0.25
    with pytest.raises(ValueError, match="1 anchors for 2 parameters"):
        outer.step([torch.zeros(1)])


@pytest.mark.parametrize("name", ["adam", "adamw"])
@pytest.mark.parametrize("T", [1, 4])
def test_reptile_official_outer_step_is_adam_on_the_pseudo_gradient_from_theta(name, T):
    theta = [torch.tensor([1.0, -2.0], dtype=torch.float64)]
    phi = _params([0.5, 2.0])
    cfg = StageConfig("reptile", epochs=1, lr=0.01, reptile_outer=name)
    outer = S.make_optimizer(dataclasses.replace(cfg, optimizer=name), [{"params": phi}])
    S.reptile_outer_step(cfg, outer, phi, theta, T=T)
    grad = (theta[0] - torch.tensor([0.5, 2.0], dtype=torch.float64)) / T
    state = outer.state[phi[0]]
    beta1 = outer.param_groups[0]["betas"][0]
    torch.testing.assert_close(state["exp_avg"], (1 - beta1) * grad, rtol=1e-15, atol=0)
    # one Adam step from theta (no weight decay here): each coordinate moves by lr g / (|g| + eps)
    torch.testing.assert_close(phi[0].detach(), theta[0] - 0.01 * grad / (grad.abs() + 1e-8), rtol=1e-12, atol=0)
    assert phi[0].grad is None  # zero_grad(set_to_none=True)


def _fresh(text):
    """The same text as a new string object (as read from a file or a command line)."""
    return "".join(list(text))


def test_settings_read_from_a_file_are_compared_by_value():
    phi = _params([3.0])
    theta = [torch.tensor([1.0], dtype=torch.float64)]
    cfg = StageConfig(_fresh("reptile"), epochs=1, lr=0.25, reptile_outer=_fresh("interpolate"))
    S.reptile_outer_step(cfg, S.ReptileOuter(phi, lr=0.25), phi, theta, T=2)
    assert phi[0].tolist() == [1.5]
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=1.0)
    for name, cls in (("linear", torch.optim.lr_scheduler.LinearLR),
                      ("cosine", torch.optim.lr_scheduler.CosineAnnealingLR)):
        sched = S.make_scheduler(StageConfig("sr", epochs=1, lr=1.0, schedule=_fresh(name)), opt, 10)
        assert type(sched) is cls
    opt = S.reptile_inner_optimizer(StageConfig("reptile", epochs=1, lr=1.0, weight_decay=0.5,
                                                reptile_inner_optimizer=_fresh("sgd")), _params([1.0]))
    assert type(opt) is torch.optim.SGD and opt.param_groups[0]["weight_decay"] == 0.0


@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
def test_schedules_named_by_a_string_built_at_run_time(name):
    """A schedule name read from a command line or a file is not the interned literal: it is
    compared by value (linear at 3 of 4 steps: 1/4; cosine: (1 + cos(3 pi / 4)) / 2)."""
    import math

    from empirics._stage import lr_factor

    built = "".join(list(name))
    assert built == name
    want = {"linear": 0.25, "cosine": 0.5 * (1 + math.cos(0.75 * math.pi)), "constant": 1.0}[name]
    assert lr_factor(built, 3, 4) == pytest.approx(want, rel=1e-15, abs=0)
