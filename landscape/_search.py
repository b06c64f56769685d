r"""Critical-point search on the reduced LoRA-ML objective :math:`G` (THEORY.md section 5).

Every critical point of the joint loss :math:`\mathcal L` is :math:`(A(\mathbf U),\mathbf U)`
with :math:`\nabla G(\mathbf U)=0`, and local minima correspond one to one (section 5,
"Equivalences"), so all searches run on :math:`G` in the variables
:math:`\mathbf U\in\mathbb R^{T\times d\times k}`.

Four families of searches are provided:

* :func:`gradient_descent` -- multistart gradient descent, vectorised over the starts
  (Barzilai-Borwein step with Armijo backtracking, one batched residual per trial);
* :func:`perturbed_gradient_descent` -- the same iteration with random perturbations in
  a small ball whenever the gradient is small (Jin et al. 2017), which escapes strict
  saddles and stops at approximate second-order stationary points;
* :func:`trust_region_newton` -- a second-order method (scipy ``trust-exact`` / ``trust-ncg`` with
  the analytic Hessian-vector product of section 5) and :func:`lbfgs`;
* :func:`gradient_root` -- root finding on :math:`\nabla G=0` with the analytic
  Jacobian :math:`S=\nabla^2G` (``hybr`` or ``lm``), which also lands on saddles, as in
  the checks of THEORY.md section 6 (Thm 3.4) and section 8 (App. F.2).

Each run ends with a few Newton steps on :math:`\nabla G=0` (pseudo-inverse on the
symmetry kernel) so that the second-order classification is done at a point whose
gradient is at round-off level, then the spectrum of :math:`S` on the quotient by
:math:`O(k)` is computed with :func:`landscape.reduced_spectrum`.  Each run is
returned as a frozen :class:`SearchResult`.

Curvature is either ``"dense"`` (the Schur complement :math:`S` as a matrix) or
``"hvp"`` (Hessian-vector products only: Lanczos for the spectrum, MINRES for Newton
steps, matrix-free least squares for root finding); :func:`curvature_mode` chooses.
"""
from __future__ import annotations

import sys
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import optimize
from scipy.sparse.linalg import minres

from ._curvature import DENSE_EIGH_MAX_DIM, SpectrumSummary, reduced_spectrum
from ._factored import (
    RESYNC_EVERY,
    ChainedLossGrad,
    factored,
    reduced_grad,
    reduced_hvp_operator,
    reduced_loss,
    uses_factored,
)
from ._objective import LoraMLProblem, unvec_factors, vec_factors
from ._validation import LandscapeInputError

__all__ = [
    "SEARCH_METHODS",
    "SearchResult",
    "CurvatureMode",
    "curvature_mode",
    "problem_scale",
    "random_starts",
    "gradient_descent",
    "perturbed_gradient_descent",
    "lbfgs",
    "trust_region_newton",
    "gradient_root",
    "newton_polish",
    "search",
    "AuditCost",
    "estimate_audit_cost",
]

#: Names accepted by :func:`search` (and by ``python -m landscape audit --method``).
SEARCH_METHODS = ("gd", "pgd", "lbfgs", "trust-region", "root-hybr", "root-lm")

#: Default iteration caps.  First-order methods on a quartic with condition numbers
#: of a few hundred (THEORY.md section 8 reports kappa ~ 339) need O(kappa log(1/eps))
#: iterations, about 1e4 in the worst observed case; the second-order and root
#: finding methods converge in tens of iterations when they converge at all.
DEFAULT_MAX_ITER = {
    "gd": 5000,
    "pgd": 5000,
    "lbfgs": 3000,
    "trust-region": 200,
    "root-hybr": 400,
    "root-lm": 400,
}

#: Stopping tolerance of the searches on ``||grad G||_F``, relative to the natural
#: gradient scale ``s^{3/2}`` (``s`` from :func:`problem_scale`).  The searches only
#: have to get into the basin of quadratic convergence of the Newton polish.
SEARCH_GTOL_REL = 1e-8

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

#: Memory above which the ``auto`` mode stops building the dense Schur complement.
#: ``LoraMLProblem.schur_complement`` forms the T blocks B_t of size d^2 x dk and a
#: few temporaries of that size; beyond ~256 MiB this costs more than a second per
#: point on 2 cores, while Hessian-vector products cost O(T d^2 k) each.
AUTO_DENSE_MAX_BYTES = 256 * 2**20

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

#: MINRES iteration cap per Newton system in ``"hvp"`` mode.  Each iteration costs one
#: Hessian-vector product, O(T d^2 k); inexact Newton needs only a modest residual
#: reduction, and 500 iterations resolve eigenvalue ratios of ~1e4 (sqrt(kappa) rule).
MINRES_MAXITER = 500

#: Armijo sufficient-decrease constant and the maximal number of step halvings.
ARMIJO_C = 1e-4
ARMIJO_MAX_HALVINGS = 50


# --------------------------------------------------------------------------------------
# Results and settings
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchResult:
    r"""One run of a critical-point search on :math:`G`.

    Attributes
    ----------
    method : str
        One of :data:`SEARCH_METHODS` (``root-*`` runs done matrix-free say so in
        ``stop_reason``).
    start_index : int
        Index of the starting point in the list the search was given.
    point : ndarray, shape (T, d, k)
        The final point (after the Newton polish).
    loss : float
        :math:`G` at ``point``.
    grad_norm : float
        :math:`\|\nabla G\|_F` at ``point``.
    spectrum : SpectrumSummary or None
        Spectrum of :math:`S` on the quotient by :math:`O(k)` at ``point``
        (:func:`landscape.reduced_spectrum`); None if not requested.
    iterations : int
        Iterations of the search proper (not counting the polish).
    stop_reason : str
        Why the search stopped, in words.
    polish_steps : int
        Accepted Newton steps of the final polish.
    loss_before_polish, grad_norm_before_polish : float
        The values where the search itself stopped.
    """

    method: str
    start_index: int
    point: np.ndarray
    loss: float
    grad_norm: float
    spectrum: SpectrumSummary | None
    iterations: int
    stop_reason: str
    polish_steps: int = 0
    loss_before_polish: float = float("nan")
    grad_norm_before_polish: float = float("nan")


@dataclass(frozen=True)
class CurvatureMode:
    """How second-order information is obtained, and why.

    ``mode`` is ``"dense"`` (the Schur complement as a matrix, dense ``eigh``) or
    ``"hvp"`` (Hessian-vector products: Lanczos, MINRES, matrix-free least squares).
    """

    mode: str
    reason: str
    dense_bytes: int = field(default=0)


#: problem_scale is a pure function of the (frozen) problem and costs a pass over T d^2
#: numbers; it is asked for dozens of times per audit.
_SCALE_CACHE: "weakref.WeakKeyDictionary[LoraMLProblem, float]" = weakref.WeakKeyDictionary()


def problem_scale(problem: LoraMLProblem) -> float:
    r"""Natural scale :math:`s` of the task matrices (entries of :math:`UU^\top`).

    :math:`s = (\frac1T\sum_t\|A^\star_t-\bar A^\star\|_F^2)^{1/2}`, i.e.
    :math:`\sqrt{2G(0)/T}`.  Then :math:`U` scales like :math:`s^{1/2}`, :math:`G`
    like :math:`s^2`, :math:`\nabla G` like :math:`s^{3/2}` and :math:`S` like
    :math:`s`, which makes every tolerance in this module scale-free.  Identical
    tasks (:math:`s=0`) fall back to the size of the mean task, or 1.
    """
    cached = _SCALE_CACHE.get(problem)
    if cached is not None:
        return cached
    dev = problem.tasks - problem.mean_task[None]
    s = float(np.sqrt(np.einsum("tij,tij->", dev, dev) / problem.T))
    if not s > 0:
        m = float(np.linalg.norm(problem.mean_task))
        s = m if m > 0 else 1.0
    _SCALE_CACHE[problem] = s
    return s


def dense_schur_bytes(problem: LoraMLProblem) -> int:
    """Bytes needed to build the dense Schur complement with the core routine."""
    T, d, k = problem.T, problem.d, problem.k
    # four d^2 x dk arrays per task (two Kronecker products, their sum, the
    # concatenation) plus S and its eigendecomposition (three n x n arrays).
    return int(8 * (4 * T * d * d * d * k + 3 * problem.dim_U**2))


def available_memory_bytes() -> int:
    """Memory the process may still allocate: ``MemAvailable`` (else total RAM),
    capped by a cgroup memory limit when one is set (containers, CI runners)."""
    import os

    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
            avail = 2**34
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit():
            avail = min(avail, int(text))
    return avail


def curvature_mode(problem: LoraMLProblem, requested: str = "auto") -> CurvatureMode:
    """Choose dense or Hessian-vector-product curvature for ``problem``.

    Parameters
    ----------
    requested : {"auto", "dense", "hvp"}
        ``"dense"`` raises :class:`LandscapeInputError` when the dense Schur complement
        would not fit in the available memory; ``"auto"`` uses it only when
        ``dim_U <= DENSE_EIGH_MAX_DIM`` and it needs at most
        :data:`AUTO_DENSE_MAX_BYTES`.
    """
    need = dense_schur_bytes(problem)
    n = problem.dim_U
    if requested == "hvp":
        return CurvatureMode("hvp", "Hessian-vector products requested", need)
    if requested == "dense":
        avail = available_memory_bytes()
        if need > avail:
            raise LandscapeInputError(
                f"dense Hessian does not fit in memory: building S for (T, d, k) = "
                f"({problem.T}, {problem.d}, {problem.k}) needs {need / 2**30:.1f} GiB, "
                f"{avail / 2**30:.1f} GiB available; use Hessian-vector products (--curvature hvp)"
            )
        return CurvatureMode("dense", "dense Schur complement requested", need)
    if requested != "auto":
        raise LandscapeInputError(f"unknown curvature mode {requested!r}: use auto, dense or hvp")
    if n <= DENSE_EIGH_MAX_DIM and need <= AUTO_DENSE_MAX_BYTES:
        return CurvatureMode("dense", f"dim_U = {n} is small: dense Schur complement", need)
    return CurvatureMode(
        "hvp",
        f"large problem (dim_U = {n}, dense Schur complement would need "
        f"{need / 2**20:.0f} MiB): switched to Hessian-vector products (Lanczos, MINRES)",
        need,
    )


#: Cost model of :func:`estimate_audit_cost`, fitted to full audits of planted
#: (d, 3, 1) instances with 10 starts on 2 shared cores (load 3-6): d = 500, 1000,
#: 2000 took 2.3, 6.7 and 35 s.  Per start and per stored task entry (T d^2 k) the
#: searches, polish, spectra and classification cost COST_PER_START_ENTRY seconds
#: (about 160 products with the task matrices per start, memory bound); the model-M1
#: check of the audit runs T(T-1)/2 dense eigvalsh, COST_PER_EIG_FLOP seconds per d^3;
#: the dense-curvature path (small problems) costs COST_PER_DENSE_FLOP per flop of the
#: ~(POLISH_MAX_STEPS + 2) dense eigendecompositions of S per start (9 n^3 flops each);
#: COST_FIXED covers imports, report and plots.
COST_PER_START_ENTRY = 2.6e-7
COST_PER_EIG_FLOP = 1.0e-10
#: For k >= 2 the O(k) orbit makes S singular at every critical point, and the MINRES
#: solves of the polish and of the matrix-free root finder run to their cap: about
#: KERNEL_SOLVES_PER_START solves of MINRES_MAXITER Hessian-vector products per start,
#: each costing COST_PER_HVP_ENTRY per stored entry T d^2 k plus COST_PER_HVP_CALL of
#: interpreter overhead (measured: (200, 3, 2) x 20 starts, 32 s).
KERNEL_SOLVES_PER_START = 10
COST_PER_HVP_ENTRY = 6e-10
COST_PER_HVP_CALL = 1e-4
COST_PER_DENSE_FLOP = 1.0e-9
COST_FIXED = 2.0

#: The estimate is multiplied by this before it is compared with a limit: the fit's
#: worst under-prediction was 1.3x, and a busy machine is 1.5x slower again.
COST_SAFETY = 2.0

#: Resident memory besides the arrays: interpreter, numpy/scipy/matplotlib (measured
#: ~150 MiB) with margin.
MEMORY_BASE_BYTES = 256 * 2**20

#: Copies of the T d^2 task entries alive at the peak (input, the problem's stack,
#: its deviations and their symmetric part, the mean, one d x d buffer per dense check
#: and eigvalsh workspace); measured peak RSS of the d = 2000 audit: 0.94 GiB.
MEMORY_TASK_COPIES = 8


@dataclass(frozen=True)
class AuditCost:
    """Up-front estimate of an audit's wall time and peak memory (safety factor included)."""

    seconds: float
    bytes: int
    curvature: str
    detail: str

    def describe(self) -> str:
        return (f"estimated {self.seconds:.0f} s and {self.bytes / 2**30:.2f} GiB "
                f"({self.curvature} curvature; {self.detail}; safety factor {COST_SAFETY:g} included)")


def estimate_audit_cost(d: int, T: int, k: int, starts: int, *, curvature: str = "auto") -> AuditCost:
    r"""Estimate the wall time and peak memory of ``landscape.audit`` on ``(d, T, k)``
    with ``starts`` starts, from the per-operation costs above times :data:`COST_SAFETY`.

    Time: ``starts * T d^2 k`` entry-products (searches, polish, Lanczos spectra,
    classification), ``T(T-1)/2`` dense eigvalsh of :math:`d\times d` differences
    (model-M1 check), and in dense-curvature mode the eigendecompositions of the
    :math:`n\times n` Schur complement (:math:`n=Tdk`).  Memory: the task copies, the
    batched starts, and the dense Schur complement when it is built.
    """
    d, T, k, starts = int(d), int(T), int(k), max(int(starts), 1)
    n = T * d * k
    entries = T * d * d * k
    dense_bytes = int(8 * (4 * T * d * d * d * k + 3 * n * n))
    dense = curvature == "dense" or (curvature == "auto" and n <= DENSE_EIGH_MAX_DIM
                                      and dense_bytes <= AUTO_DENSE_MAX_BYTES)
    t_search = COST_PER_START_ENTRY * starts * entries
    if k >= 2 and not dense:
        t_search += starts * KERNEL_SOLVES_PER_START * MINRES_MAXITER * (COST_PER_HVP_ENTRY * entries
                                                                         + COST_PER_HVP_CALL)
    t_eig = COST_PER_EIG_FLOP * (T * (T - 1) / 2) * d**3
    t_dense = COST_PER_DENSE_FLOP * starts * (POLISH_MAX_STEPS + 2) * 9.0 * n**3 if dense else 0.0
    seconds = COST_SAFETY * (COST_FIXED + t_search + t_eig + t_dense)
    batch = 8 * starts * T * d * k * 16  # U, gradients, BB history, trial points of a batch
    residual_batch = 0 if d >= _factored_min_d() else 8 * 3 * starts * T * d * d
    mem = MEMORY_BASE_BYTES + 8 * MEMORY_TASK_COPIES * T * d * d + batch + residual_batch
    if dense:
        mem += dense_bytes
    detail = (f"searches {t_search:.1f} s, dense checks {t_eig:.1f} s"
              + (f", dense Schur complements {t_dense:.1f} s" if dense else ""))
    return AuditCost(float(seconds), int(mem), "dense" if dense else "hvp", detail)


def _factored_min_d() -> int:
    from . import _factored

    return _factored.FACTORED_MIN_D


def random_starts(problem: LoraMLProblem, rng: np.random.Generator, n: int) -> np.ndarray:
    r"""``n`` Gaussian starting points, shape ``(n, T, d, k)``.

    Entries are :math:`\mathcal N(0,\sigma^2)` with :math:`\sigma^2 = c\,s/(d\sqrt k)`,
    so that :math:`\|U_tU_t^\top\|_F\approx c\,s`, matching the size of the task
    deviations; the factor :math:`c` is log-uniform in :math:`[1/16, 4]` per start so
    that both the neighbourhood of :math:`\mathbf U=0` (where saddles of low rank sit)
    and the far field are explored.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    T, d, k = problem.T, problem.d, problem.k
    s = problem_scale(problem)
    c = np.exp(rng.uniform(np.log(1 / 16), np.log(4.0), size=n))
    sigma = np.sqrt(c * s / (d * np.sqrt(k)))
    return sigma[:, None, None, None] * rng.standard_normal((n, T, d, k))


# --------------------------------------------------------------------------------------
# Batched evaluation of G and its gradient over many starts
# --------------------------------------------------------------------------------------
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


def _descent_batch(problem, U0, *, max_iter, gtol, rng=None, perturb=False):
    """Gradient descent on a batch of starts; optional perturbations (PGD).

    Returns final points, iterations and stopping reasons per start.
    """
    ev = _FactoredBatch(problem) if uses_factored(problem) else _DenseBatch(problem)
    U = np.array(U0, dtype=float, copy=True)
    n = U.shape[0]
    f, g, aux = ev.evaluate(U)
    s = problem_scale(problem)
    # First trial step: inverse of a cheap upper estimate of the Hessian norm,
    # ||S|| <~ 6 max_t ||U_t||^2 + 2 max_t ||R_t|| (eq. (34) blocks); backtracking fixes it.
    u2 = np.max(np.einsum("stij,stij->st", U, U), axis=1)
    step = 1.0 / (6.0 * u2 + 2.0 * np.sqrt(2.0 * f) + s)
    prev_U, prev_g = None, None
    active = np.ones(n, dtype=bool)
    iters = np.zeros(n, dtype=int)
    reasons = [""] * n
    # PGD state
    g_thres = PGD_GRAD_REL * s**1.5
    radius = PGD_RADIUS_REL * np.sqrt(s)
    f_thres = PGD_DECREASE_REL * s**2
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
                xi = rng.standard_normal(dim)
                xi *= radius * rng.uniform() ** (1.0 / dim) / np.linalg.norm(xi)
                U[i] = U[i] + xi.reshape(U[i].shape)
                in_escape[i] = True
                escape_start[i] = it
                n_perturb[i] += 1
            if start_p.any():
                reevaluate(start_p)
                prev_U = None
                step[start_p] = 1.0 / (6.0 * np.max(np.einsum("stij,stij->st", U[start_p], U[start_p]), axis=1) + s)
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
            sv = (U[idx] - prev_U[idx]).reshape(idx.size, -1)
            yv = (g[idx] - prev_g[idx]).reshape(idx.size, -1)
            sy = np.einsum("si,si->s", sv, yv)
            ss = np.einsum("si,si->s", sv, sv)
            bb = np.where(sy > 0, ss / np.where(sy > 0, sy, 1.0), 2.0 * step[idx])
            step[idx] = np.clip(bb, 1e-3 * step[idx], 1e3 * step[idx])
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


# --------------------------------------------------------------------------------------
# Newton polish and the final result
# --------------------------------------------------------------------------------------
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
    s = problem_scale(problem)
    gtol = POLISH_GTOL_REL * s**1.5 if gtol is None else gtol
    g = reduced_grad(problem, U)
    gn = float(np.linalg.norm(g))
    accepted = 0
    for _ in range(max_steps):
        if gn <= gtol:
            break
        gv = vec_factors(g)
        if mode == "dense":
            lam, V = np.linalg.eigh(problem.schur_complement(U))
            rho = max(float(np.max(np.abs(lam))), np.finfo(float).tiny)
            keep = np.abs(lam) > PINV_RTOL * rho
            coef = V.T @ gv
            # Newton (pseudo-inverse) first, then Levenberg-Marquardt steps
            # -(S^2 + mu I)^{-1} S g with growing mu: near a continuum of critical
            # points tiny eigenvalues make the Newton step overshoot.
            steps = [-(V[:, keep] @ (coef[keep] / lam[keep]))]
            steps += [-(V @ (coef * lam / (lam**2 + mu * rho**2))) for mu in LM_DAMPINGS]
        else:
            op = reduced_hvp_operator(problem, U)
            newton, _ = minres(op, -gv, rtol=1e-12, maxiter=MINRES_MAXITER)
            # backtracking along the inexact Newton direction
            steps = [newton * 0.5**j for j in range(6)]
        for step in steps:
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


def _finish(problem, method, index, U, iterations, reason, *, mode, spectrum, spectrum_count, rng, polish):
    U = problem.check_factors(U)
    f0 = reduced_loss(problem, U)
    g0 = float(np.linalg.norm(reduced_grad(problem, U)))
    steps = 0
    if polish:
        U, steps = newton_polish(problem, U, mode=mode)
    spec = None
    if spectrum:
        dense_max = max(problem.dim_U, DENSE_EIGH_MAX_DIM) if mode == "dense" else 0
        spec = reduced_spectrum(problem, U, dense_max_dim=dense_max, count=spectrum_count, rng=rng)
    return SearchResult(
        method=method,
        start_index=int(index),
        point=U,
        loss=reduced_loss(problem, U),
        grad_norm=float(np.linalg.norm(reduced_grad(problem, U))),
        spectrum=spec,
        iterations=int(iterations),
        stop_reason=reason,
        polish_steps=int(steps),
        loss_before_polish=float(f0),
        grad_norm_before_polish=g0,
    )


def default_spectrum_count(problem: LoraMLProblem) -> int:
    """Eigenvalues to compute in Lanczos mode: enough to see the :math:`k^2` zero
    eigenvalues that the T = 2 :math:`O(k,k)` family adds on the :math:`O(k)` quotient
    (THEORY.md section 4), plus three more."""
    extra = problem.k**2 if problem.T == 2 else 0
    return min(problem.dim_U, extra + 3)


def _common(problem, starts, mode, spectrum_count):
    starts = np.asarray(starts, dtype=float)
    if starts.ndim == 3:
        starts = starts[None]
    if starts.shape[1:] != (problem.T, problem.d, problem.k):
        raise LandscapeInputError(
            f"starting points: expected shape (n, {problem.T}, {problem.d}, {problem.k}), got {starts.shape}"
        )
    if not np.all(np.isfinite(starts)):
        raise LandscapeInputError("starting points contain NaN or infinite entries")
    mode = curvature_mode(problem, "auto").mode if mode == "auto" else mode
    count = default_spectrum_count(problem) if spectrum_count is None else spectrum_count
    return starts, mode, count


# --------------------------------------------------------------------------------------
# The searches
# --------------------------------------------------------------------------------------
def gradient_descent(
    problem: LoraMLProblem,
    starts: np.ndarray,
    *,
    max_iter: int = DEFAULT_MAX_ITER["gd"],
    gtol: float | None = None,
    mode: str = "auto",
    spectrum: bool = True,
    spectrum_count: int | None = None,
    polish: bool = True,
    rng: np.random.Generator | None = None,
    start_offset: int = 0,
) -> list[SearchResult]:
    """Multistart gradient descent on :math:`G`, vectorised over the starts.

    Each iteration evaluates all active starts in one batched residual; the step is
    Barzilai-Borwein with Armijo backtracking.  ``starts`` has shape
    ``(n, T, d, k)``.
    """
    starts, mode, count = _common(problem, starts, mode, spectrum_count)
    rng = np.random.default_rng(0) if rng is None else rng
    gtol = SEARCH_GTOL_REL * problem_scale(problem) ** 1.5 if gtol is None else gtol
    U, iters, reasons = _descent_batch(problem, starts, max_iter=max_iter, gtol=gtol)
    return [
        _finish(problem, "gd", start_offset + i, U[i], iters[i], reasons[i], mode=mode,
                spectrum=spectrum, spectrum_count=count, rng=rng, polish=polish)
        for i in range(len(U))
    ]


def perturbed_gradient_descent(
    problem: LoraMLProblem,
    starts: np.ndarray,
    *,
    rng: np.random.Generator,
    max_iter: int = DEFAULT_MAX_ITER["pgd"],
    mode: str = "auto",
    spectrum: bool = True,
    spectrum_count: int | None = None,
    polish: bool = True,
    start_offset: int = 0,
) -> list[SearchResult]:
    """Perturbed gradient descent (Jin et al. 2017), vectorised over the starts.

    Whenever the gradient is below ``PGD_GRAD_REL * s^{3/2}`` the point is perturbed
    uniformly in a ball of radius ``PGD_RADIUS_REL * s^{1/2}``; if descent does not
    then lower :math:`G` by ``PGD_DECREASE_REL * s^2`` within ``PGD_ESCAPE_ITERS``
    steps, the pre-perturbation point is returned as an approximate second-order
    stationary point.  Escaping strict saddles this way is what Thm 3.4 (THEORY.md
    section 6) relies on for :math:`T=2`.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    starts, mode, count = _common(problem, starts, mode, spectrum_count)
    gtol = PGD_GRAD_REL * problem_scale(problem) ** 1.5
    U, iters, reasons = _descent_batch(problem, starts, max_iter=max_iter, gtol=gtol, rng=rng, perturb=True)
    return [
        _finish(problem, "pgd", start_offset + i, U[i], iters[i], reasons[i], mode=mode,
                spectrum=spectrum, spectrum_count=count, rng=rng, polish=polish)
        for i in range(len(U))
    ]


def _flat_fg(problem):
    if uses_factored(problem):
        return ChainedLossGrad(problem)
    T, d, k = problem.T, problem.d, problem.k
    tasks = problem.tasks

    def fg(x):
        f, g = _batched_loss_grad(tasks, unvec_factors(x, T, d, k)[None])
        return float(f[0]), vec_factors(g[0])

    return fg


def lbfgs(
    problem: LoraMLProblem,
    U0: np.ndarray,
    *,
    max_iter: int = DEFAULT_MAX_ITER["lbfgs"],
    mode: str = "auto",
    spectrum: bool = True,
    spectrum_count: int | None = None,
    polish: bool = True,
    rng: np.random.Generator | None = None,
    start_index: int = 0,
) -> SearchResult:
    """L-BFGS (scipy ``L-BFGS-B`` without bounds) on :math:`G` from one start."""
    starts, mode, count = _common(problem, U0, mode, spectrum_count)
    rng = np.random.default_rng(0) if rng is None else rng
    gtol = SEARCH_GTOL_REL * problem_scale(problem) ** 1.5
    res = optimize.minimize(
        _flat_fg(problem),
        vec_factors(starts[0]),
        jac=True,
        method="L-BFGS-B",
        # ftol=0: the relative-decrease test would stop near G = 0 far too early.
        options={"maxiter": max_iter, "gtol": gtol / np.sqrt(problem.dim_U), "ftol": 0.0, "maxcor": 20},
    )
    reason = f"L-BFGS-B: {res.message}"
    U = unvec_factors(res.x, problem.T, problem.d, problem.k)
    return _finish(problem, "lbfgs", start_index, U, res.nit, reason, mode=mode, spectrum=spectrum,
                   spectrum_count=count, rng=rng, polish=polish)


def trust_region_newton(
    problem: LoraMLProblem,
    U0: np.ndarray,
    *,
    max_iter: int = DEFAULT_MAX_ITER["trust-region"],
    mode: str = "auto",
    spectrum: bool = True,
    spectrum_count: int | None = None,
    polish: bool = True,
    rng: np.random.Generator | None = None,
    start_index: int = 0,
) -> SearchResult:
    r"""Trust-region Newton with the analytic Hessian :math:`S` of THEORY.md section 5:
    scipy ``trust-exact`` on the dense :math:`S` (dense curvature mode), else
    ``trust-ncg`` on the Hessian-vector product :math:`S v` (large problems).

    Both subproblem solvers follow negative curvature to the trust-region boundary, so
    the method does not stop at strict saddles, and both are deterministic: the same
    start gives the same bytes (scipy's ``trust-krylov``, used before, is not).
    """
    starts, mode, count = _common(problem, U0, mode, spectrum_count)
    rng = np.random.default_rng(0) if rng is None else rng
    gtol = SEARCH_GTOL_REL * problem_scale(problem) ** 1.5
    T, d, k = problem.T, problem.d, problem.k

    cache = {}

    def hessp(x, v):
        # trust-krylov asks for many products at the same x: keep its residual
        key = x.tobytes()
        if cache.get("key") != key:
            U = np.array(unvec_factors(x, T, d, k))  # a copy: x may be reused by the optimiser
            if uses_factored(problem):
                cache.update(key=key, U=U, R=None)
            else:
                cache.update(key=key, U=U, R=problem.reduced_residuals(U))
        V = unvec_factors(v, T, d, k)
        if cache["R"] is None:
            return vec_factors(factored(problem).hvp(cache["U"], V))
        return vec_factors(problem._reduced_hvp(cache["R"], cache["U"], V))

    def hess(x):
        return problem.schur_complement(unvec_factors(x, T, d, k))

    fg = _flat_fg(problem)
    # trust-exact (dense S, More-Sorensen subproblem incl. the hard case) or trust-ncg
    # (Steihaug-Toint CG on S v): both step along negative curvature to the trust-region
    # boundary, and both are bitwise reproducible. trust-krylov (trlib) is not: on
    # identical input it can stop at different points, which broke "same seed, same bytes".
    dense = mode == "dense" and not uses_factored(problem)
    method = "trust-exact" if dense else "trust-ncg"
    kw = {"hess": hess} if dense else {"hessp": hessp}
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            # the subproblem solvers may warn on exactly singular directions
            warnings.simplefilter("ignore", RuntimeWarning)
            res = optimize.minimize(
                fg, vec_factors(starts[0]), jac=True, method=method,
                options={"maxiter": max_iter, "gtol": gtol}, **kw,
            )
        x, nit, reason = res.x, res.nit, f"{method}: {res.message}"
    except (ValueError, np.linalg.LinAlgError, ArithmeticError) as exc:  # subproblem breakdown
        x, nit, reason = vec_factors(starts[0]), 0, f"{method} failed: {exc}"
    if not np.all(np.isfinite(x)):
        x, reason = vec_factors(starts[0]), reason + " (non-finite iterate; start returned)"
    U = unvec_factors(x, T, d, k)
    return _finish(problem, "trust-region", start_index, U, nit, reason, mode=mode, spectrum=spectrum,
                   spectrum_count=count, rng=rng, polish=polish)


def gradient_root(
    problem: LoraMLProblem,
    U0: np.ndarray,
    *,
    method: str = "hybr",
    max_iter: int | None = None,
    mode: str = "auto",
    spectrum: bool = True,
    spectrum_count: int | None = None,
    polish: bool = True,
    rng: np.random.Generator | None = None,
    start_index: int = 0,
) -> SearchResult:
    r"""Root finding on :math:`\nabla G(\mathbf U) = 0` with Jacobian :math:`S`.

    Dense mode: ``scipy.optimize.root`` (``hybr`` = Powell hybrid, ``lm`` =
    Levenberg-Marquardt) with the analytic Schur complement as Jacobian.  ``hvp``
    mode: the same equations solved matrix-free by ``scipy.optimize.least_squares``
    (``trf`` with LSMR on the Hessian-vector-product operator; :math:`S` is symmetric
    so it is its own transpose).  Unlike descent, root finding converges to saddles
    as readily as to minima.
    """
    if method not in ("hybr", "lm"):
        raise LandscapeInputError(f"unknown root-finding method {method!r}: use hybr or lm")
    name = f"root-{method}"
    starts, mode, count = _common(problem, U0, mode, spectrum_count)
    rng = np.random.default_rng(0) if rng is None else rng
    max_iter = DEFAULT_MAX_ITER[name] if max_iter is None else max_iter
    T, d, k = problem.T, problem.d, problem.k
    s = problem_scale(problem)
    fg = _flat_fg(problem)
    x0 = vec_factors(starts[0])

    def grad(x):
        if not np.all(np.isfinite(x)):
            raise _Diverged
        return fg(x)[1]

    def jac(x):
        if not np.all(np.isfinite(x)):
            raise _Diverged
        return problem.schur_complement(unvec_factors(x, T, d, k))

    try:
        with np.errstate(over="ignore", invalid="ignore"):
            if mode == "dense":
                # xtol: relative step size at which MINPACK stops; round-off level.
                opts = {"xtol": 1e-13, "maxfev": max_iter * (problem.dim_U + 1)} if method == "hybr" else {
                    "xtol": 1e-13, "ftol": 1e-15, "maxiter": max_iter}
                res = optimize.root(grad, x0, jac=jac, method=method, options=opts)
                x, nit = res.x, int(getattr(res, "nfev", 0))
                reason = f"scipy.optimize.root({method}): {res.message}"
            else:
                x, nit, msg = _newton_minres_root(problem, x0, max_iter=max_iter, gtol=SEARCH_GTOL_REL * s**1.5)
                reason = (f"matrix-free damped Newton-MINRES on grad G = 0 ({method} needs a dense "
                          f"Jacobian, which this problem does not build): {msg}")
    except _Diverged:
        x, nit, reason = x0, 0, f"root finding ({method}) diverged to non-finite values; start returned"
    U = unvec_factors(x, T, d, k)
    if not np.all(np.isfinite(U)):
        U, reason = starts[0], reason + " (diverged; start returned)"
    return _finish(problem, name, start_index, U, nit, reason, mode=mode, spectrum=spectrum,
                   spectrum_count=count, rng=rng, polish=polish)


class _Diverged(ArithmeticError):
    """A solver produced non-finite iterates."""


def _newton_minres_root(problem, x0, *, max_iter, gtol):
    r"""Damped inexact Newton on :math:`\nabla G=0` with MINRES on :math:`S`.

    The Newton direction :math:`\delta=-S^{+}g` is a descent direction of the merit
    function :math:`\tfrac12\|g\|^2` (its slope is :math:`-\|g\|^2`), whatever the
    inertia of :math:`S`, so backtracking on :math:`\|g\|` converges to critical points
    of any type.  MINRES handles the indefinite, symmetry-singular :math:`S`; its
    tolerance follows Eisenstat-Walker (forcing term :math:`\sqrt{\|g\|/s^{3/2}}`).
    """
    T, d, k = problem.T, problem.d, problem.k
    s = problem_scale(problem)
    x = np.array(x0, dtype=float)
    def grad_flat(x):
        return vec_factors(reduced_grad(problem, unvec_factors(x, T, d, k)))

    g = grad_flat(x)
    gn = float(np.linalg.norm(g))
    for it in range(max_iter):
        if gn <= gtol:
            return x, it, f"gradient norm {gn:.2e} below tolerance {gtol:.1e}"
        op = reduced_hvp_operator(problem, unvec_factors(x, T, d, k))
        forcing = min(0.5, np.sqrt(gn / s**1.5))
        step, _ = minres(op, -g, rtol=forcing, maxiter=MINRES_MAXITER)
        alpha = 1.0
        for _ in range(ARMIJO_MAX_HALVINGS):
            x_new = x + alpha * step
            g_new = grad_flat(x_new)
            gn_new = float(np.linalg.norm(g_new))
            if gn_new <= (1.0 - ARMIJO_C * alpha) * gn:
                break
            alpha *= 0.5
        else:
            return x, it, "no decrease of ||grad G|| along the Newton direction"
        x, g, gn = x_new, g_new, gn_new
    return x, max_iter, f"iteration limit {max_iter} reached"


def _expand_methods(methods) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    out = []
    for m in methods:
        if m == "all":
            out.extend(SEARCH_METHODS)
        elif m in SEARCH_METHODS:
            out.append(m)
        else:
            raise LandscapeInputError(f"unknown search method {m!r}: choose from {', '.join(SEARCH_METHODS + ('all',))}")
    return tuple(dict.fromkeys(out))


def search(
    problem: LoraMLProblem,
    *,
    rng: np.random.Generator,
    n_starts: int = 20,
    methods: Sequence[str] | str = "all",
    starts: np.ndarray | None = None,
    mode: str = "auto",
    max_iter: int | None = None,
    spectrum: bool = True,
    progress: bool = False,
) -> list[SearchResult]:
    r"""Multistart critical-point search on :math:`G`.

    ``n_starts`` random starts (:func:`random_starts`) are dealt round-robin to the
    chosen ``methods`` (start ``i`` uses ``methods[i % len(methods)]``); explicit
    ``starts`` (shape ``(m, T, d, k)``) are run with every method and get indices
    ``n_starts, n_starts + 1, ...`` in the order method-major.  The batched descent
    methods process all their starts at once.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the starts, PGD perturbations and Lanczos start vectors.
    methods : str or sequence of str
        Names from :data:`SEARCH_METHODS`, or ``"all"``.
    mode : {"auto", "dense", "hvp"}
        Curvature mode (:func:`curvature_mode`).
    progress : bool
        Show a tqdm progress bar over the starts on stderr.

    Returns
    -------
    list of SearchResult, sorted by ``start_index``.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    methods = _expand_methods(methods)
    mode = curvature_mode(problem, mode).mode
    rand = random_starts(problem, rng, int(n_starts))
    jobs: dict[str, list[tuple[int, np.ndarray]]] = {m: [] for m in methods}
    for i in range(len(rand)):
        jobs[methods[i % len(methods)]].append((i, rand[i]))
    if starts is not None:
        extra = np.asarray(starts, dtype=float)
        extra = extra[None] if extra.ndim == 3 else extra
        j = len(rand)
        for m in methods:
            for U0 in extra:
                jobs[m].append((j, U0))
                j += 1
    total = sum(len(v) for v in jobs.values())
    from tqdm.auto import tqdm

    results: list[SearchResult] = []
    count = default_spectrum_count(problem)
    with tqdm(total=total, desc="critical-point search", unit="start", file=sys.stderr,
              disable=not progress, leave=False) as bar:
        for m in methods:
            todo = jobs[m]
            if not todo:
                continue
            idx = np.array([i for i, _ in todo])
            U0s = np.stack([u for _, u in todo])
            kw = dict(mode=mode, spectrum=spectrum, spectrum_count=count)
            if m in ("gd", "pgd"):
                it = DEFAULT_MAX_ITER[m] if max_iter is None else max_iter
                if m == "gd":
                    out = gradient_descent(problem, U0s, max_iter=it, rng=rng, **kw)
                else:
                    out = perturbed_gradient_descent(problem, U0s, max_iter=it, rng=rng, **kw)
                for r, i in zip(out, idx):
                    results.append(_reindex(r, i))
                bar.update(len(todo))
                continue
            for i, U0 in todo:
                it = DEFAULT_MAX_ITER[m] if max_iter is None else max_iter
                if m == "lbfgs":
                    r = lbfgs(problem, U0, max_iter=it, rng=rng, start_index=i, **kw)
                elif m == "trust-region":
                    r = trust_region_newton(problem, U0, max_iter=it, rng=rng, start_index=i, **kw)
                else:
                    r = gradient_root(problem, U0, method=m.split("-")[1], max_iter=it, rng=rng,
                                      start_index=i, **kw)
                results.append(r)
                bar.update(1)
    return sorted(results, key=lambda r: r.start_index)


def _reindex(r: SearchResult, i: int) -> SearchResult:
    from dataclasses import replace

    return replace(r, start_index=int(i))
