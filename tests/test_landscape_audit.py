"""Audits of given task matrices (``python -m landscape audit``, ``landscape.audit``).

Each theorem regime of THEORY.md gets an end-to-end audit on a small instance, and
every kind of bad input gets its own test: exit status 2, a one-line message naming
the problem, no traceback, nothing written to ``--out``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import landscape as ls
from landscape.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def _save_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _run(argv, capsys):
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# ------------------------------------------------------------------ regimes
def test_two_task_audit_has_no_spurious_minima_and_only_strict_saddles():
    """Thm 3.4 (T = 2, d >= 2k): every non-global critical point found is a strict saddle."""
    for seed, (d, k) in [(1, (4, 1)), (2, (5, 2))]:
        inst = ls.random_instance(np.random.default_rng(seed), d, 2, k)
        rep = ls.audit(inst, k, starts=24, seed=seed)
        sm = rep.data["summary"]
        assert sm["spurious_candidates"] == 0
        assert sm["counts"]["degenerate"] == 0
        assert sm["counts"]["strict_saddle"] > 0
        assert sm["all_nonglobal_critical_are_strict_saddles"]
        assert rep.data["theory"]["regime"] == "T=2, d>=2k"
        assert rep.data["theory"]["agrees"] is True


def test_f1_instance_is_a_continuum_of_global_minima(tmp_path):
    inst = ls.f1_instance(2)
    rep = ls.audit(inst, 1, starts=12, seed=0, out=tmp_path / "f1")
    sm = rep.data["summary"]
    assert sm["continuum_of_global_minima"] is True
    assert sm["zero_set_dimension"] == 1
    assert sm["distinct_global_A"] >= 2
    assert sm["global_minimum_with_A_ne_A_star"] is True
    assert "Continuum of global minima: True" in rep.markdown
    assert (tmp_path / "f1" / "orbit.svg").is_file()


def test_thm33_counterexample_has_a_global_minimum_with_A_not_A_star():
    """d = 2k, T = 3 (THEORY.md section 4): uniqueness fails; seeded with the known
    second minimiser through the explicit-starts option."""
    inst = ls.thm33_counterexample_instance()
    _, U_hat = ls.thm33_counterexample_minimiser()
    rep = ls.audit(inst, 1, starts=12, seed=0, extra_starts=U_hat)
    sm = rep.data["summary"]
    assert sm["global_minimum_with_A_ne_A_star"] is True
    assert sm["distinct_global_A"] >= 2
    assert rep.data["theory"]["regime"] == "T>=3, d<3k"


def test_thm33_second_minimum_is_found_from_random_starts():
    """Without seeding (24 starts; found for 4 of seeds 0-4): the second global minimum
    is the exact one of THEORY.md section 4, A = A* + Q."""
    inst = ls.thm33_counterexample_instance()
    Q, _ = ls.thm33_counterexample_minimiser()
    rep = ls.audit(inst, 1, starts=24, seed=0, plots=False)
    other = [np.array(c["A_hat"]) for c in rep.data["classes"]
             if c["kind"] == "global_minimum" and c["recovers_A_star"] is False]
    assert other
    np.testing.assert_allclose(other[0], inst.A_star + Q, atol=1e-8)


def test_random_three_task_audit_recovers_A_star():
    inst = ls.random_instance(np.random.default_rng(4), 6, 3, 1)
    rep = ls.audit(inst, 1, starts=24, seed=1)
    sm = rep.data["summary"]
    assert sm["counts"]["global_minimum"] >= 12
    assert sm["A_star_recovered"] is True and sm["distinct_global_A"] == 1
    assert rep.data["theory"]["agrees"] is True


def test_f2_instance_spurious_candidate_is_found_and_certified(tmp_path):
    inst, U0 = ls.f2_spurious_instance()
    path = _save_npz(tmp_path / "f2.npz", A_star=inst.A_star, U_star=inst.U_star)
    rep = ls.audit(path, 1, starts=12, seed=0, extra_starts=U0, out=tmp_path / "out")
    spur = [c for c in rep.data["classes"] if c["kind"] == "spurious_candidate"]
    assert spur
    assert spur[0]["loss"] == pytest.approx(9.8007e-4, rel=1e-4, abs=0)
    assert spur[0]["certificate"]["status"] == "certified"
    assert rep.data["summary"]["certified_spurious"] >= 1
    assert (tmp_path / "out" / f"spectrum_class{spur[0]['id']}.svg").is_file()
    # the certificate stored in report.json re-verifies on its own
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    stored = [c for c in data["classes"] if c["kind"] == "spurious_candidate"][0]["certificate"]["certificate"]
    assert ls.Certificate.from_dict(stored).verify()
    # without the certificate step the candidate is reported as uncertified
    rep2 = ls.audit(path, 1, starts=0, seed=0, extra_starts=U0, certify=False, methods="trust-region")
    assert [c["certificate"]["status"] for c in rep2.data["classes"] if c["kind"] == "spurious_candidate"] == [
        "uncertified"]


def test_f2_spurious_minimum_is_found_from_random_starts():
    """No seeding: the basin of the F.2 spurious minimum is large on this instance."""
    inst, _ = ls.f2_spurious_instance()
    rep = ls.audit(inst, 1, starts=12, seed=0, certify=False, plots=False)
    spur = [c for c in rep.data["classes"] if c["kind"] == "spurious_candidate"]
    assert spur and spur[0]["loss"] == pytest.approx(9.8007e-4, rel=1e-4, abs=0)


def test_large_problem_switches_to_hessian_vector_products():
    inst = ls.random_instance(np.random.default_rng(5), 120, 3, 2)
    rep = ls.audit(inst, 2, starts=2, seed=0, methods="lbfgs", plots=False)
    st = rep.data["settings"]
    assert st["curvature"] == "hvp" and st["hvp_switch"] is True
    assert "Hessian-vector products" in rep.markdown
    assert rep.data["summary"]["A_star_recovered"] is True


def test_tasks_outside_model_m1_are_flagged():
    """Generic tasks (not A* + U_t U_t^T): min G > 0, no theorem applies."""
    tasks = np.random.default_rng(9).standard_normal((3, 4, 4))
    rep = ls.audit(tasks, 1, starts=8, seed=0, plots=False)
    assert rep.data["model_m1"]["compatible"] is False
    assert rep.data["theory"]["agrees"] is None
    assert rep.data["summary"]["global_minimum_found"] is False


# ------------------------------------------------------------------ CLI, files, schema
def test_cli_writes_reports_and_plots(tmp_path, capsys):
    inst = ls.random_instance(np.random.default_rng(6), 4, 2, 1)
    path = _save_npz(tmp_path / "t.npz", tasks=inst.problem.tasks)
    out = tmp_path / "report"
    rc, stdout, err = _run(["audit", path, "--rank", "1", "--starts", "12", "--seed", "3", "--out", str(out)], capsys)
    assert rc == 0
    assert "Thm 3.4" in stdout
    data = json.loads((out / "report.json").read_text())
    for key in ("schema_version", "input", "settings", "summary", "theory", "r31", "model_m1", "classes", "runs",
                "plots"):
        assert key in data
    # wall-clock times live in run.json, so that report.json depends on the inputs only
    assert "timing" not in data
    assert json.loads((out / "run.json").read_text())["timing"]["total_s"] > 0
    assert data["input"]["truth_known"] is False and data["input"]["T"] == 2
    assert len(data["runs"]) == 12
    assert (out / "report.md").read_text().startswith("# LoRA-ML landscape audit")
    for p in data["plots"]:
        assert (out / p).stat().st_size > 0
    assert "losses.svg" in data["plots"] and "saddle_direction.svg" in data["plots"]


def test_cli_accepts_npy_json_and_json_object(tmp_path, capsys):
    inst = ls.random_instance(np.random.default_rng(7), 3, 3, 1)
    tasks = inst.problem.tasks
    np.save(tmp_path / "t.npy", tasks)
    (tmp_path / "t.json").write_text(json.dumps(tasks.tolist()))
    (tmp_path / "o.json").write_text(json.dumps({"A_star": inst.A_star.tolist(), "U_star": inst.U_star.tolist()}))
    for name in ("t.npy", "t.json", "o.json"):
        rc, _, err = _run(["audit", str(tmp_path / name), "--rank", "1", "--starts", "4", "-q",
                           "--method", "trust-region"], capsys)
        assert rc == 0, err


def test_explicit_starts_file(tmp_path, capsys):
    inst = ls.thm33_counterexample_instance()
    _, U_hat = ls.thm33_counterexample_minimiser()
    path = _save_npz(tmp_path / "t.npz", A_star=inst.A_star, U_star=inst.U_star)
    np.save(tmp_path / "s.npy", U_hat[None])
    out = tmp_path / "o"
    rc, _, err = _run(["audit", path, "--rank", "1", "--starts", "0", "--start", str(tmp_path / "s.npy"),
                       "--method", "root-hybr", "--out", str(out), "-q"], capsys)
    assert rc == 0, err
    data = json.loads((out / "report.json").read_text())
    assert data["summary"]["global_minimum_with_A_ne_A_star"] is True


# ------------------------------------------------------------------ bad input: one test per case
def _assert_bad(capsys, argv, fragment, out=None):
    rc, stdout, err = _run(argv, capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("python -m landscape: error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in err
    if out is not None:
        assert not Path(out).exists()


@pytest.fixture
def good_tasks():
    return ls.random_instance(np.random.default_rng(8), 4, 3, 1).problem.tasks


def test_bad_missing_file(tmp_path, capsys):
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "nope.npz"), "--rank", "1", "--out", str(out)], "no such file", out)


def test_bad_unreadable_file(tmp_path, capsys):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"this is not a zip archive")
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(p), "--rank", "1", "--out", str(out)], "cannot read bad.npz", out)


def test_bad_empty_file(tmp_path, capsys):
    p = tmp_path / "empty.npy"
    p.write_bytes(b"")
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(p), "--rank", "1", "--out", str(out)], "empty", out)


def test_bad_empty_array(tmp_path, capsys):
    np.save(tmp_path / "e.npy", np.zeros((0, 3, 3)))
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "e.npy"), "--rank", "1", "--out", str(out)], "empty", out)


def test_bad_invalid_json(tmp_path, capsys):
    p = tmp_path / "t.json"
    p.write_text("[[1, 2], [3")
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(p), "--rank", "1", "--out", str(out)], "invalid JSON", out)


def test_bad_unsupported_extension(tmp_path, capsys, good_tasks):
    p = tmp_path / "t.txt"
    p.write_text("1 2 3")
    _assert_bad(capsys, ["audit", str(p), "--rank", "1"], "unsupported file type")


def test_bad_unknown_keys(tmp_path, capsys, good_tasks):
    path = _save_npz(tmp_path / "t.npz", tasks=good_tasks, weights=np.ones(3))
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", path, "--rank", "1", "--out", str(out)], "unknown key(s) 'weights'", out)


def test_bad_unknown_json_keys(tmp_path, capsys, good_tasks):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"task": good_tasks.tolist()}))
    _assert_bad(capsys, ["audit", str(p), "--rank", "1"], "unknown key(s) 'task'")


def test_bad_missing_partner_key(tmp_path, capsys):
    path = _save_npz(tmp_path / "t.npz", A_star=np.eye(3))
    _assert_bad(capsys, ["audit", path, "--rank", "1"], "'U_star' is missing")


def test_bad_non_square(tmp_path, capsys):
    np.save(tmp_path / "t.npy", np.ones((3, 4, 5)))
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--out", str(out)], "square", out)


def test_bad_not_a_stack(tmp_path, capsys):
    np.save(tmp_path / "t.npy", np.ones((4, 4)))
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1"], "shape (T, d, d)")


def test_bad_ragged_json(tmp_path, capsys):
    p = tmp_path / "t.json"
    p.write_text(json.dumps([[[1, 2], [3, 4]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]))
    _assert_bad(capsys, ["audit", str(p), "--rank", "1"], "not a numeric array")


def test_bad_mismatched_factors(tmp_path, capsys):
    path = _save_npz(tmp_path / "t.npz", A_star=np.eye(4), U_star=np.ones((3, 5, 1)))
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", path, "--rank", "1", "--out", str(out)], "U_star: expected shape", out)


def test_bad_inconsistent_tasks_and_truth(tmp_path, capsys):
    inst = ls.random_instance(np.random.default_rng(0), 4, 3, 1)
    path = _save_npz(tmp_path / "t.npz", tasks=inst.problem.tasks + 1.0, A_star=inst.A_star, U_star=inst.U_star)
    _assert_bad(capsys, ["audit", path, "--rank", "1"], "inconsistent")


def test_bad_nan(tmp_path, capsys, good_tasks):
    t = good_tasks.copy()
    t[1, 2, 0] = np.nan
    np.save(tmp_path / "t.npy", t)
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--out", str(out)], "non-finite entry nan", out)


def test_bad_inf(tmp_path, capsys):
    inst = ls.random_instance(np.random.default_rng(0), 4, 3, 1)
    U = inst.U_star.copy()
    U[0, 0, 0] = np.inf
    path = _save_npz(tmp_path / "t.npz", A_star=inst.A_star, U_star=U)
    _assert_bad(capsys, ["audit", path, "--rank", "1"], "U_star: non-finite entry inf")


def test_bad_one_task(tmp_path, capsys, good_tasks):
    np.save(tmp_path / "t.npy", good_tasks[:1])
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--out", str(out)], "at least 2 tasks", out)


@pytest.mark.parametrize("k", ["0", "-1"])
def test_bad_rank_below_one(tmp_path, capsys, good_tasks, k):
    np.save(tmp_path / "t.npy", good_tasks)
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", k, "--out", str(out)], "out of range", out)


@pytest.mark.parametrize("k", ["4", "5"])
def test_bad_rank_at_least_d(tmp_path, capsys, good_tasks, k):
    np.save(tmp_path / "t.npy", good_tasks)
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", k], "1 <= k < d")


def test_bad_rank_not_matching_truth(tmp_path, capsys):
    inst = ls.random_instance(np.random.default_rng(0), 5, 3, 1)
    path = _save_npz(tmp_path / "t.npz", A_star=inst.A_star, U_star=inst.U_star)
    _assert_bad(capsys, ["audit", path, "--rank", "2"], "does not match U_star")


def test_bad_rank_not_an_integer(tmp_path, capsys, good_tasks):
    np.save(tmp_path / "t.npy", good_tasks)
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "two"], "invalid int value")


def test_bad_dense_hessian_too_large(tmp_path, capsys):
    """A dense method on a problem whose Schur complement cannot fit in memory."""
    d = 300
    tasks = np.stack([np.eye(d), 2.0 * np.eye(d)])
    np.save(tmp_path / "big.npy", tasks)
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "big.npy"), "--rank", str(d - 1), "--curvature", "dense",
                         "--out", str(out)], "does not fit in memory", out)


def test_bad_dense_root_finder_too_large(tmp_path, capsys):
    """root-hybr asked for by name is a dense method: same refusal in auto mode."""
    d = 300
    np.save(tmp_path / "big.npy", np.stack([np.eye(d), 2.0 * np.eye(d)]))
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "big.npy"), "--rank", str(d - 1), "--method", "root-hybr",
                         "--out", str(out)], "root-hybr needs the dense Jacobian", out)


def test_bad_unknown_method(tmp_path, capsys, good_tasks):
    np.save(tmp_path / "t.npy", good_tasks)
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--method", "newton"], "invalid choice")


def test_bad_starts_file_shape(tmp_path, capsys, good_tasks):
    np.save(tmp_path / "t.npy", good_tasks)
    np.save(tmp_path / "s.npy", np.zeros((2, 3, 4, 2)))
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--start", str(tmp_path / "s.npy"),
                         "--out", str(out)], "starting points", out)


@pytest.mark.parametrize("flag, value, fragment", [("--starts", "-3", "--starts"), ("--max-iter", "0", "--max-iter")])
def test_bad_counts(tmp_path, capsys, good_tasks, flag, value, fragment):
    np.save(tmp_path / "t.npy", good_tasks)
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", flag, value], fragment)


def test_bad_out_is_a_file(tmp_path, capsys, good_tasks):
    np.save(tmp_path / "t.npy", good_tasks)
    f = tmp_path / "file"
    f.write_text("x")
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--out", str(f)], "not a directory")


def test_bad_input_through_a_real_process(tmp_path):
    """The module entry point itself: exit status 2, one line on stderr."""
    np.save(tmp_path / "t.npy", np.ones((1, 3, 3)))
    proc = subprocess.run([sys.executable, "-m", "landscape", "audit", str(tmp_path / "t.npy"), "--rank", "1",
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "at least 2 tasks" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_audit_function_raises_input_error(good_tasks):
    with pytest.raises(ls.LandscapeInputError, match="at least 2 tasks"):
        ls.audit(good_tasks[:1], 1)
    with pytest.raises(ls.LandscapeInputError, match="nothing to search"):
        ls.audit(good_tasks, 1, starts=0)


def test_audit_verdict_invariant_under_task_permutation():
    inst, U0 = ls.f2_spurious_instance()
    perm = np.array([2, 0, 1])
    tasks = inst.problem.tasks
    a = ls.audit(tasks, 1, starts=0, extra_starts=U0, methods="trust-region", certify=False, plots=False)
    b = ls.audit(tasks[perm], 1, starts=0, extra_starts=U0[perm], methods="trust-region", certify=False, plots=False)
    ka = [(c["kind"], round(c["loss"], 12)) for c in a.data["classes"]]
    kb = [(c["kind"], round(c["loss"], 12)) for c in b.data["classes"]]
    assert ka == kb and ka[0][0] == "spurious_candidate"
    assert a.data["summary"]["spurious_candidates"] == b.data["summary"]["spurious_candidates"] == 1
