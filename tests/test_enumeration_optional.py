"""The enumeration's extra is optional: without msolve everything else works and says why."""
import json

import numpy as np
import pytest

import landscape as ls
from landscape.enumeration import EnumerationUnavailable, algebra_available, enumerate_critical_points


@pytest.fixture
def no_msolve(monkeypatch, tmp_path):
    monkeypatch.setenv("LANDSCAPE_MSOLVE", str(tmp_path / "no-such-msolve"))
    monkeypatch.setenv("LANDSCAPE_PHC", str(tmp_path / "no-such-phc"))
    assert not algebra_available("msolve") and not algebra_available("phc")


def tasks():
    return np.round(ls.random_instance(np.random.default_rng(0), 2, 3, 1).problem.tasks, 2)


def test_library_refuses_with_the_install_hint(no_msolve):
    with pytest.raises(EnumerationUnavailable, match="algebra"):
        enumerate_critical_points(tasks(), 1)


def test_cli_exit_2_one_line(no_msolve, tmp_path, capsys):
    from landscape.__main__ import main

    f = tmp_path / "t.json"
    f.write_text(json.dumps({"tasks": tasks().tolist()}))
    assert main(["enumerate", str(f), "--rank", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "msolve" in err[0]


def test_theory_row_skips_with_a_reason(no_msolve):
    from theory._checks_enumeration import check_enumeration

    r = check_enumeration(np.random.default_rng(0))
    assert r.verdict == "SKIP" and "msolve" in r.skipped and r.passed


def test_audit_says_why_it_did_not_enumerate(no_msolve):
    rep = ls.audit(tasks(), 1, starts=4, plots=False)
    assert rep.data["enumeration"] == {"ran": False, "reason": "msolve not installed (extra 'algebra')"}
    with pytest.raises(ls.LandscapeInputError, match="msolve"):
        ls.audit(tasks(), 1, starts=4, plots=False, enumeration="on")
    with pytest.raises(ls.LandscapeInputError, match="enumeration"):
        ls.audit(tasks(), 1, starts=4, plots=False, enumeration="maybe")
