r"""Calculus of the LoRA-ML objective (THEORY.md section 5): ``Eq.(34) / Thm B.1``.

The analytic derivatives pass the Taylor-slope test, the reduced Hessian equals the
Schur complement, and Haynsworth's inertia formula holds.
"""
from __future__ import annotations

import time

import numpy as np

from landscape import (
    LoraMLProblem,
    haynsworth_inertia_check,
    inertia,
    random_instance,
    taylor_check,
    vec_factors,
)
from landscape._random import accepts_seed

from ._result import EPS, Case, fmt, make_result
from ._sizes import resolve_sizes

__all__ = ["check_schur", "schur_tolerance", "equivalence_error", "equivalence_tolerance"]

#: Step sizes of the Taylor-slope test.  The slope is only meaningful where the
#: first neglected term dominates the remainder; at t = 0.1 the cubic and quartic
#: terms of these O(1) quartics can cancel and bend the fitted line (landscape's
#: default range starts there and fails ~0.3% of random directions), so the range
#: starts a decade lower and stops before round-off (1e-5).
TAYLOR_STEPS = np.logspace(-2, -5, 7)


#: Random directions per Taylor test; the majority decides.  Along a direction where
#: the cubic term of the quartic is accidentally tiny (about 1 in 1000 directions)
#: the Hessian remainder drops under round-off after two steps and the fitted slope
#: is meaningless, while a wrong derivative shows its lost order in every direction.
TAYLOR_DIRECTIONS = 3


def schur_tolerance(H: np.ndarray, d: int, T: int) -> float:
    r"""Tolerance of :math:`\|\mathrm{Schur}(H) - S\|_F`: :math:`10\,d^2\varepsilon(\|H\|_F + \|H\|_F^2/T)`.
    Entries of :math:`B^\top B` are sums of :math:`d^2` products, so their rounding is at most
    :math:`d^2\varepsilon\|H\|^2` (Frobenius bound); the :math:`A`-block is :math:`T I`."""
    h = float(np.linalg.norm(H))
    return 10 * d * d * EPS * (h + h ** 2 / T)


def equivalence_error(prob: LoraMLProblem, A: np.ndarray, U: np.ndarray) -> float:
    r""":math:`\|\nabla_A\mathcal L(A,U)\|_F + \|\nabla_U\mathcal L(A,U) - \nabla G(U)\|_F`: zero at
    :math:`A = A(U)` (section 5, "Equivalences")."""
    gA, gU = prob.grad(A, U)
    return float(np.linalg.norm(gA)) + float(np.linalg.norm(gU - prob.reduced_grad(U)))


def equivalence_tolerance(prob: LoraMLProblem, U: np.ndarray) -> float:
    r"""Tolerance of :func:`equivalence_error` at :math:`A(U)`:
    :math:`16\,T d\,\varepsilon\,(\|\{A_t\}\|_F + \|U\|_F^2)(1 + \|U\|_F)`, the rounding of
    gradients whose terms are products of at most ``T d`` entries of the tasks and the
    factors' outer products, scaled by the size of :math:`U` they are contracted with."""
    T, d = prob.T, prob.d
    return 16 * T * d * EPS * (float(np.linalg.norm(prob.tasks)) + float(np.sum(U ** 2))) * (
        1 + float(np.linalg.norm(U)))


@accepts_seed()
def check_schur(
    rng: np.random.Generator,
    *,
    sizes=None,
    configs=None,
):
    r"""Section 5: analytic gradient/Hessian (34) pass the Taylor-slope test
    (``landscape.taylor_check``) for :math:`\mathcal L` and :math:`G`; the Schur
    complement of the dense Hessian in its :math:`A`-block equals
    :math:`\nabla^2G=S`; and :math:`\mathrm{In}(\nabla^2\mathcal L)=\mathrm{In}(TI_{d^2})+\mathrm{In}(S)`
    (Thm B.1 / Haynsworth); at :math:`A=A(\mathbf U)` the gradient of :math:`\mathcal L`
    is :math:`(0,\nabla G)` (section 5, "Equivalences"); and at a global minimiser
    :math:`S` has at least :math:`Tk(k-1)/2` zero eigenvalues (section 5, "Symmetry").
    Task matrices are non-symmetric Gaussian (model-M1 tasks for the symmetry case).
    """
    sizes = resolve_sizes("check_schur", configs, sizes, default=((4, 2, 2), (3, 3, 1), (4, 3, 2), (6, 3, 2)))
    t0 = time.perf_counter()
    cases = []
    for d, T, k in sizes:
        prob = LoraMLProblem(rng.standard_normal((T, d, d)), k)
        A = rng.standard_normal((d, d))
        U = rng.standard_normal((T, d, k))
        x = prob.pack(A, U)
        tag = f"d={d} k={k} T={T}"
        for name, f, g, h, x0 in (
            ("L", prob.loss_flat, prob.grad_flat, prob.hvp_flat, x),
            ("G", prob.reduced_loss_flat, prob.reduced_grad_flat, prob.reduced_hvp_flat, vec_factors(U)),
        ):
            runs = [taylor_check(f, g, x0, hvp=h, rng=rng, steps=TAYLOR_STEPS) for _ in range(TAYLOR_DIRECTIONS)]
            ok = sum(r.passed for r in runs)
            slopes = ", ".join(f"({fmt(r.slope_gradient, 3)}, {fmt(r.slope_hessian, 3)})" for r in runs)
            cases.append(Case(f"{tag}: Taylor slopes of {name} (grad, Hess)", "(2, 3)", slopes,
                              f"majority of {TAYLOR_DIRECTIONS} directions", 2 * ok > TAYLOR_DIRECTIONS))
        Astar = prob.optimal_A(U)
        H = prob.hessian(Astar, U)
        nA = d * d
        S_from_H = H[nA:, nA:] - H[nA:, :nA] @ np.linalg.solve(H[:nA, :nA], H[:nA, nA:])
        S = prob.schur_complement(U)
        err = float(np.linalg.norm(S_from_H - S))
        tol = schur_tolerance(H, d, T)
        cases.append(Case(f"{tag}: ||Schur(H) - S||_F", 0.0, err, tol, err <= tol))
        hw = haynsworth_inertia_check(prob, U)
        cases.append(Case(f"{tag}: In(H) = In(T I) + In(S)", str(hw["predicted"]), str(hw["hessian"]),
                          "ZERO_EIGENVALUE_RTOL", bool(hw["agree"])))
        # Equivalences: at A = A(U), grad_A L = 0 and grad_U L = grad G (for every U)
        eq_err = equivalence_error(prob, Astar, U)
        eq_tol = equivalence_tolerance(prob, U)
        cases.append(Case(f"{tag}: grad L(A(U),U) = (0, grad G(U))", 0.0, eq_err, eq_tol, eq_err <= eq_tol))
        # Symmetry: at a critical point each task's O(k) orbit gives k(k-1)/2 zero eigenvalues
        inst = random_instance(rng, d, T, k)
        lam = np.linalg.eigvalsh(inst.problem.schur_complement(inst.U_star))
        n_zero = inertia(None, eigenvalues=lam)[2]
        need = T * k * (k - 1) // 2
        if T == 2 and d >= 2 * k:
            # plus the k^2 directions of the O(k,k) family modulo the orbits (section 4)
            exact = need + k * k
            cases.append(Case(f"{tag}: zero eigenvalues of S at a global min (Tk(k-1)/2 + k^2)", exact, n_zero,
                              "ZERO_EIGENVALUE_RTOL", n_zero == exact))
        elif T >= 3 and d >= 3 * k:
            # Thm 3.3: the minimiser is isolated modulo O(k)
            cases.append(Case(f"{tag}: zero eigenvalues of S at a global min (Tk(k-1)/2)", need, n_zero,
                              "ZERO_EIGENVALUE_RTOL", n_zero == need))
        else:
            cases.append(Case(f"{tag}: zero eigenvalues of S at a global min (>= Tk(k-1)/2)", f">= {need}",
                              n_zero, "ZERO_EIGENVALUE_RTOL", n_zero >= need))
    return make_result(
        "Eq.(34) / Thm B.1",
        reference="Eq. (34), reduced loss, Thm B.1 (THEORY.md section 5)",
        hypotheses=f"non-symmetric Gaussian tasks, (d,T,k) in {tuple(map(tuple, sizes))}",
        predicted="slopes (2,3); Schur(H) = Hess G; In(H) = In(TI)+In(S); O(k) zero modes",
        measured=f"{sum(c.passed for c in cases)}/{len(cases)} hold",
        tolerance="slope >= order - 0.5; Schur to 10 d^2 eps ||H||^2",
        tolerance_why=(
            "a wrong derivative loses a whole order of Taylor slope; the Schur identity is exact "
            "and differs only by the rounding of the d^2-term sums in B^T B"
        ),
        cases=cases,
        started=t0,
    )
