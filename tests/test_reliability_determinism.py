"""Same seed, same bytes: every search method of the audit gives a byte-identical report.json
when run again with the same input and seed (issue 17, item 4).

Each method runs twice on the same problem, in both curvature modes (the dense Schur
complement and Hessian-vector products: the trust-region method uses a different scipy
solver in each), and once more in a fresh interpreter, so that state carried inside one
process (a solver's workspace, hash randomisation) cannot hide a difference. The test
failed for ``trust-region`` while it used scipy's ``trust-krylov``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import landscape as ls
from landscape._search import SEARCH_METHODS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tasks():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3, 3))
    return A + A.transpose(0, 2, 1)


#: Starts per method: trust-krylov's irreproducibility showed on this instance within 20
#: starts; the other methods are cheaper to check with a few.
STARTS = {"trust-region": 20}


def _report(tasks, method, curvature, out):
    ls.audit(tasks, 1, starts=STARTS.get(method, 4), seed=0, methods=method, curvature=curvature, out=out, plots=False,
             certify=False, progress=False)
    return (Path(out) / "report.json").read_bytes()


#: Every method in the dense curvature mode; in the Hessian-vector-product mode the methods
#: whose iteration uses the curvature (trust-region switches solver, root-* go matrix-free).
CASES = [(m, "dense") for m in SEARCH_METHODS] + [(m, "hvp") for m in ("trust-region", "root-hybr", "root-lm")]


@pytest.mark.parametrize("method,curvature", CASES)
def test_same_seed_same_report_bytes(tasks, method, curvature, tmp_path):
    a = _report(tasks, method, curvature, tmp_path / "a")
    b = _report(tasks, method, curvature, tmp_path / "b")
    assert a == b


def test_same_bytes_in_a_fresh_process(tasks, tmp_path):
    np.save(tmp_path / "t.npy", tasks)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    reports = []
    for run in ("x", "y"):
        out = tmp_path / run
        cmd = [sys.executable, "-m", "landscape", "audit", str(tmp_path / "t.npy"), "--rank", "1", "--starts", "20",
               "--seed", "0", "--no-plots", "--no-certify", "--out", str(out), "-q"]
        cmd += ["--method", "trust-region"]
        env["PYTHONHASHSEED"] = "1" if run == "x" else "2"  # different hash randomisation per process
        r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode in (0, 1), r.stderr
        reports.append((out / "report.json").read_bytes())
    assert reports[0] == reports[1]
