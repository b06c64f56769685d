"""The instances with known truth (``landscape/_instances.py``) against exact truth:
model M1's tasks are A* + U*U*^T entry for entry, the d = 2k counterexample of
THEORY.md section 4 is the one printed there and its second minimiser is the exact
rational one, and the construction refuses instances it does not apply to at every scale."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import landscape as ls
from landscape import LandscapeInputError


def test_planted_tasks_are_A_star_plus_the_task_gram_matrices_exactly():
    A = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, -1.0], [0.5, 0.0, 2.0]])
    U = np.array([[[1.0, 0.0], [2.0, 1.0], [0.0, -1.0]], [[0.0, 3.0], [1.0, 0.0], [-2.0, 0.0]]])
    inst = ls.PlantedInstance(A, U)
    want = np.stack([A + u @ u.T for u in U])  # small integers: exact in floats
    assert np.array_equal(inst.tasks, want) and np.array_equal(inst.W, want - A)
    assert inst.size == (3, 2, 2) and np.array_equal(inst.problem.tasks, want)


def test_random_instances_are_model_m1_draws_in_the_toolkits_order():
    inst = ls.random_instance(np.random.default_rng(3), 4, 5, 2)
    rng = np.random.default_rng(3)
    A, U = rng.standard_normal((4, 4)), rng.standard_normal((5, 4, 2))
    assert np.array_equal(inst.A_star, A) and np.array_equal(inst.U_star, U)
    sym = ls.random_instance(np.random.default_rng(3), 4, 5, 2, symmetric_A=True)
    assert np.array_equal(sym.A_star, 0.5 * (A + A.T)) and np.array_equal(sym.U_star, U)


# THEORY.md section 4, "Why d >= 3k": u*_1 = (-0.8, -1.3), u*_2 = (-0.2, 0.4), u*_3 = (1.1, 0.1),
# Q ~ [[-1.28669, -1.01099], [-1.01099, -0.49332]], u^_1 ~ (1.38805, 1.47761),
# u^_2 ~ (-1.15182, -0.80828), u^_3 ~ (-1.58009, -0.70945) (signs free)
SPEC_U = [[Fraction(-8, 10), Fraction(-13, 10)], [Fraction(-2, 10), Fraction(4, 10)], [Fraction(11, 10), Fraction(1, 10)]]
SPEC_Q = [[-1.28669, -1.01099], [-1.01099, -0.49332]]
SPEC_UHAT = [(1.38805, 1.47761), (-1.15182, -0.80828), (-1.58009, -0.70945)]


def _exact_Q(w):
    """Q = Q0 / det Q0 with l_t(Q0) = 1, solved in rationals (Cramer's rule)."""
    M = [[b * b, -2 * a * b, a * a] for a, b in w]

    def det3(m):
        return (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))

    D = det3(M)
    sol = []
    for j in range(3):
        Mj = [[1 if c == j else M[r][c] for c in range(3)] for r in range(3)]
        sol.append(det3(Mj) / D)
    a, b, c = sol
    det = a * c - b * b
    return [[a / det, b / det], [b / det, c / det]]


def test_counterexample_instance_is_the_one_of_theory_section_4():
    inst = ls.thm33_counterexample_instance()
    assert np.array_equal(inst.U_star[:, :, 0], np.array([[float(x) for x in row] for row in SPEC_U]))
    assert np.array_equal(inst.A_star, np.zeros((2, 2)))


def test_counterexample_minimiser_is_the_exact_rational_one_and_the_printed_one():
    Q, U_hat = ls.thm33_counterexample_minimiser()
    exact = _exact_Q(SPEC_U)
    np.testing.assert_allclose(Q, [[float(x) for x in row] for row in exact], rtol=1e-13)
    np.testing.assert_allclose(Q, SPEC_Q, atol=6e-6)
    for t, (x, y) in enumerate(SPEC_UHAT):
        u = U_hat[t, :, 0] * np.sign(U_hat[t, 0, 0] * x)
        np.testing.assert_allclose(u, (x, y), atol=6e-6)
    # W_t - Q = u^_t u^_t^T up to the float rounding of u^: the loss at (A* + Q, U^) is 0
    inst = ls.thm33_counterexample_instance()
    assert inst.problem.loss(inst.A_star + Q, U_hat) < 1e-28
    assert np.linalg.norm(Q) > 1.0  # and A^ = A* + Q is not A*


@pytest.mark.parametrize("scale", [1.0, 1e-5, 1e5])
def test_construction_applies_or_refuses_the_same_way_at_every_scale(scale):
    """An instance where some W_t - Q is indefinite (rng 7: eigenvalue -1.49 of W_1 - Q) is
    refused, a PSD one (rng 0) is not, whatever the units: the test is relative."""
    bad = np.random.default_rng(7).standard_normal((3, 2))
    good = np.random.default_rng(0).standard_normal((3, 2))
    with pytest.raises(ArithmeticError, match="not PSD"):
        ls.thm33_counterexample_minimiser(scale * bad)
    Q, U_hat = ls.thm33_counterexample_minimiser(scale * good)
    Q1, U1 = ls.thm33_counterexample_minimiser(good)
    np.testing.assert_allclose(Q, scale ** 2 * Q1, rtol=1e-9)
    W = np.einsum("ti,tj->tij", scale * good, scale * good)
    np.testing.assert_allclose(W - Q, np.einsum("tik,tjk->tij", U_hat, U_hat), atol=1e-12 * scale ** 2)


def test_counterexample_minimiser_refuses_other_shapes():
    for shape in ((2, 2), (2, 3), (6,), (7,), (3, 2, 2)):  # never reshaped into three factors
        with pytest.raises(LandscapeInputError, match="3 finite factors"):
            ls.thm33_counterexample_minimiser(np.ones(shape))
    with pytest.raises(LandscapeInputError, match="3 finite factors"):
        ls.thm33_counterexample_minimiser(np.full((3, 2), np.nan))


@pytest.mark.parametrize("s1,s2", [(1, 1), (1, -1), (-1, 1), (-1, -1)])
def test_f1_points_are_zero_loss_points_of_f1_on_every_branch(s1, s2):
    """App. F.1: u_1 = (s1 cosh, s1 s2 sinh), u_2 = (sinh, s2 cosh), A = e1e1^T - u1u1^T fits
    both tasks exactly: A + u_1u_1^T = e1e1^T and A + u_2u_2^T = e2e2^T (cosh^2 - sinh^2 = 1)."""
    th = 0.7
    A, U = ls.f1_point(th, s1, s2)
    ch, sh = np.cosh(th), np.sinh(th)
    np.testing.assert_array_equal(U[0, :, 0], [s1 * ch, s1 * s2 * sh])
    np.testing.assert_array_equal(U[1, :, 0], [sh, s2 * ch])
    tasks = ls.f1_instance().tasks
    for t in range(2):
        np.testing.assert_allclose(A + U[t] @ U[t].T, tasks[t], atol=1e-14)


@pytest.mark.parametrize("s1,s2", [(2, 1), (1, 0), (1, -2)])
def test_f1_branch_signs_other_than_plus_minus_one_are_refused(s1, s2):
    with pytest.raises(LandscapeInputError, match="signs are"):
        ls.f1_point(0.3, s1, s2)


@pytest.mark.parametrize("seed", [7, 12])
def test_thm33_minimiser_refusal_names_the_first_factor_one_based(seed):
    """Where the construction does not apply, the error names the first W_t - Q that is not
    PSD, counting t from 1 as THEORY.md does (these instances fail at every t, so in every
    cyclic order it is W_1), with its negative eigenvalue; the verdict is relative, so it
    does not change when the factors are scaled."""
    import re

    from landscape._instances import thm33_counterexample_minimiser

    w = np.random.default_rng(seed).standard_normal((3, 2))
    for shift in range(3):
        for scale in (1e-6, 1.0, 1e6):
            with pytest.raises(ArithmeticError) as err:
                thm33_counterexample_minimiser(scale * np.roll(w, shift, axis=0))
            m = re.match(r"W_(\d) - Q is not PSD \(eigenvalues (\S+), (\S+)\)", str(err.value))
            assert m and m.group(1) == "1" and float(m.group(2)) < 0, str(err.value)
    ok = np.random.default_rng(0).standard_normal((3, 2))
    for scale in (1e-6, 1e6):
        thm33_counterexample_minimiser(scale * ok)


#: THEORY.md section 8, "Certified example", as printed (rows are tasks).
_F2_PRINTED_U_STAR = ("(0.316462366449,-0.581863384354,-0.72925955371)",
                      "(0.640621751493,-0.372051247918,-0.336894466018)",
                      "(1.917854502271,-0.981819363075,-0.281605709418)")
_F2_PRINTED_U0 = ("(-0.036075651206,-0.432810235023,-0.669862558214)",
                  "(-0.554586951359,0.075803271208,-0.084320922961)",
                  "(1.890165457967,-0.896442135301,-0.149584698226)")


def test_the_f2_instance_holds_theory_md_s_printed_numbers_digit_for_digit():
    from landscape._instances import F2_U0, F2_U_STAR

    def rows(printed):
        return np.array([[float(x) for x in r.strip("()").split(",")] for r in printed])

    np.testing.assert_array_equal(F2_U_STAR, rows(_F2_PRINTED_U_STAR))
    np.testing.assert_array_equal(F2_U0, rows(_F2_PRINTED_U0))


def test_counterexample_minimiser_takes_factors_as_3_x_2_or_as_the_3_x_2_x_1_stack():
    # the rank-one factors of a (T, d, k) = (3, 2, 1) point are accepted as they stand
    from landscape._instances import THM33_COUNTEREXAMPLE_U_STAR as w

    Q2, U2 = ls.thm33_counterexample_minimiser(np.asarray(w).reshape(3, 2))
    Q3, U3 = ls.thm33_counterexample_minimiser(np.asarray(w).reshape(3, 2, 1))
    np.testing.assert_array_equal(Q2, Q3)
    np.testing.assert_array_equal(U2, U3)
    with pytest.raises(LandscapeInputError, match="3 finite factors"):
        ls.thm33_counterexample_minimiser(np.asarray(w).reshape(3, 2, 1, 1))
