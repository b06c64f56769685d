"""empirics.real._protocol.stage_plan pinned: the stages a real-data unit runs, field by field,
from its RunConfig -- Reptile's outer epochs times the tasks as iterations, validated once per
outer epoch; the other methods validated every epoch with the official step accounting when
asked; per-task heads for LoRA-ML only; the fine-tunings PAIRINGS names, in its order, filtered
by ``peft``, with the fine-tuning rank and the fresh head of LoRA -- and compact_history's
stored form of a stage's history.
"""
from __future__ import annotations

import pytest

from empirics.real._config import OFFICIAL_STEP_PER, PAIRINGS, RunConfig
from empirics.real._protocol import compact_history, stage_plan

CFG = dict(optimizer="adamw", weight_decay=0.125, lr=0.25, finetune_lr=0.0625, epochs=3, finetune_epochs=5,
           lora_alpha=6.0, lora_dropout=0.25, schedule="linear", warmup_fraction=0.5, k=2, reptile_outer_epochs=4,
           reptile_inner_steps=7, reptile_inner_lr=0.03125, reptile_outer_lr=0.375, reptile_inner_optimizer="adam",
           reptile_outer="adamw", bf16=True)


def _common(stage, cfg):
    for f in ("optimizer", "weight_decay", "device", "bf16", "lora_alpha", "lora_dropout", "schedule",
              "warmup_fraction"):
        assert getattr(stage, f) == getattr(cfg, f), f


@pytest.mark.parametrize("experiment", ["vision", "language"])
@pytest.mark.parametrize("n_tasks", [1, 4, 9])
def test_reptile_stage(experiment, n_tasks):
    cfg = RunConfig(experiment=experiment, **CFG)
    rt, ft = stage_plan(cfg, "reptile", n_tasks)
    assert rt.method == "reptile" and rt.epochs == 4 * n_tasks and rt.lr == 0.375
    assert (rt.reptile_inner_steps, rt.reptile_inner_lr, rt.reptile_inner_optimizer, rt.reptile_outer) == (
        7, 0.03125, "adam", "adamw")
    assert rt.k == 2 and rt.validate_every == n_tasks and rt.select_best is True
    _common(rt, cfg)
    assert list(ft) == ["lora", "last-layer"]


@pytest.mark.parametrize("experiment", ["vision", "language"])
@pytest.mark.parametrize("method", ["sr", "lora-ml", "last-layer-ml"])
@pytest.mark.parametrize("accounting", ["round", "official"])
def test_other_retraining_stages(experiment, method, accounting):
    cfg = RunConfig(experiment=experiment, step_accounting=accounting, lora_ml_heads=False, finetune_head=False,
                    **CFG)
    rt, ft = stage_plan(cfg, method, 4)
    assert rt.method == method and rt.epochs == 3 and rt.lr == 0.25 and rt.k == 2
    assert rt.validate_every == 1 and rt.select_best is True
    want = OFFICIAL_STEP_PER[experiment][method] if accounting == "official" else "round"
    assert rt.step_per == want
    assert rt.lora_heads is False
    _common(rt, cfg)
    assert list(ft) == list(PAIRINGS[method])


def test_the_official_step_accounting():
    assert OFFICIAL_STEP_PER == {"vision": {"sr": "batch", "lora-ml": "round", "last-layer-ml": "round"},
                                 "language": {"sr": "batch", "lora-ml": "batch", "last-layer-ml": "batch"}}


@pytest.mark.parametrize("method", ["sr", "lora-ml", "last-layer-ml", "reptile"])
@pytest.mark.parametrize("heads", [True, False])
def test_per_task_heads_go_with_lora_ml_only(method, heads):
    cfg = RunConfig(experiment="language", lora_ml_heads=heads, finetune_head=True, **CFG)
    rt, _ = stage_plan(cfg, method, 3)
    assert rt.lora_heads is (heads and method == "lora-ml")


@pytest.mark.parametrize("peft", [("lora",), ("last-layer",), ("last-layer", "lora"), ("lora", "last-layer")])
@pytest.mark.parametrize("method", ["sr", "lora-ml", "last-layer-ml", "reptile"])
def test_finetunings_follow_pairings_in_order(method, peft):
    cfg = RunConfig(peft=peft, **CFG)
    _, ft = stage_plan(cfg, method, 2)
    assert list(ft) == [p for p in PAIRINGS[method] if p in peft]
    for p, st in ft.items():
        assert st.method == p and st.epochs == 5 and st.lr == 0.0625 and st.k == 2
        assert st.validate_every == 0 and st.select_best is False and st.step_per == "round"
        _common(st, cfg)


@pytest.mark.parametrize("rank, want", [(None, 2), (8, 8), (1, 1)])
@pytest.mark.parametrize("head", [True, False])
def test_finetuning_rank_and_fresh_head(rank, want, head):
    cfg = RunConfig(experiment="language", finetune_rank=rank, finetune_head=head, lora_ml_heads=head, **CFG)
    _, ft = stage_plan(cfg, "sr", 2)
    assert ft["lora"].k == want and ft["last-layer"].k == want
    assert ft["lora"].lora_heads is head and ft["last-layer"].lora_heads is False


def test_compact_history():
    hist = [{"epoch": 1, "train_loss": 0.5, "lr": 0.1, "val": [{"accuracy": 0.25}, {"accuracy": 0.75}], "tag": "x"},
            {"epoch": 2, "train_loss": 0.25, "extra": 3},
            {"epoch": 3, "train_loss": 0.125, "lr": 0.05, "val": [{"accuracy": 0.5}, {}], "flag": True}]
    out = compact_history(hist)
    assert out == {"epoch": [1, 2, 3], "extra": [None, 3, None], "flag": [None, None, True],
                   "lr": [0.1, None, 0.05], "train_loss": [0.5, 0.25, 0.125],
                   "val_accuracy_per_task": [[0.25, 0.75], None, [0.5, None]]}
    assert list(out) == ["epoch", "extra", "flag", "lr", "train_loss", "val_accuracy_per_task"]
    assert compact_history([{"epoch": 1, "train_loss": 1.0}]) == {"epoch": [1], "train_loss": [1.0]}
    assert compact_history([]) == {"epoch": []}


def test_compact_history_compares_field_names_by_value():
    epoch = "".join(["ep", "och"])  # a key read from a file: a new string object
    out = compact_history([{epoch: 1, "train_loss": 0.5}, {epoch: 2, "train_loss": 0.25}])
    assert out == {"epoch": [1, 2], "train_loss": [0.5, 0.25]}


TINY = dict(dataset="random", seeds=(3,), epochs=1, finetune_epochs=1, width=8, batch_size=16, max_per_task=32,
            max_eval_per_task=16, retrain=("sr",), peft=("last-layer",))


def test_build_family_reads_a_cifar10_folder(tmp_path):
    pytest.importorskip("torch")
    import numpy as np

    from empirics.real._fixtures import write_cifar_batches
    from empirics.real._protocol import build_family

    write_cifar_batches(tmp_path, np.random.default_rng(0))
    fam = build_family(RunConfig(**{**TINY, "dataset": "cifar10", "data_root": str(tmp_path)}), verbose=False)
    assert [t.name for t in fam.retrain_tasks()] == ["0/1", "2/3", "4/5", "6/7"]
    with pytest.raises(ValueError, match="dataset must be cifar10\\|fashion-mnist\\|random"):
        build_family(RunConfig(**{**TINY, "dataset": "svhn"}), verbose=False)


def test_a_unit_is_quiet_by_default_and_times_itself(capsys):
    pytest.importorskip("torch")
    import time

    from empirics.real._protocol import build_family, train_unit

    cfg = RunConfig(**TINY)
    fam = build_family(cfg, verbose=False)
    capsys.readouterr()
    t0 = time.perf_counter()
    unit = train_unit(cfg, fam, "sr", 3)
    took = time.perf_counter() - t0
    assert capsys.readouterr().err == ""  # no progress bar unless asked
    assert 0 < unit["retrain_wall_s"] <= unit["wall_s"] <= took
    assert 0 < unit["finetune"]["last-layer"][0]["wall_s"] <= unit["wall_s"] - unit["retrain_wall_s"]


def test_train_unit_shows_no_progress_bar_unless_asked(monkeypatch):
    pytest.importorskip("torch")
    import empirics._trainer as trainer
    from empirics.real._protocol import build_family, train_unit

    seen = []

    class Stop(Exception):
        pass

    def spy(family, cfg, gen):
        seen.append(cfg.progress)
        raise Stop

    monkeypatch.setattr(trainer, "retrain", spy)
    cfg = RunConfig(**TINY)
    fam = build_family(cfg, verbose=False)
    for kwargs, want in (({}, False), ({"progress": True}, True)):
        with pytest.raises(Stop):
            train_unit(cfg, fam, "sr", 3, **kwargs)
        assert seen[-1] is want


def test_a_unit_draws_retraining_and_each_fine_tuning_from_its_own_stream(monkeypatch):
    """Retraining takes stage_generator(seed, 0); the fine-tuning of PEFT pi on test task ti
    stage_generator(seed, 1, pi, ti): never the retraining stream again."""
    pytest.importorskip("torch")
    import empirics.real._protocol as P

    keys = []
    real = P.stage_generator

    def recording(seed, *k):
        keys.append((seed, *k))
        return real(seed, *k)

    monkeypatch.setattr(P, "stage_generator", recording)
    cfg = RunConfig(**TINY)
    fam = P.build_family(cfg, verbose=False)
    unit = P.train_unit(cfg, fam, "sr", 3)
    n_peft = len(unit["finetune"])
    assert keys[0] == (3, 0)
    assert keys[1:] == [(3, 1, pi, 0) for pi in range(n_peft)] and n_peft >= 1
