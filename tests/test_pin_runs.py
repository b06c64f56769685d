"""empirics._runs pinned: the trials' seeds (SeedSequence([seed, i]), one 32-bit word each), a
record at --out reused only when it is this very configuration's and intact (anything else is
refused, never overwritten), the units folder's name, the split of seeds into chunks, and a
record refused when its final metrics overflowed.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from empirics import _runs as R
from empirics._records import write_json
from landscape.runtime.integrity import StoreIntegrityError


@pytest.mark.parametrize("seed, trials", [(0, 1), (613, 10), (2 ** 40, 3)])
def test_trial_seeds_are_one_word_of_seed_sequence_seed_i(seed, trials):
    got = R.trial_seeds(seed, trials)
    assert got == [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(trials)]
    assert all(type(s) is int and 0 <= s < 2 ** 32 for s in got) and len(set(got)) == trials


def test_trial_seeds_need_a_trial():
    with pytest.raises(ValueError, match=r"^trials must be >= 1, got 0$"):
        R.trial_seeds(0, 0)


def test_an_existing_record_is_reused_only_when_intact_and_of_this_configuration(tmp_path):
    out = tmp_path / "r.json"
    cfg = {"a": 1, "t": (1, 2)}
    assert R.existing_record(None, cfg) is None and R.existing_record(out, cfg) is None
    write_json(out, {"config": cfg, "result": 3})
    assert R.existing_record(out, cfg) == {"config": {"a": 1, "t": [1, 2]}, "result": 3}
    with pytest.raises(R.RecordMismatch, match="holds a record made with another configuration"):
        R.existing_record(out, {"a": 2, "t": (1, 2)})
    text = out.read_text()
    out.write_text(text.replace('"result": 3', '"result": 4'))
    with pytest.raises(StoreIntegrityError):
        R.existing_record(out, cfg)
    out.write_text("{not json")
    with pytest.raises(R.RecordMismatch, match=r"is not a readable JSON record \(JSONDecodeError\)"):
        R.existing_record(out, cfg)
    for doc in ([1, 2], {"config": 3}, {"other": {}}):
        out.write_text(json.dumps(doc))
        with pytest.raises(R.RecordMismatch, match="is not a run record"):
            R.existing_record(out, cfg)
    assert issubclass(R.RecordMismatch, ValueError)


def test_units_folder_and_chunks():
    assert R.units_folder("x/rec.json").as_posix() == "x/rec.json.units"
    assert R._chunks([1, 2, 3, 4, 5], 2) == [[1, 2, 3], [4, 5]]
    assert R._chunks([1, 2], 5) == [[1], [2]] and R._chunks([7], 0) == [[7]]
    assert all(type(x) is int for c in R._chunks([1, 2, 3], 2) for x in c)


def test_a_record_with_non_finite_final_metrics_is_refused():
    from types import SimpleNamespace

    cfg = SimpleNamespace(sigma=1e300, d=3, N=5)
    R._require_finite({"lora-ml": {"loss": {"mean": 1.0, "max": 2.0}}, "sr": {"x": 3.0}}, cfg)
    bad = {"lora-ml": {"loss": {"mean": float("nan"), "max": float("inf")}}, "sr": {"err": float("-inf")}}
    with pytest.raises(R.NonFiniteResult, match=r"non-finite lora-ml\.loss, sr\.err\) at sigma=1e\+300, d=3, N=5"):
        R._require_finite(bad, cfg)
    assert issubclass(R.NonFiniteResult, ValueError)


def test_numbers_and_stats_of_a_record():
    assert R._num("inf") == float("inf") and np.isnan(R._num("nan")) and np.isnan(R._num(None)) and R._num(2) == 2.0
    assert R._stats(np.array([3.0, 1.0, 2.0, 10.0])) == {"mean": 4.0, "median": 2.5, "min": 1.0, "max": 10.0}


@pytest.mark.parametrize("trials, clip", [(5, 2), (4, 0), (6, 2)])
def test_the_shallow_record_s_central_range_drops_two_trials_each_side_from_five(trials, clip):
    """THEORY.md 9.4: the central range of 10 trials is the central 6 (two dropped each side);
    from 5 trials on two are dropped, below that none (min to max)."""
    from empirics._shallow import ShallowConfig

    cfg = ShallowConfig(T=2, d=3, k=1, N=8, n=6, retrain_epochs=3, finetune_epochs=3, record_every=3)
    rec = R.shallow_record(cfg, trials=trials, seed=1)
    for i, m in enumerate(("lora-ml", "sr")):
        v = np.sort(np.asarray(rec["metrics"]["test_mse"])[i, :, -1])
        f = rec["final"][m]
        assert f["central_low"] == v[clip] and f["central_high"] == v[-clip - 1]
        assert f["median"] == pytest.approx(float(np.median(v)))


def test_a_linear_unit_reports_its_own_duration():
    import time

    linear = dict(T=2, d=3, k=1, N=10, n=5, outer_steps=2, inner_steps=1, sr_epochs=2, finetune_iters=2,
                  record_every=1)
    t0 = time.perf_counter()
    out = R.linear_trials_unit(linear, {}, [1, 2])
    wall = time.perf_counter() - t0
    assert 0 < out["seconds"] <= wall
    assert np.asarray(out["loss_sum"]).shape[:2] == (2, 2)


def test_a_trial_with_checkpoints_is_the_trial_without(tmp_path):
    torch = pytest.importorskip("torch")
    from empirics._shallow import ShallowConfig, ShallowFamily, draw_shallow_problem
    from empirics._trainer import StageConfig

    fam = ShallowFamily(draw_shallow_problem(ShallowConfig(T=2, d=3, N=10, n=5), np.random.default_rng(0)))
    rc, fc = StageConfig("lora-ml", epochs=2, lr=1e-2), StageConfig("lora", epochs=2, lr=1e-2)
    plain = R.trial_record(fam, rc, fc, seed=4)
    ck = R.trial_record(fam, rc, fc, seed=4, checkpoint_dir=tmp_path / "ck")
    assert ck["test"] == plain["test"] and torch is not None


def test_a_shallow_unit_writes_its_training_checkpoints_inside_the_units_folder(tmp_path, monkeypatch):
    """Each shallow trial unit gets a checkpoint file beside its sealed result in
    ``<out>.units`` (an interrupted unit restarts from it, not from epoch 0)."""
    from empirics._shallow import ShallowConfig

    seen = []
    real = R.shallow_trials_unit

    def spy(*a, **kw):
        seen.append(kw.get("checkpoint"))
        return real(*a, **kw)

    monkeypatch.setattr(R, "shallow_trials_unit", spy)
    cfg = ShallowConfig(T=2, d=3, k=1, N=8, n=6, retrain_epochs=3, finetune_epochs=3, record_every=3)
    R.shallow_record(cfg, trials=2, seed=1, out=tmp_path / "rec.json")
    assert seen and all(c is not None and c.endswith(".ckpt.pt") and "rec.json.units" in c for c in seen)


def test_records_state_the_wall_time_of_their_own_run():
    """wall_seconds is the seconds the call took (between 0 and the time measured around it),
    for the linear and the shallow record alike."""
    import time

    from empirics._linear import LinearConfig
    from empirics._shallow import ShallowConfig

    lin = LinearConfig(d=3, k=1, T=2, N=8, n=6, outer_steps=2, inner_steps=1, sr_epochs=2, finetune_iters=2,
                       record_every=1)
    sh = ShallowConfig(T=2, d=3, k=1, N=8, n=6, retrain_epochs=3, finetune_epochs=3, record_every=3)
    for make in (lambda: R.linear_record(lin, trials=2, seed=1), lambda: R.shallow_record(sh, trials=2, seed=1)):
        t0 = time.perf_counter()
        rec = make()
        took = time.perf_counter() - t0
        assert 0.0 < rec["wall_seconds"] <= took


def test_the_shallow_defaults_are_the_committed_figures_seed_and_threads():
    """Run with its defaults, the shallow experiment uses the seed and the thread count the
    committed figures were made with (figures/results/shallow-*.json), as the command line does."""
    import inspect
    from pathlib import Path

    from figures import _shallow

    meta = json.loads((Path(__file__).resolve().parents[1] / "figures" / "results" / "shallow-N.json").read_text())
    made = meta["meta"]["config"]
    params = inspect.signature(R.shallow_record).parameters
    assert params["seed"].default == made["seed"] == _shallow._SHALLOW_PAPER["seed"]
    assert params["threads"].default == made["threads"] == 1
    assert inspect.signature(R.shallow_config).parameters["seed"].default == made["seed"]


@pytest.mark.parametrize("seeds, parts, want", [([1, 2, 3], 1, [[1, 2, 3]]), ([1, 2, 3], 5, [[1], [2], [3]]),
                                                ([1, 2, 3, 4], 2, [[1, 2], [3, 4]]), ([4], 0, [[4]]), ([], 3, [])])
def test_seeds_are_split_into_at_most_the_parts_asked_and_at_least_one(seeds, parts, want):
    from empirics._runs import _chunks

    assert _chunks(seeds, parts) == want


def test_records_state_their_own_elapsed_seconds(monkeypatch):
    """A trial record's and a shallow unit's ``seconds`` are the time the call took (stand-in
    training: well under the wall time measured around the call)."""
    import time
    from types import SimpleNamespace

    import empirics._runs as R
    import empirics._shallow as SH
    import empirics._trainer as TR

    fit = SimpleNamespace(model=None, history=[{"test": 0.5}], best_epoch=1)
    monkeypatch.setattr(TR, "retrain", lambda *a, **k: fit)
    monkeypatch.setattr(TR, "finetune", lambda *a, **k: fit)
    monkeypatch.setattr(R, "provenance", lambda device: {})
    family = SimpleNamespace(describe=lambda: {"name": "stand-in"})
    cfg = SimpleNamespace(device="cpu")
    monkeypatch.setattr(R.dataclasses, "asdict", lambda c: {})
    t = time.perf_counter()
    rec = R.trial_record(family, cfg, cfg, seed=0)
    wall = time.perf_counter() - t
    assert 0.0 <= rec["seconds"] <= wall
    monkeypatch.setattr(SH, "run_shallow_batched", lambda *a, **k: {"final_mse": [0.0], "curve": [], "curve_epochs": [],
                                                                     "retrain_loss": [0.0]})
    monkeypatch.setattr(SH, "ShallowConfig", lambda **k: None)
    t = time.perf_counter()
    unit = R.shallow_trials_unit({}, [0])
    assert 0.0 <= unit["seconds"] <= time.perf_counter() - t
