r"""The searches: multistart gradient descent (plain and perturbed), L-BFGS, trust-region
Newton and root finding on :math:`\nabla G=0`, each run finished by the Newton polish
and the spectrum on the quotient, and :func:`search`, which runs them from many starts.
"""
from __future__ import annotations

import sys
import warnings
from typing import Sequence

import numpy as np
from scipy import optimize
from scipy.sparse.linalg import minres

from .._random import accepts_seed
from .._curvature import DENSE_EIGH_MAX_DIM, reduced_spectrum
from .._factored import ChainedLossGrad, factored, reduced_grad, reduced_hvp_operator, reduced_loss, uses_factored
from .._objective import LoraMLProblem, unvec_factors, vec_factors
from .._validation import LandscapeInputError
from .cost import curvature_mode
from .descent import ARMIJO_C, ARMIJO_MAX_HALVINGS, PGD_GRAD_REL, _batched_loss_grad, _descent_batch
from .polish import MINRES_MAXITER, newton_polish
from .result import DEFAULT_MAX_ITER, SEARCH_GTOL_REL, SEARCH_METHODS, SearchResult, problem_scale, random_starts

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


def _common(problem, starts, mode, spectrum_count, *, one: str | None = None):
    """Checked starts (n, T, d, k), the curvature mode and the spectrum count; ``one``
    names a method that takes a single start (more are refused, not ignored)."""
    starts = np.asarray(starts, dtype=float)
    if starts.ndim == 3:
        starts = starts[None]
    if starts.shape[1:] != (problem.T, problem.d, problem.k):
        raise LandscapeInputError(
            f"starting points: expected shape (n, {problem.T}, {problem.d}, {problem.k}), got {starts.shape}"
        )
    if one is not None and starts.shape[0] != 1:
        raise LandscapeInputError(f"{one} takes one starting point (T, d, k), got {starts.shape[0]}")
    if not np.all(np.isfinite(starts)):
        raise LandscapeInputError("starting points contain NaN or infinite entries")
    if mode not in ("auto", "dense", "hvp"):
        raise LandscapeInputError(f"unknown curvature mode {mode!r}: use auto, dense or hvp")
    mode = curvature_mode(problem, "auto").mode if mode == "auto" else mode
    count = default_spectrum_count(problem) if spectrum_count is None else spectrum_count
    return starts, mode, count


@accepts_seed()
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


@accepts_seed()
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


@accepts_seed()
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
    starts, mode, count = _common(problem, U0, mode, spectrum_count, one="lbfgs")
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


@accepts_seed()
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
    starts, mode, count = _common(problem, U0, mode, spectrum_count, one="trust_region_newton")
    rng = np.random.default_rng(0) if rng is None else rng
    gtol = SEARCH_GTOL_REL * problem_scale(problem) ** 1.5
    T, d, k = problem.T, problem.d, problem.k

    cache = {}

    def hessp(x, v):
        # trust-ncg asks for many products at the same x: keep its residual
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


@accepts_seed()
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
    mode: the same equations solved matrix-free by damped Newton with MINRES on the
    Hessian-vector product (:func:`_newton_minres_root`; either ``method``).  Unlike
    descent, root finding converges to saddles as readily as to minima.  ``U0`` is one
    starting point.
    """
    if method not in ("hybr", "lm"):
        raise LandscapeInputError(f"unknown root-finding method {method!r}: use hybr or lm")
    name = f"root-{method}"
    starts, mode, count = _common(problem, U0, mode, spectrum_count, one="gradient_root")
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


@accepts_seed()
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
              disable=None if progress else True, leave=False) as bar:
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
