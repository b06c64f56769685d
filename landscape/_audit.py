r"""Audit of given task matrices: what does the LoRA-ML landscape look like?

:func:`audit` runs the critical-point searches of :mod:`landscape._search` from many
starts, classifies every end point modulo the orthogonal symmetry
(:mod:`landscape._classify`), identifies repeated points, asks the certificate module
about every spurious candidate, compares the findings with the theorem of THEORY.md
that applies to :math:`(T, d, k)` and writes ``report.json``, ``report.md`` and PNG
plots.  ``python -m landscape audit FILE --rank k`` is a thin wrapper around it.

The JSON schema is documented in ``landscape/REPORT_SCHEMA.md``
(:data:`REPORT_SCHEMA_VERSION`).
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._classify import (
    DEGENERATE,
    GLOBAL_MINIMUM,
    KINDS,
    NOT_CRITICAL,
    SPURIOUS_CANDIDATE,
    STRICT_SADDLE,
    CriticalClass,
    classify_result,
    deduplicate,
)
from ._io import TaskInput, audit_problem, load_starts, load_tasks
from ._objective import LoraMLProblem
from ._search import (SearchResult, _expand_methods, available_memory_bytes, curvature_mode, estimate_audit_cost,
                      problem_scale, search)
from ._validation import LandscapeInputError, as_task_stack

__all__ = ["AuditReport", "audit", "theory_assessment", "REPORT_SCHEMA_VERSION", "DEFAULT_STARTS"]

REPORT_SCHEMA_VERSION = "1.0"

#: Default number of random starts: enough to hit every basin of more than ~5% mass
#: with probability > 0.99 (0.95^100 < 0.01) at a few seconds per audit for d ~ 10.
DEFAULT_STARTS = 100

#: Plots of spurious-candidate spectra are drawn for at most this many classes.
MAX_SPECTRUM_PLOTS = 6

#: Singular values of a column subset below this fraction of the largest count as
#: dependent in the R3.1 check (Gaussian factors are far from this, ~1e-2 or more).
R31_RTOL = 1e-10

#: ``A_hat`` is written to report.json only up to this many entries (d <= 100);
#: beyond, it is derivable from ``point`` as A(U) = mean_t(A*_t - U_t U_t^T) and would
#: dominate the file size (one d x d matrix per class).
MAX_JSON_MATRIX_ENTRIES = 10_000

#: Pairwise task differences count as symmetric below this relative asymmetry
#: (round-off of a difference of O(1) matrices is ~1e-16; text inputs keep ~1e-12).
M1_SYMMETRY_RTOL = 1e-9

#: Random column subsets examined by the R3.1 check when the truth is known.
R31_SUBSETS = 64


@dataclass(frozen=True, eq=False)
class AuditReport:
    """Result of :func:`audit`.

    Attributes
    ----------
    data : dict
        The machine-readable report (what ``report.json`` holds).
    markdown : str
        The human summary (what ``report.md`` holds).
    files : tuple of str
        Files written (empty when ``out`` was None).
    problem : LoraMLProblem
    results : tuple of SearchResult
    classifications : tuple of Classification
    classes : tuple of CriticalClass
    certificates : dict
        Class id -> certificate object (or None) for spurious candidates.
    """

    data: dict
    markdown: str
    files: tuple
    problem: LoraMLProblem
    results: tuple
    classifications: tuple
    classes: tuple
    certificates: dict


# --------------------------------------------------------------------------------------
# Theory
# --------------------------------------------------------------------------------------
def _r31_check(task_input: TaskInput, k: int, rng: np.random.Generator) -> dict:
    """Task diversity R3.1 (THEORY.md section 2): every ``min(d, Tk)`` columns of
    :math:`[U^\\star_1,\\dots,U^\\star_T]` independent.  Checked on the full set and
    random subsets when :math:`U^\\star` is known; otherwise the necessary condition
    :math:`\\mathrm{rank}(A^\\star_s-A^\\star_t)=\\min(2k,d)` on pairs (model M1)."""
    T, d = task_input.T, task_input.d
    if task_input.U_star is not None:
        cols = np.concatenate(list(task_input.U_star), axis=1)
        size = min(d, T * k)
        subsets = [np.arange(cols.shape[1])[:size]]
        subsets += [rng.choice(cols.shape[1], size=size, replace=False) for _ in range(R31_SUBSETS)]
        worst = float("inf")
        for sub in subsets:
            sv = np.linalg.svd(cols[:, sub], compute_uv=False)
            worst = min(worst, float(sv[-1] / sv[0]) if sv[0] > 0 else 0.0)
        return {"checked": "columns of U_star", "subsets": len(subsets),
                "min_relative_singular_value": worst, "holds": bool(worst > R31_RTOL)}
    ranks = []
    for s in range(T):
        for t in range(s + 1, T):
            sv = np.linalg.svd(task_input.tasks[s] - task_input.tasks[t], compute_uv=False)
            ranks.append(int(np.sum(sv > R31_RTOL * max(sv[0], np.finfo(float).tiny))))
    target = min(2 * k, d)
    return {"checked": "ranks of pairwise task differences (necessary under model M1)",
            "pair_ranks": ranks, "expected": target, "holds": bool(all(r == target for r in ranks))}


def _model_m1_check(tasks: np.ndarray, k: int) -> dict:
    r"""Necessary condition for tasks of model M1 (THEORY.md section 2) with rank-k
    adapters: every difference :math:`A^\star_s-A^\star_t=W_s-W_t` is symmetric with at
    most :math:`k` positive and :math:`k` negative eigenvalues.  Only then is
    :math:`\min G = 0` guaranteed, which the classification of global minima uses."""
    T = tasks.shape[0]
    scale = max(float(np.max(np.abs(tasks))), np.finfo(float).tiny)
    worst_asym, worst_pos, worst_neg = 0.0, 0, 0
    for s in range(T):
        for t in range(s + 1, T):
            D = tasks[s] - tasks[t]
            worst_asym = max(worst_asym, float(np.max(np.abs(D - D.T))) / scale)
            lam = np.linalg.eigvalsh(0.5 * (D + D.T))
            tol = R31_RTOL * max(float(np.max(np.abs(lam))), np.finfo(float).tiny) if lam.size else 0.0
            worst_pos = max(worst_pos, int(np.sum(lam > tol)))
            worst_neg = max(worst_neg, int(np.sum(lam < -tol)))
    compatible = worst_asym <= M1_SYMMETRY_RTOL and worst_pos <= k and worst_neg <= k
    return {"max_relative_asymmetry_of_differences": worst_asym, "max_positive_eigenvalues": worst_pos,
            "max_negative_eigenvalues": worst_neg, "compatible": bool(compatible)}


def theory_assessment(T: int, d: int, k: int, summary: dict) -> dict:
    """Which statement of THEORY.md applies to ``(T, d, k)`` and whether ``summary``
    (the audit summary) agrees with it.

    Returns a dict with ``regime``, ``theorem``, ``prediction``, ``agrees`` (True,
    False or None when the findings cannot confirm or refute) and ``explanation``.
    """
    n_spur = summary["spurious_candidates"]
    n_glob_A = summary["distinct_global_A"]
    rec = summary["A_star_recovered"]
    found_global = summary["global_minimum_found"]
    notes = []
    if T >= 3 and d >= 3 * k:
        theorem = "Thm 3.3 (uniqueness of the global minimum, T >= 3, d >= 3k) and App. F.2"
        prediction = ("every global minimum has A = A* and U_t = U*_t O_t (under R3.1); "
                      "spurious local minima may exist (App. F.2)")
        if not found_global:
            agrees, notes = None, ["no global minimum was found, so uniqueness cannot be checked"]
        else:
            agrees = n_glob_A == 1 and rec is not False
            notes.append(f"{n_glob_A} distinct A among the global minima found"
                         + ("" if rec is None else f"; A* recovered: {rec}"))
        if n_spur:
            notes.append(f"{n_spur} spurious-minimum candidate class(es): allowed by App. F.2")
        regime = "T>=3, d>=3k"
    elif T >= 3:
        theorem = "none (Thm 3.3 needs d >= 3k; THEORY.md section 4 shows it fails at d = 2k)"
        prediction = "no uniqueness guarantee: global minima with A != A* may exist"
        agrees = True
        notes.append(f"{n_glob_A} distinct A among the global minima found"
                     + ("" if rec is None else f"; some global minimum has A != A*: {summary['global_minimum_with_A_ne_A_star']}"))
        regime = "T>=3, d<3k"
    elif d >= 2 * k:
        theorem = "Thm 3.4 (T = 2, d >= 2k: every second-order stationary point is a global minimum) and App. F.1"
        prediction = ("no spurious local minima: every critical point with G > 0 is a strict saddle; "
                      "the global minima form an O(k,k) continuum with A != A* in general")
        agrees = n_spur == 0
        notes.append(f"{n_spur} spurious-minimum candidate class(es)")
        notes.append(f"continuum of global minima detected: {summary['continuum_of_global_minima']}")
        if summary["counts"].get(DEGENERATE, 0):
            notes.append(f"{summary['counts'][DEGENERATE]} degenerate point(s) could not be decided")
        regime = "T=2, d>=2k"
    else:
        theorem = "none (Thm 3.4 needs d >= 2k)"
        prediction = "no statement of THEORY.md covers T = 2 with d < 2k"
        agrees = None
        regime = "T=2, d<2k"
    return {"regime": regime, "theorem": theorem, "prediction": prediction, "agrees": agrees,
            "explanation": "; ".join(notes)}


# --------------------------------------------------------------------------------------
# Certificates (provided by landscape._certificates when present)
# --------------------------------------------------------------------------------------
def _certify(problem, U, witness, rng):
    """Run the Taylor certificate of THEORY.md section 8 if the module provides it.

    Returns ``(certificate_or_None, summary_dict)``.
    """
    try:
        from . import _certificates as cert_mod
    except ImportError:
        return None, {"status": "uncertified", "reason": "certificate module not available"}
    names = getattr(cert_mod, "__all__", ())
    if "taylor_certificate" not in names:
        return None, {"status": "uncertified", "reason": "certificate module has no taylor_certificate"}
    errors = tuple(getattr(cert_mod, n) for n in ("CertificateTooLarge", "CertificateNotApplicable") if n in names)
    try:
        cert = cert_mod.taylor_certificate(problem, U, witness=witness, rng=rng)
    except errors as exc:  # refused: too large, or not applicable
        return None, {"status": "uncertified", "reason": str(exc).splitlines()[0]}
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
        return None, {"status": "uncertified", "reason": f"certificate failed: {str(exc).splitlines()[0]}"}
    verified = bool(cert.verify()) if hasattr(cert, "verify") else None
    status = "certified" if getattr(cert, "certified", False) and verified is not False else "uncertified"
    out = {"status": status, "verdict": getattr(cert, "verdict", None), "reason": getattr(cert, "reason", ""),
           "radius": float(getattr(cert, "radius", float("nan"))), "reverified": verified}
    if hasattr(cert, "to_dict"):
        out["certificate"] = cert.to_dict()
    return cert, out


# --------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------
def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(111)


_COLORS = {GLOBAL_MINIMUM: "tab:green", SPURIOUS_CANDIDATE: "tab:red", STRICT_SADDLE: "tab:blue",
           DEGENERATE: "tab:orange", NOT_CRITICAL: "tab:gray"}


def _plot_losses(path, classifications):
    fig, ax = _figure()
    floor = 1e-300
    data, labels, colors = [], [], []
    for kind in KINDS:
        if kind == NOT_CRITICAL:
            continue
        vals = [math.log10(max(c.loss, floor)) for c in classifications if c.kind == kind]
        if vals:
            data.append(vals)
            labels.append(f"{kind} ({len(vals)})")
            colors.append(_COLORS[kind])
    if data:
        ax.hist(data, bins=30, stacked=True, label=labels, color=colors)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no critical point found", ha="center", transform=ax.transAxes)
    ax.set_xlabel("log10 G at the critical point")
    ax.set_ylabel("runs")
    ax.set_title("Loss at the critical points found")
    fig.tight_layout()
    fig.savefig(path)


def _plot_spectrum(path, cls: CriticalClass, result: SearchResult):
    fig, ax = _figure()
    lam = np.sort(np.asarray(result.spectrum.eigenvalues))
    ax.semilogy(np.arange(1, lam.size + 1), np.abs(lam), "o", color=_COLORS[cls.kind], ms=4)
    neg = lam < 0
    if neg.any():
        ax.semilogy(np.flatnonzero(neg) + 1, np.abs(lam[neg]), "x", color="k", label="negative")
        ax.legend()
    ax.set_xlabel("index (ascending)")
    ax.set_ylabel("|eigenvalue| of S on the O(k) quotient")
    ax.set_title(f"class {cls.id}: spurious candidate, G = {cls.classification.loss:.3e}"
                 f" ({result.spectrum.method})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def _plot_saddle(path, problem, cls: CriticalClass, result: SearchResult):
    c = cls.classification
    U = result.point
    v = c.negative_direction
    v = v / np.linalg.norm(v)
    s = problem_scale(problem)
    tau = 0.5 * max(math.sqrt(float(np.sum(U * U)) / problem.T), math.sqrt(s))
    ts = np.linspace(-tau, tau, 101)
    vals = [problem.reduced_loss(U + t * v) for t in ts]
    fig, ax = _figure()
    ax.plot(ts, vals, label="G(U + t v)")
    ax.plot(ts, c.loss + 0.5 * c.lambda_min_quotient * ts**2, "--", label="quadratic model")
    ax.set_xlabel("t (v: unit eigenvector of the most negative quotient eigenvalue)")
    ax.set_ylabel("G")
    ax.set_title(f"class {cls.id}: strict saddle, lambda_min = {c.lambda_min_quotient:.3e}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def _plot_orbit(path, problem, cls: CriticalClass, result: SearchResult, rng):
    from scipy.linalg import expm

    U = result.point
    T, d, k = U.shape
    fig, ax = _figure()
    thetas = np.linspace(0.0, 2 * np.pi, 121)
    if k >= 2:
        Om = np.zeros((k, k))
        Om[0, 1], Om[1, 0] = -1.0, 1.0
        vals = []
        for th in thetas:
            V = U.copy()
            V[0] = U[0] @ expm(th * Om)
            vals.append(problem.reduced_loss(V))
        ax.plot(thetas, vals, label="O(k) orbit: U_1 -> U_1 exp(theta Omega)")
    else:
        ax.plot([0.0, np.pi], [problem.reduced_loss(U), problem.reduced_loss(U * np.r_[-1.0, np.ones(T - 1)][:, None, None])],
                "o", ms=8, label="O(1) orbit: U_1 -> +-U_1 (theta = 0, pi)")
    if T == 2:
        J = np.zeros((2 * k, 2 * k))
        J[0, k], J[k, 0] = 1.0, 1.0  # a boost generator of o(k,k)
        W = np.concatenate([U[0], U[1]], axis=1)
        vals = []
        ts = np.linspace(-1.0, 1.0, 121)
        for t in ts:
            Wt = W @ expm(t * J)
            vals.append(problem.reduced_loss(np.stack([Wt[:, :k], Wt[:, k:]])))
        ax.plot(np.pi * (ts + 1.0), vals, label="O(k,k) boost (t in [-1, 1], rescaled)")
    v = rng.standard_normal(U.shape)
    v *= math.sqrt(float(np.sum(U * U)) + problem_scale(problem)) / np.linalg.norm(v)
    vals = [problem.reduced_loss(U + np.sin(th / 2) * 0.5 * v) for th in thetas]
    ax.plot(thetas, vals, ":", color="gray", label="generic path (for contrast)")
    ax.set_xlabel("theta")
    ax.set_ylabel("G")
    ax.set_title(f"Loss along symmetry orbits through class {cls.id} ({cls.kind})", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)


# --------------------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------------------
def _num(x):
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _sanitize(x):
    """JSON-safe copy: non-finite floats become the strings "inf", "-inf" or None."""
    if isinstance(x, dict):
        return {str(k): _sanitize(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_sanitize(v) for v in x]
    if isinstance(x, np.ndarray):
        return _sanitize(x.tolist())
    if isinstance(x, (float, np.floating)):
        return _num(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _class_dict(cls: CriticalClass, results, certificate_info):
    c = cls.classification
    rep = results[cls.representative]
    return {
        "id": cls.id,
        "kind": cls.kind,
        "count": len(cls.members),
        "members": [int(results[i].start_index) for i in cls.members],
        "family": cls.family,
        "loss": _num(c.loss),
        "grad_norm": _num(c.grad_norm),
        "loss_tolerance": _num(c.loss_tolerance),
        "eigenvalue_tolerance": _num(c.eigenvalue_tolerance),
        "lambda_min_quotient": _num(c.lambda_min_quotient),
        "sigma": _num(c.sigma),
        "kantorovich_h": _num(c.kantorovich_h),
        "n_negative": c.n_negative,
        "n_zero": c.n_zero,
        "n_zero_symmetry": c.n_zero_symmetry,
        "zero_set_dimension": c.zero_set_dimension,
        "A_varies_on_zero_set": c.A_varies_on_zero_set,
        "A_star_distance": _num(c.A_star_distance),
        "recovers_A_star": c.recovers_A_star,
        "spectrum_method": c.spectrum_method,
        "reason": c.reason,
        "point": np.asarray(rep.point).tolist(),
        "A_hat": np.asarray(c.A_hat).tolist() if c.A_hat.size <= MAX_JSON_MATRIX_ENTRIES else None,
        "negative_direction": None if c.negative_direction is None else np.asarray(c.negative_direction).tolist(),
        "certificate": certificate_info,
    }


def _markdown(data: dict) -> str:
    inp, st, sm, th = data["input"], data["settings"], data["summary"], data["theory"]
    lines = [
        f"# LoRA-ML landscape audit: {inp['source']}",
        "",
        f"* Tasks: T = {inp['T']}, d = {inp['d']}, adapter rank k = {inp['k']}; "
        f"truth (A*, U*) {'known' if inp['truth_known'] else 'not given'}.",
        f"* Search: {st['n_random_starts']} random start(s) + {st['n_explicit_starts']} explicit start(s) "
        f"x method, methods {', '.join(st['methods'])}, seed {st['seed']}.",
        f"* Curvature: **{st['curvature']}** ({st['curvature_reason']}).",
        f"* Runs: {sm['n_runs']}; critical points: {sm['n_critical']}; "
        f"classes modulo O(k): {sm['n_classes']}; families: {sm['n_families']}.",
        "",
        "## What was found",
        "",
        "| kind | runs |",
        "|---|---|",
    ]
    for kind in KINDS:
        lines.append(f"| {kind} | {sm['counts'].get(kind, 0)} |")
    lines += [
        "",
        f"* Global minimum found: {sm['global_minimum_found']}; distinct A among global minima: "
        f"{sm['distinct_global_A']}.",
    ]
    if inp["truth_known"]:
        lines.append(f"* A* recovered by some global minimum: {sm['A_star_recovered']}; "
                     f"a global minimum with A != A*: {sm['global_minimum_with_A_ne_A_star']}.")
    lines.append(f"* Continuum of global minima: {sm['continuum_of_global_minima']}"
                 + (f" (zero-loss set of dimension {sm['zero_set_dimension']} modulo O(k))"
                    if sm["zero_set_dimension"] else "") + ".")
    lines.append(f"* Spurious-minimum candidates: {sm['spurious_candidates']} class(es), "
                 f"certified: {sm['certified_spurious']}.")
    lines += ["", "## Theory", "", f"* Regime: {th['regime']}.", f"* Applicable statement: {th['theorem']}.",
              f"* Prediction: {th['prediction']}.",
              f"* Findings agree: **{th['agrees']}**" + (f" ({th['explanation']})." if th["explanation"] else "."),
              f"* R3.1 (task diversity): {data['r31']['holds']} ({data['r31']['checked']}).",
              f"* Tasks compatible with model M1 (pairwise differences symmetric with inertia at most (k, k)): "
              f"{data['model_m1']['compatible']}."]
    lines += ["", "## Classes of critical points (modulo U_t -> U_t O_t)", "",
              "| id | kind | runs | family | G | lambda_min (quotient) | ||A - A*|| | certificate |",
              "|---|---|---|---|---|---|---|---|"]
    for c in data["classes"]:
        cert = c["certificate"]["status"] if c["certificate"] else ""
        dist = "" if c["A_star_distance"] is None else f"{c['A_star_distance']:.2e}"
        lam = c["lambda_min_quotient"]
        lam_s = f"{lam:.3e}" if isinstance(lam, float) else str(lam)
        lines.append(f"| {c['id']} | {c['kind']} | {c['count']} | {c['family']} | {c['loss']:.3e} | "
                     f"{lam_s} | {dist} | {cert} |")
    odd = [c for c in data["classes"] if c["kind"] in (DEGENERATE, SPURIOUS_CANDIDATE)]
    if odd:
        lines += ["", "### Details", ""]
        for c in odd:
            lines.append(f"* class {c['id']} ({c['kind']}): {c['reason']}")
            if c["certificate"]:
                lines.append(f"  certificate: {c['certificate']['status']} - {c['certificate']['reason']}")
    nc = [r for r in data["runs"] if r["kind"] == NOT_CRITICAL]
    if nc:
        lines += ["", f"{len(nc)} run(s) did not reach a critical point (stopping reasons: "
                  + "; ".join(sorted({r['stop_reason'] for r in nc}))[:600] + ")."]
    if data["plots"]:
        lines += ["", "## Plots", ""] + [f"* `{p}`" for p in data["plots"]]
    lines += ["", f"Elapsed: {data['timing']['total_s']:.1f} s (search {data['timing']['search_s']:.1f} s).", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# The audit
# --------------------------------------------------------------------------------------
def _as_input(source) -> TaskInput:
    if isinstance(source, TaskInput):
        return source
    if isinstance(source, (str, Path)):
        return load_tasks(source)
    if hasattr(source, "A_star") and hasattr(source, "U_star"):  # PlantedInstance
        A = np.asarray(source.A_star, float)
        U = np.asarray(source.U_star, float)
        tasks = as_task_stack(A[None] + U @ np.swapaxes(U, 1, 2))
        return TaskInput(tasks, A, U, "planted instance", "array", ("A_star", "U_star"))
    tasks = np.asarray(source, dtype=float)
    if tasks.size == 0:
        raise LandscapeInputError("tasks: the array is empty")
    return TaskInput(as_task_stack(tasks), None, None, "array", "array", ("tasks",))


def _blas_limits(n_threads):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scipy's test deps
        return nullcontext()
    return threadpool_limits(n_threads) if n_threads else nullcontext()


def audit(
    source,
    rank: int,
    *,
    starts: int = DEFAULT_STARTS,
    seed: int = 0,
    out=None,
    methods: Sequence[str] | str = "all",
    curvature: str = "auto",
    extra_starts=None,
    max_iter: int | None = None,
    certify: bool = True,
    plots: bool = True,
    progress: bool = False,
    blas_threads: int | None = 1,
    max_seconds: float | None = None,
) -> AuditReport:
    r"""Audit the LoRA-ML landscape of given task matrices.

    Parameters
    ----------
    source : path, array (T, d, d), TaskInput or PlantedInstance
        The task matrices (see :func:`landscape.load_tasks` for file formats).
    rank : int
        Adapter rank :math:`k` (:math:`1\le k<d`).
    starts : int
        Number of random starts (dealt round-robin to the methods).
    seed : int
        Seed of the ``numpy.random.Generator`` that drives everything.
    out : path, optional
        Directory for ``report.json``, ``report.md`` and the plots; created only after
        every input has been validated.
    methods : str or sequence
        Names from :data:`landscape.SEARCH_METHODS` or ``"all"``.
    curvature : {"auto", "dense", "hvp"}
        ``"dense"`` fails with :class:`LandscapeInputError` when the dense Schur
        complement does not fit in memory; ``"auto"`` switches to Hessian-vector
        products for large problems and the report says so.
    extra_starts : path or array (m, T, d, k), optional
        Explicit starting points, run with every method.
    certify : bool
        Ask :mod:`landscape._certificates` for a Taylor certificate at every spurious
        candidate (if that module is present); otherwise candidates are "uncertified".
    max_seconds : float, optional
        Refuse (:class:`LandscapeInputError`, nothing run or written) when
        :func:`landscape.estimate_audit_cost` predicts more wall time than this.  A
        predicted peak memory above the available memory is always refused.
    blas_threads : int or None
        BLAS threads during the audit.  The matrices are small (d x d per task), where
        OpenBLAS threading costs more than it saves (10-100x slower ``eigh`` of 30 x 30
        matrices measured on 2 busy cores); None leaves the setting alone.

    Returns
    -------
    AuditReport

    Raises
    ------
    LandscapeInputError
        Bad input of any kind (nothing is written then).
    """
    t0 = time.perf_counter()
    # ---------------- validation: everything before touching `out`
    task_input = _as_input(source)
    problem = audit_problem(task_input, rank)
    if isinstance(starts, bool) or not isinstance(starts, (int, np.integer)) or starts < 0:
        raise LandscapeInputError(f"--starts must be a non-negative integer, got {starts!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LandscapeInputError(f"--seed must be a non-negative integer, got {seed!r}")
    if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer))
                                 or max_iter < 1):
        raise LandscapeInputError(f"--max-iter must be a positive integer, got {max_iter!r}")
    method_list = _expand_methods(methods)
    mode = curvature_mode(problem, curvature)
    requested = {methods} if isinstance(methods, str) else set(methods)
    dense_roots = sorted(requested & {"root-hybr", "root-lm"})
    if dense_roots and curvature == "auto" and mode.mode == "hvp":
        # hybr / lm were asked for by name: they need the dense Jacobian S
        try:
            curvature_mode(problem, "dense")
        except LandscapeInputError as exc:
            raise LandscapeInputError(f"{dense_roots[0]} needs the dense Jacobian S: {exc}") from None
    explicit = None
    if extra_starts is not None:
        if isinstance(extra_starts, (str, Path)):
            explicit = load_starts(extra_starts, problem)
        else:
            explicit = np.asarray(extra_starts, dtype=float)
            explicit = explicit[None] if explicit.ndim == 3 else explicit
            if explicit.ndim != 4 or explicit.shape[1:] != (problem.T, problem.d, problem.k):
                raise LandscapeInputError(
                    f"starting points: expected shape (m, {problem.T}, {problem.d}, {problem.k}), got {explicit.shape}")
            if not np.all(np.isfinite(explicit)):
                raise LandscapeInputError("starting points contain NaN or infinite entries")
    if starts == 0 and explicit is None:
        raise LandscapeInputError("nothing to search: --starts 0 and no explicit starting points")
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                    or not np.isfinite(max_seconds) or max_seconds <= 0):
        raise LandscapeInputError(f"--max-seconds must be a positive number, got {max_seconds!r}")
    n_total = int(starts) + (0 if explicit is None else len(explicit) * len(method_list))
    cost = estimate_audit_cost(problem.d, problem.T, problem.k, n_total, curvature=mode.mode)
    if max_seconds is not None and cost.seconds > max_seconds:
        raise LandscapeInputError(f"refused: {cost.describe()}, above --max-seconds {max_seconds:g}")
    if cost.bytes > available_memory_bytes():
        raise LandscapeInputError(f"refused: {cost.describe()}, above the "
                                  f"{available_memory_bytes() / 2**30:.2f} GiB of memory available")
    out_dir = None
    if out is not None:
        out_dir = Path(out)
        if out_dir.exists() and not out_dir.is_dir():
            raise LandscapeInputError(f"--out {out_dir.name}: exists and is not a directory")

    rng = np.random.default_rng(seed)
    with _blas_limits(blas_threads):
        t_search = time.perf_counter()
        results = search(problem, rng=rng, n_starts=int(starts), methods=method_list, starts=explicit,
                         mode=mode.mode, max_iter=max_iter, progress=progress)
        t_search = time.perf_counter() - t_search
        A_star = task_input.A_star
        classifications = [classify_result(problem, r, A_star=A_star, rng=rng) for r in results]
        classes = deduplicate(problem, [r.point for r in results], classifications)

        # ---------------- certificates for spurious candidates
        witness = None
        if task_input.U_star is not None:
            witness = task_input.U_star
        else:
            glob = [c for c in classes if c.kind == GLOBAL_MINIMUM]
            if glob:
                witness = results[glob[0].representative].point
        cert_objects, cert_info = {}, {}
        t_cert = time.perf_counter()
        for c in classes:
            if c.kind != SPURIOUS_CANDIDATE:
                continue
            if certify:
                cert, info = _certify(problem, results[c.representative].point, witness, rng)
            else:
                cert, info = None, {"status": "uncertified", "reason": "certification not requested"}
            cert_objects[c.id], cert_info[c.id] = cert, info
        t_cert = time.perf_counter() - t_cert

        # ---------------- summary
        counts = Counter(cl.kind for cl in classifications)
        glob_classes = [c for c in classes if c.kind == GLOBAL_MINIMUM]
        rec_flags = [c.classification.recovers_A_star for c in glob_classes]
        zero_dims = [c.classification.zero_set_dimension or 0 for c in glob_classes]
        varies = any(c.classification.A_varies_on_zero_set for c in glob_classes)
        distinct_A = len(glob_classes)  # classes modulo O(k) of global minima <-> values of A
        continuum = bool(glob_classes) and ((max(zero_dims) > 0 and (problem.T != 2 or varies))
                                            or (problem.T == 2 and distinct_A > 1))
        summary = {
            "n_runs": len(results),
            "n_critical": sum(v for k_, v in counts.items() if k_ != NOT_CRITICAL),
            "counts": {k_: int(counts.get(k_, 0)) for k_ in KINDS},
            "n_classes": len(classes),
            "n_families": len({c.family for c in classes}),
            "global_minimum_found": bool(glob_classes),
            "distinct_global_A": distinct_A,
            "A_star_recovered": (any(rec_flags) if A_star is not None and glob_classes else None),
            "global_minimum_with_A_ne_A_star": (any(f is False for f in rec_flags)
                                                if A_star is not None and glob_classes else None),
            "continuum_of_global_minima": continuum,
            "zero_set_dimension": (max(zero_dims) if glob_classes else None),
            "spurious_candidates": sum(1 for c in classes if c.kind == SPURIOUS_CANDIDATE),
            "certified_spurious": sum(1 for v in cert_info.values() if v["status"] == "certified"),
            "strict_saddle_classes": sum(1 for c in classes if c.kind == STRICT_SADDLE),
            "degenerate_classes": sum(1 for c in classes if c.kind == DEGENERATE),
            "all_nonglobal_critical_are_strict_saddles": all(
                c.kind in (GLOBAL_MINIMUM, STRICT_SADDLE) for c in classes),
        }
        theory = theory_assessment(problem.T, problem.d, problem.k, summary)
        r31 = _r31_check(task_input, problem.k, np.random.default_rng(seed))
        m1 = _model_m1_check(problem.tasks, problem.k)
        if not m1["compatible"]:
            # min G may be positive: "spurious" candidates may be global minima
            theory["agrees"] = None
            theory["explanation"] = ("tasks are not of the form A* + U_t U_t^T with rank-k U_t (THEORY.md section 2),"
                                     " so min G may be positive, the lowest candidate may be the global minimum, "
                                     "and the theorems do not apply; " + theory["explanation"])
        if not r31["holds"] and theory["agrees"] is False:
            # the theorem's hypothesis R3.1 fails, so a disagreement refutes nothing
            theory["agrees"] = None
            theory["explanation"] += "; R3.1 does not hold, so the theorem does not apply"

        class_of_run = {}
        for c in classes:
            for i in c.members:
                class_of_run[i] = c.id
        runs = []
        for i, (r, cl) in enumerate(zip(results, classifications)):
            runs.append({
                "index": int(r.start_index), "method": r.method, "kind": cl.kind,
                "class_id": class_of_run.get(i), "loss": _num(r.loss), "grad_norm": _num(r.grad_norm),
                "lambda_min_quotient": _num(r.spectrum.lambda_min_quotient) if r.spectrum else None,
                "iterations": r.iterations, "polish_steps": r.polish_steps,
                "loss_before_polish": _num(r.loss_before_polish),
                "grad_norm_before_polish": _num(r.grad_norm_before_polish),
                "stop_reason": r.stop_reason, "reason": cl.reason,
            })
        data: dict[str, Any] = {
            "schema_version": REPORT_SCHEMA_VERSION,
            "tool": "landscape.audit",
            "input": {"source": task_input.source, "format": task_input.format, "keys": list(task_input.keys),
                      "T": problem.T, "d": problem.d, "k": problem.k, "truth_known": task_input.truth_known,
                      "scale": problem_scale(problem)},
            "settings": {"n_random_starts": int(starts), "n_explicit_starts": 0 if explicit is None else len(explicit),
                         "seed": int(seed), "methods": list(method_list), "curvature": mode.mode,
                         "curvature_reason": mode.reason, "hvp_switch": mode.mode == "hvp" and curvature == "auto",
                         "max_iter": max_iter, "certify": bool(certify), "blas_threads": blas_threads,
                         "estimated_seconds": cost.seconds, "estimated_bytes": cost.bytes},
            "summary": summary,
            "theory": theory,
            "r31": r31,
            "model_m1": m1,
            "classes": [_class_dict(c, results, cert_info.get(c.id)) for c in classes],
            "runs": runs,
            "plots": [],
            "timing": {"search_s": t_search, "certificates_s": t_cert},
        }

        # ---------------- files (only now is `out` touched)
        files = []
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            if plots:
                plot_rng = np.random.default_rng(seed)
                crit = [cl for cl in classifications if cl.kind != NOT_CRITICAL]
                _plot_losses(out_dir / "losses.png", crit)
                data["plots"].append("losses.png")
                for c in [c for c in classes if c.kind == SPURIOUS_CANDIDATE][:MAX_SPECTRUM_PLOTS]:
                    name = f"spectrum_class{c.id}.png"
                    _plot_spectrum(out_dir / name, c, results[c.representative])
                    data["plots"].append(name)
                saddles = sorted((c for c in classes if c.kind == STRICT_SADDLE),
                                 key=lambda c: c.classification.loss)
                if saddles:
                    _plot_saddle(out_dir / "saddle_direction.png", problem, saddles[0],
                                 results[saddles[0].representative])
                    data["plots"].append("saddle_direction.png")
                pick = (glob_classes or [c for c in classes if c.kind == SPURIOUS_CANDIDATE] or classes)
                if pick:
                    _plot_orbit(out_dir / "orbit.png", problem, pick[0], results[pick[0].representative], plot_rng)
                    data["plots"].append("orbit.png")
            data["timing"]["total_s"] = time.perf_counter() - t0
            md = _markdown(data)
            (out_dir / "report.md").write_text(md)
            files = [str(out_dir / p) for p in data["plots"]] + [str(out_dir / "report.md"), str(out_dir / "report.json")]
            (out_dir / "report.json").write_text(json.dumps(_sanitize(data), indent=1, allow_nan=False))
        else:
            data["timing"]["total_s"] = time.perf_counter() - t0
            md = _markdown(data)
    return AuditReport(data, md, tuple(files), problem, tuple(results), tuple(classifications), tuple(classes),
                       cert_objects)
