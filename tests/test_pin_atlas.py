"""The atlas as a measurement with stated effort (issue 16, item 5).

* the committed counts are recomputed from the committed per-instance records;
* each property's definition is pinned by planted records and a planted cell
  ("every critical point with G > 0 is a strict saddle", spurious candidates among the
  positive critical points, second minimisers from either method, distinct classes);
* counts carry their search effort and are labelled as bounds.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import landscape as ls
import theory._atlas as atlas_mod
from landscape._instances import f2_spurious_instance
from theory._atlas import BOUNDS, AtlasConfig, _counts, atlas, contradictions, summarise
from theory._atlas_effort import effort_sweep

COMMITTED = Path(__file__).resolve().parents[1] / "theory" / "results" / "atlas" / "atlas.json"


# --------------------------------------------------------------------------------------
# the committed run
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def committed():
    return json.loads(COMMITTED.read_text())


def test_committed_counts_follow_from_the_per_instance_records(committed):
    for cell in committed["cells"]:
        again = _counts(cell["instances"])
        for key, value in cell["counts"].items():
            assert again[key] == value, (cell["d"], cell["k"], cell["T"], key)


def test_committed_findings_and_contradictions_follow_from_the_cells(committed):
    cells = [{**c, "counts": _counts(c["instances"])} for c in committed["cells"]]
    again = {(f["theorem"], f["property"], f["region"]): f for f in summarise(cells)}
    for f in committed["findings"]:
        g = again[(f["theorem"], f["property"], f["region"])]
        assert (g["count"], g["trials"], g["cells"]) == (f["count"], f["trials"], f["cells"])
    assert contradictions(cells) == committed["contradictions"]


# --------------------------------------------------------------------------------------
# property definitions on planted records
# --------------------------------------------------------------------------------------
def _rec(**kw):
    base = {"second_minimisers_search": 0, "second_minimisers_lm": 0, "spurious_classes": 0, "certificates": [],
            "gd_starts_spurious": 0, "gd_starts": 4, "positive_critical": 0, "strict_saddles": 0,
            "degenerate_classes": 0, "gd_reached": [True], "gd_endpoint_reached": [True]}
    return {**base, **kw}


def test_strict_saddle_means_every_positive_critical_point():
    recs = [_rec(positive_critical=2, strict_saddles=1),  # one is not a saddle: property fails
            _rec(positive_critical=3, strict_saddles=3),  # all are saddles: holds
            _rec(positive_critical=0, strict_saddles=0)]  # nothing found: not a trial
    assert _counts(recs)["strict_saddle"] == [1, 2]
    assert _counts(recs)["critical_points_positive"] == [4, 5]


def test_second_minimisers_of_either_method_count():
    recs = [_rec(second_minimisers_lm=1), _rec(second_minimisers_search=2), _rec()]
    assert _counts(recs)["non_unique"] == [2, 3]


def test_distinct_spurious_classes_are_counted():
    recs = [_rec(spurious_classes=2, certificates=["certified", "refused"]), _rec(spurious_classes=1), _rec()]
    c = _counts(recs)
    assert c["spurious"] == [2, 3] and c["spurious_classes"] == [3, 3] and c["spurious_certified"] == [1, 3]


@pytest.fixture(scope="module")
def planted_f2_record():
    """One atlas instance on the F.2 problem with planted search results: the spurious
    minimum (GD from its neighbourhood), the global minimum and a strict saddle."""
    inst, U0 = f2_spurious_instance()
    p = inst.problem
    rng = np.random.default_rng(0)
    found = ls.search(p, rng=rng, n_starts=0, starts=np.stack([U0, inst.U_star * 1.01]), methods=["gd"])
    saddles = [r for r in ls.search(p, rng=np.random.default_rng(2), n_starts=24, methods=["root-hybr"])
               if r.spectrum.lambda_min_quotient < -1e-3 and r.grad_norm < 1e-9]
    planted = list(found) + saddles[:1]
    mp = pytest.MonkeyPatch()
    mp.setattr(atlas_mod, "random_instance", lambda rng, d, T, k: inst)
    mp.setattr(atlas_mod, "search", lambda *a, **kw: planted)
    try:
        rec = atlas_mod._instance(3, 1, 3, 0, starts=3, lm_starts=0, gd_runs=0, gd_outer=1, certify_max_dim=30)
    finally:
        mp.undo()
    return rec


def test_planted_cell_counts_the_spurious_minimum_among_positive_critical_points(planted_f2_record):
    rec = planted_f2_record
    assert rec["spurious_classes"] == 1 and rec["certificates"] == ["certified"]
    assert rec["strict_saddles"] == 1 and rec["positive_critical"] == 2
    c = _counts([rec])
    assert c["strict_saddle"] == [0, 1]  # a spurious minimum refutes "every ... is a strict saddle"
    assert c["spurious"] == [1, 1] and c["spurious_certified"] == [1, 1]


# --------------------------------------------------------------------------------------
# effort and bounds in the outputs
# --------------------------------------------------------------------------------------
ONE = AtlasConfig(ks=(1,), ratios=(3,), Ts=(3,), instances=1, starts=2, lm_starts=0, gd_runs=1, gd_outer=20,
                  certify_max_dim=30, every_d=False)


def test_cells_state_their_effort_and_counts_are_labelled_bounds(tmp_path):
    res = atlas(config=ONE, seed=1, out=tmp_path)
    (cell,) = res["cells"]
    assert cell["effort"]["starts"] == 2 and cell["effort"]["gd_starts"] + cell["effort"]["root_starts"] == 2
    for f in res["findings"]:
        assert f["bound"] == BOUNDS.get(f["property"], "estimate") and f["starts_per_instance"] == [2]
    assert BOUNDS["spurious"] == "at least" and BOUNDS["non_unique"] == "at least"
    assert BOUNDS["strict_saddle"] == "at most"
    summary = (tmp_path / "SUMMARY.md").read_text()
    assert "lower bounds" in summary and "| >= " in summary


def test_effort_sweep_rows_are_prefixes_of_one_nested_search():
    out = effort_sweep(3, 1, 3, seed=0, instances=1, starts=(2, 4, 6), certify_max_dim=30)
    assert out["nested"] and [r["starts"] for r in out["rows"]] == [2, 4, 6]
    for a, b in zip(out["rows"], out["rows"][1:]):  # nested start sets: existence counts cannot shrink
        assert b["spurious_classes"][0] >= a["spurious_classes"][0]
        assert b["second_minimisers_search"][0] >= a["second_minimisers_search"][0]
    for r in out["rows"]:
        assert r["spurious_classes"][0] == sum(r["per_instance_spurious_classes"])


def test_the_first_block_of_the_sweep_repeats_the_atlas_search():
    """The first ``starts[0]`` starts are the atlas's own draw: the same classes are found."""
    from theory._atlas_effort import nested_instance

    seed = atlas_mod.instance_seed(0, 3, 1, 3, 0)
    sweep = nested_instance(3, 1, 3, seed, starts=(4, 6), certify_max_dim=30)[0]
    rec = atlas_mod._instance(3, 1, 3, seed, 4, 0, 0, 1, 30)
    for key in ("spurious_classes", "positive_critical", "strict_saddles", "degenerate_classes",
                "second_minimisers_search", "gd_starts", "gd_starts_spurious", "certificates"):
        assert sweep[key] == rec[key], key


def _row(n, classes, second=(0,), saddle=(1, 1)):
    return {"starts": n, "spurious": [sum(c > 0 for c in classes), len(classes)], "spurious_classes": [sum(classes), 1],
            "spurious_certified": [0, 1], "second_minimisers_search": [sum(s > 0 for s in second), 1],
            "per_instance_spurious_classes": list(classes), "per_instance_second_minimisers": list(second),
            "strict_saddle": list(saddle)}


def test_stopped_growing_at_is_the_effort_after_the_last_change():
    from theory._atlas_effort import stopped_growing_at

    assert stopped_growing_at([_row(12, (1,)), _row(25, (2,)), _row(50, (2,)), _row(100, (2,))]) == 25
    assert stopped_growing_at([_row(12, (1,)), _row(25, (1,)), _row(50, (2,))]) is None  # grew at the last step
    assert stopped_growing_at([_row(12, (1,)), _row(25, (1,))]) == 12
    assert stopped_growing_at([_row(12, (1,))]) is None
    # an instance with a second minimiser or a refuted strict-saddle property found later is growth;
    # more points of a continuum of second minimisers on the same instance is not
    assert stopped_growing_at([_row(12, (0,)), _row(25, (0,), second=(1,)), _row(50, (0,), second=(1,))]) == 25
    assert stopped_growing_at([_row(12, (0,), second=(1,)), _row(25, (0,), second=(5,)),
                               _row(50, (0,), second=(9,))]) == 12
    assert stopped_growing_at([_row(12, (0,)), _row(25, (0,), saddle=(0, 1)), _row(50, (0,), saddle=(0, 1))]) == 25


EFFORT = COMMITTED.parent / "effort"


def test_committed_effort_sweeps_match_the_atlas_and_their_summary(committed):
    from theory._atlas_effort import effort_markdown, stopped_growing_at

    sweeps = [json.loads(f.read_text()) for f in sorted(EFFORT.glob("effort-sweep-*.json"))]
    assert sweeps, "no committed effort sweep"
    assert (EFFORT / "EFFORT.md").read_text() == effort_markdown(sweeps) + "\n"
    for s in sweeps:
        assert s["stopped_growing_at"] == stopped_growing_at(s["rows"])
    cells = {(c["d"], c["k"], c["T"]): c for c in committed["cells"]}
    for s in sweeps:
        cell, first = cells[(s["d"], s["k"], s["T"])], s["rows"][0]
        if first["starts"] != cell["effort"]["starts"] or s["instances"] != len(cell["instances"]):
            continue
        # the sweep's first row is the atlas's search again: same spurious classes per instance
        assert first["per_instance_spurious_classes"] == [r["spurious_classes"] for r in cell["instances"]]
        assert first["per_instance_second_minimisers"] == [r["second_minimisers_search"] for r in cell["instances"]]


@pytest.mark.parametrize("argv", [["--effort-sweep", "3,2"], ["--effort-sweep", "3,4,6"], ["--effort-sweep", "3,2,1"],
                                  ["--effort-sweep", "3,3,3"],  # K = D: the landscape needs 1 <= k < d
                                  ["--effort-sweep", "3,1,3,4"],  # four numbers: not read as the first three
                                  ["--effort-sweep", "3,0,3"],  # K = 0: every number is at least 1
                                  ["--effort-sweep", "3,1,3", "--seed", "-1"],  # seeds are >= 0
                                  ["--effort-sweep", "3,2,6", "--sweep-starts", "12,0"],
                                  ["--effort-sweep", "3,2,6", "--sweep-instances", "0"]])
def test_effort_sweep_bad_input_exits_2_with_one_line(tmp_path, capsys, argv):
    from theory.__main__ import main

    out = tmp_path / "o"
    assert main(["atlas", "--out", str(out), "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m theory atlas: error:")
    assert not out.exists()


def test_effort_sweep_cli_writes_its_json(tmp_path, capsys):
    from theory.__main__ import main

    assert main(["atlas", "--out", str(tmp_path), "--quiet", "--effort-sweep", "3,1,3", "--sweep-starts", "2",
                 "--sweep-instances", "1"]) == 0
    data = json.loads((tmp_path / "effort-sweep-d3-k1-T3.json").read_text())
    assert data["format"] == "loraml-atlas-effort-sweep" and [r["starts"] for r in data["rows"]] == [2]
    out = capsys.readouterr().out
    assert "counts stopped growing at" in out
    # each row: spurious instances found / instances run
    assert f"starts    2: spurious instances {data['rows'][0]['spurious'][0]}/1, " in out
    # EFFORT.md summarises the nested sweeps of this format in the folder, and only those
    from theory._atlas_effort import effort_markdown

    old = {**data, "format": "something-else", "d": 4}
    (tmp_path / "effort-sweep-d4-k1-T3.json").write_text(json.dumps(old))
    assert main(["atlas", "--out", str(tmp_path), "--quiet", "--overwrite", "--effort-sweep", "3,1,3",
                 "--sweep-starts", "2", "--sweep-instances", "1"]) == 0
    again = json.loads((tmp_path / "effort-sweep-d3-k1-T3.json").read_text())
    assert (tmp_path / "EFFORT.md").read_text() == effort_markdown([again]) + "\n"


@pytest.mark.parametrize("side,reached", [(1 - 1e-3, True), (1 + 1e-3, False)])
def test_a_gd_endpoint_is_reached_below_1e_8_of_the_loss_at_zero(side, reached):
    """The paper's GD ends at (A* + c E, U*) with loss (1 -+ 1e-3) x 1e-8 G(0): reached / not."""
    inst = ls.random_instance(np.random.default_rng(5), 3, 3, 1)
    p = inst.problem
    G0 = p.reduced_loss(np.zeros(inst.U_star.shape))
    E = np.random.default_rng(6).standard_normal((3, 3))
    unit = p.loss(inst.A_star + E, inst.U_star)  # the loss is quadratic in c: unit * c^2
    c = np.sqrt(side * 1e-8 * G0 / unit)
    mp = pytest.MonkeyPatch()
    mp.setattr(atlas_mod, "random_instance", lambda rng, d, T, k: inst)
    mp.setattr(atlas_mod, "search", lambda *a, **kw: [])
    mp.setattr(atlas_mod, "paper_gd", lambda prob, rng, runs, outer: ((inst.A_star + c * E)[None], inst.U_star[None]))
    try:
        rec = atlas_mod._instance(3, 1, 3, 0, starts=0, lm_starts=0, gd_runs=1, gd_outer=1, certify_max_dim=30)
    finally:
        mp.undo()
    assert rec["gd_endpoint_loss_relative"][0] == pytest.approx(side * 1e-8, rel=1e-6)
    assert rec["gd_endpoint_reached"] == [reached]


def _region_holds(region: str, c) -> bool:
    """The region a finding states, read as the words say (T = 2 / T >= 3, then a condition on
    d against k when one is given; other words describe the measurement, not the region)."""
    parts = [p.split(" (")[0].strip() for p in region.split(",")]
    T_ok = {"T = 2": c["T"] == 2, "T >= 3": c["T"] >= 3}[parts[0]]
    d, k = c["d"], c["k"]
    conds = {"d >= 3k": d >= 3 * k, "2k <= d < 3k": 2 * k <= d < 3 * k, "d < 2k": d < 2 * k,
             "d >= 2k": d >= 2 * k, "d < 3k": d < 3 * k}
    return T_ok and all(conds[p] for p in parts[1:] if p in conds)


def test_every_finding_sums_exactly_the_cells_of_the_region_it_states():
    """Cells over T in {2, 3, 4}, k in {1, 2}, each with T hits in 10 T trials of every property
    (so that a region taking T = 2 and 4 for T = 3 and 4 sums differently even where, as for
    d < 2k, every T holds as many cells): every finding counts the cells its region text names."""
    props = ("non_unique", "strict_saddle", "spurious", "spurious_certified", "spurious_frequency", "gd_success")
    cells = [{"d": d, "k": k, "T": T, "counts": {p: [T, 10 * T] for p in props}}
             for T in (2, 3, 4) for d in range(1, 10 - T) for k in (1, 2)]
    found = summarise(cells)
    assert len(found) >= 12
    for f in found:
        inside = [c for c in cells if _region_holds(f["region"], c)]
        want = (len(inside), sum(c["T"] for c in inside), sum(10 * c["T"] for c in inside))
        assert (f["cells"], f["count"], f["trials"]) == want, f["region"]


@pytest.mark.parametrize("d, T, k, runs", [(3, 3, 1, True), (2, 2, 2, False), (2, 3, 1, True), (1, 2, 1, False),
                                           (2, 2, 1, True)])
def test_lm_runs_only_with_at_least_as_many_residuals_as_unknowns(d, T, k, runs):
    """MINPACK's LM needs T d^2 residuals >= d^2 + T d k unknowns; without LM the record's LM
    fields say nothing was found (0 zeros, 0 second minimisers, nullity -1)."""
    from types import SimpleNamespace

    inst = ls.random_instance(np.random.default_rng(5), d, T, k)
    calls = []

    def report(instance, rng, *, starts, **kw):
        calls.append(starts)
        return SimpleNamespace(n_zero=2, n_exceptions=1, nullity=0)

    mp = pytest.MonkeyPatch()
    mp.setattr(atlas_mod, "random_instance", lambda rng, d_, T_, k_: inst)
    mp.setattr(atlas_mod, "search", lambda *a, **kw: [])
    mp.setattr(atlas_mod, "uniqueness_report", report)
    mp.setattr(atlas_mod, "paper_gd", lambda prob, rng, runs_, outer: (inst.A_star[None], inst.U_star[None]))
    try:
        rec = atlas_mod._instance(d, k, T, 0, starts=0, lm_starts=4, gd_runs=1, gd_outer=1, certify_max_dim=30)
    finally:
        mp.undo()
    assert (T * d * d >= d * d + T * d * k) is runs
    assert calls == ([4] if runs else [])
    assert (rec["lm_zero"], rec["second_minimisers_lm"], rec["lm_nullity"]) == ((2, 1, 0) if runs else (0, 0, -1))


def test_a_finding_without_trials_shows_an_empty_interval():
    f = {"theorem": "t", "property": "spurious", "region": "T >= 3", "predicted": "p", "count": 0, "trials": 0,
         "cells": 1, "bound": "at least"}
    cfg = {"ks": (1,), "ratios": (3,), "Ts": (3,), "instances": 1, "starts": 2, "lm_starts": 0, "gd_runs": 1,
           "gd_outer": 20}
    md = atlas_mod.summary_markdown({"findings": [f], "config": cfg, "contradictions": [], "cells": [], "seed": 0,
                                     "cell_seconds": 1.0})
    assert "| t | spurious | T >= 3 | p | >= 0/0 (1 cells) | [nan, nan] |" in md


def test_spurious_counts_stop_growing_where_the_spurious_class_count_stops():
    """The spurious key reads the number of distinct spurious classes (not the number of
    instances, the second entry): classes 1 -> 2 at the same instance count is growth."""
    from theory._atlas_effort import _spurious_key, stopped_growing_at

    rows = [_row(12, (1,)), _row(25, (1,)), _row(50, (2,)), _row(100, (2,))]
    assert [r["spurious"][0] for r in rows] == [1, 1, 1, 1]  # the same one instance throughout
    assert stopped_growing_at(rows, _spurious_key) == 50
    assert _spurious_key(rows[2]) == (1, 2, 0, (2,))


@pytest.mark.parametrize("smoke, starts, lm", [(True, 8, 4), (True, 9, 4), (False, 1, 1), (False, 40, 20)])
def test_atlas_starts_flag_gives_half_as_many_levenberg_marquardt_starts(monkeypatch, tmp_path, smoke, starts, lm):
    """--starts N: N random starts per instance and, as its help says, half as many more (at
    least one) go to Levenberg-Marquardt; every other setting of the chosen grid is kept."""
    import dataclasses

    import theory._atlas as atlas_mod
    from theory.__main__ import main

    seen = {}

    def fake(*, smoke, config, **kw):
        seen["config"] = config
        return {"findings": [], "cells": [], "cell_seconds": 0.0}

    monkeypatch.setattr(atlas_mod, "atlas", fake)
    argv = ["atlas", "--out", str(tmp_path / "o"), "--quiet", "--starts", str(starts)] + (["--smoke"] if smoke else [])
    assert main(argv) == 0
    base = atlas_mod.SMOKE if smoke else atlas_mod.FULL
    assert seen["config"] == dataclasses.replace(base, starts=starts, lm_starts=lm)


@pytest.mark.parametrize("slack, want", [(0, "certified"), (1, "certified"), (-1, "too_large")])
def test_the_atlas_certifies_a_candidate_up_to_exactly_its_maximum_dimension(slack, want):
    """App. F.2's spurious minimum (T d k = 9 unknowns) is certified with max_dim = 9 or 10 and
    reported too large for max_dim = 8: the bound is inclusive."""
    inst, U0 = f2_spurious_instance()
    assert inst.problem.dim_U == 9
    assert atlas_mod._certify(inst.problem, U0, inst.U_star, 9 + slack) == want


def test_an_instance_record_counts_each_kind_and_reaches_only_global_minima(monkeypatch):
    """The per-kind class counts agree with the counts taken over the positive classes, and a
    GD run counts as reaching a global minimum only when its end point is one (here the end
    points are classified in turn as a global minimum, a strict saddle, spurious, not critical)."""
    from types import SimpleNamespace

    from landscape._classify import GLOBAL_MINIMUM, NOT_CRITICAL, SPURIOUS_CANDIDATE, STRICT_SADDLE
    from theory import _atlas as A

    seed = A.instance_seed(0, 3, 1, 3, 0)
    rec = A._instance(3, 1, 3, seed, 8, 0, 0, 1, 30)
    assert rec["classes"][STRICT_SADDLE] == rec["strict_saddles"] > 0
    assert rec["classes"][SPURIOUS_CANDIDATE] == rec["spurious_classes"]
    assert rec["classes"]["degenerate"] == rec["degenerate_classes"]
    assert rec["classes"][GLOBAL_MINIMUM] == 1
    # the GD end points (classified after the continued descent) get these kinds in turn
    kinds = iter([GLOBAL_MINIMUM, STRICT_SADDLE, SPURIOUS_CANDIDATE, NOT_CRITICAL])
    after_gd = [False]
    real_classify, real_gd = A.classify_result, A.gradient_descent

    def classify(prob, r, **kw):
        return SimpleNamespace(kind=next(kinds)) if after_gd[0] else real_classify(prob, r, **kw)

    def gd(prob, U, **kw):
        after_gd[0] = True
        return real_gd(prob, U, **kw)

    monkeypatch.setattr(A, "classify_result", classify)
    monkeypatch.setattr(A, "gradient_descent", gd)
    rec = A._instance(3, 1, 3, seed, 8, 0, 4, 1, 30)
    assert rec["gd_final_kind"] == [GLOBAL_MINIMUM, STRICT_SADDLE, SPURIOUS_CANDIDATE, NOT_CRITICAL]
    assert rec["gd_reached"] == [True, False, False, False]


def test_the_papers_gd_runs_the_official_3000_outer_steps_of_10_inner_by_default():
    """THEORY.md 9.1's alternating GD: 3000 outer iterations of 10 inner U steps, steps 0.003 /
    0.03, initialisation 0.1 -- the same defaults in the atlas's batched copy, the check's
    single-run version and the linear experiment's configuration."""
    import inspect

    from empirics._linear import LinearConfig
    from theory._checks_minima import official_alternating_gd

    atlas_gd = inspect.signature(atlas_mod.paper_gd).parameters
    check_gd = inspect.signature(official_alternating_gd).parameters
    lin = LinearConfig()
    for name, value in (("outer", lin.outer_steps), ("inner", lin.inner_steps), ("lr_U", lin.lr_U),
                        ("lr_A", lin.lr_A), ("init_std", lin.init_std)):
        assert atlas_gd[name].default == value
        if name in check_gd:
            assert check_gd[name].default == value
    assert atlas_gd["outer"].default == 3000 and atlas_gd["inner"].default == 10


def test_the_committed_effort_sweeps_used_the_atlas_search_budget():
    """The effort sweeps beside the committed atlas say how its counts grow with the number
    of starts; they describe the atlas only if every search ran with the atlas's own
    iteration budget (SEARCH_MAX_ITER) and methods."""
    import json
    from pathlib import Path

    from theory import _atlas

    folder = Path(__file__).resolve().parents[1] / "theory" / "results" / "atlas" / "effort"
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("effort-sweep-*.json"))]
    assert len(records) >= 5
    for rec in records:
        assert rec["format"] == "loraml-atlas-effort-sweep"
        assert rec["max_iter"] == _atlas.SEARCH_MAX_ITER and rec["methods"] == ["gd", "root-lm"]


def test_nested_instance_rows_count_each_kind_of_class(monkeypatch):
    """A row of the effort sweep counts, among the classes found with the first n starts, the
    strict saddles, spurious candidates and degenerate points (together the positive critical
    points), and among the gradient-descent starts (every other one) those ending at a spurious
    candidate; planted classes and kinds stand in for the search."""
    from types import SimpleNamespace

    import theory._atlas_effort as AE
    from landscape._classify import DEGENERATE, GLOBAL_MINIMUM, SPURIOUS_CANDIDATE, STRICT_SADDLE

    kinds = [STRICT_SADDLE, SPURIOUS_CANDIDATE, DEGENERATE, DEGENERATE, GLOBAL_MINIMUM, SPURIOUS_CANDIDATE]
    monkeypatch.setattr(AE, "search", lambda prob, **kw: [SimpleNamespace(point=U) for U in kw["starts"]])
    monkeypatch.setattr(AE, "classify_result", lambda prob, r, **kw: SimpleNamespace(kind=kinds.pop(0)))

    def dedup(prob, points, cls):
        return [SimpleNamespace(kind=c.kind, representative=i,
                                classification=SimpleNamespace(recovers_A_star=True)) for i, c in enumerate(cls)]

    monkeypatch.setattr(AE, "deduplicate", dedup)
    monkeypatch.setattr(AE._atlas, "_certify", lambda *a, **k: "planted")
    (row,) = AE.nested_instance(3, 1, 3, 0, starts=(6,))
    # starts 0, 2, 4 went to gradient descent: strict saddle, degenerate, global minimum
    assert row["gd_starts"] == 3 and row["gd_starts_spurious"] == 0
    assert (row["strict_saddles"], row["spurious_classes"], row["degenerate_classes"]) == (1, 2, 2)
    assert row["positive_critical"] == 5 and row["second_minimisers_search"] == 0


def test_the_atlas_command_reports_a_store_of_another_configuration(monkeypatch, tmp_path, capsys):
    """A store computed with another configuration is refused in one line, exit 2 (not a
    traceback), and nothing is mixed."""
    import theory._atlas as A
    from landscape.runtime.store import ConfigMismatch
    from theory.__main__ import main

    def refuse(**kw):
        raise ConfigMismatch("the store holds units of another configuration")

    monkeypatch.setattr(A, "atlas", refuse)
    assert main(["atlas", "--smoke", "--out", str(tmp_path / "a"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["python -m theory atlas: error: the store holds units of another configuration"]


@pytest.mark.parametrize("word", ["bogus", "zeta", "report"])
def test_only_the_word_atlas_selects_the_atlas_command(word, capsys, monkeypatch):
    """`python -m theory WORD`: only `atlas` is the atlas command; another first word is an
    error of the main command (exit 2), not of the atlas's (which must not start)."""
    import theory._atlas as A
    from theory.__main__ import main

    def must_not_run(**kw):
        raise AssertionError("the atlas ran")

    monkeypatch.setattr(A, "atlas", must_not_run)

    with pytest.raises(SystemExit) as ex:
        main([word])
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m theory: error") and "python -m theory atlas" not in err
