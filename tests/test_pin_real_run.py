"""empirics.real._run pinned where a resumed run decides what is done: a unit's key holds every
setting that can change its result and nothing else (not the seed list, method list, note or
cache folder; the later-added fields only away from their old defaults; the rank under its
stored name), and reads back into the same configuration; units come seed-major with their
keys; a GPU unit asks for one GPU.
"""
from __future__ import annotations

import dataclasses
import json

import pytest

from empirics.real import _run as R
from empirics.real._config import LANGUAGE_PAPER, VISION_PAPER, RunConfig


def test_the_key_leaves_out_what_cannot_change_a_result():
    assert R._NOT_IN_UNIT_KEY == ("seeds", "retrain", "note", "cache")
    assert R._ADDED_FIELDS == ("lora_ml_heads", "finetune_head", "persona_selection")
    a = R.unit_config(VISION_PAPER, "sr", 3)
    b = R.unit_config(dataclasses.replace(VISION_PAPER, seeds=(9,), retrain=("lora-ml",), note="x", cache="/c"),
                      "sr", 3)
    assert a == b and a["method"] == "sr" and a["seed"] == 3 and type(a["seed"]) is int
    run = a["run"]
    assert not set(R._NOT_IN_UNIT_KEY) & set(run)
    assert "rank" in run and "k" not in run and run["rank"] == VISION_PAPER.k
    # vision: the added fields hold their old defaults (False / None) and are left out
    assert not set(R._ADDED_FIELDS) & set(run)
    assert json.loads(json.dumps(run)) == run  # what a stored unit reads back as (tuples as lists)
    assert run["peft"] == list(VISION_PAPER.peft)


@pytest.mark.parametrize("change", [dict(lr=2e-4), dict(width=256), dict(k=2), dict(epochs=3), dict(dataset="random"),
                                    dict(device="cuda"), dict(schedule="linear"), dict(step_accounting="official")])
def test_every_result_setting_is_in_the_key(change):
    assert R.unit_config(dataclasses.replace(VISION_PAPER, **change), "sr", 1) != R.unit_config(VISION_PAPER, "sr", 1)


def test_added_fields_enter_the_key_away_from_their_old_defaults():
    run = R.unit_config(LANGUAGE_PAPER, "lora-ml", 0)["run"]
    assert run["lora_ml_heads"] is True and run["finetune_head"] is True and run["persona_selection"] == "official"
    off = R.unit_config(dataclasses.replace(LANGUAGE_PAPER, lora_ml_heads=False), "sr", 0)["run"]
    assert "lora_ml_heads" not in off and off["finetune_head"] is True


@pytest.mark.parametrize("cfg", [VISION_PAPER, LANGUAGE_PAPER, dataclasses.replace(VISION_PAPER, k=3, peft=("lora",))])
def test_a_stored_key_reads_back_into_the_same_configuration(cfg):
    back = R._config_from_unit(R.unit_config(cfg, "sr", 0)["run"])
    keep = {f.name for f in dataclasses.fields(RunConfig)} - set(R._NOT_IN_UNIT_KEY)
    assert {n: getattr(back, n) for n in keep} == {n: getattr(cfg, n) for n in keep}
    assert back.retrain == ("sr",) and back.seeds == (0,)


def test_units_are_seed_major_with_their_keys_and_resources():
    cfg = dataclasses.replace(VISION_PAPER, seeds=(2, 1), retrain=("sr", "lora-ml"))
    units = R.make_units(cfg)
    assert [u.key for u in units] == ["sr_seed2", "lora-ml_seed2", "sr_seed1", "lora-ml_seed1"]
    assert [u.config for u in units] == [R.unit_config(cfg, m, s) for s in (2, 1) for m in ("sr", "lora-ml")]
    assert all(u.resources.cpus == 1 and u.resources.gpus == 0.0 for u in units)
    gpu = R.make_units(dataclasses.replace(cfg, device="cuda:0"))
    assert all(u.resources.gpus == 1.0 for u in gpu)


@pytest.mark.parametrize("entry", ["run", "run_vision", "run_language"])
def test_the_public_runs_show_no_progress_bar_unless_asked(entry):
    import inspect

    fn = getattr(R, entry, None)
    if fn is None:
        pytest.skip(f"no {entry}")
    assert inspect.signature(fn).parameters["progress"].default is False


@pytest.mark.parametrize("executor, shown", [(None, True), ("one", True), ("two", False), ("bare", False)])
def test_stage_progress_bars_only_when_the_units_run_in_this_process(tmp_path, monkeypatch, executor, shown):
    """Stage progress bars are drawn only in this process: no executor or one with a single
    worker; not with several workers, nor with an executor that states no worker count (a
    cluster's: its workers' bars would interleave)."""
    from types import SimpleNamespace

    seen = []

    class Stop(Exception):
        pass

    def make_units(cfg, *, progress, verbose):
        seen.append(progress)
        raise Stop

    monkeypatch.setattr(R, "make_units", make_units)
    ex = {None: None, "one": SimpleNamespace(workers=1), "two": SimpleNamespace(workers=2),
          "bare": SimpleNamespace(name="cluster")}[executor]
    cfg = R.RunConfig()
    with pytest.raises(Stop):
        R.run(cfg, tmp_path / "out", progress=True, executor=ex, estimate=False)
    assert seen == [shown]
