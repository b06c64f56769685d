"""The theory atlas: smoke run end to end (CLI), mathematical content of its cells,
purity / resumption / merging of its units, and bad input."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import theory._atlas as atlas_mod
from landscape.runtime.store import ResultStore
from landscape.runtime.executor import run_units
from theory import AtlasConfig, atlas, atlas_units
from theory.__main__ import main
from theory._atlas import PROPERTIES, SMOKE, contradictions, instance_seed

TINY = AtlasConfig(ks=(1,), ratios=(2,), Ts=(2, 3), instances=1, starts=4, lm_starts=2, gd_runs=1, gd_outer=100,
                   certify_max_dim=30)


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("atlas") / "smoke"
    assert main(["atlas", "--smoke", "--out", str(out), "--seed", "0", "--quiet"]) == 0
    return out


def _cell(result, d, k, T):
    return next(c for c in result["cells"] if (c["d"], c["k"], c["T"]) == (d, k, T))


def test_smoke_outputs(smoke_dir):
    res = json.loads((smoke_dir / "atlas.json").read_text())
    assert res["config"]["name"] == "smoke" and len(res["cells"]) == len(SMOKE.cells())
    for key, _, _ in PROPERTIES:
        with Image.open(smoke_dir / f"{key}.png") as im:
            assert im.size[0] > 200 and im.size[1] > 150
    summary = (smoke_dir / "SUMMARY.md").read_text()
    assert "Thm 3.3" in summary and "Thm 3.4" in summary and "hypothesis" in summary
    for c in res["cells"]:
        seeds = [r["seed"] for r in c["instances"]]
        assert seeds == [instance_seed(0, c["d"], c["k"], c["T"], i) for i in range(SMOKE.instances)]
        for key, (a, b) in c["counts"].items():
            assert 0 <= a <= b, (key, a, b)
        assert len(list((smoke_dir / "cells").glob("cell-*.json"))) == len(SMOKE.cells())


def test_smoke_cells_agree_with_the_theorems(smoke_dir):
    res = json.loads((smoke_dir / "atlas.json").read_text())
    # T = 2, d >= 2k: the global minima form an O(k,k) family, so GD finds A != A* (Thm 3.2)
    for d in (2, 3):
        a, b = _cell(res, d, 1, 2)["counts"]["non_unique"]
        assert a == b == SMOKE.instances
    # T = 3, d = 3k: Thm 3.3 -- every zero-loss point found has A = A* (and some are found)
    c = _cell(res, 3, 1, 3)
    assert c["counts"]["non_unique"][0] == 0
    assert all(r["lm_zero"] + r["kinds"]["global_minimum"] > 0 for r in c["instances"])
    # T = 2, d >= 2k: no spurious second-order point (Thm 3.4); saddles were found and are strict
    for d in (2, 3):
        c = _cell(res, d, 1, 2)
        assert c["counts"]["spurious"][0] == 0
        assert c["counts"]["strict_saddle"][1] > 0 and c["counts"]["strict_saddle"][0] == c["counts"]["strict_saddle"][1]
    assert res["contradictions"] == []


def test_resume_loads_instead_of_recomputing(smoke_dir, monkeypatch):
    before = json.loads((smoke_dir / "atlas.json").read_text())

    def must_not_run(**_):
        raise AssertionError("a stored cell was recomputed")

    monkeypatch.setattr(atlas_mod, "atlas_cell", must_not_run)
    again = atlas(smoke=True, seed=0, out=smoke_dir)
    assert again["cells"] == before["cells"]


def test_cells_are_pure_and_mergeable(tmp_path, monkeypatch):
    units = atlas_units(TINY, seed=5)
    first = units[0].run()
    again = units[0].run()
    # pure in its config (seed included); only the wall time differs
    assert {**again, "seconds": 0} == {**first, "seconds": 0}
    a, b = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b")
    run_units(units[:1], store=a)
    run_units(units[1:], store=b)
    merged = tmp_path / "merged" / "cells"
    merged.mkdir(parents=True)
    for p in list((tmp_path / "a").glob("*.json")) + list((tmp_path / "b").glob("*.json")):
        shutil.copy(p, merged / p.name)
    monkeypatch.setattr(atlas_mod, "atlas_cell", lambda **_: (_ for _ in ()).throw(AssertionError("recomputed")))
    res = atlas(config=TINY, seed=5, out=tmp_path / "merged")
    assert res["config"]["name"] == "custom" and len(res["cells"]) == 2
    assert res["cells"][0]["instances"] == json.loads(json.dumps(first["instances"]))


def test_contradictions_are_reported():
    cell = {"d": 6, "k": 2, "T": 3, "counts": {"non_unique": [1, 4], "spurious": [0, 4]}}
    assert contradictions([cell]) and "Thm 3.3" in contradictions([cell])[0]
    t2 = {"d": 4, "k": 2, "T": 2, "counts": {"non_unique": [4, 4], "spurious": [1, 4]}}
    assert "Thm 3.4" in contradictions([t2])[0]
    beyond = {"d": 5, "k": 2, "T": 3, "counts": {"non_unique": [3, 4], "spurious": [2, 4]}}
    assert contradictions([beyond]) == []  # outside both hypotheses: a finding, not a contradiction


def test_paper_gd_matches_the_official_iteration():
    from landscape import random_instance
    from theory import official_alternating_gd

    inst = random_instance(np.random.default_rng(0), 4, 2, 1)
    A1, U1 = official_alternating_gd(inst.problem, np.random.default_rng(7), outer=30)
    A2, U2 = atlas_mod.paper_gd(inst.problem, np.random.default_rng(7), 1, outer=30)
    np.testing.assert_allclose(A2[0], A1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(U2[0], U1, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("argv, needle", [
    (["--seed", "-3"], "--seed"),
    (["--executor", "local", "--ray-address", "auto"], "--ray-address"),
    (["--workers", "0"], "--workers"),
    (["--bogus"], "unrecognized"),
    (["--starts", "0"], "--starts"),
    (["--starts", "2.5"], "--starts"),
])
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, capsys, argv, needle):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) if argv[0] in ("--bogus", "--starts") else _null():
        rc = main(["atlas", "--out", str(out), *argv])
        assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not out.exists()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_out_is_a_file_exit_2(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["atlas", "--smoke", "--out", str(f)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert f.read_text() == "x"


def test_starts_sets_the_effort_recorded_with_the_run(tmp_path):
    """``--starts N`` changes the searched effort (half as many LM starts) and says so in
    atlas.json: the run is 'custom' and every finding carries N as its starts per instance."""
    import json

    from theory._atlas import FULL

    assert (FULL.starts, FULL.lm_starts) == (100, 50)  # the committed run's effort
    out = tmp_path / "a"
    assert main(["atlas", "--smoke", "--starts", "3", "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "atlas.json").read_text())
    assert res["config"]["starts"] == 3 and res["config"]["lm_starts"] == 1
    assert res["config"]["name"] == "custom"
    assert {s for f in res["findings"] for s in f["starts_per_instance"]} == {3}


@pytest.mark.parametrize("ratios, k, ds", [((1, 2, 3, 4), 1, [1, 2, 3, 4]), ((1, 2, 3, 4), 2, [2, 3, 4, 5, 6, 7, 8]),
                                           ((1, 3), 1, [1, 2, 3]), ((1.5, 2.5), 2, [3, 4, 5]),
                                           ((1, 2, 3), 3, [3, 4, 5, 6, 7, 8, 9])])
def test_every_d_grid_runs_from_the_smallest_to_the_largest_ratio_inclusive(ratios, k, ds):
    from theory._atlas import AtlasConfig

    assert AtlasConfig(ks=(k,), ratios=ratios).ds(k) == ds
    assert AtlasConfig(ks=(k,), ratios=ratios, every_d=False).ds(k) == [int(r * k) for r in ratios]
