"""The audit's fast paths (issue 21): one problem per audit shared by its search units,
plot values from the exact line quartic instead of dense evaluations of G, and the
model-M1 inertia from a few extreme eigenvalues instead of whole spectra.  Each must
give what the slow path gives: the same values to rounding, the same verdicts."""
from __future__ import annotations

import gc
import math
import types
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm

import landscape as ls
from landscape import _factored
from landscape._audit import plots, theory
from landscape._search import problem_scale


# ------------------------------------------------------------------ plot values
def _dense_orbit(problem, U, rng):
    """The orbit curves as the plots evaluated them before: G(V) for every point V by the
    dense direct form of LoraMLProblem.reduced_loss."""
    T, d, k = U.shape
    out = []
    thetas = np.linspace(0.0, 2 * np.pi, 121)
    if k >= 2:
        Om = np.zeros((k, k))
        Om[0, 1], Om[1, 0] = -1.0, 1.0
        vals = []
        for th in thetas:
            V = U.copy()
            V[0] = U[0] @ expm(th * Om)
            vals.append(problem.reduced_loss(V))
        out.append(vals)
    else:
        out.append([problem.reduced_loss(U), problem.reduced_loss(U * np.r_[-1.0, np.ones(T - 1)][:, None, None])])
    if T == 2:
        J = np.zeros((2 * k, 2 * k))
        J[0, k], J[k, 0] = 1.0, 1.0
        W = np.concatenate([U[0], U[1]], axis=1)
        vals = []
        for t in np.linspace(-1.0, 1.0, 121):
            Wt = W @ expm(t * J)
            vals.append(problem.reduced_loss(np.stack([Wt[:, :k], Wt[:, k:]])))
        out.append(vals)
    v = rng.standard_normal(U.shape)
    v *= math.sqrt(float(np.sum(U * U)) + problem_scale(problem)) / np.linalg.norm(v)
    out.append([problem.reduced_loss(U + np.sin(th / 2) * 0.5 * v) for th in thetas])
    return out


@st.composite
def problem_and_point(draw):
    T = draw(st.integers(2, 3))
    d = draw(st.integers(3, 9))
    k = draw(st.integers(1, min(2, d - 1)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    inst = ls.random_instance(rng, d, T, k)
    U = inst.U_star + draw(st.sampled_from([0.0, 0.3, 2.0])) * rng.standard_normal(inst.U_star.shape)
    return inst.problem, U, rng.standard_normal(U.shape)


@settings(max_examples=25, deadline=None)
@given(problem_and_point(), st.integers(0, 1000))
def test_plot_values_equal_the_dense_evaluations(case, seed):
    """The saddle and orbit curves (line quartic, Delta U reused along the orbits) equal
    the dense direct-form values at every plotted point to rounding, for k = 1 and 2,
    T = 2 (with the boost) and T = 3, at critical and non-critical points."""
    problem, U, v = case
    scale = problem_scale(problem) ** 2 + float(np.sum(U * U)) ** 2  # G and its rounding scale like s^2, |U|^4
    cls = types.SimpleNamespace(classification=types.SimpleNamespace(negative_direction=v))
    result = types.SimpleNamespace(point=U)
    ts, vals = plots._saddle_curve(problem, cls, result)
    vn = v / np.linalg.norm(v)
    dense = [problem.reduced_loss(U + t * vn) for t in ts]
    np.testing.assert_allclose(vals, dense, rtol=0, atol=1e-11 * scale)
    curves = plots._orbit_curves(problem, result, np.random.default_rng(seed))
    old = _dense_orbit(problem, U, np.random.default_rng(seed))
    assert len(curves) == len(old) == (2 if problem.T == 3 else 3)
    for (_, y, _, _), y_old in zip(curves, old):
        np.testing.assert_allclose(y, y_old, rtol=0, atol=1e-11 * scale)


def test_plot_values_detect_a_wrong_curve():
    """Negative control: the comparison above resolves the curves (a boost whose
    cross products Delta_t U_s are dropped disagrees with the dense values)."""
    inst = ls.random_instance(np.random.default_rng(3), 6, 2, 1)
    p, U = inst.problem, inst.U_star + 0.5
    good = plots._orbit_curves(p, types.SimpleNamespace(point=U), np.random.default_rng(0))
    old = _dense_orbit(p, U, np.random.default_rng(0))
    F = _factored.factored(p)
    real = F.apply_delta
    try:
        # the cross products [Delta_1 U_2, Delta_2 U_1] (of the view U[::-1]) dropped
        F.apply_delta = lambda X: 0.0 * real(X) if X.base is not None else real(X)
        bad = plots._orbit_curves(p, types.SimpleNamespace(point=U), np.random.default_rng(0))
    finally:
        del F.apply_delta
    np.testing.assert_allclose(good[1][1], old[1], atol=1e-10)
    assert np.max(np.abs(np.asarray(bad[1][1]) - old[1])) > 1e-3


# ------------------------------------------------------------------ model-M1 inertia
def _pair_with_inertia(rng, d, pos, neg, T=2):
    """Tasks whose differences A_0 - A_t all have exactly ``pos`` positive and ``neg``
    negative eigenvalues (moduli in [0.5, 2]), the rest zero."""
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lam = np.zeros(d)
    lam[:pos] = rng.uniform(0.5, 2.0, pos)
    lam[pos:pos + neg] = -rng.uniform(0.5, 2.0, neg)
    D = (Q * lam) @ Q.T
    D = 0.5 * (D + D.T)
    A = rng.standard_normal((d, d))
    A = A + A.T
    return np.stack([A + D] + [A] * (T - 1))


@pytest.mark.parametrize("d", [12, 150])  # the dense path and the Lanczos path
@pytest.mark.parametrize("k", [1, 2])
def test_m1_inertia_from_extreme_eigenvalues(d, k):
    """Counts of positive and negative eigenvalues, up to k + 1, and the verdict, on task
    differences of known inertia: compatible exactly when both counts are at most k."""
    rng = np.random.default_rng(d + k)
    for pos, neg in [(0, 0), (k, k), (k, 0), (k + 1, 0), (0, k + 2), (1, 7), (6, 6)]:
        tasks = _pair_with_inertia(rng, d, pos, neg, T=3)
        m1 = theory._model_m1_check(tasks, k)
        assert m1["max_positive_eigenvalues"] == min(pos, k + 1)
        assert m1["max_negative_eigenvalues"] == min(neg, k + 1)
        assert m1["compatible"] is (pos <= k and neg <= k)


@pytest.mark.parametrize("k", [1, 2])
def test_m1_verdict_agrees_with_the_whole_spectrum(monkeypatch, k):
    """On model-M1 tasks (compatible), on generic tasks and on asymmetric M1-like tasks
    (not compatible), the Lanczos path gives the whole-spectrum path's report."""
    rng = np.random.default_rng(k)
    d = 100
    cases = [ls.random_instance(rng, d, 3, k).problem.tasks, rng.standard_normal((3, d, d))]
    skew = ls.random_instance(rng, d, 3, k).problem.tasks.copy()
    skew[1, 0, 1] += 1e-3
    cases.append(skew)
    fast = [theory._model_m1_check(t, k) for t in cases]
    monkeypatch.setattr(theory, "M1_DENSE_MAX_D", 10**9)
    slow = [theory._model_m1_check(t, k) for t in cases]
    assert fast == slow
    assert [f["compatible"] for f in fast] == [True, False, False]


# ------------------------------------------------------------------ one problem per audit
def test_audit_builds_one_factored_problem_shared_by_its_units(monkeypatch):
    """An audit in one process builds one FactoredObjective for all its search units and
    its own classification (before: one per unit more), finds what it found before, and
    frees the problem with its report."""
    monkeypatch.setattr(_factored, "FACTORED_MIN_D", 1)
    built = []
    init = _factored.FactoredObjective.__init__

    def counting(self, problem):
        built.append(1)
        init(self, problem)

    monkeypatch.setattr(_factored.FactoredObjective, "__init__", counting)
    inst = ls.random_instance(np.random.default_rng(5), 7, 3, 1)
    rep = ls.audit(inst, 1, starts=20, seed=2, plots=False)
    assert len(rep.data["runs"]) == 20 and len({r["method"] for r in rep.data["runs"]}) > 1
    assert len(built) == 1
    ref = weakref.ref(rep.problem)
    del rep
    gc.collect()
    assert ref() is None


def test_classifications_compute_A_hat_on_request(monkeypatch):
    """A classification does not hold its d x d matrix A(U) until asked (an audit of many
    runs held runs x d^2 numbers); asked, it is A(U) exactly, then kept."""
    from landscape._classify import _Deferred

    from landscape._audit import report

    inst = ls.random_instance(np.random.default_rng(6), 12, 3, 1)
    monkeypatch.setattr(report, "MAX_JSON_MATRIX_ENTRIES", 100)  # A_hat (144 entries) not in the report
    rep = ls.audit(inst, 1, starts=4, seed=0, plots=False)
    assert all(c["A_hat"] is None for c in rep.data["classes"])
    for r, c in zip(rep.results, rep.classifications):
        assert isinstance(c.__dict__["_A_hat"], _Deferred)
        assert np.array_equal(c.A_hat, rep.problem.optimal_A(r.point))
        assert c.__dict__["_A_hat"] is c.A_hat


def test_task_stacks_are_copied_once():
    """A read-only stack made by as_task_stack is not copied again by LoraMLProblem (the
    audit held the tasks twice); a writable input is still copied, so that changing it
    afterwards changes nothing."""
    from landscape._validation import as_task_stack

    a = np.random.default_rng(0).standard_normal((2, 4, 4))
    s = as_task_stack(a)
    assert s is not a and not s.flags.writeable
    a[0, 0, 0] = 1e9
    assert s[0, 0, 0] != 1e9
    assert ls.LoraMLProblem(s, 1).tasks is s
    view = s[:, :, :]
    assert as_task_stack(view) is not view  # a view's owner could still be written


@pytest.mark.parametrize("d", [12, 150])  # the SVD and the Lanczos path
@pytest.mark.parametrize("k", [1, 2, 3])  # 2k = 2^k at k = 1, 2: k = 3 tells them apart
def test_r31_pair_ranks_from_the_largest_singular_values(d, k):
    """Without U*, R3.1's necessary condition: ranks of the task differences, counted up
    to 2k + 1, on differences of known rank (non-symmetric, singular values in [0.5, 2]
    and down to 1e-6 of the largest, far above the 1e-10 cut); holds exactly at rank 2k."""
    from landscape._io import TaskInput

    rng = np.random.default_rng(10 * d + k)
    for r in [0, 1, 2 * k, 2 * k + 1, 2 * k + 5]:
        X, _ = np.linalg.qr(rng.standard_normal((d, d)))
        Y, _ = np.linalg.qr(rng.standard_normal((d, d)))
        sv = np.r_[rng.uniform(0.5, 2.0, r), np.zeros(d - r)]
        if r >= 2:
            sv[r - 1] = 1e-6 * sv[0]
        D = (X * sv) @ Y.T
        A = rng.standard_normal((d, d))
        tasks = np.stack([A + D, A])
        out = theory._r31_check(TaskInput(tasks, None, None, "test", "array", ("tasks",)), k, rng)
        assert out["pair_ranks"] == [min(r, 2 * k + 1)] and out["expected"] == 2 * k
        assert out["holds"] is (r == 2 * k)


def test_r31_ranks_agree_with_the_whole_svd(monkeypatch):
    """On model-M1 tasks and generic tasks (d = 100), the Lanczos path reports what the
    whole SVD reports."""
    from landscape._io import TaskInput

    rng = np.random.default_rng(4)
    cases = [ls.random_instance(rng, 100, 3, 2).problem.tasks, rng.standard_normal((3, 100, 100))]
    inputs = [TaskInput(t, None, None, "test", "array", ("tasks",)) for t in cases]
    fast = [theory._r31_check(x, 2, rng) for x in inputs]
    monkeypatch.setattr(theory, "M1_DENSE_MAX_D", 10**9)
    slow = [theory._r31_check(x, 2, rng) for x in inputs]
    assert fast == slow and [f["holds"] for f in fast] == [True, False]


def test_unit_problem_reuse_in_workers_only(monkeypatch):
    """In a pool worker a unit reuses the previous unit's problem when its tasks are
    equal (a new one for other tasks or another rank); in the audit's own process a
    task array that is not an audit's gets a problem of its own and nothing is kept."""
    import multiprocessing

    from landscape._audit import search as search_units

    a = np.random.default_rng(0).standard_normal((2, 5, 5))
    p1 = search_units._unit_problem(a.copy(), 1)
    assert search_units._unit_problem(a.copy(), 1) is not p1 and search_units._WORKER_PROBLEM == []
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    monkeypatch.setattr(search_units, "_WORKER_PROBLEM", [])
    w1 = search_units._unit_problem(a.copy(), 1)
    assert search_units._unit_problem(a.copy(), 1) is w1
    assert search_units._unit_problem(a.copy(), 2) is not w1
    b = a.copy()
    b[1, 2, 3] += 1e-12
    assert search_units._unit_problem(b, 2).tasks[1, 2, 3] == b[1, 2, 3]
