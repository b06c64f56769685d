r"""Newton polish of a search's end point: a few Newton steps on :math:`\nabla G=0`
(pseudo-inverse or damped least squares on the symmetry kernel, MINRES on
Hessian-vector products), so that the classification runs at round-off-level gradients.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import minres

from .._factored import reduced_grad, reduced_hvp_operator
from .._objective import LoraMLProblem, unvec_factors, vec_factors
from .result import problem_scale

#: Newton polish: stop once ``||grad G|| <= POLISH_GTOL_REL * s^{3/2}`` (a few hundred
#: ulps of the gradient scale: a degree-3 polynomial of O(1) entries cannot be
#: evaluated more accurately in float64), or after ``POLISH_MAX_STEPS`` steps.  Ten
#: steps of a quadratically convergent iteration is more than enough when the point is
#: in its basin; outside it more steps do not help.
POLISH_GTOL_REL = 1e-14


POLISH_MAX_STEPS = 10


#: Eigenvalues of S with ``|lambda| <= PINV_RTOL * max|lambda|`` are treated as the
#: symmetry kernel in the Newton pseudo-inverse (the O(k) orbit gives exact zeros).
PINV_RTOL = 1e-10


#: Levenberg-Marquardt dampings (relative to ``max|lambda|^2``) tried by the dense
#: polish when the pure Newton step does not reduce the gradient: from round-off
#: level to a gradient-descent-like step, by factors of 100.
LM_DAMPINGS = tuple(10.0 ** -e for e in range(12, -1, -2))


#: MINRES iteration cap per Newton system in ``"hvp"`` mode.  Each iteration costs one
#: Hessian-vector product, O(T d^2 k); inexact Newton needs only a modest residual
#: reduction, and 500 iterations resolve eigenvalue ratios of ~1e4 (sqrt(kappa) rule).
MINRES_MAXITER = 500


def default_gtol(problem: LoraMLProblem) -> float:
    """The polish's stopping threshold ``POLISH_GTOL_REL * s**1.5`` (``s``: the problem's scale)."""
    return POLISH_GTOL_REL * problem_scale(problem) ** 1.5


def candidate_steps(problem: LoraMLProblem, U: np.ndarray, g: np.ndarray, mode: str = "dense") -> list:
    r"""The steps one polish iteration tries at ``U`` (gradient ``g``), in order; the first
    that lowers :math:`\|\nabla G\|` is taken.

    ``"dense"``: the minimum-norm Newton step :math:`-S^+ g` (eigenvalues with
    :math:`|\lambda|\le` ``PINV_RTOL`` :math:`\max|\lambda|` treated as zero), then the
    Levenberg-Marquardt steps :math:`-(S^2+\mu\rho^2 I)^{-1}S g` for each ``mu`` of
    ``LM_DAMPINGS`` (:math:`\rho=\max|\lambda|`): near a continuum of critical points tiny
    eigenvalues make the Newton step overshoot.  ``"hvp"``: the inexact Newton step
    :math:`x` of MINRES on :math:`Sx=-g`, then :math:`x/2,\dots,x/32` (backtracking).
    Vectors of length ``T d k`` (:func:`vec_factors` order)."""
    if mode not in ("dense", "hvp"):
        raise ValueError(f"unknown curvature mode {mode!r}: use 'dense' or 'hvp'")
    gv = vec_factors(g)
    if mode == "dense":
        lam, V = np.linalg.eigh(problem.schur_complement(U))
        rho = max(float(np.max(np.abs(lam))), np.finfo(float).tiny)
        keep = np.abs(lam) > PINV_RTOL * rho
        coef = V.T @ gv
        steps = [-(V[:, keep] @ (coef[keep] / lam[keep]))]
        return steps + [-(V @ (coef * lam / (lam**2 + mu * rho**2))) for mu in LM_DAMPINGS]
    op = reduced_hvp_operator(problem, U)
    newton, _ = minres(op, -gv, rtol=1e-12, maxiter=MINRES_MAXITER)
    return [newton * 0.5**j for j in range(6)]


def newton_polish(
    problem: LoraMLProblem,
    U: np.ndarray,
    *,
    mode: str = "dense",
    max_steps: int = POLISH_MAX_STEPS,
    gtol: float | None = None,
):
    r"""Newton steps on :math:`\nabla G = 0` with the pseudo-inverse of :math:`S`.

    The kernel of :math:`S` contains the :math:`O(k)` orbit directions (and for
    :math:`T=2` the :math:`O(k,k)` family, THEORY.md section 4), so the minimum-norm
    Newton step is used: dense pseudo-inverse, or MINRES in ``"hvp"`` mode.  A step
    is accepted only if it decreases :math:`\|\nabla G\|`, so the polish never moves
    a point away from the critical point it is converging to.

    Returns
    -------
    U : ndarray, shape (T, d, k)
    accepted : int
        Number of accepted steps.
    """
    U = problem.check_factors(U).copy()
    gtol = default_gtol(problem) if gtol is None else gtol
    g = reduced_grad(problem, U)
    gn = float(np.linalg.norm(g))
    accepted = 0
    for _ in range(max_steps):
        if gn <= gtol:
            break
        for step in candidate_steps(problem, U, g, mode):
            U_new = U + unvec_factors(step, problem.T, problem.d, problem.k)
            g_new = reduced_grad(problem, U_new)
            gn_new = float(np.linalg.norm(g_new))
            if gn_new < gn:
                break
        else:
            break
        U, g, gn = U_new, g_new, gn_new
        accepted += 1
    return U, accepted
