"""Pins of the solver runners (:mod:`landscape.enumeration._backends`) against exact truth.

* The degree of a zero-dimensional ideal is the number of standard monomials (those
  divisible by no leading monomial): hand-counted staircases, and ``None`` exactly when
  some variable has no pure power among the leading monomials.
* msolve's output is read exactly (integers, ``a / 2^b``, lists); anything else refused.
* run_msolve / msolve_degree on systems whose solutions are known in closed form
  (skipped without msolve).
* PHC's numbers and solution blocks, parsed from a hand-written output file.
"""
import ast
import math
import re
from fractions import Fraction

import numpy as np
import pytest

from landscape.enumeration import algebra_available
from landscape.enumeration._backends import (BackendError, _eval_exact, _staircase_count, msolve_degree,
                                             parse_phc_solutions, phc_number, run_msolve)

needs_msolve = pytest.mark.skipif(not algebra_available("msolve"), reason="msolve not installed (extra 'algebra')")


@pytest.mark.parametrize("lms,nvars,count", [
    ([[2, 0], [0, 3]], 2, 6),            # x^2, y^3: the 2 x 3 box
    ([[2, 0], [1, 1], [0, 2]], 2, 3),    # x^2, xy, y^2: 1, x, y
    ([[1, 0], [0, 2]], 2, 2),            # x, y^2 (msolve's leading ideal of x^2+y^2-2, x-y)
    ([[3, 0], [1, 1], [0, 4]], 2, 6),    # 1, x, x^2, y, y^2, y^3
    ([[1, 0, 0], [0, 2, 0], [0, 0, 3]], 3, 6),
    ([[2, 0, 0], [0, 2, 0], [0, 0, 2], [1, 1, 1]], 3, 7),  # the cube's 8 corners less xyz
    ([[1]], 1, 1), ([[5]], 1, 5),
])
def test_staircase_is_the_number_of_standard_monomials(lms, nvars, count):
    lms = np.array(lms)
    assert _staircase_count(lms, nvars) == count
    # brute force over the bounding box of the staircase
    top = lms.max(axis=0)
    brute = sum(1 for m in np.ndindex(*(int(t) + 1 for t in top)) if not np.any(np.all(lms <= np.array(m), axis=1)))
    assert brute == count
    assert _staircase_count(lms, nvars, cap=count) == count
    assert _staircase_count(lms, nvars, cap=count - 1) is None


@pytest.mark.parametrize("lms,nvars", [([[2, 0], [1, 1]], 2), ([[1, 1]], 2), ([[2, 0, 0], [0, 1, 0]], 3)])
def test_staircase_is_none_without_a_pure_power_of_every_variable(lms, nvars):
    assert _staircase_count(np.array(lms), nvars) is None


@pytest.mark.parametrize("text,value", [
    ("[0, [1, [[[3 / 2^2, 7 / 2^2]]]]]", [0, [1, [[[Fraction(3, 4), Fraction(7, 4)]]]]]),
    ("[-5 / 2^1, 2^3, -1]", [Fraction(-5, 2), Fraction(8), Fraction(-1)]),
    ("[12345678901234567890123 / 2^70]", [Fraction(12345678901234567890123, 2 ** 70)]),
])
def test_msolve_numbers_are_read_exactly(text, value):
    assert _eval_exact(ast.parse(text.replace("^", "**"), mode="eval")) == value


@pytest.mark.parametrize("text", ["[1.5]", "[x]", "[1 + 2]", "[(1, 2)]", "[1 - 2]"])
def test_anything_else_in_msolve_output_is_refused(text):
    with pytest.raises(BackendError, match="unexpected token"):
        _eval_exact(ast.parse(text, mode="eval"))


@needs_msolve
def test_run_msolve_on_closed_form_systems():
    # x^2 + y^2 = 2, x = y: the two real points (+-1, +-1), degree 2
    r = run_msolve("x,y\n0\nx^2+y^2-2,\nx-y\n")
    assert r.status == "finite" and r.degree == 2
    assert len(r.boxes) == 2
    for box, v in zip(sorted(r.boxes), (-1, 1)):
        assert all(lo <= v <= hi for lo, hi in box)
    # x^2 = 2, y = x: boxes around +-sqrt 2, exact rationals
    r = run_msolve("x,y\n0\nx^2-2,\ny-x\n")
    assert r.status == "finite" and r.degree == 2 and len(r.boxes) == 2
    for (lo, hi), _ in sorted(r.boxes):
        assert isinstance(lo, Fraction) and lo <= hi and (lo < 0) == (hi < 0)
        assert min(lo * lo, hi * hi) <= 2 <= max(lo * lo, hi * hi)
    # no real point: x^2 = -1 (degree 2); no complex point at all; a line of solutions
    r = run_msolve("x,y\n0\nx^2+1,\ny-x\n")
    assert r.status == "finite" and r.boxes == [] and r.degree == 2
    assert run_msolve("x,y\n0\nx^2+1,\nx^2+2\n").status == "none"
    assert run_msolve("x,y\n0\nx-y\n").status == "positive_dimensional"


@needs_msolve
@pytest.mark.parametrize("text,names,degree", [
    ("x,y\n0\nx^2+y^2-2,\nx-y\n", ["x", "y"], 2),
    ("x,y\n0\nx^3-2,\ny^2-x\n", ["x", "y"], 6),       # Bezout: 3 * 2, all simple
    ("x,y,z\n0\nx^2-1,\ny^2-2,\nz^2-x*y\n", ["x", "y", "z"], 8),
    ("x,y\n0\nx-y\n", ["x", "y"], None),            # positive-dimensional
])
def test_msolve_degree_on_closed_form_systems(text, names, degree):
    assert msolve_degree(text, names) == degree


def test_phc_numbers():
    assert phc_number("1.50000000000000E-01") == 0.15
    assert phc_number("-2.0E+00") == -2.0
    for mark in ("NaN****", "****", "-****"):
        assert math.isnan(phc_number(mark))


PHC_OUT = """junk before
THE SOLUTIONS :
2 2
===========================================================
solution 1 : start residual :  0.000E+00   #iterations : 1   success
t :  1.00000000000000E+00   0.00000000000000E+00
m : 1
the solution for t :
 y :  2.00000000000000E+00  -1.00000000000000E+00
 x :  5.00000000000000E-01   0.00000000000000E+00
== err :  1.0E-16 = rco :  3.0E-01 = res :  2.0E-16 = real regular ==
solution 2 : start residual :  0.000E+00   #iterations : 1   success
t :  1.00000000000000E+00   0.00000000000000E+00
m : 1
the solution for t :
 x :  NaN****  ****
== err :  1.0E+00 = rco :  0.0E+00 = res :  1.0E+00 = complex diverged ==
"""


def test_phc_solution_blocks_are_parsed_in_the_order_of_the_names():
    flag = re.compile(r"^== err :.*= (.+?) ==\s*$")
    arr, trailers = parse_phc_solutions(PHC_OUT, ["x", "y"], flag)
    assert arr.shape == (2, 2)
    assert arr[0, 0] == 0.5 and arr[0, 1] == 2.0 - 1.0j
    assert np.isnan(arr[1, 0].real) and np.isnan(arr[1, 1].real)  # x lost, y never printed
    assert [t.group(1) for t in trailers] == ["real regular", "complex diverged"]
    empty, none = parse_phc_solutions("THE SOLUTIONS :\n0 2\n", ["x", "y"], flag)
    assert empty.shape == (0, 2) and none == []


@pytest.mark.skipif(not algebra_available("phc"), reason="phc not installed (apt-get install phcpack)")
def test_run_phc_on_a_closed_form_system():
    # x^2 + y^2 = 2, x = y: two paths (Bezout 2 * 1), ends (1, 1) and (-1, -1), both regular
    from landscape.enumeration._backends import run_phc

    out = run_phc("2 2\nx^2+y^2-2;\nx-y;\n", ["x", "y"], seed=3)
    assert out.paths == 2 == len(out.solutions) == len(out.flags)
    ends = sorted(tuple(np.round(s.real, 9)) for s in out.solutions)
    assert ends == [(-1.0, -1.0), (1.0, 1.0)]
    assert np.max(np.abs(out.solutions.imag)) < 1e-12
    assert all("regular" in f for f in out.flags)


@pytest.mark.parametrize("seed, flag", [(0, "-01"), (1, "-02"), (6, "-07"), (2**31 - 1, f"-0{2**31}"), (2**31, "-01"),
                                        (2**31 + 5, "-06")])
def test_phc_gets_the_seed_plus_one_modulo_2_to_the_31(monkeypatch, seed, flag):
    """phc's -0 option fixes the seed of its random numbers: the route's seed modulo 2^31, plus
    one, so that a route's seed gives one reproducible run and seeds apart by less than 2^31
    give different ones."""
    import landscape.enumeration._backends as B

    seen = []

    def fake_run(cmd, timeout, what):
        seen.append(cmd)
        from pathlib import Path

        Path(cmd[-1]).write_text("THE SOLUTIONS :\n0 1\n")
        return None, 0.0

    monkeypatch.setattr(B, "phc_executable", lambda: "phc")
    monkeypatch.setattr(B, "_run", fake_run)
    B.run_phc("1 1\nx - 1;\n", ["x"], seed=seed)
    assert seen[0][:3] == ["phc", flag, "-b"]


@pytest.mark.parametrize("lms,nvars", [([[1, 1]], 2), ([[2, 0], [1, 1]], 2), ([[1, 1, 0], [0, 0, 2], [3, 0, 0]], 3),
                                       ([[0, 2]], 2)])
def test_staircase_needs_a_pure_power_of_every_variable(lms, nvars):
    """Zero-dimensional iff some leading monomial is a pure power of each variable: mixed
    monomials (xy, xy and x^2 without a power of y) leave an infinite staircase -> None."""
    assert _staircase_count(np.array(lms), nvars) is None


def test_msolve_in_the_wheel_is_used_only_when_it_is_an_executable_file(tmp_path, monkeypatch):
    """Without $LANDSCAPE_MSOLVE or msolve on PATH, the wheel's bin/msolve is taken if it is a
    file that may be executed: not a file without the execute bit, not a directory."""
    import importlib.util
    import os
    import shutil
    from types import SimpleNamespace

    from landscape.enumeration import _backends as B

    monkeypatch.delenv("LANDSCAPE_MSOLVE", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    loc = tmp_path / "sage_wheels"
    (loc / "bin").mkdir(parents=True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: SimpleNamespace(submodule_search_locations=[str(loc)])
                        if name == "sage_wheels" else real(name, *a))
    exe = loc / "bin" / "msolve"
    assert B.msolve_path() is None  # nothing there
    exe.mkdir()
    assert B.msolve_path() is None  # a directory, searchable (x bit) but no file
    exe.rmdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o644)
    assert B.msolve_path() is None  # a file without the execute bit
    exe.chmod(0o755)
    assert B.msolve_path() == str(exe) and os.access(exe, os.X_OK)
