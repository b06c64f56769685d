"""The audit's up-front estimate (issue 17, item 6): what it is compared with, and the
limits it enforces.  Its calibration against measured audits is checked in
``tests/test_estimates_record.py``; no test here times anything."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import landscape as ls
from landscape._validation import LandscapeInputError

ROOT = Path(__file__).resolve().parents[1]


def test_memory_estimate_covers_the_arrays_the_audit_holds():
    """Exact count for (d, T, k) = (7, 5, 2) with 9 starts, dense curvature: the interpreter's
    base, the input and the problem's copy of the T d^2 task entries, the array of starting
    points (9 x T d k, validated against ``MAX_ARRAY_BYTES`` before the search), and the
    n x n Schur complement with its eigenvectors."""
    from landscape._search import MEMORY_BASE_BYTES

    d, T, k, starts = 7, 5, 2, 9
    inst = ls.random_instance(np.random.default_rng(0), d, T, k)
    n = inst.problem.dim_U
    assert n == T * d * k
    arrays = 2 * inst.problem.tasks.nbytes + starts * 8 * n
    est = ls.estimate_audit_cost(d, T, k, starts, curvature="dense", plots=False)
    assert est.curvature == "dense"
    assert est.bytes >= MEMORY_BASE_BYTES + arrays + 2 * 8 * n * n
    hvp = ls.estimate_audit_cost(d, T, k, starts, curvature="hvp", plots=False)
    assert hvp.curvature == "hvp" and hvp.bytes >= MEMORY_BASE_BYTES + arrays
    assert est.bytes - hvp.bytes >= 2 * 8 * n * n
    # every size term counts: more tasks, a larger side, more starts, plots all cost more
    assert ls.estimate_audit_cost(d, 2 * T, k, starts).bytes > ls.estimate_audit_cost(d, T, k, starts).bytes
    assert ls.estimate_audit_cost(200, T, k, starts).bytes > ls.estimate_audit_cost(100, T, k, starts).bytes
    assert ls.estimate_audit_cost(d, T, k, 10 * starts).bytes > ls.estimate_audit_cost(d, T, k, starts).bytes
    assert ls.estimate_audit_cost(d, T, k, starts).bytes > ls.estimate_audit_cost(d, T, k, starts, plots=False).bytes


def test_time_estimate_counts_pairs_starts_and_the_missing_truth():
    base = ls.estimate_audit_cost(3, 400, 1, 10)
    # R3.1 on every pair of tasks when only the tasks are given: the pair term doubles
    no_truth = ls.estimate_audit_cost(3, 400, 1, 10, truth_known=False)
    nine_starts = base.seconds - ls.estimate_audit_cost(3, 400, 1, 1).seconds
    assert no_truth.seconds > base.seconds and no_truth.bytes == base.bytes
    # each start costs the same: the estimate is affine in the number of starts
    assert ls.estimate_audit_cost(3, 400, 1, 20).seconds - base.seconds == pytest.approx(10 / 9 * nine_starts)
    assert "one idle core" in base.describe() and "certificates not included" in base.describe()


def _tasks_file(tmp_path, d=5, T=3, k=1):
    inst = ls.random_instance(np.random.default_rng(3), d, T, k)
    f = tmp_path / "tasks.npz"
    np.savez(f, A_star=inst.A_star, U_star=inst.U_star)
    return f


def _cli(*args):
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "landscape", "audit", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=600)


def test_max_seconds_refuses_below_the_estimate_and_runs_above(tmp_path):
    """The limit is compared with the very estimate the message names: just below it the
    command refuses (exit 2, one line, nothing written), just above it the audit runs."""
    from landscape._audit.run import enumeration_runs

    f = _tasks_file(tmp_path)
    est = ls.estimate_audit_cost(5, 3, 1, 6, plots=False, enumeration=enumeration_runs("auto", 3, 5))
    common = [f, "--rank", 1, "--starts", 6, "--no-plots", "--quiet"]
    out = tmp_path / "refused"
    proc = _cli(*common, "--out", out, "--max-seconds", f"{0.99 * est.seconds!r}")
    assert proc.returncode == 2
    line, = proc.stderr.strip().splitlines()
    assert f"estimated {est.seconds:.0f} s (CPU time of one idle core)" in line and "--max-seconds" in line
    assert not out.exists()
    out = tmp_path / "ran"
    proc = _cli(*common, "--out", out, "--max-seconds", f"{1.01 * est.seconds!r}")
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["estimated_seconds"] == pytest.approx(est.seconds, rel=1e-12, abs=0)
    assert report["settings"]["estimated_bytes"] == est.bytes


def test_memory_refusal_at_the_estimate_exactly(monkeypatch):
    """The audit refuses when the estimated peak exceeds the memory available, and runs
    when it just fits (available memory monkeypatched around the estimate)."""
    import landscape._audit.run as audit_mod

    inst = ls.random_instance(np.random.default_rng(0), 6, 3, 1)
    est = ls.estimate_audit_cost(6, 3, 1, 4, plots=False, enumeration=audit_mod.enumeration_runs("auto", 3, 6))
    monkeypatch.setattr(audit_mod, "available_memory_bytes", lambda: est.bytes - 1)
    with pytest.raises(LandscapeInputError, match=r"refused: estimated .* GiB .*memory available") as err:
        ls.audit(inst, 1, starts=4, plots=False, enumeration="auto")
    assert f"{est.bytes / 2**30:.2f} GiB" in str(err.value)
    monkeypatch.setattr(audit_mod, "available_memory_bytes", lambda: est.bytes)
    rep = ls.audit(inst, 1, starts=4, plots=False, enumeration="auto")
    assert rep.data["settings"]["estimated_bytes"] == est.bytes
