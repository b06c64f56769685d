"""The offline-GPU bundle end to end on CPU, on tiny generated stand-ins of the data:
pack -> run (interrupted, then resumed in a fresh process from the bundle's own code) ->
merge -> render, with one-seed rows."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("transformers")

from empirics.real import _fixtures, bundle  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    rng = np.random.default_rng(0)
    _fixtures.write_jpeg_archive(d / bundle.CIFAR_NAME, rng, n_train=4, n_test=2)
    _fixtures.write_tiny_bert(d / "bert", hidden=16, layers=1)
    _fixtures.write_parlai_dialogues(d / "valid.txt.gz", rng, episodes_per_persona=5, turns=2)
    _fixtures.write_persona_map(d / "maps")
    return d


@pytest.fixture(scope="module")
def packed(sources, tmp_path_factory):
    dest = tmp_path_factory.mktemp("b") / "bundle"
    man = bundle.pack(dest, archive=sources / bundle.CIFAR_NAME, valid_file=sources / "valid.txt.gz",
                      map_dir=sources / "maps", model=sources / "bert", verbose=False)
    return dest, man


def test_pack_holds_code_data_and_a_half_precision_encoder(packed):
    dest, man = packed
    files = man["files"]
    assert "code/empirics/real/bundle.py" in files and "code/landscape/runtime/executor.py" in files
    assert not any(f.startswith("code/figures/results/") for f in files)
    assert {f"data/{bundle.CIFAR_NAME}", f"data/convai2/{bundle.VALID_NAME}", "data/convai2/valid_persona_map",
            "data/minilm/model.safetensors.xz", "data/minilm/config.json"} <= set(files)
    assert bundle.verify(dest)["total_bytes"] == man["total_bytes"]
    import lzma

    from safetensors.torch import load

    state = load(lzma.open(dest / "data/minilm/model.safetensors.xz").read())
    assert {str(v.dtype) for v in state.values() if v.is_floating_point()} == {"torch.float16"}
    assert not any(k.startswith("pooler.") for k in state)


def test_pack_refuses_a_non_empty_destination_and_missing_sources(packed, sources, tmp_path):
    dest, _ = packed
    assert bundle.main(["pack", "--dest", str(dest), "--no-language", "--archive",
                        str(sources / bundle.CIFAR_NAME)]) == 2
    assert bundle.main(["pack", "--dest", str(tmp_path / "x"), "--no-language", "--archive",
                        str(tmp_path / "none.tar.xz")]) == 2
    assert not (tmp_path / "x").exists()


def test_verify_detects_a_changed_file(packed, tmp_path):
    import shutil

    dest, _ = packed
    copy = tmp_path / "copy"
    shutil.copytree(dest, copy)
    with open(copy / "data" / "convai2" / "valid_persona_map", "ab") as f:
        f.write(b"x")
    with pytest.raises(bundle.BundleError):
        bundle.verify(copy)


def _run_from_bundle(dest, *args):
    """``python -m empirics.real.bundle`` run with the bundle's own code (not this checkout)."""
    env = dict(os.environ, PYTHONPATH=str(dest / "code"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "empirics.real.bundle", *args], cwd=dest / "code", env=env,
                          capture_output=True, text=True, timeout=300)


def test_run_interrupted_resumed_merged_and_rendered(packed, tmp_path):
    dest, _ = packed
    out = tmp_path / "out"
    common = ["--bundle", str(dest), "--out", str(out), "--device", "cpu", "--scale", "tiny", "--quiet"]
    assert bundle.main(["run", *common, "--max-units", "2"]) == 4  # stopped by --max-units: units missing (exit 4, resumable)
    rm = json.loads((out / "run_manifest.json").read_text())
    assert not rm["complete"] and len(rm["calls"][0]["units"]) == 2
    partial = json.loads((out / "records" / "table1.json").read_text())
    assert [r["seeds"] for r in partial["rows"]]  # what finished is merged already
    done_before = {p.name: p.stat().st_mtime_ns for p in (out / "vision" / "units").glob("*.json")}

    second = _run_from_bundle(dest, "run", *common)
    assert second.returncode == 0, second.stderr
    rm = json.loads((out / "run_manifest.json").read_text())
    assert rm["complete"] and rm["missing"] == [] and len(rm["calls"]) == 2
    assert rm["calls"][1]["device"]["device"] == "cpu" and rm["provenance"]["versions"]["torch"]
    # the resumed call did not redo the units of the first
    assert all((out / "vision" / "units" / n).stat().st_mtime_ns == t for n, t in done_before.items())
    assert not any(u["unit"] in {v["unit"] for v in rm["calls"][0]["units"]} for u in rm["calls"][1]["units"])

    t1 = json.loads((out / "records" / "table1.json").read_text())
    assert [r["row"] for r in t1["rows"]] == ["LoRA-ML", "SR + LoRA", "Reptile + LoRA", "Last-Layer-ML",
                                              "SR + Last-Layer", "Reptile + Last-Layer"]
    assert all(r["seeds"] == [1, 2] for r in t1["rows"]) and t1["engine"] == "batched"
    t2 = json.loads((out / "records" / "table2.json").read_text())
    assert len(t2["rows"]) == 6 and all(r["seeds"] == [0] for r in t2["rows"])  # one-seed rows
    assert set(json.loads((out / "plan.json").read_text())["experiments"]) == {
        "table1", "table2", "table3_rank1", "table3_rank8"}
    assert (out / "table3_rank1" / "units").is_dir() and not (out / "table3_rank8").exists()  # rank 8 = Table 2

    for f in (out / "tables").iterdir():
        f.unlink()
    assert bundle.main(["merge", "--out", str(out)]) == 0
    assert bundle.main(["render", "--out", str(out)]) == 0
    names = {p.name for p in (out / "tables").iterdir()}
    assert {"table1.md", "table1.png", "table2.md", "table2.png", "table3.md"} <= names
    t2_md = (out / "tables" / "table2.md").read_text()
    assert "n/a" in t2_md and "nan" not in t2_md.replace("n/a", "")  # one seed: no SE, no crash
    assert "| 1 |" in (out / "tables" / "table3.md").read_text()


def test_bad_input_exits_2_with_one_line(packed, tmp_path, capsys):
    dest, _ = packed
    for argv in (["run", "--bundle", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "cpu"],
                 ["run", "--bundle", str(dest), "--out", str(tmp_path / "o"), "--device", "cpu", "--budget-s", "0"],
                 ["run", "--bundle", str(dest), "--out", str(tmp_path / "o"), "--device", "tpu"],
                 ["render", "--out", str(tmp_path / "nothing")]):
        capsys.readouterr()
        assert bundle.main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("python -m empirics.real.bundle: error: "), (argv, err)
    assert not (tmp_path / "o").exists()


def test_paper_plan_is_the_paper_protocol(tmp_path):
    from empirics.real._run import LANGUAGE_PAPER, VISION_PAPER

    plan = bundle._plan(tmp_path / "b", tmp_path / "o", "cuda", "paper", {1, 2, 3},
                        {"vision": True, "language": True})
    v = plan["experiments"]["table1"]["config"]
    assert (v["seeds"], v["width"], v["epochs"], v["batch_size"], v["bf16"]) == (
        VISION_PAPER.seeds, 512, 100, 256, True)
    lang = plan["experiments"]["table2"]["config"]
    assert (lang["seeds"], lang["k"], lang["epochs"]) == (LANGUAGE_PAPER.seeds, 8, 10)
    ranks = {k: e for k, e in plan["experiments"].items() if k.startswith("table3")}
    assert sorted(e["config"]["k"] for e in ranks.values()) == [1, 4, 8, 16]
    assert ranks["table3_rank8"]["dir"] == "language" and ranks["table3_rank4"]["dir"] == "table3_rank4"
    with pytest.raises(bundle.BundleError):
        bundle._plan(tmp_path / "b", tmp_path / "o", "cuda", "paper", {2}, {"vision": True, "language": False})


# ---------------------------------------------------------------- survivors of a cosmic-ray sample
@pytest.mark.parametrize("flag,verify", [([], True), (["--no-verify"], False)])
def test_run_verifies_the_bundles_files_unless_told_not_to(monkeypatch, tmp_path, flag, verify):
    seen = {}

    def run_bundle(bundle_dir, out, **kw):
        seen.update(kw)
        return {"complete": True, "missing": []}

    monkeypatch.setattr(bundle, "run_bundle", run_bundle)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "MANIFEST.json").write_text("{}")
    argv = ["run", "--bundle", str(tmp_path / "b"), "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet"]
    assert bundle.main(argv + flag) == 0
    assert seen["verify_files"] is verify and seen["progress"] is False


@pytest.mark.parametrize("vision_ran", [True, False])
def test_table_1_is_rendered_as_soon_as_its_units_ran(monkeypatch, tmp_path, vision_ran):
    """After the vision experiment started units, its records are merged and rendered at
    once, before the language experiments (a later kill leaves Table 1 written); when it
    ran nothing there is nothing new to render."""
    events = []

    class Killed(Exception):
        pass

    def run_language(*a, **k):
        events.append("language")
        raise Killed

    plan = {"experiments": {"table1": {"kind": "vision", "config": {}, "dir": "t1"},
                            "table2": {"kind": "language", "config": {}, "dir": "t2"}}}
    monkeypatch.setattr(bundle, "verify", lambda b: {})
    monkeypatch.setattr(bundle, "_plan", lambda *a: plan)
    monkeypatch.setattr(bundle, "_config_from", lambda d, rc: None)
    monkeypatch.setattr(bundle, "_unpack_model", lambda *a: None)
    monkeypatch.setattr(bundle, "_run_vision", lambda cfg, out, clock, log, progress:
                        log.append("unit") if vision_ran else None)
    monkeypatch.setattr(bundle, "_run_language", run_language)
    monkeypatch.setattr(bundle, "merge", lambda out: events.append("merge") or {})
    monkeypatch.setattr(bundle, "render", lambda out, records=None: events.append("render"))
    with pytest.raises(Killed):
        bundle.run_bundle(tmp_path / "b", tmp_path / "out", device="cpu")
    assert events == (["merge", "render", "language"] if vision_ran else ["language"])


def test_pack_prints_each_parts_size_and_the_total_in_mib(capsys):
    from empirics.real import _bundle_pack

    mib = 2 ** 20
    files = {"code/a.py": {"bytes": 3 * mib}, "code/b.py": {"bytes": mib // 2},
             "data/convai2/x.txt": {"bytes": 5 * mib}, "data/convai2/y": {"bytes": 3 * mib},
             "data/cifar.tar.xz": {"bytes": mib // 4}, "MANIFEST.json": {"bytes": 0}}
    _bundle_pack.print_sizes({"files": files, "total_bytes": 12 * mib}, "B")
    lines = [ln.split() for ln in capsys.readouterr().err.splitlines()]
    assert lines == [["MANIFEST.json", "0.00", "MiB"], ["code", "3.50", "MiB"], ["data/cifar.tar.xz", "0.25", "MiB"],
                     ["data/convai2", "8.00", "MiB"], ["total", "12.00", "MiB", "in", "B"]]


def test_the_model_is_packed_into_an_existing_folder(tmp_path):
    from empirics.real import _bundle_pack

    src = _fixtures.write_tiny_bert(tmp_path / "bert", hidden=16, layers=1)
    dest = tmp_path / "bundle" / "data" / "minilm"
    dest.mkdir(parents=True)  # as pack lays out the folder before the model
    _bundle_pack._pack_model(src, dest)
    assert any(dest.iterdir())


# ---------------------------------------------------------------- survivors of a seed-15 sample
def test_a_cuda_run_without_cuda_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    import torch

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "MANIFEST.json").write_text("{}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(bundle, "run_bundle", lambda *a, **k: pytest.fail("ran without CUDA"))
    assert bundle.main(["run", "--bundle", str(tmp_path / "b"), "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
    assert "--device cuda requested but CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_gpu_is_described_by_its_memory_in_gib(monkeypatch):
    import torch

    props = type("P", (), {"name": "Some GPU", "total_memory": 80 * 2**30 + 2**28})()
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda dev: props)
    info = bundle._device_info("cuda:0")
    assert info["name"] == "Some GPU" and info["memory_gib"] == 80.2 and info["device"] == "cuda:0"


@pytest.mark.parametrize("scale", ["tiny", "reduced"])
def test_every_dry_run_preset_trains_at_least_one_epoch_of_each_stage(scale):
    for exp in ("vision", "language"):
        preset = bundle.SCALES[scale][exp]
        assert preset["epochs"] >= 1 and preset["finetune_epochs"] >= 1 and preset["reptile_outer_epochs"] >= 1
        assert preset["reptile_inner_steps"] >= 1


def test_a_manifest_of_another_kind_is_refused(tmp_path):
    from empirics.real import _bundle_pack
    from landscape.runtime.integrity import sealed_text

    (tmp_path / "MANIFEST.json").write_text(sealed_text({"kind": "something.else", "files": {}}))
    with pytest.raises(bundle.BundleError, match="not a bundle manifest"):
        _bundle_pack.read_manifest(tmp_path)


@pytest.mark.parametrize("name", ["../outside.txt", "code/../../outside.txt", "/etc/passwd", "/abs/../x"])
def test_a_manifest_naming_a_file_outside_the_bundle_is_refused(tmp_path, name):
    from empirics.real import _bundle_pack
    from landscape.runtime.integrity import sealed_text

    files = {"code/a.py": {"bytes": 1, "sha256": "0" * 64}, name: {"bytes": 1, "sha256": "0" * 64}}
    (tmp_path / "MANIFEST.json").write_text(sealed_text({"kind": "loraml.bundle", "files": files}))
    with pytest.raises(bundle.BundleError, match="names a file outside the bundle"):
        _bundle_pack.read_manifest(tmp_path)
    ok = {"code/a.py": files["code/a.py"], "data/b..c.txt": files["code/a.py"]}  # '..' inside a name is fine
    (tmp_path / "MANIFEST.json").write_text(sealed_text({"kind": "loraml.bundle", "files": ok}))
    assert _bundle_pack.read_manifest(tmp_path)["files"] == ok


@pytest.mark.parametrize("tables, planned", [((1,), ["table1"]), ((2,), ["table2"]), ((1, 2), ["table1", "table2"])])
def test_the_plan_holds_exactly_the_tables_asked_for(tmp_path, tables, planned):
    """Table 1 (vision) is planned when 1 is asked for, whatever else is; Table 2 when 2 is."""
    plan = bundle._plan(tmp_path, tmp_path / "out", "cpu", "tiny", tables, {"vision": True, "language": True})
    assert sorted(plan["experiments"]) == planned and plan["tables"] == sorted(tables)


def test_run_bundle_runs_all_three_tables_unless_told_and_takes_its_options_by_keyword():
    import inspect

    from ._pin_tools import assert_options_by_keyword

    assert inspect.signature(bundle.run_bundle).parameters["tables"].default == (1, 2, 3)
    assert_options_by_keyword(bundle.run_bundle, ["bundle", "out"])


def test_a_manifest_whose_seal_is_broken_is_refused_as_a_bundle_error(tmp_path):
    """An edited MANIFEST.json (its integrity seal no longer matches) is refused with the
    reason and the remedy, as a BundleError (the command's clean refusal), not a store error."""
    from empirics.real import _bundle_pack
    from landscape.runtime.integrity import sealed_text

    text = sealed_text({"kind": "loraml.bundle", "files": {}})
    (tmp_path / "MANIFEST.json").write_text(text.replace('"files"', '"fileZ"'))
    with pytest.raises(bundle.BundleError, match="pack the bundle again$"):
        _bundle_pack.read_manifest(tmp_path)


def test_verify_detects_a_same_size_change_whichever_way_its_digest_sorts(packed, tmp_path):
    """A file changed in place (same size) is refused by its sha256, whether the new digest
    sorts above or below the manifest's (one byte flipped until both cases are seen)."""
    import hashlib
    import shutil

    dest, _ = packed
    name = "data/convai2/valid_persona_map"
    orig = (dest / name).read_bytes()
    want = hashlib.sha256(orig).hexdigest()
    seen = set()
    for v in range(256):
        data = bytes([v]) + orig[1:]
        if data == orig:
            continue
        above = hashlib.sha256(data).hexdigest() > want
        if above in seen:
            continue
        seen.add(above)
        copy = tmp_path / f"copy{v}"
        shutil.copytree(dest, copy)
        (copy / name).write_bytes(data)
        with pytest.raises(bundle.BundleError, match="differs from MANIFEST.json"):
            bundle.verify(copy)
        if len(seen) == 2:
            break
    assert seen == {True, False}
