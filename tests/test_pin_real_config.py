"""empirics.real._config pinned: the paper's settings against THEORY.md 9.5 (official vision and
ConvAI2 scripts), the defaults RunConfig resolves per experiment (schedule, warmup, heads,
persona reader), each refusal at its edge, the table rows in display order, the records'
plain-words notes carrying the configuration's numbers, and the per-stage generators (one
SeedSequence per (seed, keys), 63 bits, so that every method of a seed starts alike).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from empirics.real import _config as C
from empirics.real._config import LANGUAGE_PAPER, VISION_PAPER, RunConfig


def test_vision_paper_protocol_is_theory_9_5():
    v = VISION_PAPER
    assert (v.experiment, v.optimizer, v.lr, v.finetune_lr, v.weight_decay) == ("vision", "adam", 1e-4, 5e-4, 1e-5)
    assert (v.epochs, v.finetune_epochs, v.batch_size, v.k) == (100, 100, 256, 1)
    assert (v.reptile_inner_lr, v.reptile_outer_epochs, v.reptile_inner_steps) == (1e-2, 5, 20)
    assert (v.width, v.depth, v.dataset, v.augment) == (512, 1, "cifar10", True)
    assert v.seeds == (1, 2, 3, 4, 5) and v.retrain == ("lora-ml", "sr", "reptile", "last-layer-ml")
    assert (v.schedule, v.warmup_fraction, v.lora_ml_heads, v.finetune_head) == ("cosine", 0.0, False, False)
    assert (v.reptile_outer, v.reptile_outer_lr, v.reptile_inner_optimizer, v.step_accounting) == (
        "interpolate", 0.5, "sgd", "round")


def test_language_paper_protocol_is_theory_9_5():
    g = LANGUAGE_PAPER
    assert (g.experiment, g.optimizer, g.lr, g.batch_size, g.epochs) == ("language", "adamw", 5e-5, 8, 10)
    assert (g.k, g.lora_alpha, g.lora_dropout, g.reptile_inner_steps) == (8, 16, 0.1, 20)
    assert (g.finetune_lr, g.finetune_epochs, g.weight_decay, g.seeds) == (1e-4, 10, 0.01, (0, 1, 2, 3, 4))
    assert (g.reptile_inner_optimizer, g.reptile_inner_lr, g.reptile_outer_epochs) == ("adamw", 5e-5, 10)
    assert (g.reptile_outer, g.reptile_outer_lr) == ("interpolate", 0.5)  # eps: no official value (see _config)
    assert (g.schedule, g.warmup_fraction) == ("linear", 0.1)
    assert (g.lora_ml_heads, g.finetune_head, g.persona_selection) == (True, True, "official")
    assert (g.n_test, g.n_retrain, g.max_length) == (10, 10, 128)


def test_tables():
    assert C.ROWS == (("lora-ml", "lora"), ("sr", "lora"), ("reptile", "lora"), ("last-layer-ml", "last-layer"),
                      ("sr", "last-layer"), ("reptile", "last-layer"))
    assert set(C.ROW_LABELS) == set(C.ROWS) and len(set(C.ROW_LABELS.values())) == 6
    assert {m: tuple(p for r, p in C.ROWS if r == m) for m in C.PAIRINGS} == C.PAIRINGS
    assert C.PAPER_SCHEDULES == {"vision": ("cosine", 0.0), "language": ("linear", 0.1)}
    assert C.STEP_ACCOUNTING == ("round", "official") and C.SCHEDULES == ("constant", "linear", "cosine")


@pytest.mark.parametrize("retrain, peft", [(("sr",), ("lora",)), (("reptile", "sr"), ("last-layer",)),
                                           (("last-layer-ml", "lora-ml"), ("last-layer", "lora"))])
def test_rows_keep_display_order(retrain, peft):
    rows = RunConfig(retrain=retrain, peft=peft).rows()
    assert rows == [r for r in C.ROWS if r[0] in retrain and r[1] in peft]
    assert all(C.ROWS.index(a) < C.ROWS.index(b) for a, b in zip(rows, rows[1:]))


@pytest.mark.parametrize("experiment", ["vision", "language"])
def test_schedule_defaults_resolve_per_experiment(experiment):
    sched, warm = C.PAPER_SCHEDULES[experiment]
    assert (RunConfig(experiment=experiment).schedule, RunConfig(experiment=experiment).warmup_fraction) == (
        sched, warm)
    # a schedule named without a warmup takes the experiment's warmup, constant none
    assert RunConfig(experiment=experiment, schedule="linear").warmup_fraction == warm
    assert RunConfig(experiment=experiment, schedule="constant").warmup_fraction == 0.0
    assert RunConfig(experiment=experiment, schedule="cosine", warmup_fraction=0.0).warmup_fraction == 0.0
    assert RunConfig(experiment=experiment, schedule="linear",
                     warmup_fraction=math.nextafter(1.0, 0.0)).warmup_fraction < 1.0


@pytest.mark.parametrize("kw, message", [
    (dict(experiment="audio"), "experiment must be vision|language, got 'audio'"),
    (dict(schedule="step"), "schedule must be one of"),
    (dict(schedule="linear", warmup_fraction=1.0), r"warmup fraction must be in \[0, 1\), got 1.0"),
    (dict(schedule="linear", warmup_fraction=1.5), r"warmup fraction must be in \[0, 1\), got 1.5"),
    (dict(schedule="linear", warmup_fraction=-1e-300), "warmup fraction must be in"),
    (dict(schedule="constant", warmup_fraction=0.25), "needs schedule linear or cosine"),
    (dict(retrain=("sr", "maml")), r"unknown retraining method\(s\) \['maml'\]"),
    (dict(peft=("lora", "prefix")), r"unknown PEFT method\(s\) \['prefix'\]"),
    (dict(seeds=()), "at least one seed"),
    (dict(experiment="language", persona_selection="random"), "persona selection must be official|normalized"),
    (dict(lora_ml_heads=True, finetune_head=False), "needs a fresh head in LoRA fine-tuning"),
    (dict(step_accounting="batch"), "step accounting must be one of"),
    (dict(reptile_inner_optimizer="rmsprop"), "Reptile inner optimizer must be"),
    (dict(reptile_outer="sgd"), "Reptile outer step must be"),
])
def test_refusals(kw, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**kw)


@pytest.mark.parametrize("kw", [dict(lora_ml_heads=True, finetune_head=False, retrain=("sr",)),
                                dict(lora_ml_heads=True, finetune_head=True), dict(lora_ml_heads=False),
                                dict(experiment="language", persona_selection="normalized"),
                                dict(persona_selection="anything"),  # vision reads no personas
                                dict(step_accounting="official"), dict(seeds=(7,))])
def test_accepted(kw):
    assert RunConfig(**kw).rows()


def test_vision_and_language_defaults_of_heads_and_personas():
    assert (RunConfig().lora_ml_heads, RunConfig().finetune_head, RunConfig().persona_selection) == (
        False, False, None)
    lang = RunConfig(experiment="language")
    assert (lang.lora_ml_heads, lang.finetune_head, lang.persona_selection) == (True, True, "official")
    assert RunConfig(experiment="language", lora_ml_heads=False).finetune_head is True


def _torch_seed(seed, *keys):
    state = int(np.random.SeedSequence([seed, *keys]).generate_state(1, dtype=np.uint64)[0])
    return state % 2**63


@pytest.mark.parametrize("seed, keys", [(1, (0,)), (5, (0,)), (1, (1, 0)), (0, ()), (2**40, (3, 2))])
def test_stage_generators(seed, keys):
    g = C.stage_generator(seed, *keys)
    assert g.initial_seed() == _torch_seed(seed, *keys) < 2**63
    a = torch.rand(4, generator=C.stage_generator(seed, *keys))
    assert torch.equal(a, torch.rand(4, generator=C.stage_generator(seed, *keys)))
    assert not torch.equal(a, torch.rand(4, generator=C.stage_generator(seed + 1, *keys)))
    assert not torch.equal(a, torch.rand(4, generator=C.stage_generator(seed, *keys, 1)))


def test_a_seed_whose_state_has_the_top_bit_set_keeps_63_bits():
    seed = next(s for s in range(100) if int(np.random.SeedSequence([s, 0]).generate_state(1, dtype=np.uint64)[0])
                >= 2**63)
    assert C.stage_generator(seed, 0).initial_seed() == _torch_seed(seed, 0)


def test_notes_carry_the_configuration():
    assert C.schedule_text(RunConfig(schedule="constant")) == "constant"
    assert C.schedule_text(RunConfig()) == ("cosine annealing to 0 over each stage's optimizer steps "
                                            "(Reptile: its outer step size eps follows it)")
    assert C.schedule_text(LANGUAGE_PAPER).startswith("linear warmup over 10% of the optimizer steps, then linear "
                                                      "decay to 0")
    r = C.reptile_text(VISION_PAPER)
    assert r.startswith("Reptile: 5 outer epochs,") and "20 inner sgd steps at lr 0.01" in r
    assert "eps = 0.5 (no official value" in r
    r = C.reptile_text(dataclasses.replace(LANGUAGE_PAPER, reptile_outer="adamw", reptile_outer_lr=1e-4))
    assert "outer step adamw at lr 0.0001 on the pseudo-gradient (theta - phi)/T, as the official code" in r
    s = C.steps_text(RunConfig(step_accounting="official"))
    assert s == ("optimizer steps as the official code: sr one per task batch, lora-ml one per round of one batch "
                 "per task (summed losses), last-layer-ml one per round of one batch per task (summed losses)")
    assert C.steps_text(RunConfig()).endswith("(the official code steps once per task batch in SR: "
                                              "--step-accounting official)")
    assert C.steps_text(LANGUAGE_PAPER).endswith("in SR, LoRA-ML and Last-Layer-ML: --step-accounting official)")
    h = C.heads_text(LANGUAGE_PAPER)
    assert h.startswith("LoRA-ML retrains one LoRA adapter and one classification head per task (official)")
    assert h.endswith("LoRA fine-tuning trains a fresh classification head together with LoRA (official)")
    h = C.heads_text(VISION_PAPER)
    assert h.startswith("LoRA-ML retrains per-task LoRA adapters on a shared head")
    assert h.endswith("LoRA fine-tuning keeps the retrained head (LoRA on it; the official code: a fresh head)")
