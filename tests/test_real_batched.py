"""The fused, seed-batched vision engine (empirics.real._batched) against the sequential
PEFT-ML trainer: one fused forward equals the per-task sum of the trainer's losses (and
gradients) for the same weights; S seeds batched equal S single-seed runs; a single seed
equals the trainer's whole protocol (retraining, best epoch, fine-tuning)."""
import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from empirics._trainer import task_adapter_name  # noqa: E402
from empirics.real import _batched, _run, _vision_data  # noqa: E402
from empirics.real._cifar import VisionArrays  # noqa: E402
from empirics.real._vision import VisionFamily  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: float32 losses of the same weights through two summation orders (batched matmuls vs
#: peft's per-task Linear calls) agree to a few ulps; 1e-5 relative leaves room for the
#: few hundred terms of a forward and still fails on any wrong weight or adapter.
LOSS_RTOL = 1e-5
#: Gradients summed per task (trainer: one backward per task) vs one backward of the
#: fused sum, relative to the gradient's norm.
GRAD_RTOL = 1e-5
#: Batched seeds vs separate runs and the engine vs the trainer after a few optimizer
#: steps: the brief's 1e-6 (float32 rounding, amplified a little by Adam's division).
RUN_RTOL = 1e-6
#: Image batch of the tiny runs: 40 images per task give 3 full batches and one of 4,
#: so padded (unequal) batches are exercised.
BATCH = 12


def _signal_arrays(rng, n_train=200, n_test=100):
    """Random images whose odd classes are brighter: the label is learnable, so accuracies
    and best epochs are not constant (a test on pure noise could not fail on them)."""
    def split(n):
        y = np.arange(n) % 10
        x = rng.integers(0, 240, (n, 32, 32, 3)).astype(np.uint8)
        x[y % 2 == 1] += 12
        return x, y
    (tx, ty), (vx, vy) = split(n_train), split(n_test)
    return VisionArrays(tx, ty, vx, vy, tuple(f"c{i}" for i in range(10)), source="test", reader="in-memory")


@pytest.fixture(scope="module")
def family():
    tasks = _vision_data.build_vision_tasks(_signal_arrays(np.random.default_rng(0)))
    return VisionFamily(tasks, batch_size=BATCH, dim=8)


def _cfg(**kw):
    base = dict(dataset="random", seeds=(1, 2), epochs=2, finetune_epochs=2, width=8, batch_size=BATCH,
                reptile_outer_epochs=1, reptile_inner_steps=3, lr=3e-3, finetune_lr=3e-3)
    return _run.RunConfig(**{**base, **kw})


def _trainer_adapters(family, method, gen):
    base = family.init_model(gen)
    names = [task_adapter_name(t) for t in range(len(family.retrain_tasks()))]
    if method == "lora-ml":
        ad = family.attach_lora(base, names, rank=2, stage="retrain", generator=gen)
    elif method == "last-layer-ml":
        ad = family.attach_heads(base, names, stage="retrain", generator=gen)
    else:
        from empirics._trainer import NoAdapters
        ad = NoAdapters(base)
    with torch.no_grad():  # lora_B starts at zero: move every adapter so that it matters
        for p in ad.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return ad, names


def _fused_and_sequential(family, method, *, permute_adapters=False):
    gen = torch.Generator().manual_seed(11)
    ad, names = _trainer_adapters(family, method, gen)
    tasks = family.retrain_tasks()
    batches = [next(t.batches("train", torch.Generator().manual_seed(3 + i))) for i, t in enumerate(tasks)]
    ad.model.train()
    family._device_generator(torch.device("cpu")).manual_seed(99)  # the trainer's dropout stream
    seq = 0.0
    for t, batch in enumerate(batches):
        if method != "sr":
            ad.activate(names[t])
        seq = seq + family.loss(ad.model, batch)
    seq.backward()
    seq_grad = ad.base_parameters()[0].grad.clone()

    model = _batched.params_from_trainer(ad, names)
    if permute_adapters:
        model = _batched.StackedModel(
            base=model.base, lora_scaling=model.lora_scaling,
            lora={k: (a.roll(1, 1), b.roll(1, 1)) for k, (a, b) in model.lora.items()} if model.lora else None,
            heads=tuple(h.roll(1, 1) for h in model.heads) if model.heads is not None else None)
    for v in [*model.base.values(), *model.adapter_tensors()]:
        v.requires_grad_(True)
    net = _batched.BatchedMixer(family.arch)
    g = torch.Generator().manual_seed(99)  # the same masks, drawn task after task
    masks = [[net_mask(g, shp) for shp in net.mask_shapes(len(b[1]))] for b in batches]
    masks = [torch.stack([m[k] for m in masks])[None] for k in range(len(masks[0]))]
    x = torch.stack([family._prepare(b[0]) for b in batches])[None]
    y = torch.stack([b[1] for b in batches])[None]
    logits = net.logits(net.patchify(x), model, masks)
    fused = _batched.task_losses(logits, y, torch.ones(y.shape)).sum()
    fused.backward()
    return float(seq.detach()), float(fused.detach()), seq_grad, model.base["patch_embed.weight"].grad[0]


def net_mask(g, shape):
    from empirics.real._mixer import keep_mask

    return keep_mask(shape, 0.1, g)


@pytest.mark.parametrize("method", ["lora-ml", "last-layer-ml", "sr"])
def test_fused_tasks_equal_sequential_sum_of_losses(family, method):
    seq, fused, g_seq, g_fused = _fused_and_sequential(family, method)
    assert fused == pytest.approx(seq, rel=LOSS_RTOL, abs=0)
    # single entries near zero carry absolute rounding only: compare the gradient as a vector
    assert float((g_fused - g_seq).norm()) <= GRAD_RTOL * float(g_seq.norm())


@pytest.mark.parametrize("method", ["lora-ml", "last-layer-ml"])
def test_fused_tasks_negative_control_wrong_adapter_per_task(family, method):
    seq, fused, _, _ = _fused_and_sequential(family, method, permute_adapters=True)
    # the equality test above would fail, by a wide margin over its tolerance
    assert abs(fused - seq) > 10 * LOSS_RTOL * abs(seq)


def _assert_units_close(a, b):
    ha, hb = a["retrain_history"], b["retrain_history"]
    assert ha["epoch"] == hb["epoch"] and a["best_epoch"] == b["best_epoch"]
    assert a["retrain_steps"] == b["retrain_steps"] > 0
    np.testing.assert_allclose(ha["train_loss"], hb["train_loss"], rtol=RUN_RTOL)
    for k in ("val_accuracy", "task"):
        assert ha.get(k) == hb.get(k)
    assert a["finetune"].keys() == b["finetune"].keys()
    for p in a["finetune"]:
        fa, fb = a["finetune"][p][0], b["finetune"][p][0]
        assert fa["accuracy_per_epoch"] == fb["accuracy_per_epoch"]
        assert fa["loss"] == pytest.approx(fb["loss"], rel=RUN_RTOL, abs=0)


@pytest.mark.parametrize("method", ["lora-ml", "reptile"])
def test_batched_seeds_equal_separate_runs(family, method):
    cfg = _cfg()
    together = _batched.run_group(cfg, family, method, [1, 2])
    apart = [_batched.run_group(cfg, family, method, [s])[0] for s in (1, 2)]
    for a, b in zip(together, apart):
        _assert_units_close(a, b)
    # and the two seeds are genuinely different runs
    assert together[0]["retrain_history"]["train_loss"] != together[1]["retrain_history"]["train_loss"]


@pytest.mark.parametrize("method", ["lora-ml", "reptile", "last-layer-ml"])
def test_one_seed_equals_the_sequential_trainer(family, method):
    cfg = _cfg(seeds=(4,))
    ours = _batched.run_group(cfg, family, method, [4])[0]
    theirs = _run.train_unit(cfg, family, method, 4, False)
    _assert_units_close(ours, theirs)
    assert len(set(ours["retrain_history"]["train_loss"])) > 1  # it trained


@pytest.mark.parametrize("method", ["lora-ml", "last-layer-ml", "sr"])
def test_one_backward_per_task_equals_the_trainer_and_the_fused_step(family, method, monkeypatch):
    from empirics.real import _batched_engine

    cfg = _cfg(seeds=(4,))
    fused = _batched.run_group(cfg, family, method, [4])[0]
    monkeypatch.setattr(_batched_engine, "FUSED_IMAGES_CPU", 1)  # every step in task chunks
    chunked = _batched.run_group(cfg, family, method, [4])[0]
    _assert_units_close(chunked, _run.train_unit(cfg, family, method, 4, False))
    _assert_units_close(chunked, fused)


@pytest.fixture(scope="module")
def family_no_augment(family):
    return VisionFamily(family.tasks, batch_size=BATCH, dim=8, augment=False)


@pytest.mark.parametrize("method, options", [
    ("reptile", dict(reptile_inner_optimizer="adamw", reptile_outer="adam", reptile_outer_lr=1e-3,
                     weight_decay=1e-2)),
    ("sr", dict(step_accounting="official")),  # one optimizer step per task batch
    ("lora-ml", dict(lora_ml_heads=True, finetune_head=True)),
    ("last-layer-ml", dict(augment=False)),  # dropout still seeded per batch from the run's generator
])
def test_one_seed_equals_the_sequential_trainer_under_stage_options(family, family_no_augment, method, options):
    cfg = _cfg(seeds=(4,), **options)
    fam = family if cfg.augment else family_no_augment
    ours = _batched.run_group(cfg, fam, method, [4])[0]
    theirs = _run.train_unit(cfg, fam, method, 4, False)
    _assert_units_close(ours, theirs)
    assert len(set(ours["retrain_history"]["train_loss"])) > 1  # it trained


def test_stacked_weights_round_trip(family):
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    states = [family.init_model(g).state_dict() for g in gens]
    st = _batched.stack_state_dicts(states)
    back = _batched.unstack_state_dict(st, 1)
    assert all(torch.equal(back[k], states[1][k]) for k in states[1])


def test_seed_groups():
    assert _batched.seed_groups([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert _batched.seed_groups([1, 2], None) == [[1, 2]]
    with pytest.raises(ValueError):
        _batched.seed_groups([1, 2], 0)


def test_run_resumes_per_seed_and_summarizes(family, tmp_path, monkeypatch, capsys):
    cfg = dataclasses.replace(_cfg(epochs=1, finetune_epochs=1), retrain=("sr", "lora-ml"))
    monkeypatch.setattr(_batched, "_family_for", lambda c: family)
    first = _batched.run(cfg, tmp_path, group_size=1, max_units=1, verbose=False)
    assert capsys.readouterr().err == ""  # quiet: not even the stop at the unit limit is reported
    assert [r["seeds"] for r in first["rows"]] == [[1], [1]]  # SR + LoRA and SR + Last-Layer, seed 1 only
    assert len(_batched.planned_units(cfg, tmp_path, group_size=1)) == 3
    rec = _batched.run(cfg, tmp_path, group_size=1, verbose=False)
    assert [r["row"] for r in rec["rows"]] == ["LoRA-ML", "SR + LoRA", "SR + Last-Layer"]
    assert all(r["seeds"] == [1, 2] for r in rec["rows"])
    assert _batched.planned_units(cfg, tmp_path) == []
    # the sequential runner reads the batched units as its own (same keys and configurations)
    assert sorted(_run.check_units(cfg, tmp_path)) == sorted(u.key for u in _run.make_units(cfg))
    merged = _run.run(cfg, tmp_path, compute=False, verbose=False)
    assert [r["accuracy"] for r in merged["rows"]] == [r["accuracy"] for r in rec["rows"]]
    # units of other settings in the folder are refused before any work
    with pytest.raises(ValueError):
        _batched.planned_units(dataclasses.replace(cfg, lr=1e-3), tmp_path)


def test_cli_engine_batched_runs_and_rejects_a_bad_group_size(tmp_path, capsys):
    from empirics.real.cli import main

    argv = ["vision", "--dataset", "random", "--engine", "batched", "--seeds", "1", "2", "--epochs", "1",
            "--finetune-epochs", "1", "--width", "8", "--batch-size", "32", "--retrain", "last-layer-ml",
            "--peft", "last-layer"]
    assert main([*argv, "--group-size", "0", "--out", str(tmp_path / "bad")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
    assert main([*argv, "--out", str(tmp_path / "ok")]) == 0
    assert "Last-Layer-ML" in capsys.readouterr().out
    rec = json.loads((tmp_path / "ok" / "vision_record.json").read_text())
    assert rec["engine"] == "batched" and rec["rows"][0]["seeds"] == [1, 2]


def test_run_refuses_unimplemented_options_before_any_work(tmp_path):
    for cfg in (_cfg(lora_dropout=0.1), _cfg(experiment="language")):
        with pytest.raises(ValueError):
            _batched.run(cfg, tmp_path / "refused", verbose=False)
        assert not (tmp_path / "refused").exists()


def test_unsupported_stage_options_are_refused(family):
    from empirics._trainer import StageConfig

    gens = [torch.Generator().manual_seed(0)]
    for method, bad in (("lora-ml", dict(inner_adapter_steps=2)), ("lora-ml", dict(lora_dropout=0.1)),
                        ("lora-ml", dict(step_per="batch")), ("last-layer-ml", dict(step_per="batch"))):
        with pytest.raises(ValueError):
            _batched.retrain_group(family, StageConfig(method=method, epochs=1, lr=1e-3, **bad), gens)


@pytest.mark.parametrize("method", ["lora-ml", "sr", "last-layer-ml", "reptile"])
def test_batched_seeds_retrain_bitwise_equal_weights_on_cpu(family, method):
    rt, _ = _run.stage_plan(_cfg(), method, len(family.retrain_tasks()))
    both, _, best_both = _batched.retrain_group(family, rt, [_run.stage_generator(s, 0) for s in (1, 2)])
    alone, _, best_alone = _batched.retrain_group(family, rt, [_run.stage_generator(2, 0)])
    assert best_both[1] == best_alone[0]
    assert all(torch.equal(both[k][1], alone[k][0]) for k in alone)
    assert not torch.equal(both["patch_embed.weight"][0], both["patch_embed.weight"][1])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_mask_realises_its_drop_probability_and_replays(p):
    from empirics.real._mixer import drop_probability, dropout_noise, keep_mask

    keep = keep_mask((500, 201), p, torch.Generator().manual_seed(5))  # an odd count: a partial word
    q = drop_probability(p)
    assert abs(q - p) <= 2 ** -17
    dropped = 1.0 - float(keep.float().mean())
    assert abs(dropped - q) < 5 * (q * (1 - q) / keep.numel()) ** 0.5  # 5 standard errors
    assert torch.equal(keep, keep_mask((500, 201), p, torch.Generator().manual_seed(5)))
    # the multiplier keeps the expectation: mean of keep / (1 - q) over many entries is 1
    assert float(dropout_noise(keep, p).double().mean()) == pytest.approx(1.0, abs=5 * (q / (1 - q) / keep.numel()) ** 0.5)


@pytest.mark.parametrize("make", [
    lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
    lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=1e-2),
    lambda ps: torch.optim.SGD(ps, lr=1e-1),
])
def test_multi_tensor_optimizer_is_the_single_tensor_update_bit_for_bit(make):
    from empirics.real._batched_train import multi_tensor

    def run(wrap):
        g = torch.Generator().manual_seed(0)
        ps = [torch.randn(s, generator=g).requires_grad_(True) for s in ((3, 5), (7,), (2, 4, 6))]
        opt = wrap(make(ps))
        for _ in range(5):
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        return opt, ps

    opt, multi = run(multi_tensor)
    _, single = run(lambda o: o)
    assert all(g["foreach"] for g in opt.param_groups)  # the other code path really ran
    assert all(torch.equal(a, b) for a, b in zip(multi, single))
    assert not torch.equal(multi[0], torch.randn((3, 5), generator=torch.Generator().manual_seed(0)))  # it moved


def test_route_sends_single_seed_reptile_retraining_on_a_cpu_to_the_sequential_trainer(family, tmp_path,
                                                                                       monkeypatch, capsys):
    cpu = _cfg()
    assert _batched.route(cpu, "reptile", 1)[0] == "sequential"
    assert _batched.route(cpu, "reptile", _batched.REPTILE_MIN_SEEDS_CPU)[0] == "batched"
    assert all(_batched.route(cpu, m, 1) == ("batched", "") for m in ("lora-ml", "last-layer-ml", "sr"))
    assert _batched.route(dataclasses.replace(cpu, device="cuda"), "reptile", 1)[0] == "batched"
    # a routed group: the trainer's retraining (its history and best epoch exactly), fine-tuned
    # batched, equal to the trainer's whole unit; the run says so
    cfg = dataclasses.replace(_cfg(epochs=1, finetune_epochs=1), retrain=("reptile",), seeds=(1,))
    monkeypatch.setattr(_batched, "_family_for", lambda c: family)
    _batched.run(cfg, tmp_path, group_size=1, verbose=True)
    assert "retraining routed to the sequential trainer" in capsys.readouterr().err
    (ours,) = _batched.stored_results(cfg, tmp_path)
    theirs = _run.train_unit(cfg, family, "reptile", 1, False)
    assert (ours["engine"], ours["retrain_engine"]) == ("batched", "sequential")
    assert ours["retrain_history"] == theirs["retrain_history"]
    _assert_units_close(ours, theirs)
    two = _batched.run_group(dataclasses.replace(cfg, seeds=(1, 2)), family, "reptile", [1, 2])
    assert {u["retrain_engine"] for u in two} == {"batched"}


def test_a_batched_group_is_not_reported_as_routed(family, tmp_path, monkeypatch, capsys):
    """The verbose run names the trainer only for a group it routed there; a group retrained
    batched gets its accuracy line and no routing line."""
    cfg = dataclasses.replace(_cfg(epochs=1, finetune_epochs=1), retrain=("sr",), seeds=(1,))
    monkeypatch.setattr(_batched, "_family_for", lambda c: family)
    _batched.run(cfg, tmp_path, group_size=1, verbose=True)
    err = capsys.readouterr().err
    assert "fine-tuned accuracy" in err and "routed" not in err


def test_settings_read_from_a_file_take_the_same_branches(family):
    """A configuration read back from JSON holds new string objects: the engine compares its
    settings by value (Reptile's outer step, the step accounting) as the trainer does."""
    fresh = "".join(["inter", "polate"])
    cfg = _cfg(seeds=(4, 5), reptile_outer=fresh)
    assert cfg.reptile_outer == "interpolate"
    # two seeds: batched on a CPU (one seed of Reptile is routed to the sequential trainer)
    ours = _batched.run_group(cfg, family, "reptile", [4, 5])
    theirs = _batched.run_group(_cfg(seeds=(4, 5)), family, "reptile", [4, 5])
    for a, b in zip(ours, theirs):
        _assert_units_close(a, b)


def test_without_best_epoch_selection_every_seed_keeps_its_last_weights(family):
    """select_best=False: no best epoch per seed (None each) and the options stay keyword-only."""
    import dataclasses

    rt, _ = _run.stage_plan(_cfg(), "sr", len(family.retrain_tasks()))
    rt = dataclasses.replace(rt, select_best=False, epochs=1)
    gens = [_run.stage_generator(s, 0) for s in (1, 2)]
    final, hist, best = _batched.retrain_group(family, rt, gens)
    assert best == [None, None] and len(hist) == 2
    with pytest.raises(TypeError):
        _batched.retrain_group(family, rt, gens, True)


def test_a_verbose_run_says_where_it_stopped_at_its_unit_limit(family, tmp_path, monkeypatch, capsys):
    cfg = dataclasses.replace(_cfg(epochs=1, finetune_epochs=1), retrain=("sr",))
    monkeypatch.setattr(_batched, "_family_for", lambda c: family)
    _batched.run(cfg, tmp_path, group_size=1, max_units=1, verbose=True)
    err = capsys.readouterr().err
    assert "[vision batched] stopping before " in err and "(limit reached); rerun to resume" in err


def test_the_batched_unit_refuses_the_language_experiment():
    cfg = _cfg()
    config = dataclasses.asdict(dataclasses.replace(cfg, experiment="language"))
    with pytest.raises(ValueError, match="the batched engine runs the vision experiment only"):
        _batched.batched_unit(config, "sr", [1])


@pytest.mark.parametrize("method", ["sr", "lora-ml"])
def test_batched_validation_losses_equal_the_trainers(family, method):
    """Each epoch's per-task validation loss (summed loss / images, float64) is the
    sequential trainer's, not only the accuracies the unit format keeps."""
    rt, _ = _run.stage_plan(_cfg(), method, len(family.retrain_tasks()))
    _, ours, _ = _batched.retrain_group(family, rt, [_run.stage_generator(3, 0)])
    from empirics.real._batched_train import sequential_retrain

    _, theirs, _ = sequential_retrain(family, rt, [3])
    a = [[v["loss"] for v in h["val"]] for h in ours[0] if "val" in h]
    b = [[v["loss"] for v in h["val"]] for h in theirs[0] if "val" in h]
    assert len(a) == len(b) > 0 and all(0 < x != int(x) for row in a for x in row)
    np.testing.assert_allclose(a, b, rtol=RUN_RTOL)


def test_best_epoch_selection_without_any_validation_keeps_the_last_weights(family):
    """select_best with no validated epoch (validate_every beyond the epochs): no best epoch
    (None), and the weights are the last ones, not the initial copy kept for selection."""
    import dataclasses

    rt, _ = _run.stage_plan(_cfg(), "sr", len(family.retrain_tasks()))
    rt = dataclasses.replace(rt, select_best=True, epochs=2, validate_every=5)
    gens = [_run.stage_generator(s, 0) for s in (1, 2)]
    final, hist, best = _batched.retrain_group(family, rt, gens)
    last, _, _ = _batched.retrain_group(family, dataclasses.replace(rt, select_best=False),
                                        [_run.stage_generator(s, 0) for s in (1, 2)])
    assert best == [None, None]
    assert all(torch.equal(final[k], last[k]) for k in last)


@pytest.mark.parametrize("step_per", ["round", "batch"])
def test_the_progress_bars_count_every_optimizer_step(family, monkeypatch, step_per):
    """Retraining: epochs x rounds, times T when SR steps once per task batch (the setting
    compared by value, as read from a file); fine-tuning: epochs x rounds of the test task."""
    import dataclasses

    from empirics.real import _batched_train as BT

    totals = []
    real_bar = BT._bar
    monkeypatch.setattr(BT, "_bar", lambda total, desc, progress: (totals.append((desc, total)),
                                                                   real_bar(total, desc, progress))[1])
    T = len(family.retrain_tasks())
    rt, fts = _run.stage_plan(_cfg(), "sr", T)
    rt = dataclasses.replace(rt, epochs=2, step_per="".join(["bat", "ch"]) if step_per == "batch" else step_per)
    base, _, _ = BT.retrain_group(family, rt, [_run.stage_generator(1, 0)])
    rounds = max(-(-len(y) // family.batch_size) for y in family.tasks.train_y)
    assert totals[-1] == ("batched retrain-sr", 2 * rounds * (T if step_per == "batch" else 1))
    ft = dataclasses.replace(next(iter(fts.values())), epochs=3)
    BT.finetune_group(family, base, ft, [_run.stage_generator(1, 1)])
    ft_rounds = -(-len(family.tasks.ft_y) // family.batch_size)
    assert totals[-1] == (f"batched finetune-{ft.method}", 3 * ft_rounds)
