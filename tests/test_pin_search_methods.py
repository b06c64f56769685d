"""The search methods' contracts (``landscape/_search/methods.py``): the Lanczos spectrum
count is k^2 + 3 at T = 2 and 3 otherwise, single-start methods refuse several starts and
unknown curvature modes instead of ignoring them, an unknown method names every choice,
the matrix-free root finder reaches a critical point, and a method whose iterate is not
finite returns the start it was given."""
from __future__ import annotations

import numpy as np
import pytest

import landscape as ls
from landscape import LandscapeInputError
from landscape import _search
from landscape._search import methods as M


@pytest.mark.parametrize("d,T,k,extra", [(6, 2, 1, 1), (6, 2, 2, 4), (7, 2, 3, 9), (6, 3, 2, 0), (6, 4, 1, 0)])
def test_lanczos_count_sees_the_k_squared_boost_zeros_at_two_tasks(d, T, k, extra):
    p = ls.random_instance(np.random.default_rng(0), d, T, k).problem
    assert p.dim_U > extra + 3
    assert M.default_spectrum_count(p) == extra + 3


def test_lanczos_count_is_capped_by_the_dimension():
    p = ls.random_instance(np.random.default_rng(0), 2, 2, 2).problem
    assert M.default_spectrum_count(p) == min(p.dim_U, 7)


def test_unknown_search_method_lists_every_choice():
    p = ls.random_instance(np.random.default_rng(0), 3, 3, 1).problem
    with pytest.raises(LandscapeInputError) as exc:
        ls.search(p, rng=np.random.default_rng(0), n_starts=1, methods=("newton",))
    assert str(exc.value) == ("unknown search method 'newton': choose from "
                              + ", ".join(_search.SEARCH_METHODS + ("all",)))


@pytest.mark.parametrize("fn", [M.lbfgs, M.trust_region_newton, M.gradient_root])
def test_single_start_methods_refuse_several_starts_and_unknown_modes(fn):
    p = ls.random_instance(np.random.default_rng(0), 3, 3, 1).problem
    two = np.random.default_rng(1).standard_normal((2, 3, 3, 1))
    with pytest.raises(LandscapeInputError, match="takes one starting point"):
        fn(p, two, spectrum=False, polish=False)
    with pytest.raises(LandscapeInputError, match="unknown curvature mode 'exact'"):
        fn(p, two[0], mode="exact", spectrum=False, polish=False)
    r = fn(p, two[:1], spectrum=False, polish=False)  # one start, with or without the leading axis
    assert r.point.shape == (3, 3, 1)


def test_matrix_free_root_finding_reaches_a_critical_point():
    """hvp mode: damped Newton-MINRES on grad G = 0 from near the planted solution."""
    inst = ls.random_instance(np.random.default_rng(3), 5, 3, 1)
    start = inst.U_star + 0.05 * np.random.default_rng(4).standard_normal(inst.U_star.shape)
    r = M.gradient_root(inst.problem, start, mode="hvp", spectrum=False, polish=False)
    assert "Newton-MINRES" in r.stop_reason and "below tolerance" in r.stop_reason
    g0 = np.linalg.norm(M.reduced_grad(inst.problem, start))
    assert r.grad_norm < 1e-8 * g0


def test_a_non_finite_iterate_returns_the_start_given(monkeypatch):
    p = ls.random_instance(np.random.default_rng(0), 3, 3, 1).problem
    U0 = np.random.default_rng(5).standard_normal((3, 3, 1))

    class _Res:
        x = np.full(9, np.nan)
        nit, message = 3, "stand-in"

    monkeypatch.setattr(M.optimize, "minimize", lambda *a, **kw: _Res())
    r = M.trust_region_newton(p, U0, spectrum=False, polish=False)
    assert np.array_equal(r.point, U0) and "non-finite iterate; start returned" in r.stop_reason


@pytest.mark.parametrize("c", [4.0 ** -6, 1.0, 4.0 ** 6])
def test_lbfgs_stops_at_the_relative_gradient_tolerance_at_every_scale(c):
    """L-BFGS-B's projected-gradient test is max_i |g_i| <= SEARCH_GTOL_REL s^1.5 / sqrt(dim_U):
    grad G scales like s^1.5 when the tasks are scaled by s, so the stop means the same
    thing whatever the units."""
    from landscape._objective import LoraMLProblem
    from landscape._search.result import SEARCH_GTOL_REL

    inst = ls.random_instance(np.random.default_rng(2), 5, 3, 1)
    p = LoraMLProblem(inst.problem.tasks * c, 1)
    U0 = np.random.default_rng(3).standard_normal((3, 5, 1)) * np.sqrt(c)
    r = M.lbfgs(p, U0, spectrum=False, polish=False)
    assert "NORM OF PROJECTED GRADIENT" in r.stop_reason
    g = M.vec_factors(M.reduced_grad(p, r.point))
    assert np.max(np.abs(g)) <= SEARCH_GTOL_REL * M.problem_scale(p) ** 1.5 / np.sqrt(p.dim_U)


def test_perturbed_gradient_descent_is_exactly_scale_equivariant():
    """Tasks times 4^3 and starts times 2^3 (powers of two: every float operation scales
    exactly): the same iterations, every point times 8, bit for bit."""
    from landscape._objective import LoraMLProblem

    inst = ls.random_instance(np.random.default_rng(2), 5, 3, 1)
    U0 = np.random.default_rng(3).standard_normal((1, 3, 5, 1))
    a = M.perturbed_gradient_descent(inst.problem, U0, rng=np.random.default_rng(0), spectrum=False, polish=False)[0]
    b = M.perturbed_gradient_descent(LoraMLProblem(inst.problem.tasks * 64.0, 1), 8.0 * U0,
                                     rng=np.random.default_rng(0), spectrum=False, polish=False)[0]
    assert a.iterations == b.iterations and np.array_equal(b.point, 8.0 * a.point)


def test_root_finding_polishes_unless_told_not_to():
    inst = ls.random_instance(np.random.default_rng(3), 4, 3, 1)
    U0 = inst.U_star + 0.1 * np.random.default_rng(4).standard_normal(inst.U_star.shape)
    default = M.gradient_root(inst.problem, U0, spectrum=False)
    on = M.gradient_root(inst.problem, U0, spectrum=False, polish=True)
    off = M.gradient_root(inst.problem, U0, spectrum=False, polish=False)
    assert np.array_equal(default.point, on.point) and default.polish_steps == on.polish_steps
    assert off.polish_steps == 0


def test_every_extra_start_of_every_method_has_its_own_index():
    """n random starts are indexed 0..n-1; each (method, extra start) pair gets the next
    index, method by method, and its search starts from that extra start."""
    p = ls.random_instance(np.random.default_rng(0), 3, 3, 1).problem
    extra = np.random.default_rng(9).standard_normal((2, 3, 3, 1))
    res = ls.search(p, rng=np.random.default_rng(1), n_starts=3, methods=("gd", "lbfgs"), starts=extra,
                    spectrum=False)
    assert [r.start_index for r in res] == list(range(3 + 2 * 2))
    assert [r.method for r in res[3:]] == ["gd", "gd", "lbfgs", "lbfgs"]


@pytest.mark.parametrize("c", [4.0 ** -3, 1.0, 4.0 ** 3])
def test_perturbed_gradient_descent_stops_at_its_relative_gradient_tolerance(c):
    """PGD returns a point whose gradient norm is below PGD_GRAD_REL s^1.5 (it perturbs there
    and comes back when descent does not lower G), well before its iteration cap."""
    from landscape._objective import LoraMLProblem
    from landscape._search.descent import PGD_GRAD_REL
    from landscape._search.result import DEFAULT_MAX_ITER

    inst = ls.random_instance(np.random.default_rng(3), 4, 3, 1)
    p = LoraMLProblem(inst.problem.tasks * c, 1)
    U0 = (inst.U_star + 0.05 * np.random.default_rng(4).standard_normal(inst.U_star.shape)) * np.sqrt(c)
    r = M.perturbed_gradient_descent(p, U0[None], rng=np.random.default_rng(0), spectrum=False, polish=False)[0]
    assert r.iterations < DEFAULT_MAX_ITER["pgd"] and "approximate second-order stationary point" in r.stop_reason
    assert np.linalg.norm(M.reduced_grad(p, r.point)) <= PGD_GRAD_REL * M.problem_scale(p) ** 1.5


@pytest.mark.parametrize("name", ["a", "al", "", "aaa", "ALL"])
def test_only_the_exact_word_all_expands_to_every_method(name):
    with pytest.raises(LandscapeInputError, match="unknown search method"):
        M._expand_methods((name,))
    assert M._expand_methods("all") == tuple(_search.SEARCH_METHODS)
    assert M._expand_methods(("lbfgs", "all", "lbfgs")) == tuple(dict.fromkeys(("lbfgs",) + tuple(_search.SEARCH_METHODS)))


@pytest.mark.parametrize("fn", [M.lbfgs, M.trust_region_newton, M.gradient_root])
def test_a_single_start_is_start_zero_unless_told(fn):
    p = ls.random_instance(np.random.default_rng(0), 3, 3, 1).problem
    U0 = np.random.default_rng(1).standard_normal((3, 3, 1))
    assert fn(p, U0, spectrum=False, polish=False).start_index == 0
    assert fn(p, U0, spectrum=False, polish=False, start_index=7).start_index == 7


@pytest.mark.parametrize("error", [FloatingPointError("subproblem"), ZeroDivisionError("0"), OverflowError("big")])
def test_a_trust_region_subproblem_breakdown_returns_the_start_with_its_reason(monkeypatch, error):
    p = ls.random_instance(np.random.default_rng(0), 3, 3, 1).problem
    U0 = np.random.default_rng(1).standard_normal((3, 3, 1))

    def breaks(*a, **k):
        raise error

    monkeypatch.setattr(M.optimize, "minimize", breaks)
    r = M.trust_region_newton(p, U0, spectrum=False, polish=False)
    np.testing.assert_array_equal(r.point, U0)
    assert r.iterations == 0 and r.stop_reason.startswith("trust-exact failed: ")


def test_levenberg_marquardt_root_runs_with_its_round_off_tolerances():
    """lm from near the planted solution converges by MINPACK's own test (not a refusal of
    its parameters, which would return the start untouched)."""
    inst = ls.random_instance(np.random.default_rng(3), 4, 3, 1)
    start = inst.U_star + 0.05 * np.random.default_rng(4).standard_normal(inst.U_star.shape)
    r = M.gradient_root(inst.problem, start, method="lm", mode="dense", spectrum=False, polish=False)
    assert "mproper" not in r.stop_reason and r.stop_reason.startswith("scipy.optimize.root(lm): ")
    g0 = np.linalg.norm(M.reduced_grad(inst.problem, start))
    assert r.grad_norm < 1e-8 * g0 and not np.array_equal(r.point, start)


@pytest.mark.parametrize("method", ["hybr", "lm"])
def test_diverged_root_finding_returns_its_start_with_zero_iterations(monkeypatch, method):
    import landscape._search.methods as M

    def diverging(fun, x0, jac=None, method=None, options=None):
        fun(np.full_like(x0, np.inf))  # a non-finite iterate: the objective raises
        raise AssertionError("not reached")

    monkeypatch.setattr(M.optimize, "root", diverging)
    inst = ls.random_instance(np.random.default_rng(0), 3, 2, 1)
    U0 = np.random.default_rng(1).standard_normal((2, 3, 1))
    r = M.gradient_root(inst.problem, U0, method=method, polish=False)
    assert r.iterations == 0 and "diverged to non-finite values; start returned" in r.stop_reason
    np.testing.assert_array_equal(r.point, U0)  # the start, returned as it was


def test_a_single_task_problem_counts_three_eigenvalues():
    # the k^2 extra zeros belong to T = 2 only: one task (accepted by the objective) gets 3
    p = ls.LoraMLProblem(np.random.default_rng(0).standard_normal((1, 4, 4)), 2)
    assert p.T == 1 and p.dim_U > 3 + 4
    assert M.default_spectrum_count(p) == 3


@pytest.mark.parametrize("offset", [0, 3, 5, 13])
def test_pgd_numbers_its_results_from_the_offset(offset):
    # a unit's results continue the audit's numbering: offset, offset + 1, ... (not offset | i)
    p = ls.random_instance(np.random.default_rng(0), 3, 3, 1).problem
    starts = np.random.default_rng(1).standard_normal((3, 3, 3, 1))
    out = M.perturbed_gradient_descent(p, starts, rng=np.random.default_rng(2), max_iter=3, spectrum=False,
                                       polish=False, start_offset=offset)
    assert [r.start_index for r in out] == [offset, offset + 1, offset + 2]


@pytest.mark.parametrize("ratio,alpha", [(1 - 2e-4, 1.0), (1 - 0.3e-4, 0.25), (1 + 0.5e-4, None)])
def test_the_newton_root_backtracks_until_the_gradient_norm_drops_by_armijo_c_alpha(monkeypatch, ratio, alpha):
    """Backtracking on ||grad G|| takes the first alpha in 1, 1/2, 1/4, ... with
    ||g_new|| <= (1 - ARMIJO_C alpha) ||g||, ARMIJO_C = 1e-4: with the norm planted at ratio x
    ||g|| at every trial point, a drop of 2e-4 takes the full step, one of 0.3e-4 the step
    1/4 (0.3e-4 >= 1e-4 alpha first at alpha = 1/4), and a rise none."""
    from scipy.sparse.linalg import LinearOperator

    import landscape._search.methods as M

    p = ls.random_instance(np.random.default_rng(0), 3, 2, 1).problem
    x0 = np.random.default_rng(1).standard_normal(p.dim_U)
    e = np.zeros((2, 3, 1))
    e[0, 0, 0] = 1.0
    monkeypatch.setattr(M, "reduced_grad",
                        lambda problem, U: e * (1.0 if np.array_equal(M.vec_factors(U), x0) else ratio))
    monkeypatch.setattr(M, "reduced_hvp_operator",
                        lambda problem, U: LinearOperator((p.dim_U,) * 2, matvec=lambda v: v, dtype=float))
    x, it, reason = M._newton_minres_root(p, x0, max_iter=1, gtol=1e-30)
    if alpha is None:
        assert reason == "no decrease of ||grad G|| along the Newton direction" and np.array_equal(x, x0)
    else:
        assert "iteration limit 1" in reason
        assert np.linalg.norm(x - x0) == pytest.approx(alpha, rel=1e-6)  # the step is -g, ||g|| = 1


@pytest.mark.parametrize("mode,method", [("dense", "trust-exact"), ("hvp", "trust-ncg")])
def test_trust_region_runs_its_dense_solver_only_in_dense_mode(mode, method):
    """trust-exact (dense S) in dense mode, Steihaug-Toint CG on S v in hvp mode; the stop
    reason names the solver."""
    inst = ls.random_instance(np.random.default_rng(0), 3, 3, 1)
    U0 = np.random.default_rng(1).standard_normal((3, 3, 1))
    r = ls.trust_region_newton(inst.problem, U0, mode=mode, spectrum=False, polish=False)
    assert r.stop_reason.startswith(f"{method}:"), r.stop_reason


def test_the_curvature_mode_is_compared_by_value_not_identity():
    """A mode string built at run time ("au" + "to", not the interned literal) is auto."""
    inst = ls.random_instance(np.random.default_rng(0), 3, 3, 1)
    U0 = np.random.default_rng(1).standard_normal((3, 3, 1))
    literal, built = "auto", "".join(["au", "to"])
    assert built == literal and built is not literal
    a = ls.trust_region_newton(inst.problem, U0, mode=built, spectrum=False, polish=False)
    b = ls.trust_region_newton(inst.problem, U0, mode="auto", spectrum=False, polish=False)
    assert np.array_equal(a.point, b.point) and a.stop_reason == b.stop_reason


@pytest.mark.parametrize("parts", [("g", "d"), ("p", "gd")])
def test_a_method_name_built_at_run_time_runs_that_method(parts):
    """search() compares method names by value: "g" + "d" (not the interned literal) runs
    gradient descent, "p" + "gd" perturbed gradient descent."""
    name = "".join(parts)
    inst = ls.random_instance(np.random.default_rng(0), 3, 3, 1)
    out = ls.search(inst.problem, rng=0, n_starts=2, methods=[name], max_iter=5, spectrum=False)
    assert len(out) == 2 and {r.method for r in out} == {name}


def test_gradient_descent_stops_alike_on_tasks_scaled_by_c_squared():
    """The default gradient tolerance is SEARCH_GTOL_REL x scale^1.5: the gradient of G at
    c U on tasks c^2 A is c^3 times that at U on A, and the scale is c^2 times, so each run
    takes the same iterations and ends at c times the same point (c = 100)."""
    import landscape as ls

    inst = ls.random_instance(np.random.default_rng(3), 4, 3, 1)
    starts = 0.5 * np.random.default_rng(4).standard_normal((3, 3, 4, 1))
    c = 100.0
    kw = dict(max_iter=400, spectrum=False, polish=False)
    base = ls.gradient_descent(inst.problem, starts, **kw)
    scaled = ls.gradient_descent(ls.LoraMLProblem(c * c * inst.problem.tasks, 1), c * starts, **kw)
    assert [r.iterations for r in scaled] == [r.iterations for r in base]
    assert any(r.iterations < 400 for r in base)  # the tolerance, not the cap, stopped them
    for a, b in zip(base, scaled):
        np.testing.assert_allclose(b.point, c * a.point, rtol=1e-6, atol=1e-9 * c)


@pytest.mark.parametrize("run", ["trust-region", "root-hvp"])
def test_second_order_searches_stop_at_a_gradient_tolerance_scaled_like_the_gradient(run):
    r"""grad G scales like s^{3/2} (tasks times c: s times c, U times c^{1/2}), and so must the
    stopping tolerance and Newton-MINRES's forcing term sqrt(||g|| / s^{3/2}): with the tasks
    scaled by 4^{+-10} (exact in binary) and the start by 2^{+-10}, each run still stops
    because its gradient test passed, after about as many iterations, at a point whose
    gradient is as small relative to s^{3/2}. (A power of s other than 3/2 makes the scaled
    runs stop at once, or never reach the tolerance.)"""
    from landscape._search import methods as M

    rng = np.random.default_rng(3)
    inst = ls.random_instance(rng, 3, 4, 1)
    U0 = inst.U_star + 0.3 * rng.standard_normal(inst.U_star.shape)
    out = {}
    for j in (0, 10, -10):
        prob = ls.LoraMLProblem(inst.problem.tasks * 4.0**j, 1)
        start = U0 * 2.0**j
        if run == "trust-region":
            r = M.trust_region_newton(prob, start, spectrum=False, polish=False)
            assert "terminated successfully" in r.stop_reason, (j, r.stop_reason)
        else:
            r = M.gradient_root(prob, start, method="hybr", mode="hvp", spectrum=False, polish=False)
            assert "below tolerance" in r.stop_reason, (j, r.stop_reason)
        s = M.problem_scale(prob)
        out[j] = (r.iterations, r.grad_norm / s**1.5)
    base = out[0][0]
    assert base >= 3
    for j in (10, -10):
        its, rel = out[j]
        assert base / 2 <= its <= 3 * base, out
        assert rel <= 1e-8, out


@pytest.mark.parametrize("offset", [0, 5])
def test_batched_gradient_descent_numbers_its_runs_from_the_offset(offset):
    """Each run of a batched gradient descent carries its start's index, start_offset + i."""
    rng = np.random.default_rng(0)
    prob = ls.LoraMLProblem(rng.standard_normal((3, 4, 4)), 1)
    starts = rng.standard_normal((3, 3, 4, 1))
    runs = M.gradient_descent(prob, starts, max_iter=5, spectrum=False, polish=False, start_offset=offset)
    assert [r.start_index for r in runs] == [offset, offset + 1, offset + 2]
