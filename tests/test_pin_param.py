"""Route 2's parameter family (``landscape/enumeration/_param.py``): the Jacobian of the
support system is its derivative (central differences of the holomorphic residual), the
random accessibility constants are unit complex numbers, and the generic count per
support size agrees with the committed start file (found by monodromy) and sums to the
degree."""
from __future__ import annotations

import json
import re
from math import comb

import shutil

import numpy as np
import pytest

from landscape.enumeration import algebra_available
from landscape.enumeration._param import ParamFamily, _unit, start_file, support_degrees


@pytest.mark.parametrize("supp", [(0,), (0, 2), (0, 1, 2)])
def test_support_jacobian_is_the_derivative_of_the_residual(supp):
    T, d = 3, 3
    rng = np.random.default_rng(len(supp))
    S = rng.standard_normal((T, d, d))
    S = S + np.swapaxes(S, 1, 2)
    fam = ParamFamily(T, d, supp)
    u = rng.standard_normal((len(supp), d)) + 1j * rng.standard_normal((len(supp), d))
    J = fam.jacobian(S, u)
    h = 1e-6
    for j in range(len(supp) * d):
        e = np.zeros(len(supp) * d)
        e[j] = h
        du = e.reshape(len(supp), d)
        col = (fam.residual(S, u + du) - fam.residual(S, u - du)).ravel() / (2 * h)
        np.testing.assert_allclose(J[:, j], col, rtol=1e-7, atol=1e-7)


def test_accessibility_constants_are_unit_and_not_real():
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = _unit(rng)
        assert abs(abs(g) - 1.0) < 1e-15 and abs(g.imag) > 0


@pytest.mark.skipif(not algebra_available("msolve"), reason="needs msolve (extra 'algebra')")
def test_generic_count_per_support_size_matches_the_start_file_and_the_degree():
    exact, total = support_degrees(3, 2, np.random.default_rng(0), timeout=120)
    meta = json.loads(start_file(3, 2).read_text())
    assert exact == {int(m): n for m, n in meta["points_by_support_size"].items()}
    assert sum(comb(3, m) * exact[m] for m in exact) == total[3] == meta["degree_u_system"]
    assert sorted(total) == [1, 2, 3]


@pytest.mark.skipif(not algebra_available("msolve"), reason="needs msolve (extra 'algebra')")
def test_start_file_metadata_is_what_the_builder_writes_from_its_orbits():
    """build_starts with the committed orbits given (no monodromy) writes the committed
    counts: the degree, the points and sign orbits per support size, every orbit found."""
    from landscape.enumeration._param import build_starts, load_starts

    starts, meta = load_starts(3, 2)
    given = {tuple(s): (S0, reps, {}) for s, (S0, reps) in starts.items() if len(s) > 0}
    data = build_starts(3, 2, given=given, log=lambda *a: None)
    for key in ("degree_u_system", "found_count", "points_by_support_size", "orbits_by_support_size"):
        assert data[key] == meta[key], key
    assert data["found_count"] == data["degree_u_system"] == 149
    assert data["orbits_by_support_size"] == {"0": 1, "1": 2, "2": 6, "3": 8}  # 1, 4, 24, 64 points / 2^m


@pytest.mark.skipif(shutil.which("phc") is None, reason="PHCpack (phc) is not installed")
@pytest.mark.parametrize("supp", [(0,), (0, 1)])
def test_monodromy_reports_every_path_it_tracked(monkeypatch, supp):
    """``info["paths"]`` is the number of homotopy paths handed to phc: one per seed, then
    per loop the orbits sent out and the ends that came back good enough to send home."""
    from landscape.enumeration import _param as P

    tracked = []
    orig = P.track

    def track(family, S_from, S_to, starts, gamma, **kw):
        tracked.append(len(starts))
        return orig(family, S_from, S_to, starts, gamma, **kw)

    monkeypatch.setattr(P, "track", track)
    lines = []
    _, _, info = P.monodromy_orbits(P.ParamFamily(3, 2, supp), np.random.default_rng(0), max_loops=2, stall=1,
                                    log=lines.append)
    assert info["paths"] == sum(tracked) > 0
    # the general seed u0, one seed per partition of the support into fewer blocks (none for
    # one block; both blocks as one for two) and, at d >= 2, one isotropic seed per block
    assert info["seeds"] == {1: 1 + 0 + 1, 2: 1 + 1 + 2}[len(supp)]
    # one progress line per loop, ending with the seconds spent so far
    loops = [ln for ln in lines if " loop " in ln]
    assert loops and all(re.fullmatch(r"support \(.*\) loop \d+: \d+ paths, \d+ new, \d+ orbits, \d+ s", ln)
                         for ln in loops), loops


def test_fit_params_refuses_parameters_that_do_not_solve_the_seed(monkeypatch):
    """E(u; S) is affine in S and fit_params solves for S by least squares; when the fit
    leaves a residual above 1e-10 (1 + |u|^3) (here: a solver that returns no correction,
    so S is the random draw) it is refused, never returned."""
    import landscape.enumeration._param as P
    from landscape.enumeration._backends import BackendError

    fam = P.ParamFamily(3, 2, (0, 1, 2))
    u = 0.5 * np.random.default_rng(0).standard_normal((3, 2))
    S = fam.fit_params(u, np.random.default_rng(1))
    assert np.max(np.abs(fam.residual(S, u))) <= 1e-10
    monkeypatch.setattr(np.linalg, "lstsq", lambda A, b, rcond=None: (np.zeros(A.shape[1], dtype=complex),) * 4)
    with pytest.raises(BackendError, match="could not fit parameters"):
        fam.fit_params(u, np.random.default_rng(1))


@pytest.mark.parametrize("block, flipped", [([0.0, -0.5j], True), ([0.0, 0.5j], False), ([-2j, 0.0], True),
                                            ([0.25, -3.0], True), ([-1.0 + 0j, 0.5], True), ([1.0, -0.5], False),
                                            ([0.0, 0.0], False)])
def test_orbit_representatives_turn_each_block_to_a_positive_largest_entry(block, flipped):
    """Each block's largest entry gets a positive real part, or, when that is 0, a positive
    imaginary part (of any size: -0.5i is turned as -2i is)."""
    from landscape.enumeration._param import canonical

    u = np.array([block, [1.0, 2.0]], dtype=complex)
    got = canonical(u)
    np.testing.assert_array_equal(got[0], -u[0] if flipped else u[0])
    np.testing.assert_array_equal(got[1], u[1])


def test_a_phc_run_past_its_time_limit_is_a_backend_error(monkeypatch):
    import subprocess

    from landscape.enumeration import _param as P
    from landscape.enumeration._backends import BackendError

    def slow(cmd, **kwargs):
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])

    monkeypatch.setattr(P, "phc_executable", lambda: "phc")
    monkeypatch.setattr(P.subprocess, "run", slow)
    fam = ParamFamily(3, 2, (0,))
    S = np.stack([np.eye(2)] * 3)
    with pytest.raises(BackendError, match=r"^phc -p did not finish within 7 s$"):
        P.track(fam, S, S, np.ones((1, fam.n), dtype=complex), 1j, timeout=7.0)


def test_black_box_completion_counts_only_the_orbits_it_adds(monkeypatch):
    """Known orbits, a sign copy of one of them and a new orbit come back from phc -b: one added."""
    from landscape.enumeration import _backends as B
    from landscape.enumeration import _param as P

    fam = ParamFamily(3, 2, (0, 1))
    S = np.stack([np.eye(2)] * 3)
    known = [np.array([[1.0, 2.0], [3.0, 1.0]]), np.array([[2.0, -1.0], [1.0, 1.0]])]
    new = np.array([[0.5, 0.25], [4.0, -2.0]])
    found = np.array([(-known[0]).ravel(), known[1].ravel(), new.ravel()], dtype=complex)
    monkeypatch.setattr(B, "run_phc", lambda text, names, timeout: B.PhcResult(found, [1] * 3, 3, 0.0))
    monkeypatch.setattr(P, "_solves", lambda family, S0, u: True)
    reps, added = P.blackbox_complete(fam, S, [k.ravel() for k in known])
    assert added == 1 and len(reps) == 3


@pytest.mark.parametrize("size", [0.5, 3.0])
def test_newton_on_the_family_stops_once_its_step_is_at_round_off(size):
    """From a zero of E(.; S) (S fitted to u, its residual at round-off), Newton stops as soon
    as a step is below 1e-15 (1 + max|u|), whether the entries are below or above 1: after at
    most two Jacobian solves, not all eight; the point does not move beyond round-off."""
    from landscape.enumeration._param import ParamFamily

    rng = np.random.default_rng(1)
    fam = ParamFamily(3, 3, (0, 1, 2))
    u = size * (rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))) / 3
    S = fam.fit_params(u, rng)
    calls = []
    real = fam.jacobian
    fam.jacobian = lambda S_, u_: (calls.append(1), real(S_, u_))[1]
    out = fam.newton(S, u)
    assert 1 <= len(calls) <= 2
    assert np.max(np.abs(out - u)) <= 1e-13 * (1 + np.max(np.abs(u)))


@pytest.mark.parametrize("adding,stall", [(3, 2), (0, 2), (1, 3)])
def test_monodromy_without_a_target_stops_after_stall_loops_that_added_nothing(monkeypatch, adding, stall):
    """Without a target, monodromy stops once ``stall`` consecutive new loops found no new
    orbit: with the first ``adding`` loops each bringing one new orbit home, and every later
    loop bringing back only what it was sent, it stops at ``adding + stall`` loops -- not
    after ``stall`` loops whatever they found, and not only at ``max_loops``. Path tracking
    is replaced by that script (no phc needed)."""
    from landscape.enumeration import _param as P

    made = []
    orig_sym = P._random_sym

    def random_sym(rng, T, d):
        made.append(orig_sym(rng, T, d))
        return made[-1]

    rng_new = np.random.default_rng(7)
    fresh, homes = set(), []

    def track(family, S_from, S_to, starts, gamma, **kw):
        starts = np.array(starts, dtype=complex)
        if any(S is S_from for S in made) and not any(S is S_from for S in homes):
            homes.append(S_from)  # the loops in the order they first come home
        j = next((i for i, S in enumerate(homes) if S is S_from), None)
        if j is not None and j < adding and j not in fresh:  # loop j's first way home: one new orbit
            fresh.add(j)
            starts = np.vstack([starts, rng_new.standard_normal(starts.shape[1]) + 1j * rng_new.standard_normal(starts.shape[1])])
        return starts, None

    monkeypatch.setattr(P, "_random_sym", random_sym)
    monkeypatch.setattr(P, "track", track)
    monkeypatch.setattr(P, "good_ends", lambda ends, diag, **kw: np.ones(len(ends), dtype=bool))
    monkeypatch.setattr(P, "_solves", lambda family, S0, u: True)
    _, reps, info = P.monodromy_orbits(P.ParamFamily(3, 2, (0,)), np.random.default_rng(0), target=None,
                                       stall=stall, max_loops=40)
    assert info["loops"] == adding + stall
    assert len(fresh) == adding


def test_a_good_end_is_finite_below_big_and_conditioned_above_rco_min():
    """phc's ends are kept when finite, every coordinate below ``big`` in modulus, and the
    reciprocal condition number strictly above ``rco_min`` (at it, or below, refused)."""
    from landscape.enumeration._param import good_ends

    ends = np.ones((5, 2), dtype=complex)
    ends[3, 0] = np.nan
    ends[4, 1] = 1e7
    diag = np.array([[1e-13], [1e-12], [1e-11], [1.0], [1.0]])
    assert good_ends(ends, diag).tolist() == [False, False, True, False, False]
    assert good_ends(ends, diag, big=1e8, rco_min=1e-14).tolist() == [True, True, True, False, True]


def test_monodromy_logs_the_seconds_since_it_started(monkeypatch):
    """Each loop's log line ends with the seconds elapsed since the call began (the clock here
    advances 7 s per reading from 100 s)."""
    from types import SimpleNamespace

    from landscape.enumeration import _param as P

    ticks = iter(range(100, 10**6, 7))
    monkeypatch.setattr(P, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    monkeypatch.setattr(P, "track", lambda family, S_from, S_to, starts, gamma, **kw: (np.array(starts, dtype=complex), None))
    monkeypatch.setattr(P, "good_ends", lambda ends, diag, **kw: np.ones(len(ends), dtype=bool))
    monkeypatch.setattr(P, "_solves", lambda family, S0, u: True)
    lines = []
    P.monodromy_orbits(P.ParamFamily(3, 2, (0,)), np.random.default_rng(0), target=None, stall=2, max_loops=5,
                       log=lines.append)
    secs = [int(re.search(r"(\d+) s$", ln).group(1)) for ln in lines if " loop " in ln]
    assert secs and all(s > 0 and s % 7 == 0 for s in secs) and secs == sorted(secs)


def test_from_chart_marks_points_at_infinity_relative_to_the_point():
    """Back from the projective chart, v / h, except where |h| <= 1e-12 max|x| (a point at
    infinity, or a lost path; at 2e-12 of max|x| = 2 exactly, too): NaN there, for any scale of x."""
    from landscape.enumeration._param import from_chart, to_chart

    for s in (1.0, 1e-20, 1e20):
        x = s * np.array([[1.0, 2.0, 0.0], [1.0, 2.0, 2e-12], [1.0, 2.0, 5e-12], [3.0, -1.0, 2.0]])
        u = from_chart(x)
        assert np.all(np.isnan(u[:2])) and np.all(np.isfinite(u[2:]))
        np.testing.assert_allclose(u[2:], [[0.2e12, 0.4e12], [1.5, -0.5]], rtol=1e-15)
    chart = np.array([0.3, -0.2, 1.0])
    pts = np.array([[0.5, 2.0], [-1.0, 0.25]])
    np.testing.assert_allclose(from_chart(to_chart(pts, chart)), pts, rtol=1e-14)
