r"""The batched first-order engine of :func:`~landscape.gradient_descent` and
:func:`~landscape.perturbed_gradient_descent`: G and its gradient for many starts at
once (dense or factored), Barzilai-Borwein steps with Armijo backtracking, and the
perturbations that escape strict saddles.
"""
from __future__ import annotations

import numpy as np

from .._factored import RESYNC_EVERY, factored, uses_factored
from .result import problem_scale

#: Armijo sufficient-decrease constant and the maximal number of step halvings.
ARMIJO_C = 1e-4


ARMIJO_MAX_HALVINGS = 50


#: Perturbed gradient descent (Jin et al. 2017), in units of the problem scale s:
#: perturb when ``||g|| <= PGD_GRAD_REL * s^{3/2}``, with a uniform sample from the
#: ball of radius ``PGD_RADIUS_REL * s^{1/2}``; if after ``PGD_ESCAPE_ITERS`` steps
#: the loss has not dropped by ``PGD_DECREASE_REL * s^2`` below its value before the
#: perturbation, the point is an approximate second-order stationary point.  A
#: perturbation of radius r raises G by at most ~lambda_max r^2/2 ~ 5e-5 s^2, and
#: escaping a strict saddle drops G by O(s^2) times the saddle's loss gap, so 1e-6
#: separates the two outcomes; ``PGD_MAX_PERTURBATIONS`` bounds the cost.
PGD_GRAD_REL = 1e-5


PGD_RADIUS_REL = 1e-2


PGD_ESCAPE_ITERS = 100


PGD_DECREASE_REL = 1e-6


PGD_MAX_PERTURBATIONS = 10


def _batched_residual(tasks: np.ndarray, U: np.ndarray):
    """Residuals :math:`R_t=\bar D-D_t` and :math:`G` for a batch ``U`` of shape ``(n, T, d, k)``."""
    D = tasks[None] - U @ np.swapaxes(U, -1, -2)
    R = D.mean(axis=1, keepdims=True) - D
    return R, 0.5 * np.einsum("stij,stij->s", R, R)


def _grad_from_residual(R: np.ndarray, U: np.ndarray) -> np.ndarray:
    return (R + np.swapaxes(R, -1, -2)) @ U


def _batched_loss_grad(tasks: np.ndarray, U: np.ndarray):
    """G and grad G for a batch ``U`` of shape ``(n, T, d, k)`` (one residual each)."""
    R, loss = _batched_residual(tasks, U)
    return loss, _grad_from_residual(R, U)


def _norms(g: np.ndarray) -> np.ndarray:
    flat = g.reshape(g.shape[0], -1)
    return np.sqrt(np.einsum("si,si->s", flat, flat))


class _DenseBatch:
    """Loss and gradient of a batch from the dense residuals (small ``d``)."""

    factored = False

    def __init__(self, problem):
        self.tasks = problem.tasks

    def evaluate(self, U):
        f, g = _batched_loss_grad(self.tasks, U)
        return f, g, None

    def trials(self, U, f, g, aux, alphas, gsq):
        """Armijo test at ``U - alpha g``: (accepted mask, losses, gradients, aux)."""
        cand = U - alphas[:, None, None, None] * g
        Rc, fc = _batched_residual(self.tasks, cand)
        ok = fc <= f - ARMIJO_C * alphas * gsq
        return ok, cand[ok], fc[ok], _grad_from_residual(Rc[ok], cand[ok]), None


class _FactoredBatch:
    r"""The same through :class:`landscape._factored.FactoredObjective`: one GEMM with
    :math:`\Delta_t` per iteration for all starts, and the Armijo test on the exact
    quartic :math:`G(U-\alpha g)-G(U)` (accurate however small the decrease)."""

    factored = True

    def __init__(self, problem):
        self.F = factored(problem)
        self.count = 0

    def evaluate(self, U):
        F = self.F
        DU = F.apply_delta(U)
        f = np.array([F.loss_exact(u) for u in U])
        return f, F.grad(U, DU), DU

    def trials(self, U, f, g, aux, alphas, gsq):
        F = self.F
        V = -g
        DV = F.apply_delta(V)
        coef = F.line_polynomial(U, V, aux, DV, G=g)
        dec = F.eval_polynomial(coef, alphas)
        ok = dec <= -ARMIJO_C * alphas * gsq
        a = alphas[ok][:, None, None, None]
        cand = U[ok] + a * V[ok]
        self.count += 1
        DUc = F.apply_delta(cand) if self.count % RESYNC_EVERY == 0 else aux[ok] + a * DV[ok]
        return ok, cand, f[ok] + dec[ok], F.grad(cand, DUc), DUc


def ball_perturbation(rng: np.random.Generator, dim: int, radius: float) -> np.ndarray:
    """A point drawn uniformly from the ball of ``radius`` in R^dim (PGD's perturbation):
    a Gaussian direction, normalised, times ``radius * u^(1/dim)`` with u uniform on
    [0, 1), so that P(|xi| <= t radius) = t^dim, the ball's volume fraction."""
    xi = rng.standard_normal(dim)
    xi *= radius * rng.uniform() ** (1.0 / dim) / np.linalg.norm(xi)
    return xi


def pgd_decrease_threshold(s: float) -> float:
    """The drop of :math:`G` within ``PGD_ESCAPE_ITERS`` steps of a perturbation that counts
    as an escape: ``PGD_DECREASE_REL * s**2`` (:math:`G` scales as :math:`s^2` with the
    tasks' scale ``s``, so the decision does not depend on units)."""
    return PGD_DECREASE_REL * s**2


def initial_step(U: np.ndarray, f: np.ndarray, s: float) -> np.ndarray:
    r"""First trial step of each start of a batch ``U`` (S, T, d, k) with reduced losses ``f``
    (S,) and problem scale ``s``: the inverse of a cheap upper estimate of the norm of the
    reduced Hessian, :math:`\|S\|\lesssim 6\max_t\|U_t\|^2+2\|R\|_F+s` with
    :math:`\|R\|_F=\sqrt{2G}` (the blocks of eq. (34); ``s`` keeps the step finite at
    :math:`U=0`). Backtracking corrects an estimate that is too small."""
    u2 = np.max(np.einsum("stij,stij->st", U, U), axis=1)
    step = 1.0 / (6.0 * u2 + 2.0 * np.sqrt(2.0 * f) + s)
    return step


def bb_step(sv: np.ndarray, yv: np.ndarray, prev: np.ndarray) -> np.ndarray:
    r"""Barzilai-Borwein (BB1) steps of a batch: displacements ``sv`` and gradient changes
    ``yv`` (one row per start) give :math:`s^\top s/s^\top y` where the curvature
    :math:`s^\top y` is positive and twice the previous step ``prev`` elsewhere; either is
    kept within :math:`[10^{-3},10^3]` times ``prev``."""
    sy = np.einsum("si,si->s", sv, yv)
    ss = np.einsum("si,si->s", sv, sv)
    bb = np.where(sy > 0, ss / np.where(sy > 0, sy, 1.0), 2.0 * prev)
    return np.clip(bb, 1e-3 * prev, 1e3 * prev)


def _descent_batch(problem, U0, *, max_iter, gtol, rng=None, perturb=False):
    """Gradient descent on a batch of starts; optional perturbations (PGD).

    Returns final points, iterations and stopping reasons per start.
    """
    ev = _FactoredBatch(problem) if uses_factored(problem) else _DenseBatch(problem)
    U = np.array(U0, dtype=float, copy=True)
    n = U.shape[0]
    f, g, aux = ev.evaluate(U)
    s = problem_scale(problem)
    step = initial_step(U, f, s)
    prev_U, prev_g = None, None
    active = np.ones(n, dtype=bool)
    iters = np.zeros(n, dtype=int)
    reasons = [""] * n
    # PGD state
    radius = PGD_RADIUS_REL * np.sqrt(s)
    f_thres = pgd_decrease_threshold(s)
    in_escape = np.zeros(n, dtype=bool)
    escape_start = np.zeros(n, dtype=int)
    n_perturb = np.zeros(n, dtype=int)
    U_before = np.zeros_like(U)
    f_before = np.zeros(n)
    dim = U[0].size

    def reevaluate(sel):
        fs, gs, auxs = ev.evaluate(U[sel])
        f[sel], g[sel] = fs, gs
        if auxs is not None:
            aux[sel] = auxs

    for it in range(max_iter):
        gn = _norms(g)
        if perturb:
            # end of an escape window: did the loss drop enough?
            ended = active & in_escape & (it - escape_start >= PGD_ESCAPE_ITERS)
            stuck = ended & (f_before - f < f_thres)
            for i in np.flatnonzero(stuck):
                U[i] = U_before[i]
                reevaluate(np.array([i]))
                gn[i] = _norms(g[i : i + 1])[0]
                active[i] = False
                reasons[i] = (
                    f"no escape {PGD_ESCAPE_ITERS} steps after perturbation {n_perturb[i]}: "
                    "approximate second-order stationary point"
                )
            in_escape &= ~ended
        conv = active & (gn <= gtol) & ~in_escape
        if perturb:
            start_p = conv & (n_perturb < PGD_MAX_PERTURBATIONS)
            for i in np.flatnonzero(start_p):
                U_before[i] = U[i]
                f_before[i] = f[i]
                U[i] = U[i] + ball_perturbation(rng, dim, radius).reshape(U[i].shape)
                in_escape[i] = True
                escape_start[i] = it
                n_perturb[i] += 1
            if start_p.any():
                reevaluate(start_p)
                prev_U = None
                # a fresh first step at the perturbed points, as at the starts
                step[start_p] = initial_step(U[start_p], f[start_p], s)
            conv &= ~start_p
            for i in np.flatnonzero(conv):
                reasons[i] = f"gradient norm below {gtol:.1e} after {n_perturb[i]} perturbations (cap reached)"
        else:
            for i in np.flatnonzero(conv):
                reasons[i] = f"gradient norm {gn[i]:.2e} below tolerance {gtol:.1e}"
        active &= ~conv
        if not active.any():
            break
        idx = np.flatnonzero(active)
        # Barzilai-Borwein (BB1) step from the last displacement, when curvature is positive.
        if prev_U is not None:
            step[idx] = bb_step((U[idx] - prev_U[idx]).reshape(idx.size, -1),
                                (g[idx] - prev_g[idx]).reshape(idx.size, -1), step[idx])
        prev_U, prev_g = U.copy(), g.copy()
        gsq = gn[idx] ** 2
        trial_step = step[idx].copy()
        pending = np.arange(idx.size)
        newU = U[idx].copy()
        newf = f[idx].copy()
        newg = g[idx].copy()
        newaux = None if aux is None else aux[idx].copy()
        failed = np.zeros(idx.size, dtype=bool)
        for _ in range(ARMIJO_MAX_HALVINGS):
            sub = idx[pending]
            ok, Uc, fc, gc, auxc = ev.trials(U[sub], f[sub], g[sub], None if aux is None else aux[sub],
                                             trial_step[pending], gsq[pending])
            acc = pending[ok]
            newU[acc] = Uc
            newf[acc] = fc
            # the accepted trial's residual gives its gradient: no second residual
            newg[acc] = gc
            if newaux is not None:
                newaux[acc] = auxc
            pending = pending[~ok]
            if pending.size == 0:
                break
            trial_step[pending] *= 0.5
        else:
            failed[pending] = True
        step[idx] = trial_step
        U[idx], f[idx], g[idx] = newU, newf, newg
        if aux is not None:
            aux[idx] = newaux
        iters[idx] += 1
        for j in np.flatnonzero(failed):
            i = idx[j]
            active[i] = False
            reasons[i] = "line search failed: no decrease along -grad (round-off level)"
    for i in np.flatnonzero(active):
        reasons[i] = f"iteration limit {max_iter} reached"
        if perturb and in_escape[i]:
            U[i] = U_before[i]
    return U, iters, reasons
