r"""Float-side heuristics of the certificates: Newton polishing of a candidate and the
search for a witness point of low loss.  Their outputs are only stored in a certificate
and checked, so they cannot make a verdict wrong.
"""
from __future__ import annotations

import math

import numpy as np

from .._objective import LoraMLProblem, vec_factors
from .._random import accepts_seed

#: Newton polishing: at most this many steps; a step is kept only if it lowers the
#: gradient norm, so the loop also stops at the float64 noise floor (~1e-16 * ||S|| ||U||).
POLISH_MAX_STEPS = 8


#: Relative singular-value cut-off of the least-squares Newton step.  For k >= 2 the
#: Hessian has exact zero eigenvalues along the O(k) orbit; the cut-off removes them
#: (minimum-norm step) while keeping genuine curvature down to 1e-10 of the largest.
POLISH_RCOND = 1e-10


#: Random starts of the default witness search (BFGS on G).  On model-M1 instances
#: a handful of starts reaches a global minimum (G ~ 1e-20) with overwhelming
#: probability (THEORY.md section 8: 0.4-0.5% of runs end at spurious points).
WITNESS_STARTS = 8


#: Seed of the witness search when the caller passes no Generator.
WITNESS_SEED = 0


#: Tolerances of the witness search (BFGS, then Newton polishing); the witness only
#: needs a loss below the certificate's lower bound, so these are generous.
WITNESS_GTOL = 1e-10


WITNESS_MAXITER = 200


def polish_critical_point(problem: LoraMLProblem, U, *, max_steps: int = POLISH_MAX_STEPS):
    r"""Newton steps on :math:`\nabla G=0` with the analytic :math:`S` (float64).

    Each step solves :math:`S\,\delta=\nabla G` by least squares with relative cut-off
    :data:`POLISH_RCOND` (minimum-norm step, which ignores the O(k) kernel for
    :math:`k\ge2`) and is kept only if it lowers :math:`\|\nabla G\|`.

    Returns
    -------
    U : ndarray, shape (T, d, k)
    record : dict
        ``steps``, ``grad_norms`` (before each accepted step and at the end) and
        ``displacement`` (Frobenius distance from the input).
    """
    U_in = problem.check_factors(U)
    x = vec_factors(U_in)
    g = problem.reduced_grad_flat(x)
    norms = [float(np.linalg.norm(g))]
    steps = 0
    for _ in range(max_steps):
        S = problem.schur_complement(problem.unpack_factors(x))
        step = np.linalg.lstsq(S, g, rcond=POLISH_RCOND)[0]
        x_new = x - step
        g_new = problem.reduced_grad_flat(x_new)
        if not np.linalg.norm(g_new) < norms[-1]:
            break
        x, g = x_new, g_new
        norms.append(float(np.linalg.norm(g)))
        steps += 1
    U_out = problem.unpack_factors(x)
    return U_out, {
        "steps": steps,
        "grad_norms": norms,
        "displacement": float(np.linalg.norm(U_out - U_in)),
    }


@accepts_seed()
def find_witness(
    problem: LoraMLProblem,
    *,
    rng: np.random.Generator | None = None,
    starts: int = WITNESS_STARTS,
) -> np.ndarray:
    r"""A point with small reduced loss, used as the comparison point of (C2).

    BFGS on :math:`G` from ``starts`` Gaussian starts (scaled to the task
    matrices), each finished by Newton polishing; returns the lowest.  The result is
    only an *upper* bound on :math:`\min G`, which is all (C2) needs; a poor witness
    can only make a certificate fail, never make it wrong.
    """
    from scipy.optimize import minimize

    rng = np.random.default_rng(WITNESS_SEED) if rng is None else rng  # a seed is converted by accepts_seed
    T, d, k = problem.T, problem.d, problem.k
    centred = problem.tasks - problem.mean_task[None]
    # Entries of size s give ||U_t U_t^T||_F ~ d k s^2; match the spread of the tasks.
    spread = float(np.linalg.norm(centred)) / math.sqrt(T)
    scale = math.sqrt(max(spread, 1e-12) / (d * math.sqrt(k)))
    best, best_val = None, math.inf
    for _ in range(max(1, starts)):
        x0 = scale * rng.standard_normal(problem.dim_U)
        res = minimize(
            problem.reduced_loss_flat,
            x0,
            jac=problem.reduced_grad_flat,
            method="BFGS",
            options={"gtol": WITNESS_GTOL, "maxiter": WITNESS_MAXITER},
        )
        U, _ = polish_critical_point(problem, problem.unpack_factors(res.x))
        val = problem.reduced_loss(U)
        if val < best_val:
            best, best_val = U, val
    return best
