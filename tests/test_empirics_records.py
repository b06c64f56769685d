"""Run records: provenance, JSON records of a trial, resumable run directories."""
import json

import numpy as np
import pytest
import torch

import empirics
from empirics._records import RunDir, provenance, write_json
from empirics._runs import trial_record
from empirics._shallow import ShallowConfig, ShallowFamily, draw_shallow_problem
from empirics._trainer import StageConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_provenance_has_revision_versions_device():
    p = provenance("cpu")
    assert set(p) >= {"git", "versions", "python", "device", "timestamp"}
    assert p["versions"]["numpy"] == np.__version__ and p["device"] == "cpu"


def test_trial_record_is_written_reused_and_deterministic(tmp_path):
    fam = ShallowFamily(draw_shallow_problem(ShallowConfig(T=2, d=3, N=10, n=5), np.random.default_rng(0)))
    rc, fc = StageConfig("lora-ml", epochs=3, lr=1e-2), StageConfig("lora", epochs=2, lr=1e-2)
    out = tmp_path / "rec.json"
    rec = trial_record(fam, rc, fc, seed=4, out=out)
    on_disk = json.loads(out.read_text())
    assert on_disk["seed"] == 4 and on_disk["config"]["retrain"]["method"] == "lora-ml"
    assert len(on_disk["retrain"]["history"]) == 3 and "loss" in on_disk["test"]
    assert on_disk["provenance"]["git"]["revision"]
    # a second call with the same config reuses the record; a fresh run reproduces it
    assert trial_record(fam, rc, fc, seed=4, out=out)["provenance"] == on_disk["provenance"]
    again = trial_record(fam, rc, fc, seed=4)
    assert again["test"] == rec["test"]


def test_rundir_marks_units_done_only_after_save(tmp_path):
    run = RunDir(tmp_path)
    assert not run.done("u1")
    run.save("u1", {"a": np.arange(3)}, {"x": 1})
    assert run.done("u1")
    arrays, meta = run.load("u1")
    assert meta == {"x": 1} and arrays["a"].tolist() == [0, 1, 2]
    try:
        run.save("../escape", {}, {})
    except ValueError as e:
        assert "plain file name" in str(e)
    else:
        raise AssertionError("path traversal accepted")


def test_write_json_handles_numpy_and_tensors(tmp_path):
    p = write_json(tmp_path / "x.json", {"a": np.float32(1.5), "b": np.arange(2), "c": torch.ones(2)})
    doc = json.loads(p.read_text())
    seal = doc.pop("content_sha256")  # every stored record is sealed (landscape.runtime.integrity)
    assert doc == {"a": 1.5, "b": [0, 1], "c": [1.0, 1.0]}
    assert isinstance(seal, str) and len(seal) == 64


def test_public_surface_is_lazy_and_complete():
    for name in empirics.__all__:
        assert getattr(empirics, name) is not None
