"""The reliability contract of every command (issue 17): no code from data, stored results
that cannot be silently corrupted, outputs replaced whole and only ours, exit statuses
that mean one thing (0 done, 1 the mathematics disagrees, 2 bad input, 3 environment).

Each test builds the fault itself (a pickle that would create a marker file, a tampered
or truncated store file, a kill between the files of one set, a foreign or locked
``--out``, a full disk, an unusable HOME, an ASCII terminal) and asserts what the user
sees: the exit status, one line on stderr, no traceback, nothing used or overwritten.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def _run(args, *, env=None, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env or _env(), capture_output=True, text=True,
                          timeout=timeout)


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


class _Evil:
    """Unpickling this calls ``os.system('touch MARKER')``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ------------------------------------------------------------------ 1. no code from data
def test_cifar_batches_with_a_code_payload_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "PWNED"
    d = tmp_path / "root" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (d / name).write_bytes(pickle.dumps({"data": _Evil(marker), "labels": [0]}))
    r = _run(["-m", "empirics", "vision", "--data-root", str(d.parent), "--seeds", "0", "--epochs", "1",
              "--finetune-epochs", "1", "--retrain", "lora-ml", "--peft", "lora", "--out", str(tmp_path / "o"),
              "--quiet"])
    assert r.returncode == 2, r.stderr
    assert "posix.system" in _one_line(r.stderr) or "os.system" in r.stderr
    assert not marker.exists()


def test_persona_map_with_a_code_payload_is_refused(tmp_path):
    from empirics.real._convai2 import load_persona_map
    from empirics.real._safe_pickle import UnsafePickleError

    marker = tmp_path / "PWNED"
    (tmp_path / "valid_persona_map").write_bytes(pickle.dumps({1: [_Evil(marker)]}))
    with pytest.raises(UnsafePickleError, match="not plain data"):
        load_persona_map(tmp_path / "valid_persona_map")
    assert not marker.exists()
    # the genuine PAML maps (numpy int32 keys, protocol 4) still load
    shared = REPO.parent / "shared" / "data" / "convai2" / "paml_persona_maps" / "valid_persona_map"
    if shared.is_file():
        m = load_persona_map(shared)
        assert m and all(isinstance(k, int) for k in m)


@pytest.mark.parametrize("payload", [
    np.array([1, "a"], dtype=object),                      # object dtype: elements unpickled as objects
    np.zeros(2, dtype=[("a", "f8"), ("b", "O")]),          # structured with an object field
    np.ma.array([1.0, 2.0]),                               # ndarray subclass (its own reconstructor)
])
def test_data_unpickler_refuses_non_plain_numpy(payload):
    from empirics.real._safe_pickle import UnsafePickleError, loads_data_pickle

    with pytest.raises(UnsafePickleError):
        loads_data_pickle(pickle.dumps({"data": payload}))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_data_unpickler_reads_plain_numpy_exactly(protocol):
    from empirics.real._safe_pickle import loads_data_pickle

    obj = {"data": np.arange(24, dtype=np.uint8).reshape(2, 12), b"labels": [3, 1], "f": np.float32(2.5),
           "names": np.array(["a", "bc"]), "s": {1, 2}, "fortran": np.asfortranarray(np.eye(3))}
    back = loads_data_pickle(pickle.dumps(obj, protocol=protocol))
    assert back["data"].dtype == np.uint8 and np.array_equal(back["data"], obj["data"])
    assert back[b"labels"] == [3, 1] and back["f"] == np.float32(2.5) and back["s"] == {1, 2}
    assert np.array_equal(back["names"], obj["names"]) and np.array_equal(back["fortran"], np.eye(3))


def test_checkpoint_with_a_code_payload_or_truncated_does_not_crash_the_run(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from empirics._shallow import ShallowConfig, run_shallow_batched
    from empirics._trainer import load_checkpoint

    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save({"ident": _Evil(marker)}, evil)
    assert load_checkpoint(evil) is None and not marker.exists()
    assert "unreadable" in capsys.readouterr().err

    cfg = ShallowConfig(T=2, d=3, k=1, N=8, n=8, retrain_epochs=6, finetune_epochs=4, record_every=2)
    clean = run_shallow_batched(cfg, [1], dtype="float64")
    ck = tmp_path / "ck.pt"
    run_shallow_batched(cfg, [1], dtype="float64", checkpoint=str(ck), checkpoint_every=2)
    torch.save({"stage": "retrain", "epoch": 4, "ident": None}, ck)  # a structurally foreign checkpoint
    again = run_shallow_batched(cfg, [1], dtype="float64", checkpoint=str(ck), checkpoint_every=2)
    np.testing.assert_array_equal(again["final_mse"], clean["final_mse"])
    ck.write_bytes(b"PK\x03\x04 truncated")
    again = run_shallow_batched(cfg, [1], dtype="float64", checkpoint=str(ck), checkpoint_every=2)
    np.testing.assert_array_equal(again["final_mse"], clean["final_mse"])


# ------------------------------------------------------------------ 2. stored results sealed
def _unit_store(tmp_path):
    from landscape.runtime.executor import ResultStore, Unit

    store = ResultStore(tmp_path / "units")
    unit = Unit("u1", _square, {"x": 3.0})
    store.save(unit, {"value": 9.0, "arr": np.arange(3.0)})
    return store, unit


def _square(x):
    return {"value": x * x}


def test_a_stored_unit_round_trips_and_its_hash_covers_content_and_configuration(tmp_path):
    from landscape.runtime.integrity import FIELD, content_digest

    store, unit = _unit_store(tmp_path)
    assert store.load(unit)["value"] == 9.0
    doc = json.loads(store.path(unit.key).read_text())
    assert doc[FIELD] == content_digest(doc)
    # the digest changes with the content and with the configuration key
    assert content_digest({**doc, "result": {"value": 1.0}}) != doc[FIELD]
    assert content_digest({**doc, "config_sha256": "0" * 64}) != doc[FIELD]


@pytest.mark.parametrize("fault", ["edit", "truncate", "empty", "drop-hash"])
def test_a_tampered_or_truncated_unit_is_never_used(tmp_path, fault):
    from landscape.runtime.integrity import FIELD, StoreIntegrityError

    store, unit = _unit_store(tmp_path)
    p = store.path(unit.key)
    text = p.read_text()
    if fault == "edit":
        p.write_text(text.replace("9.0", "1.0"))
    elif fault == "truncate":
        p.write_text(text[: len(text) // 2])
    elif fault == "empty":
        p.write_text("")
    else:
        doc = json.loads(text)
        del doc[FIELD]
        p.write_text(json.dumps(doc))
    with pytest.raises(StoreIntegrityError) as info:
        store.load(unit)
    msg = str(info.value)
    assert str(p) in msg and "delete" in msg and "rerun" in msg and "\n" not in msg


def test_an_edited_unit_stops_the_sweep_with_exit_2_naming_the_file(tmp_path):
    out = tmp_path / "lin.json"
    args = ["-m", "empirics", "synthetic-linear", "--T", "2", "--d", "4", "--rank", "1", "--N", "20", "--n", "10",
            "--trials", "2", "--outer-steps", "3", "--inner-steps", "1", "--sr-epochs", "2", "--finetune-iters", "3",
            "--out", str(out), "--quiet"]
    assert _run(args).returncode == 0
    unit = next((tmp_path / "lin.json.units").glob("*.json"))
    doc = json.loads(unit.read_text())
    doc["result"]["seconds"] = 0.5  # a plausible hand edit
    unit.write_text(json.dumps(doc))
    out.unlink()  # force the record to be rebuilt from the units
    r = _run(args)
    assert r.returncode == 2 and unit.name in _one_line(r.stderr) and "delete" in r.stderr
    assert not out.exists()
    # an edited record is refused the same way
    unit.unlink()
    assert _run(args).returncode == 0
    rec = json.loads(out.read_text())
    rec["final"]["lora-ml"]["A_err"]["mean"] = 0.0
    out.write_text(json.dumps(rec))
    r = _run(args)
    assert r.returncode == 2 and "does not match its sha256" in _one_line(r.stderr)


def test_figure_data_edited_on_disk_is_not_rendered(tmp_path):
    import figures
    from figures._registry import SavedDataError

    figures.make("figure1", smoke=True, out=tmp_path, progress=False, overrides={"trials": 1})
    js = tmp_path / "figure1-smoke.json"
    doc = json.loads(js.read_text())
    doc["meta"]["smoke"] = False
    js.write_text(json.dumps(doc))
    with pytest.raises(SavedDataError, match="does not match its sha256"):
        figures.load_data(tmp_path, "figure1-smoke")
    r = _run(["-m", "figures", "redraw", "figure1", "--smoke", "--out", str(tmp_path)])
    assert r.returncode == 2 and "figure1-smoke.json" in _one_line(r.stderr)


# ------------------------------------------------------------------ 3. outputs whole and ours
def test_a_kill_between_the_files_of_a_figure_leaves_no_complete_looking_set(tmp_path, monkeypatch):
    """Kill ``figures make`` after each file of the new set in turn: a reader either finds the
    old set complete (killed before the new one started) or no complete set at all, never
    new data beside the old configuration's images."""
    import figures
    import figures._registry as reg

    first = figures.make("figure1", smoke=True, out=tmp_path, progress=False, overrides={"trials": 1})
    assert reg.complete_set(tmp_path, "figure1", smoke=True)["key"] == first["meta"]["config"]
    members = len(first["files"]) + 2  # rendered files + json + npz
    old_bytes = {p: p.read_bytes() for p in first["files"]}

    class Killed(BaseException):
        pass

    from landscape.runtime import outguard

    for kill_after in range(members):
        calls = {"n": 0}
        real_add = outguard.FileSet.add

        def add(self, path, _real=real_add):
            _real(self, path)
            calls["n"] += 1
            if calls["n"] > kill_after:
                raise Killed

        monkeypatch.setattr(outguard.FileSet, "add", add)
        with pytest.raises(Killed):
            figures.make("figure1", smoke=True, out=tmp_path, progress=False, overrides={"trials": 2})
        monkeypatch.setattr(outguard.FileSet, "add", real_add)
        assert reg.complete_set(tmp_path, "figure1", smoke=True) is None
        new = json.loads((tmp_path / "figure1-smoke.json").read_text()) if \
            (tmp_path / "figure1-smoke.json").exists() else None
        if new is not None:  # whatever is on disk is of the new configuration only
            assert new["meta"]["config"]["trials"] == 2
        # the old configuration's renderings were removed before the new set began
        assert not [p for p, raw in old_bytes.items() if p.exists() and p.read_bytes() == raw]
    done = figures.make("figure1", smoke=True, out=tmp_path, progress=False, overrides={"trials": 2})
    assert reg.complete_set(tmp_path, "figure1", smoke=True)["key"] == done["meta"]["config"]


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    import figures

    tmp_path.mkdir(exist_ok=True)
    (tmp_path / ".loraml-out.json").write_text('{"command": "figures make"}')
    stale = [tmp_path / ".figure1-smoke.png.abc123.tmp", tmp_path / "work" / ".u.json.x.tmp"]
    stale[1].parent.mkdir()
    for p in stale:
        p.write_bytes(b"")
    figures.make("figure1", smoke=True, out=tmp_path, progress=False, overrides={"trials": 1})
    assert not any(p.exists() for p in stale)
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("cmd", ["figures", "audit", "atlas"])
def test_an_out_folder_with_foreign_files_is_refused_unless_overwrite(tmp_path, cmd):
    out = tmp_path / "o"
    out.mkdir()
    (out / "report.md").write_text("my notes")
    np.save(tmp_path / "t.npy", np.stack([np.eye(3), np.diag([1.0, 2, 3]), np.diag([3.0, 1, 2])]))
    args = {"figures": ["-m", "figures", "make", "figure1", "--smoke", "--set", "trials=1", "--quiet", "--out", str(out)],
            "audit": ["-m", "landscape", "audit", str(tmp_path / "t.npy"), "--rank", "1", "--starts", "2",
                      "--method", "lbfgs", "--no-plots", "--no-certify", "-q", "--out", str(out)],
            "atlas": ["-m", "theory", "atlas", "--smoke", "--quiet", "--out", str(out)]}[cmd]
    r = _run(args)
    assert r.returncode == 2 and "did not write" in _one_line(r.stderr)
    assert (out / "report.md").read_text() == "my notes" and sorted(os.listdir(out)) == ["report.md"]
    if cmd == "atlas":
        return  # the full smoke atlas is slow; its --overwrite path is the same claim_out_dir
    r = _run(args + ["--overwrite"])
    assert r.returncode == 0, r.stderr
    # a folder written by the same command is reused without --overwrite
    assert _run(args).returncode == 0


def test_a_second_concurrent_run_on_one_out_folder_is_refused(tmp_path):
    from landscape.runtime.outguard import OutLock

    out = tmp_path / "o"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from landscape.runtime.outguard import OutLock; "
                               f"OutLock({str(out)!r}, 'figures make').acquire(); print('locked', flush=True); "
                               "time.sleep(60)"],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = _run(["-m", "figures", "make", "figure1", "--smoke", "--set", "trials=1", "--quiet", "--out", str(out)])
        assert r.returncode == 2 and "another run" in _one_line(r.stderr)
        assert not (out / "figure1-smoke.json").exists()
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the lock with the process: the folder is usable again
    with OutLock(out, "figures make"):
        pass


# ------------------------------------------------------------------ 4. exit statuses
def test_disk_full_is_an_environment_failure_with_one_line(tmp_path, monkeypatch, capsys):
    """ENOSPC from the writer (a real small tmpfs is used below where the test may mount one)."""
    import landscape.runtime.atomic as atomic
    from landscape.runtime.exits import EXIT_ENVIRONMENT
    from theory.__main__ import main

    def full(path, write):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(atomic, "atomic_write", full)
    monkeypatch.setattr(atomic, "atomic_write_text", lambda p, t: full(p, None))
    import theory.__main__ as tm

    monkeypatch.setattr(tm, "atomic_write_text", lambda p, t: full(p, None))
    rc = main(["--only", "Thm 3.1", "--scale", "quick", "--quiet", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == EXIT_ENVIRONMENT and "no space left" in _one_line(err) and "r.json" in err


def test_disk_full_on_a_real_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (mnt / "filler").write_bytes(b"\0" * 60_000)
        r = _run(["-m", "empirics", "synthetic-linear", "--T", "2", "--d", "4", "--rank", "1", "--N", "20", "--n", "10",
                  "--trials", "2", "--outer-steps", "200", "--inner-steps", "1", "--sr-epochs", "2",
                  "--finetune-iters", "200", "--out", str(mnt / "lin.json"), "--quiet"])
        assert r.returncode == 3 and "no space left" in _one_line(r.stderr)
        assert not [p for p in mnt.rglob("*") if p.is_file() and p.name != "filler" and p.stat().st_size == 0
                    and p.suffix != ".lock"]
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_unusable_home_is_an_environment_failure_before_any_decoding(tmp_path):
    from empirics.real import _fixtures

    archive = tmp_path / "c.tar.xz"
    _fixtures.write_jpeg_archive(archive, np.random.default_rng(0), n_train=2, n_test=1)
    afile = tmp_path / "afile"
    afile.write_text("x")
    env = _env(HOME=str(afile / "home"))  # HOME below a regular file: nothing can be created there
    env.pop("LORAML_CACHE", None)
    r = _run(["-m", "empirics", "vision", "--archive", str(archive), "--seeds", "0", "--epochs", "1",
              "--out", str(tmp_path / "o"), "--quiet"], env=env)
    assert r.returncode == 3 and "LORAML_CACHE" in _one_line(r.stderr)
    # an explicit --cache that is a file is bad input, refused before decoding
    r = _run(["-m", "empirics", "vision", "--archive", str(archive), "--cache", str(afile), "--seeds", "0",
              "--out", str(tmp_path / "o"), "--quiet"])
    assert r.returncode == 2 and "--cache" in _one_line(r.stderr)
    # a truncated archive is bad input with one line, not a traceback from the decoder
    trunc = tmp_path / "t.tar.xz"
    trunc.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    r = _run(["-m", "empirics", "vision", "--archive", str(trunc), "--cache", str(tmp_path / "cache"), "--seeds",
              "0", "--epochs", "1", "--out", str(tmp_path / "o"), "--quiet"])
    assert r.returncode == 2 and "truncated or corrupted" in r.stderr.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr


def test_an_ascii_terminal_gets_one_line_and_status_3(tmp_path):
    r = _run(["-m", "figures", "list"], env=_env(PYTHONIOENCODING="ascii", PYTHONUTF8="0", LC_ALL="C"))
    assert r.returncode == 3 and "encoding" in _one_line(r.stderr)


@pytest.mark.parametrize("value", ["2.5", "1e999", "NaN", "0", "true"])
def test_figure_overrides_of_the_wrong_kind_are_bad_input(value):
    r = _run(["-m", "figures", "make", "figure1", "--smoke", "--set", f"trials={value}", "--out", "/nonexistent/x"])
    assert r.returncode == 2 and "trials" in _one_line(r.stderr)


def test_noise_that_overflows_float64_is_bad_input_and_writes_nothing(tmp_path):
    out = tmp_path / "lin.json"
    base = ["-m", "empirics", "synthetic-linear", "--T", "2", "--d", "4", "--rank", "1", "--N", "20", "--n", "10",
            "--trials", "1", "--outer-steps", "2", "--inner-steps", "1", "--sr-epochs", "1", "--finetune-iters", "2",
            "--out", str(out), "--quiet"]
    r = _run(base + ["--sigma", "1e308"])
    assert r.returncode == 2 and "overflows" in _one_line(r.stderr) and not out.exists()
    r = _run(base + ["--sigma", "1e150"])  # sigma^2 N d is finite (8e301), the run overflows: no record
    assert r.returncode == 2 and "overflowed" in _one_line(r.stderr) and not out.exists()
    assert _run(base + ["--sigma", "1e150"]).returncode == 2  # and the rerun says the same


def test_json_task_file_with_a_duplicated_key_is_refused(tmp_path):
    p = tmp_path / "dup.json"
    p.write_text('{"tasks": [[[1,0],[0,1]],[[1,0],[0,2]]], "tasks": [[[2,0],[0,1]],[[1,0],[0,1]]]}')
    r = _run(["-m", "landscape", "audit", str(p), "--rank", "1", "-q"])
    assert r.returncode == 2 and "appears twice" in _one_line(r.stderr)


def test_bundle_inputs_are_checked(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = _run(["-m", "empirics.real.bundle", "pack", "--out", str(afile), "--no-language"])
    assert r.returncode == 2 and "not a folder" in _one_line(r.stderr)
    b = tmp_path / "b"
    b.mkdir()
    (b / "MANIFEST.json").write_text("\x00garbage{")
    r = _run(["-m", "empirics.real.bundle", "run", "--bundle", str(b), "--out", str(tmp_path / "o"), "--device",
              "cpu", "--scale", "tiny"])
    assert r.returncode == 2 and "MANIFEST.json" in _one_line(r.stderr)


def test_invalid_encoder_config_is_bad_input(tmp_path):
    m = tmp_path / "model"
    m.mkdir()
    (m / "config.json").write_text("{not json")
    (m / "model.safetensors").write_bytes(b"")
    r = _run(["-m", "empirics", "language", "--model", str(m), "--seeds", "0", "--out", str(tmp_path / "o"),
              "--quiet"])
    assert r.returncode == 2 and "config.json" in _one_line(r.stderr)


def test_a_bad_malloc_mode_is_refused_with_one_line_before_any_work(tmp_path):
    env = _env(LORAML_MALLOC="mmap")
    out = tmp_path / "o"
    r = _run(["-m", "empirics", "vision", "--archive", str(tmp_path / "missing.tar.xz"), "--seeds", "0",
              "--epochs", "1", "--out", str(out), "--quiet"], env=env)
    assert r.returncode == 2 and "LORAML_MALLOC='mmap'" in _one_line(r.stderr) and not out.exists()
    r = _run(["-m", "empirics.real.cpu_table1", "run", "--out", str(out), "--seeds", "0"], env=env)
    assert r.returncode == 2 and "LORAML_MALLOC" in _one_line(r.stderr) and not out.exists()
    r = _run(["benchmarks/bench_real.py", "--methods", "sr"], env=env)
    assert r.returncode == 2 and "LORAML_MALLOC" in _one_line(r.stderr)
