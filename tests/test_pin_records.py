"""empirics._records pinned: the provenance fields and the packages recorded, the git
revision and dirty flag (and ``unknown`` outside a checkout), the JSON conversion of every
type a record holds, the seal that makes an edited record unreadable, and a run directory's
unit keys, completion marker and the hash that ties a unit's arrays to its metadata.
"""
from __future__ import annotations

import dataclasses
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from empirics import _records
from empirics._records import RECORDED_PACKAGES, RunDir, provenance, read_json, to_jsonable, write_json
from landscape.runtime.integrity import StoreIntegrityError


# ------------------------------------------------------------------ provenance
def test_the_recorded_packages_are_these_six():
    assert RECORDED_PACKAGES == ("numpy", "scipy", "torch", "peft", "transformers", "matplotlib")


def test_provenance_fields_and_values():
    import os
    import platform
    import sys

    p = provenance("cpu")
    assert set(p) == {"git", "versions", "python", "platform", "cpu_count", "device", "malloc", "timestamp"}
    assert set(p["versions"]) == set(RECORDED_PACKAGES)
    assert p["versions"]["numpy"] == np.__version__
    assert p["python"] == sys.version.split()[0] and p["platform"] == platform.platform()
    assert p["cpu_count"] == os.cpu_count() and p["device"] == "cpu"
    assert p["malloc"] == _records._malloc.state()
    assert p["timestamp"].endswith("+00:00") and len(p["timestamp"]) == 25  # UTC, to the second
    assert provenance()["device"] is None



def test_the_device_name_is_recorded_for_a_cuda_device_only(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"card {i}")
    assert provenance("cuda:0")["device_name"] == "card 0"
    assert provenance("cuda")["device_name"] == "card 0"
    assert "device_name" not in provenance("cpu") and "device_name" not in provenance()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "device_name" not in provenance("cuda:0")


def test_a_package_that_is_not_installed_is_recorded_as_none(monkeypatch):
    monkeypatch.setattr(_records, "RECORDED_PACKAGES", ("numpy", "no-such-package-xyz"))
    v = provenance()["versions"]
    assert v == {"numpy": np.__version__, "no-such-package-xyz": None}


def test_git_revision_of_a_checkout_and_its_dirty_flag(tmp_path, monkeypatch):
    repo = tmp_path / "r"
    repo.mkdir()
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (repo / "f").write_text("1")
    run("add", "f")
    run("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(_records, "_REPO_ROOT", repo)
    assert _records._git_revision() == {"revision": head, "dirty": False}
    (repo / "untracked").write_text("u")  # untracked files do not make it dirty
    assert _records._git_revision() == {"revision": head, "dirty": False}
    (repo / "f").write_text("2")
    assert _records._git_revision() == {"revision": head, "dirty": True}


def test_git_revision_outside_a_checkout_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(_records, "_REPO_ROOT", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert _records._git_revision() == {"revision": "unknown", "dirty": None}


def test_git_revision_without_git_is_unknown(tmp_path, monkeypatch):
    def no_git(*a, **k):
        raise FileNotFoundError("git")

    monkeypatch.setattr(_records.subprocess, "run", no_git)
    assert _records._git_revision() == {"revision": "unknown", "dirty": None}

    def slow(*a, **k):
        raise subprocess.TimeoutExpired("git", 10)

    monkeypatch.setattr(_records.subprocess, "run", slow)
    assert _records._git_revision() == {"revision": "unknown", "dirty": None}


# ------------------------------------------------------------------ JSON conversion
@dataclasses.dataclass
class _Cfg:
    a: int
    b: tuple


def test_to_jsonable_converts_every_record_type():
    torch = pytest.importorskip("torch")
    got = to_jsonable({
        "dc": _Cfg(1, (2, np.int64(3))), 4: "key made a string", "t": (1, [2.5]),
        "arr": np.arange(4).reshape(2, 2), "f32": np.float32(0.5), "i8": np.int8(-3), "b": np.bool_(True),
        "path": Path("a") / "b", "tensor": torch.tensor([[1.0, 2.0]], requires_grad=True),
        "inf": math.inf, "ninf": -math.inf, "nan": math.nan, "x": 1.25, "s": "s", "n": None})
    assert got == {"dc": {"a": 1, "b": [2, 3]}, "4": "key made a string", "t": [1, [2.5]],
                   "arr": [[0, 1], [2, 3]], "f32": 0.5, "i8": -3, "b": True, "path": str(Path("a") / "b"),
                   "tensor": [[1.0, 2.0]], "inf": "inf", "ninf": "-inf", "nan": "nan", "x": 1.25, "s": "s",
                   "n": None}
    assert type(got["f32"]) is float and type(got["i8"]) is int and type(got["b"]) is bool
    assert to_jsonable(_Cfg) is _Cfg  # a dataclass type is not an instance: left alone


def test_write_json_is_sealed_and_read_json_refuses_any_edit(tmp_path):
    p = write_json(tmp_path / "deep" / "r.json", {"m": np.float64(0.25), "c": _Cfg(1, ())})
    assert p == tmp_path / "deep" / "r.json" and p.read_text().endswith("\n")
    assert read_json(p) == {"m": 0.25, "c": {"a": 1, "b": []}}
    assert "\n " in p.read_text()  # indented one space per level
    doc = json.loads(p.read_text())
    doc["m"] = 0.26
    p.write_text(json.dumps(doc))
    with pytest.raises(StoreIntegrityError, match="does not match its sha256"):
        read_json(p)
    p.write_text(json.dumps({"m": 0.25}))
    with pytest.raises(StoreIntegrityError, match="has no content hash"):
        read_json(p)


# ------------------------------------------------------------------ run directories
@pytest.mark.parametrize("key", ["", "a/b", "a\\b", ".hidden", "..", "../x"])
def test_unit_keys_must_be_plain_file_names(key, tmp_path):
    run = RunDir(tmp_path)
    for call in (lambda: run.done(key), lambda: run.save(key, {}, {}), lambda: run.load(key)):
        with pytest.raises(ValueError, match=r"unit key must be a plain file name, got "):
            call()


def test_a_unit_is_two_files_and_done_only_with_its_json(tmp_path):
    run = RunDir(tmp_path / "new")
    assert (tmp_path / "new" / "units").is_dir()
    assert not run.done("u.1")
    run.save("u.1", {"x": np.eye(2), "n": [1, 2]}, {"seed": np.int64(3)})
    files = sorted(p.name for p in (tmp_path / "new" / "units").iterdir())
    assert files == ["u.1.json", "u.1.npz"]  # no temporary left behind
    assert run.done("u.1")
    arrays, meta = run.load("u.1")
    assert meta == {"seed": 3} and set(arrays) == {"x", "n"}
    np.testing.assert_array_equal(arrays["x"], np.eye(2))
    (tmp_path / "new" / "units" / "u.1.json").unlink()
    assert not run.done("u.1")  # the arrays alone do not make a unit finished


def test_arrays_that_are_not_the_ones_saved_are_refused(tmp_path):
    run = RunDir(tmp_path)
    run.save("a", {"x": np.arange(3)}, {})
    run.save("b", {"x": np.arange(4)}, {})
    units = tmp_path / "units"
    (units / "a.npz").write_bytes((units / "b.npz").read_bytes())  # another unit's (valid) arrays
    with pytest.raises(StoreIntegrityError, match=r"a\.npz: missing or not the arrays saved with a\.json"):
        run.load("a")
    (units / "b.npz").unlink()
    with pytest.raises(StoreIntegrityError, match="missing"):
        run.load("b")


def test_a_unit_whose_metadata_was_edited_is_refused(tmp_path):
    run = RunDir(tmp_path)
    run.save("a", {"x": np.arange(3)}, {"loss": 1.0})
    js = tmp_path / "units" / "a.json"
    js.write_text(js.read_text().replace("1.0", "0.5"))
    with pytest.raises(StoreIntegrityError, match="sha256"):
        run.load("a")


def test_dotted_keys_are_distinct_units(tmp_path):
    run = RunDir(tmp_path)
    run.save("lr0.1", {"x": np.arange(1)}, {"k": 1})
    run.save("lr0.2", {"x": np.arange(2)}, {"k": 2})
    run.save("lr0", {"x": np.arange(3)}, {"k": 0})
    run.save("lr0.tmp", {"x": np.arange(4)}, {"k": 4})
    for key, n in (("lr0.1", 1), ("lr0.2", 2), ("lr0", 3), ("lr0.tmp", 4)):
        arrays, meta = run.load(key)
        assert len(arrays["x"]) == n and meta["k"] == (n if n != 3 else 0)
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == [
        "lr0.1.json", "lr0.1.npz", "lr0.2.json", "lr0.2.npz", "lr0.json", "lr0.npz", "lr0.tmp.json", "lr0.tmp.npz"]


# ------------------------------------------------------------------ a full cosmic-ray run's survivors
def test_any_other_array_file_is_refused_whichever_way_its_hash_compares(tmp_path):
    """The arrays' sha256 must equal the stored one: files whose digest sorts before and
    after it are both refused (an order test would pass half of them)."""
    import hashlib

    store = RunDir(tmp_path)
    store.save("u", {"x": np.arange(6.0)}, {"k": 1})
    npz = tmp_path / "units" / "u.npz"
    stored = read_json(tmp_path / "units" / "u.json")["npz_sha256"]
    original = npz.read_bytes()
    sides = set()
    for i in range(64):
        data = bytearray(original)
        data[-1 - i] ^= 0xFF
        digest = hashlib.sha256(bytes(data)).hexdigest()
        side = digest < stored
        if side in sides:
            continue
        sides.add(side)
        npz.write_bytes(bytes(data))
        with pytest.raises(StoreIntegrityError, match="not the arrays saved"):
            store.load("u")
        if len(sides) == 2:
            break
    assert sides == {True, False}
    npz.write_bytes(original)
    arrays, meta = store.load("u")
    assert meta == {"k": 1} and np.array_equal(arrays["x"], np.arange(6.0))


def test_a_store_opens_twice_and_json_goes_into_new_folders(tmp_path):
    RunDir(tmp_path / "run")
    RunDir(tmp_path / "run")  # an existing store (a resumed run) opens again
    p = write_json(tmp_path / "a" / "b" / "c.json", {"x": 1})
    assert read_json(p) == {"x": 1}


@pytest.mark.parametrize("code", [-15, 1, 128])
def test_a_git_that_failed_or_was_killed_gives_an_unknown_revision(monkeypatch, code):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, code, "abc\n", ""))
    assert _records._git_revision() == {"revision": "unknown", "dirty": None}


def test_git_is_asked_in_the_project_root(monkeypatch):
    """The revision is that of the checkout holding the packages: git runs in the folder
    of pyproject.toml and the package folders, whatever the caller's working directory."""
    seen = []

    def run(args, **kw):
        seen.append(Path(kw["cwd"]))
        return subprocess.CompletedProcess(args, 0, "abc\n", "")

    monkeypatch.setattr(subprocess, "run", run)
    assert _records._git_revision() == {"revision": "abc", "dirty": True}
    root = Path(_records.__file__).resolve().parent.parent
    assert seen and all(p == root for p in seen)
    assert (root / "pyproject.toml").is_file() and (root / "empirics" / "_records.py").is_file()


def test_objects_with_only_one_of_detach_and_tolist_pass_through():
    """Only a torch tensor (both detach and tolist) is converted as one; anything else with
    one of them (an array.array, a stream) is returned as it is, never detached."""
    import array

    class Stream:
        detached = False

        def detach(self):
            self.detached = True
            return self

    a, s = array.array("d", [1.0]), Stream()
    assert to_jsonable(a) is a
    assert to_jsonable(s) is s and not s.detached
