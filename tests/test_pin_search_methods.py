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
