"""Real-data families through the PEFT-ML trainer: every retraining x fine-tuning path,
gradient flow to the base and all adapters, model selection, records and resumption."""
import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("transformers")

from empirics._trainer import StageConfig, retrain, task_adapter_name  # noqa: E402
from empirics.real import _fixtures, _run, _vision_data  # noqa: E402
from empirics.real._vision import VisionFamily  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_VISION = dict(dataset="random", seeds=(3,), epochs=2, finetune_epochs=1, width=8, batch_size=16,
                   reptile_outer_epochs=1, reptile_inner_steps=2, lr=1e-3)


@pytest.fixture(scope="module")
def vision_family():
    arrays = _fixtures.random_vision_arrays(np.random.default_rng(0), n_train=120, n_test=60)
    return VisionFamily(_vision_data.build_vision_tasks(arrays), batch_size=8, dim=8)


@pytest.fixture(scope="module")
def language_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lang")
    _fixtures.write_tiny_bert(d / "bert", hidden=16, layers=1)
    _fixtures.write_parlai_dialogues(d / "valid.txt", np.random.default_rng(0), episodes_per_persona=5, turns=2)
    _fixtures.write_persona_map(d / "maps")
    return d


def test_init_is_a_function_of_the_generator(vision_family):
    a = vision_family.init_model(torch.Generator().manual_seed(5))
    b = vision_family.init_model(torch.Generator().manual_seed(5))
    c = vision_family.init_model(torch.Generator().manual_seed(6))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["patch_embed.weight"], sc["patch_embed.weight"])


def test_lora_ml_gradients_reach_base_and_every_adapter(vision_family):
    base = vision_family.init_model(torch.Generator().manual_seed(0))
    tasks = vision_family.retrain_tasks()
    names = [task_adapter_name(t) for t in range(len(tasks))]
    ad = vision_family.attach_lora(base, names, rank=1, stage="retrain", generator=torch.Generator().manual_seed(1))
    # lora_B starts at zero; move it so that lora_A receives gradient too
    with torch.no_grad():
        for n in names:
            for p in ad.adapter_parameters(n):
                p.add_(0.01)
    gen = torch.Generator().manual_seed(2)
    total = 0
    for t, task in enumerate(tasks):
        ad.activate(names[t])
        total = total + vision_family.loss(ad.model, next(task.batches("train", gen)))
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ad.base_parameters() if p.requires_grad)
    assert any(p.requires_grad for p in ad.base_parameters())
    for n in names:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ad.adapter_parameters(n)), n
    # biases of the adapted Linear layers are kept and trained
    assert any("base_layer.bias" in k for k, _ in ad.model.named_parameters())


def test_augmentation_in_the_trainer_differs_between_epochs(vision_family):
    task = vision_family.retrain_tasks()[0]
    gen = torch.Generator().manual_seed(0)
    x, y = task.train
    first = vision_family._augment((x, y), gen)[0]
    second = vision_family._augment((x, y), gen)[0]
    assert first.shape == x.shape and first.dtype == torch.float32
    assert not torch.allclose(first, second)


def test_model_selection_returns_the_best_validation_epoch(vision_family):
    cfg = StageConfig(method="sr", epochs=4, lr=3e-3, optimizer="adam", validate_every=1, select_best=True)
    res = retrain(vision_family, cfg, torch.Generator().manual_seed(0))
    accs = [h["val_accuracy"] for h in res.history]
    assert res.best_epoch == 1 + int(np.argmax(accs))
    res.model.eval()
    again = np.mean([vision_family.evaluate(res.model, t, "val")["accuracy"] for t in vision_family.retrain_tasks()])
    assert again == pytest.approx(max(accs))


def test_vision_run_all_paths_records_and_resume(tmp_path, capsys):
    cfg = _run.RunConfig(**TINY_VISION)
    rec = _run.run(cfg, tmp_path, verbose=False)
    assert [r["row"] for r in rec["rows"]] == [_run.ROW_LABELS[r] for r in _run.ROWS]
    for r in rec["rows"]:
        assert 0.0 <= r["accuracy"]["mean"] <= 1.0 and r["seeds"] == [3]
    units = sorted(p.name for p in (tmp_path / "units").glob("*.json"))
    assert units == sorted(f"{m}_seed3.json" for m in ("lora-ml", "sr", "reptile", "last-layer-ml"))
    stored = json.loads((tmp_path / "units" / "sr_seed3.json").read_text())
    assert stored["config"]["method"] == "sr" and stored["config"]["run"]["epochs"] == 2
    unit = stored["result"]
    assert set(unit["finetune"]) == {"lora", "last-layer"}
    assert len(unit["retrain_history"]["val_accuracy"]) == 2
    on_disk = json.loads((tmp_path / "vision_record.json").read_text())
    assert on_disk["provenance"]["device"] == "cpu" and on_disk["notes"]
    # resumption: finished units are not recomputed
    mtime = (tmp_path / "units" / "sr_seed3.json").stat().st_mtime_ns
    again = _run.run(cfg, tmp_path, verbose=False)
    assert (tmp_path / "units" / "sr_seed3.json").stat().st_mtime_ns == mtime
    # with nothing left to train, the record still describes the family (read back from its file)
    assert again["family"] == rec["family"] and rec["family"]
    # resume=False: the stored units are removed first and every unit is trained again
    fresh = _run.run(cfg, tmp_path, verbose=False, resume=False)
    assert (tmp_path / "units" / "sr_seed3.json").stat().st_mtime_ns != mtime
    assert [r["accuracy"]["values"] for r in fresh["rows"]] == [r["accuracy"]["values"] for r in rec["rows"]]


def test_language_run_all_paths(language_files, tmp_path):
    d = language_files
    cfg = _run.RunConfig(experiment="language", seeds=(0,), epochs=1, finetune_epochs=1, lr=1e-3, finetune_lr=1e-3,
                         optimizer="adamw", batch_size=4, k=2, lora_alpha=4, lora_dropout=0.0,
                         reptile_outer_epochs=1, reptile_inner_steps=1, model=str(d / "bert"),
                         valid_file=str(d / "valid.txt"), map_dir=str(d / "maps"), n_test=1, n_retrain=2,
                         max_length=24)
    rec = _run.run(cfg, tmp_path, verbose=False)
    assert len(rec["rows"]) == 6
    for r in rec["rows"]:
        assert list(r["per_task"]) == rec["family"]["test_tasks"] and len(r["per_task"]) == 1
    assert rec["family"]["source"]["selection"] == "official"
    assert any("Test personas: valid-file clusters" in n for n in rec["notes"])  # which clusters for what
    assert any("not available" in n for n in rec["notes"])
    assert rec["family"]["retrain_tasks"] and not set(rec["family"]["retrain_tasks"]) & set(rec["family"]["test_tasks"])


def test_cli_reduced_vision_run(tmp_path, capsys):
    from empirics.real.cli import main

    rc = main(["vision", "--dataset", "random", "--seeds", "1", "--epochs", "1", "--finetune-epochs", "1",
               "--width", "8", "--batch-size", "16", "--retrain", "lora-ml", "--peft", "lora", "--out", str(tmp_path)])
    assert rc == 0
    assert "LoRA-ML" in capsys.readouterr().out
    assert (tmp_path / "vision_table.txt").is_file()
    assert main(["vision", "--data-root", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2


def test_gpu_prepare_is_an_alias_of_bundle_pack(tmp_path):
    # the shell GPU script became ``python -m empirics.real.bundle`` (tests/test_real_bundle.py)
    from empirics.real.gpu_prepare import main

    assert main(["--dest", str(tmp_path / "b"), "--no-language", "--archive", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "b").exists()


def test_summarize_only_merges_units_of_separate_processes(tmp_path):
    import time

    base = dict(TINY_VISION, retrain=("last-layer-ml",), peft=("last-layer",), epochs=1, finetune_epochs=1)
    for seed in (1, 2):  # as two processes sharing one output folder would
        t0 = time.perf_counter()
        last = _run.run(_run.RunConfig(**dict(base, seeds=(seed,))), tmp_path, verbose=False)
        assert 0 < last["total_wall_s"] <= time.perf_counter() - t0
    merged = _run.run(_run.RunConfig(**dict(base, seeds=(1, 2))), tmp_path, verbose=False, compute=False)
    row = merged["rows"][0]
    assert row["seeds"] == [1, 2] and np.isfinite(row["accuracy"]["se"])
    # summarising again computes nothing and keeps the wall time of the run that computed
    assert merged["total_wall_s"] == last["total_wall_s"]


def test_vision_training_is_deterministic_for_a_seed(vision_family):
    cfg = StageConfig(method="lora-ml", epochs=2, lr=1e-3, optimizer="adam", validate_every=1, select_best=True)
    a = retrain(vision_family, cfg, torch.Generator().manual_seed(11))
    b = retrain(vision_family, cfg, torch.Generator().manual_seed(11))
    assert a.history == b.history
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_schedules_default_to_the_official_code_and_reach_the_records(tmp_path):
    from empirics.real.cli import add_subcommands, config_from_args
    import argparse

    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command"))

    def cfg(*argv):
        return config_from_args(parser.parse_args([*argv, "--out", str(tmp_path)]))

    assert (cfg("vision").schedule, cfg("vision").warmup_fraction) == ("cosine", 0.0)
    assert (cfg("language").schedule, cfg("language").warmup_fraction) == ("linear", 0.1)
    assert cfg("language", "--schedule", "constant").warmup_fraction == 0.0
    got = cfg("vision", "--schedule", "linear", "--warmup-fraction", "0.05")
    assert (got.schedule, got.warmup_fraction) == ("linear", 0.05)
    with pytest.raises(ValueError, match="warmup"):
        cfg("vision", "--schedule", "constant", "--warmup-fraction", "0.1")
    # every stage of a unit gets the schedule
    rt, ft = _run.stage_plan(got, "reptile", 4)
    assert {(c.schedule, c.warmup_fraction) for c in [rt, *ft.values()]} == {("linear", 0.05)}
    rec = _run.run(_run.RunConfig(**dict(TINY_VISION, retrain=("sr",), peft=("last-layer",), epochs=1)), tmp_path,
                   verbose=False)
    assert rec["config"]["schedule"] == "cosine" and rec["schedule"]["name"] == "cosine"
    assert "cosine annealing" in " ".join(rec["notes"])


def test_language_training_is_bitwise_reproducible_for_a_seed(language_files):
    """Dropout masks come from the run's generator (through a forked, reseeded RNG): two runs
    with one seed agree bitwise whatever the global RNG did, another seed differs, and the
    global RNG state is left untouched."""
    from empirics.real._text import DROPOUT_SEED

    d = language_files
    fam = _run.build_family(_run.RunConfig(experiment="language", batch_size=4, model=str(d / "bert"),
                                           valid_file=str(d / "valid.txt"), map_dir=str(d / "maps"), n_test=1,
                                           n_retrain=2, max_length=24), verbose=False)
    # dropout is active and driven by the batch's seed alone
    model = fam.init_model(torch.Generator().manual_seed(0)).train()
    batch = next(fam.retrain_tasks()[0].batches("train", torch.Generator().manual_seed(0)))
    assert torch.equal(fam.loss(model, batch), fam.loss(model, batch))
    assert not torch.equal(fam.loss(model, batch), fam.loss(model, {**batch, DROPOUT_SEED: batch[DROPOUT_SEED] + 1}))

    cfg = StageConfig("lora-ml", epochs=1, lr=1e-3, k=2, lora_dropout=0.1, optimizer="adamw", schedule="linear",
                      warmup_fraction=0.1, validate_every=1)

    def run(seed):
        res = retrain(fam, cfg, torch.Generator().manual_seed(seed))
        return res.history, {k: v.clone() for k, v in res.model.state_dict().items()}

    before = torch.get_rng_state()
    ha, sa = run(0)
    assert torch.equal(torch.get_rng_state(), before)
    torch.rand(5)  # moving the global RNG must not matter
    hb, sb = run(0)
    hc, sc = run(1)
    assert ha == hb and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert ha != hc and not all(torch.equal(sa[k], sc[k]) for k in sa)


# -- protocol fidelity (Reptile order, step accounting, dropout seeding) -----------------------

class _Interrupt(Exception):
    pass


class _FailingFamily:
    """Delegates to a family; raises after ``fail_after`` training losses (a killed run)."""

    def __init__(self, family, fail_after=None):
        self._f, self.fail_after, self.calls = family, fail_after, 0

    def __getattr__(self, name):
        return getattr(self._f, name)

    def loss(self, model, batch):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise _Interrupt
        return self._f.loss(model, batch)


def test_reptile_visits_every_task_once_per_outer_epoch_in_a_shuffled_order(vision_family):
    T = len(vision_family.retrain_tasks())
    cfg = StageConfig(method="reptile", epochs=6 * T, lr=0.5, reptile_inner_steps=1, validate_every=T)
    orders = []
    for seed in (0, 1):
        res = retrain(vision_family, cfg, torch.Generator().manual_seed(seed))
        visits = [h["task"] for h in res.history]
        blocks = [visits[i:i + T] for i in range(0, len(visits), T)]
        assert all(sorted(b) == list(range(T)) for b in blocks)  # each outer epoch: every task once
        orders.append(blocks)
    # shuffled from the run's generator: not one fixed order (6 epochs x 2 seeds of 4! orders)
    assert len({tuple(b) for o in orders for b in o}) > 1 and orders[0] != orders[1]


def test_reptile_resumes_mid_outer_epoch_with_the_same_task_order(vision_family, tmp_path):
    T = len(vision_family.retrain_tasks())
    cfg = StageConfig(method="reptile", epochs=2 * T, lr=0.5, reptile_inner_steps=1, checkpoint_every=1,
                      reptile_inner_optimizer="adam", reptile_outer="interpolate")
    full = retrain(vision_family, cfg, torch.Generator().manual_seed(4))
    ck = tmp_path / "ck.pt"
    killed = _FailingFamily(vision_family, fail_after=T + 2)  # dies inside the second outer epoch
    with pytest.raises(_Interrupt):
        retrain(killed, cfg, torch.Generator().manual_seed(4), checkpoint=ck)
    resumed = retrain(vision_family, cfg, torch.Generator().manual_seed(4), checkpoint=ck)
    assert [h["task"] for h in resumed.history] == [h["task"] for h in full.history]
    sa, sb = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("outer", ["interpolate", "adam"])
def test_reptile_outer_steps_move_toward_the_inner_solution(vision_family, outer):
    """One outer iteration with eps = 1 (interpolation) lands on phi; the official Adam step
    with the pseudo-gradient (theta - phi)/T moves every weight by about lr toward phi."""
    from empirics import _trainer

    cfg = StageConfig(method="reptile", epochs=1, lr=1.0 if outer == "interpolate" else 1e-3,
                      reptile_inner_steps=2, reptile_outer=outer)
    theta = vision_family.init_model(torch.Generator().manual_seed(0))
    res = retrain(vision_family, cfg, torch.Generator().manual_seed(0))
    # the phi of this run: the same inner loop by hand from the same generator state
    g = torch.Generator().manual_seed(0)
    model = vision_family.init_model(g)
    t = int(torch.randperm(len(vision_family.retrain_tasks()), generator=g)[0])
    inner = torch.optim.SGD(model.parameters(), lr=cfg.reptile_inner_lr)
    model.train()
    for i, batch in enumerate(vision_family.retrain_tasks()[t].batches("train", g)):
        inner.zero_grad()
        vision_family.loss(model, batch).backward()
        inner.step()
        if i + 1 == cfg.reptile_inner_steps:
            break
    phi = dict(model.named_parameters())
    start = dict(theta.named_parameters())
    for name, p in res.model.named_parameters():
        step, toward = p.detach() - start[name].detach(), phi[name].detach() - start[name].detach()
        if outer == "interpolate":
            assert torch.allclose(p, phi[name], atol=1e-6), name
        else:
            # Adam's first step is lr * g / (|g| + 1e-8) = lr toward phi, for |g| >> 1e-8
            moved = toward.abs() > 1e-4
            assert torch.all(torch.sign(step[moved]) == torch.sign(toward[moved])), name
            assert torch.allclose(step[moved].abs(), torch.full_like(step[moved], 1e-3), rtol=1e-2), name
    assert _trainer.STEP_ACCOUNTING == ("round", "batch")


@pytest.mark.parametrize("step_per", ["round", "batch"])
def test_step_accounting_counts_one_step_per_round_or_per_task_batch(vision_family, monkeypatch, step_per):
    from empirics import _trainer

    calls = []
    real = _trainer._step

    def counting(loop, opt, sched, batches, tasks=None):
        calls.append(list(range(len(batches))) if tasks is None else list(tasks))
        return real(loop, opt, sched, batches, tasks)

    monkeypatch.setattr(_trainer, "_step", counting)
    T = len(vision_family.retrain_tasks())
    rounds = max(t.num_batches("train") for t in vision_family.retrain_tasks())
    cfg = StageConfig(method="last-layer-ml", epochs=2, lr=1e-3, optimizer="adam", step_per=step_per,
                      schedule="linear")
    res = retrain(vision_family, cfg, torch.Generator().manual_seed(0))
    if step_per == "round":
        assert calls == [list(range(T))] * (2 * rounds)
    else:  # one step per task batch, tasks in turn
        assert calls == [[t] for t in range(T)] * (2 * rounds)
    assert np.isfinite(res.history[-1]["train_loss"])
    # the count a unit records as ``retrain_steps`` is the count taken
    from empirics.real._protocol import retrain_steps

    assert retrain_steps(cfg, vision_family) == len(calls)


def test_retrain_steps_counts_reptile_inner_steps(vision_family, monkeypatch):
    from empirics.real._protocol import retrain_steps

    steps = []
    real = torch.optim.SGD.step

    def counting(self, *a, **k):
        steps.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", counting)
    cfg = StageConfig(method="reptile", epochs=3, lr=0.5, reptile_inner_steps=4, reptile_inner_lr=1e-2)
    retrain(vision_family, cfg, torch.Generator().manual_seed(0))
    assert retrain_steps(cfg, vision_family) == len(steps) == 12


def test_no_augment_still_seeds_the_mixer_dropout_from_the_run_generator():
    from empirics.real._vision import _SEED_BOUND

    arrays = _fixtures.random_vision_arrays(np.random.default_rng(0), n_train=40, n_test=20)
    fam = VisionFamily(_vision_data.build_vision_tasks(arrays), batch_size=8, dim=8, augment=False)
    task = fam.retrain_tasks()[0]
    assert task.transform is not None
    x, y = task.train
    out, _ = task.transform((x, y), torch.Generator().manual_seed(7))
    expected = int(torch.randint(_SEED_BOUND, (1,), generator=torch.Generator().manual_seed(7)))
    assert fam._device_generator(x.device).initial_seed() == expected
    assert torch.equal(out, fam._prepare(x))  # no crop, no flip: only scaled and normalised
    # training: same seed -> same run; another seed's dropout stream differs even from equal weights
    model = fam.init_model(torch.Generator().manual_seed(0)).train()
    losses = []
    for s in (1, 1, 2):
        batch = task.transform((x, y), torch.Generator().manual_seed(s))
        losses.append(fam.loss(model, batch))
    assert torch.equal(losses[0], losses[1]) and not torch.equal(losses[0], losses[2])


def test_official_step_accounting_reaches_the_stage_configs():
    cfg = _run.RunConfig(**dict(TINY_VISION, step_accounting="official"))
    assert _run.stage_plan(cfg, "sr", 4)[0].step_per == "batch"
    assert _run.stage_plan(cfg, "lora-ml", 4)[0].step_per == "round"
    assert _run.stage_plan(_run.RunConfig(**TINY_VISION), "sr", 4)[0].step_per == "round"
    lang = dataclasses.replace(_run.LANGUAGE_PAPER, step_accounting="official")
    assert {_run.stage_plan(lang, m, 4)[0].step_per for m in ("sr", "lora-ml", "last-layer-ml")} == {"batch"}
    rt = _run.stage_plan(_run.LANGUAGE_PAPER, "reptile", 4)[0]
    # the official language Reptile: a fresh AdamW at the retraining lr for every task visit
    assert (rt.reptile_inner_optimizer, rt.reptile_inner_lr) == ("adamw", 5e-5)
    assert "shuffled" in _run.reptile_text(cfg) and "official" in _run.steps_text(cfg)


# -- units, resume and the command line --------------------------------------------------------

def test_units_are_keyed_by_their_full_configuration(tmp_path):
    from landscape.runtime.store import ConfigMismatch

    base = dict(TINY_VISION, retrain=("last-layer-ml",), peft=("last-layer",), epochs=1)
    rec = _run.run_vision(tmp_path, **base)
    assert rec["rows"][0]["seeds"] == [3]
    unit = tmp_path / "units" / "last-layer-ml_seed3.json"
    before = unit.read_bytes()
    with pytest.raises(ConfigMismatch):  # other settings, same folder: refused before any work
        _run.run_vision(tmp_path, **dict(base, epochs=2))
    with pytest.raises(ConfigMismatch):
        _run.run(_run.RunConfig(**dict(base, width=16)), tmp_path, compute=False)
    assert unit.read_bytes() == before
    # another seed or a note does not change the existing unit's key
    rec2 = _run.run_vision(tmp_path, **dict(base, seeds=(3, 4), note="two seeds"))
    assert rec2["rows"][0]["seeds"] == [3, 4] and unit.read_bytes() == before
    assert [u.key for u in _run.make_units(_run.RunConfig(**dict(base, seeds=(3, 4))))] == [
        "last-layer-ml_seed3", "last-layer-ml_seed4"]


def _cli(argv, capsys):
    from empirics.real.cli import main

    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("bad", [["--device", "tpu"], ["--batch-size", "0"], ["--max-per-task", "-5"],
                                 ["--epochs", "0"], ["--lr", "nan"], ["--seed", "-1"], ["--workers", "0"],
                                 ["--data-root", "MISSING"], ["--ray-address", "auto"]])
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, bad):
    out = tmp_path / "out"
    bad = [str(tmp_path / "none") if a == "MISSING" else a for a in bad]
    dataset = [] if "--data-root" in bad else ["--dataset", "random"]
    rc, err = _cli(["vision", *dataset, "--width", "8", "--out", str(out), *bad], capsys)
    assert rc == 2 and len(err) == 1, err
    assert not out.exists()


def test_cli_invalid_out_and_changed_settings_exit_2(tmp_path, capsys):
    afile = tmp_path / "file.json"
    afile.write_text("[]")
    tiny = ["vision", "--dataset", "random", "--seed", "1", "--epochs", "1", "--finetune-epochs", "1", "--width", "8",
            "--batch-size", "16", "--retrain", "last-layer-ml", "--peft", "last-layer", "--quiet"]
    rc, err = _cli([*tiny, "--out", str(afile)], capsys)
    assert rc == 2 and len(err) == 1 and afile.read_text() == "[]"
    out = tmp_path / "run"
    assert _cli([*tiny, "--out", str(out)], capsys)[0] == 0
    record = (out / "vision_record.json").read_bytes()
    rc, err = _cli([*tiny, "--lr", "0.01", "--out", str(out)], capsys)
    assert rc == 2 and len(err) == 1 and "another configuration" in err[0]
    assert (out / "vision_record.json").read_bytes() == record


def test_paired_difference_is_a_paired_t_test():
    from scipy import stats

    a = {1: 0.80, 2: 0.84, 3: 0.79, 4: 0.83, 5: 0.81}
    b = {1: 0.78, 2: 0.80, 3: 0.79, 4: 0.80, 5: 0.77, 6: 0.99}  # seed 6 has no partner
    c = _run.paired_difference(a, b)
    d = np.array([a[s] - b[s] for s in range(1, 6)])
    assert c["seeds"] == [1, 2, 3, 4, 5] and np.allclose(c["differences"], d)
    assert c["mean"] == pytest.approx(d.mean()) and c["se"] == pytest.approx(d.std(ddof=1) / np.sqrt(5))
    t = d.mean() / (d.std(ddof=1) / np.sqrt(5))
    assert c["t"] == pytest.approx(t) and c["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 4))
    # pairing matters: the unpaired test of the same numbers is much weaker here
    assert stats.ttest_ind(list(a.values()), list(b.values())[:5]).pvalue > c["p_value"]
    one = _run.paired_difference({1: 0.8}, {1: 0.7})
    assert one["n"] == 1 and np.isnan(one["se"]) and np.isnan(one["p_value"])


def test_summary_prints_paper_numbers_and_paired_comparisons(tmp_path):
    rec = _run.run_vision(tmp_path, **dict(TINY_VISION, seeds=(1, 2), epochs=1))
    text = _run.format_summary(rec)
    assert "86.09 ± 0.35" in text and "72.55 ± 0.39" in text  # the paper's Table 1 beside ours
    labels = [(c["row"], c["baseline"]) for c in rec["comparisons"]]
    assert ("LoRA-ML", "SR + LoRA") in labels and ("Last-Layer-ML", "Reptile + Last-Layer") in labels
    c = rec["comparisons"][0]
    by = {r["row"]: r for r in rec["rows"]}
    want = [by["LoRA-ML"]["per_seed"]["accuracy"][s] - by["SR + LoRA"]["per_seed"]["accuracy"][s] for s in ("1", "2")]
    assert np.allclose(c["accuracy"]["differences"], want)
    assert "paired t-test" in text


# -- language protocol: heads with LoRA, float32 scoring, chunked forwards ----------------------

def _language_family(d, **kw):
    cfg = _run.RunConfig(experiment="language", batch_size=4, model=str(d / "bert"), valid_file=str(d / "valid.txt"),
                         map_dir=str(d / "maps"), n_test=1, n_retrain=2, max_length=24)
    return _run.build_family(dataclasses.replace(cfg, **kw), verbose=False)


def test_hits_at_1_shares_ties_instead_of_always_missing_the_last_candidate():
    from empirics.real._text import hits_at_1

    scores = torch.tensor([[0.0] * 20, [0.0] * 19 + [1.0], [1.0] + [0.0] * 19, [2.0, 2.0] + [0.0] * 17 + [2.0]])
    answer = torch.full((4,), 19)  # the true reply is last, as in the data files
    assert hits_at_1(scores, answer).tolist() == pytest.approx([1 / 20, 1.0, 0.0, 1 / 3])
    assert (scores.argmax(1) == answer).tolist() == [False, True, False, False]  # argmax: ties always miss


def test_language_scoring_is_float32_inside_bf16_autocast(language_files):
    fam = _language_family(language_files)
    model = fam.init_model(torch.Generator().manual_seed(0)).eval()
    task = fam.test_task()
    plain = fam.evaluate(model, task, "test")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = fam.evaluate(model, task, "test")
        batch = {k: v[:2] for k, v in task.test.items()}
        bf16_logits = model(**{k: batch[k].reshape(-1, batch[k].shape[-1]) for k in ("input_ids", "attention_mask")})
    assert inside == plain  # bitwise: the scoring forward ignores the bf16 autocast
    assert bf16_logits.dtype == torch.bfloat16  # negative control: without the guard the logits are bf16


def test_chunked_forward_equals_the_whole_batch_without_dropout(language_files):
    fam = _language_family(language_files)
    batch = next(fam.retrain_tasks()[0].batches("train", torch.Generator().manual_seed(0)))
    batch = {k: v for k, v in batch.items() if k != "dropout_seed"}
    grads, losses = [], []
    for chunk in (None, 7):
        fam.chunk_sequences = chunk
        model = fam.init_model(torch.Generator().manual_seed(0))
        model.eval()  # no dropout: the chunked and whole forwards compute the same function
        for p in model.parameters():
            p.requires_grad_(True)
        model.training = True  # checkpointing is used for training forwards only
        for mod in model.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
        loss = fam.loss(model, batch)
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert torch.allclose(losses[0], losses[1], atol=1e-6)
    assert set(grads[0]) == set(grads[1]) and all(torch.allclose(grads[0][n], grads[1][n], atol=1e-5)
                                                  for n in grads[0])


def test_lora_ml_with_per_task_heads_composes_adapter_sets(language_files):
    from empirics._trainer import FINETUNE_ADAPTER, LoraHeadSet, finetune

    fam = _language_family(language_files)
    base = fam.init_model(torch.Generator().manual_seed(0))
    names = [task_adapter_name(t) for t in range(len(fam.retrain_tasks()))]
    ad = fam.attach_lora_heads(base, names, rank=2, stage="retrain", generator=torch.Generator().manual_seed(1))
    assert isinstance(ad, LoraHeadSet)
    with torch.no_grad():  # lora_B starts at zero; move it so that lora_A receives gradient too
        for n in names:
            for p in ad.lora.adapter_parameters(n):
                p.add_(0.01)
    gen = torch.Generator().manual_seed(2)
    for t, task in enumerate(fam.retrain_tasks()):
        ad.activate(names[t])
        # backward before the next activate, as the trainer does: a checkpointed chunk is
        # recomputed in the backward pass with the adapter active at that time
        fam.loss(ad.model, next(task.batches("train", gen))).backward()
    for n in names:  # every task's LoRA and head get gradient, and heads are not LoRA-adapted
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ad.adapter_parameters(n)), n
        assert not any("lora" in k for k, _ in ad.heads.switch.heads[n].named_parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in ad.base_parameters())
    stripped = ad.strip()
    assert isinstance(stripped.head, torch.nn.Sequential) and not any("lora" in k for k in stripped.state_dict())
    # retraining and fine-tuning through the trainer: fresh head + LoRA, base frozen
    cfg = StageConfig("lora-ml", epochs=1, lr=1e-3, k=2, optimizer="adamw", lora_heads=True)
    res = retrain(fam, cfg, torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in res.model.state_dict().items()}
    ft = finetune(fam, res.model, StageConfig("lora", epochs=1, lr=1e-2, k=2, optimizer="adamw", lora_heads=True),
                  torch.Generator().manual_seed(3))
    head = ft.adapters.heads.switch.heads[FINETUNE_ADAPTER]
    fresh = fam.new_head(res.model, torch.Generator().manual_seed(3))
    assert any(not torch.equal(a, b) for a, b in zip(head.state_dict().values(), fresh.state_dict().values()))
    assert all(torch.equal(before[k], v) for k, v in res.model.state_dict().items())  # base untouched


def test_language_defaults_follow_the_official_code():
    lang = _run.LANGUAGE_PAPER
    assert (lang.lora_ml_heads, lang.finetune_head, lang.persona_selection) == (True, True, "official")
    rt, ft = _run.stage_plan(lang, "lora-ml", 10)
    assert rt.lora_heads and ft["lora"].lora_heads
    _, ft_sr = _run.stage_plan(lang, "sr", 10)
    assert ft_sr["lora"].lora_heads and not ft_sr["last-layer"].lora_heads
    vis = _run.VISION_PAPER
    assert not vis.lora_ml_heads and not vis.finetune_head
    assert "lora_ml_heads" not in _run.unit_config(vis, "sr", 1)["run"]  # earlier vision units stay valid
    with pytest.raises(ValueError, match="fresh head"):
        dataclasses.replace(lang, finetune_head=False)
    assert not dataclasses.replace(lang, lora_ml_heads=False, finetune_head=False).finetune_head


def test_chunked_training_forward_keeps_only_the_chunk_inputs_for_backward(language_files):
    """The memory bound of a CPU language step: with chunking, the autograd graph holds
    only each chunk's inputs (recomputed in backward), not the encoder's activations."""
    fam = _language_family(language_files)
    batch = next(fam.retrain_tasks()[0].batches("train", torch.Generator().manual_seed(0)))
    saved = {}
    for chunk in (None, 8):
        fam.chunk_sequences = chunk
        model = fam.init_model(torch.Generator().manual_seed(0)).train()
        total = [0]

        def pack(t, total=total):
            total[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = fam.loss(model, batch)
        loss.backward()
        saved[chunk] = total[0]
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert saved[8] < 0.1 * saved[None], saved


def test_language_turn_limits_keep_each_tasks_first_turns(language_files):
    # max_per_task / max_eval_per_task (reduced CPU runs) keep the first turns of every task,
    # retraining and test alike; a task with fewer turns than the limit is kept whole
    whole = _language_family(language_files)
    cut = _language_family(language_files, max_per_task=3, max_eval_per_task=2)
    pairs = [(w.train, c.train, 3) for w, c in zip(whole.retrain_tasks(), cut.retrain_tasks())]
    pairs += [(w.val, c.val, 2) for w, c in zip(whole.retrain_tasks(), cut.retrain_tasks())]
    pairs += [(whole.test_task().train, cut.test_task().train, 3), (whole.test_task().test, cut.test_task().test, 2)]
    assert any(len(w["answer"]) > limit for w, _, limit in pairs)  # the limits bite somewhere
    assert any(len(w["answer"]) < limit for w, _, limit in pairs)  # and a shorter task is kept whole
    for w, c, limit in pairs:
        n = min(len(w["answer"]), limit)
        assert set(c) == set(w)
        for key in w:
            assert torch.equal(c[key], w[key][:n]), key


def test_language_head_init_is_pytorchs_linear_default_drawn_from_the_run_generator():
    # each Linear of the head: Kaiming-uniform weight (a = sqrt 5), then a bias uniform on
    # [-1/sqrt(fan_in), 1/sqrt(fan_in)] -- nn.Linear's own default -- all from one generator
    import math

    from torch import nn

    from empirics.real._text import _init_head_

    head = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))
    _init_head_(head, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    for lin in (head[0], head[2]):
        w = torch.empty_like(lin.weight)
        nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
        bound = 1 / math.sqrt(lin.in_features)
        b = torch.empty_like(lin.bias).uniform_(-bound, bound, generator=g)
        assert torch.equal(lin.weight, w) and torch.equal(lin.bias, b)
    assert head[0].bias.abs().max() <= 0.25 and head[0].bias.min() < 0 < head[0].bias.max()


def test_cli_cuda_without_cuda_exits_2_before_anything_runs(tmp_path, capsys, monkeypatch):
    import empirics.real.cli as real_cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(real_cli, "preflight", lambda cfg: pytest.fail("went on without CUDA"))
    out = tmp_path / "out"
    rc, err = _cli(["vision", "--dataset", "random", "--width", "8", "--device", "cuda", "--out", str(out)], capsys)
    assert rc == 2 and len(err) == 1 and "--device cuda requested but CUDA is not available" in err[0]
    assert not out.exists()


def test_done_units_are_named_only_when_verbose_and_bars_shown_only_for_several_units(tmp_path, monkeypatch,
                                                                                       capsys):
    """A resumed run says which units were done earlier only when verbose; the units' progress
    bar is asked for only when there is more than one unit (one unit shows its own stages)."""
    import landscape.runtime.executor as X

    asked = []
    real = X.run_units

    def recording(units, **kw):
        asked.append((len(units), kw["progress"]))
        return real(units, **kw)

    monkeypatch.setattr(X, "run_units", recording)
    one = _run.RunConfig(**dict(TINY_VISION, retrain=("sr",), peft=("last-layer",), epochs=1))
    _run.run(one, tmp_path, verbose=False, progress=True, estimate=False)
    two = _run.RunConfig(**dict(TINY_VISION, retrain=("sr",), peft=("last-layer",), epochs=1, seeds=(3, 4)))
    capsys.readouterr()
    _run.run(two, tmp_path, verbose=False, progress=True, estimate=False)
    assert "done earlier" not in capsys.readouterr().err
    _run.run(two, tmp_path, verbose=True, progress=True, estimate=False)
    assert capsys.readouterr().err.count("done earlier (same configuration)") == 2
    assert asked == [(1, False), (2, True), (2, True)]


def test_language_evaluation_averages_hits_and_losses_over_turns():
    """LanguageFamily.evaluate: accuracy is hits@1 summed over turns divided by their number
    (ties shared), in batches of eval_batch_size; stand-in logits for 3 turns of 2 candidates."""
    from types import SimpleNamespace

    import torch

    from empirics.real._text import LanguageFamily

    # turn 0: true candidate (1) scores highest; turn 1: a tie (1/2); turn 2: the other one wins
    scores = torch.tensor([[0.0, 2.0], [1.0, 1.0], [3.0, 0.0]])
    logits = torch.stack([torch.zeros_like(scores), scores], dim=-1)  # (turns, candidates, 2)
    data = {"answer": torch.tensor([1, 1, 1]), "row": torch.arange(3)}
    me = SimpleNamespace(eval_batch_size=2, _logits=lambda model, batch: logits[batch["row"]])
    out = LanguageFamily.evaluate(me, None, SimpleNamespace(split=lambda s: data), "val")
    assert out["accuracy"] == pytest.approx(1.5 / 3, abs=1e-15)
    target = torch.nn.functional.one_hot(data["answer"], 2)
    want = float(torch.nn.functional.cross_entropy(logits.reshape(-1, 2), target.reshape(-1), reduction="sum")) / 2 / 3
    assert out["loss"] == pytest.approx(want, rel=1e-6)
