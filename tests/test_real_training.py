"""Real-data families through the PEFT-ML trainer: every retraining x fine-tuning path,
gradient flow to the base and all adapters, model selection, records and resumption."""
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
    unit = json.loads((tmp_path / "units" / "sr_seed3.json").read_text())
    assert set(unit["finetune"]) == {"lora", "last-layer"}
    assert len(unit["retrain_history"]["val_accuracy"]) == 2
    on_disk = json.loads((tmp_path / "vision_record.json").read_text())
    assert on_disk["provenance"]["device"] == "cpu" and on_disk["notes"]
    # resumption: finished units are not recomputed
    mtime = (tmp_path / "units" / "sr_seed3.json").stat().st_mtime_ns
    _run.run(cfg, tmp_path, verbose=False)
    assert (tmp_path / "units" / "sr_seed3.json").stat().st_mtime_ns == mtime


def test_language_run_all_paths(language_files, tmp_path):
    d = language_files
    cfg = _run.RunConfig(experiment="language", seeds=(0,), epochs=1, finetune_epochs=1, lr=1e-3, finetune_lr=1e-3,
                         optimizer="adamw", batch_size=4, rank=2, lora_alpha=4, lora_dropout=0.0,
                         reptile_outer_epochs=1, reptile_inner_steps=1, model=str(d / "bert"),
                         valid_file=str(d / "valid.txt"), map_dir=str(d / "maps"), n_test=1, n_retrain=2,
                         max_length=24)
    rec = _run.run(cfg, tmp_path, verbose=False)
    assert len(rec["rows"]) == 6
    for r in rec["rows"]:
        assert list(r["per_task"]) == ["persona_1"]
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
    base = dict(TINY_VISION, retrain=("last-layer-ml",), peft=("last-layer",), epochs=1, finetune_epochs=1)
    for seed in (1, 2):  # as two processes sharing one output folder would
        _run.run(_run.RunConfig(**dict(base, seeds=(seed,))), tmp_path, verbose=False)
    merged = _run.run(_run.RunConfig(**dict(base, seeds=(1, 2))), tmp_path, verbose=False, compute=False)
    row = merged["rows"][0]
    assert row["seeds"] == [1, 2] and np.isfinite(row["accuracy"]["se"])


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
    rt, ft = _run._stage_configs(got, "reptile", 4)
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

    cfg = StageConfig("lora-ml", epochs=1, lr=1e-3, rank=2, lora_dropout=0.1, optimizer="adamw", schedule="linear",
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
