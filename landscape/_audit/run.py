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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._classify import (
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
from .._io import TaskInput, audit_problem, check_starts, load_starts, load_tasks
from .._objective import LoraMLProblem
from ..runtime.outdir import ReportWriter, prepare_out_dir
from ..runtime.safe_load import MAX_ARRAY_BYTES
from .._search import (SearchResult, _expand_methods, available_memory_bytes, curvature_mode, estimate_audit_cost,
                      problem_scale, random_starts, search)
from .._validation import LandscapeInputError, as_task_stack

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

#: Bins of the loss histogram, and the smallest range it spans (in decades), so that a
#: single critical point (e.g. one explicit start) still gets a visible bar.
HIST_BINS = 30
HIST_MIN_SPAN = 1.0


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


def theory_assessment(T: int, d: int, k: int, summary: dict, *, r31: dict | None = None,
                      m1: dict | None = None, identical_tasks: bool = False) -> dict:
    """Which statement of THEORY.md applies to ``(T, d, k)`` and whether ``summary``
    (the audit summary) agrees with it.

    A theorem *applies* only when its hypotheses hold: Thm 3.3 needs T >= 3, d >= 3k
    and R3.1; Thm 3.4 needs T = 2, d >= 2k and R3.1; both need tasks of model M1
    (THEORY.md section 2).  When it does not apply, ``agrees`` is None and
    ``not_applicable_reason`` says why (identical or all-zero tasks violate R3.1).

    Returns a dict with ``regime``, ``theorem``, ``applicable``,
    ``not_applicable_reason``, ``prediction``, ``agrees`` (True, False, or None when
    the findings cannot confirm or refute, or no theorem applies) and ``explanation``.
    """
    n_spur = summary["spurious_candidates"]
    n_glob_A = summary["distinct_global_A"]
    rec = summary["A_star_recovered"]
    found_global = summary["global_minimum_found"]
    notes = []
    why_not = None
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
        agrees = None
        why_not = f"T >= 3 with d = {d} < 3k = {3 * k}: Thm 3.3 needs d >= 3k"
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
        why_not = f"T = 2 with d = {d} < 2k = {2 * k}: Thm 3.4 needs d >= 2k"
        regime = "T=2, d<2k"
    if why_not is None and m1 is not None and not m1["compatible"]:
        why_not = ("the tasks are not of the form A* + U_t U_t^T with rank-k U_t (THEORY.md section 2), so min G "
                   "may be positive and the lowest candidate may be the global minimum")
    if why_not is None and r31 is not None and not r31["holds"]:
        if identical_tasks:
            why_not = "R3.1 fails: the tasks are identical (every difference A*_s - A*_t is zero)"
        else:
            why_not = f"R3.1 (task diversity) fails ({r31['checked']})"
    if why_not is not None:
        agrees = None
    return {"regime": regime, "theorem": theorem, "applicable": why_not is None, "not_applicable_reason": why_not,
            "prediction": prediction, "agrees": agrees, "explanation": "; ".join(notes)}


# --------------------------------------------------------------------------------------
# Certificates (provided by landscape._certificates when present)
# --------------------------------------------------------------------------------------
def _certify(problem, U, witness, rng):
    """Run the Taylor certificate of THEORY.md section 8 if the module provides it.

    Returns ``(certificate_or_None, summary_dict)``.
    """
    try:
        from .. import _certificates as cert_mod
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
        d = cert.to_dict()
        diag = d.get("diagnostics")
        if isinstance(diag, dict) and "seconds" in diag:
            # wall clock, not part of the proof: kept out of report.json (run.json has it)
            diag = dict(diag)
            out["_seconds"] = diag.pop("seconds")
            d["diagnostics"] = diag
        out["certificate"] = d
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


def _plot_losses(save, classifications, exponent: int = 0):
    """Histogram of log10 G (in the user's units: the tasks were divided by 2**exponent,
    so log10 G gains 2 * exponent * log10(2))."""
    fig, ax = _figure()
    floor = 1e-300
    shift = 2 * exponent * math.log10(2.0)
    data, labels, colors = [], [], []
    for kind in KINDS:
        if kind == NOT_CRITICAL:
            continue
        vals = [math.log10(max(c.loss, floor)) + shift for c in classifications if c.kind == kind]
        if vals:
            data.append(vals)
            labels.append(f"{kind} ({len(vals)})")
            colors.append(_COLORS[kind])
    if data:
        lo = min(min(v) for v in data)
        hi = max(max(v) for v in data)
        # a single value (or values closer than float spacing) still gets a visible bin
        span = max(hi - lo, HIST_MIN_SPAN)
        mid = 0.5 * (lo + hi)
        ax.hist(data, bins=HIST_BINS, range=(mid - 0.5 * span, mid + 0.5 * span), stacked=True, label=labels,
                color=colors)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no critical point found", ha="center", transform=ax.transAxes)
    ax.set_xlabel("log10 G at the critical point")
    ax.set_ylabel("runs")
    ax.set_title("Loss at the critical points found")
    fig.tight_layout()
    save(fig)


def _plot_spectrum(save, cls: CriticalClass, result: SearchResult):
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
    save(fig)


def _plot_saddle(save, problem, cls: CriticalClass, result: SearchResult):
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
    save(fig)


def _plot_orbit(save, problem, cls: CriticalClass, result: SearchResult, rng):
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
    save(fig)


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


class _Units:
    r"""Conversion from the normalised problem back to the user's units.

    The audit runs on the tasks divided by :math:`c=2^e` (``e`` even, so the division
    and :math:`\sqrt c=2^{e/2}` are exact in floating point).  :math:`G` is homogeneous
    of degree 2 in :math:`(A^\star, A, UU^\top)` (THEORY.md section 5): with
    :math:`U\to c^{1/2}U` the loss scales by :math:`c^2`, the gradient by
    :math:`c^{3/2}`, eigenvalues of :math:`S` (and :math:`A`) by :math:`c`; critical
    points, their kinds and every dimensionless ratio are unchanged.
    """

    def __init__(self, e: int):
        self.e = int(e)

    def _ldexp(self, x, p):
        if x is None:
            return None
        x = float(x)
        if not math.isfinite(x) or p == 0:
            return x
        try:
            return math.ldexp(x, p)
        except OverflowError:
            return math.copysign(float("inf"), x)

    def loss(self, x):
        return self._ldexp(x, 2 * self.e)

    def reason(self, text) -> str:
        """A classification sentence (its numbers are those of the normalised tasks)."""
        text = _one_line(text)
        return text if self.e == 0 else f"[numbers for the tasks divided by 2^{self.e}] {text}"

    def grad(self, x):
        return self._ldexp(x, 3 * self.e // 2)

    def lin(self, x):  # A, tasks, eigenvalues of S
        return self._ldexp(x, self.e)

    def point(self, U):
        return np.ldexp(np.asarray(U, dtype=float), self.e // 2)

    def matrix(self, A):
        return np.ldexp(np.asarray(A, dtype=float), self.e)

    def fmt(self, x, spec: str = ".3e", power: int = 4) -> str:
        """``x * 2**(power * e / 2)`` (power 4: a loss, 2: a matrix or eigenvalue) in
        scientific notation, also outside the float64 range (computed through log10)."""
        if x is None:
            return ""
        x = float(x)
        p = power * self.e // 2
        if not math.isfinite(x) or x == 0.0 or p == 0:
            return format(x, spec)
        y = self._ldexp(x, p)
        if y != 0.0 and math.isfinite(y) and abs(y) >= 1e-300:
            return format(y, spec)
        lg = math.log10(abs(x)) + p * math.log10(2.0)
        ex = math.floor(lg)
        mant = math.copysign(10 ** (lg - ex), x)
        digits = int(spec[1:-1]) if spec.startswith(".") and spec.endswith("e") else 3
        return f"{mant:.{digits}f}e{ex:+03d}"


def _one_line(text) -> str:
    """A stop reason or message collapsed to one line."""
    return " ".join(str(text).split())


def _class_dict(cls: CriticalClass, results, certificate_info, units: _Units, note):
    c = cls.classification
    rep = results[cls.representative]
    return {
        "id": cls.id,
        "kind": cls.kind,
        "count": len(cls.members),
        "members": [int(results[i].start_index) for i in cls.members],
        "family": cls.family,
        "loss": _num(units.loss(c.loss)),
        "loss_normalised": _num(c.loss),
        "grad_norm": _num(units.grad(c.grad_norm)),
        "loss_tolerance": _num(units.loss(c.loss_tolerance)),
        "eigenvalue_tolerance": _num(units.lin(c.eigenvalue_tolerance)),
        "lambda_min_quotient": _num(units.lin(c.lambda_min_quotient)),
        "sigma": _num(units.lin(c.sigma)),
        "kantorovich_h": _num(c.kantorovich_h),
        "n_negative": c.n_negative,
        "n_zero": c.n_zero,
        "n_zero_symmetry": c.n_zero_symmetry,
        "zero_set_dimension": c.zero_set_dimension,
        "A_varies_on_zero_set": c.A_varies_on_zero_set,
        "A_star_distance": _num(units.lin(c.A_star_distance)),
        "recovers_A_star": c.recovers_A_star,
        "spectrum_method": c.spectrum_method,
        "reason": units.reason(c.reason),
        "note": note,
        "point": units.point(rep.point).tolist(),
        "A_hat": units.matrix(c.A_hat).tolist() if c.A_hat.size <= MAX_JSON_MATRIX_ENTRIES else None,
        "negative_direction": None if c.negative_direction is None else np.asarray(c.negative_direction).tolist(),
        "certificate": certificate_info,
    }


def _zero_mode_note(problem: LoraMLProblem, cls: CriticalClass, units: "_Units"):
    """Global minima whose smallest quotient eigenvalue is slightly negative: say that
    it is a zero mode (THEORY.md section 4: the T = 2 O(k,k) family, or a continuum of
    global minima), not negative curvature."""
    c = cls.classification
    if cls.kind != GLOBAL_MINIMUM or not (c.lambda_min_quotient < 0.0):
        return None
    if abs(c.lambda_min_quotient) > c.eigenvalue_tolerance:
        return None
    return (f"lambda_min = {units.fmt(c.lambda_min_quotient, '.1e', power=2)} is within the zero tolerance "
            f"{units.fmt(c.eigenvalue_tolerance, '.1e', power=2)}: a zero mode of {_zero_mode_origin(problem, c)} "
            "computed with round-off, not negative curvature")


def _zero_mode_origin(problem: LoraMLProblem, c) -> str:
    if problem.T == 2:
        return (f"the O(k,k) family of global minima ({c.n_zero_symmetry} symmetry direction(s) modulo "
                "U_t -> U_t O_t, THEORY.md section 4)")
    if c.zero_set_dimension:
        return f"the {c.zero_set_dimension}-dimensional set of global minima through this point"
    return "a flat direction of the zero-loss set"


def _zero_mode_summary(problem: LoraMLProblem, glob_classes, units: "_Units") -> dict | None:
    """One line for all global minima with round-off negative zero modes."""
    hit = [c for c in glob_classes if _zero_mode_note(problem, c, units)]
    if not hit:
        return None
    worst = min(hit, key=lambda c: c.classification.lambda_min_quotient)
    return {"classes": len(hit), "most_negative": _num(units.lin(worst.classification.lambda_min_quotient)),
            "explanation": (f"{len(hit)} global-minimum class(es) have a slightly negative smallest quotient "
                            f"eigenvalue (down to {units.fmt(worst.classification.lambda_min_quotient, '.1e', 2)}, "
                            "each within its zero tolerance): zero modes of "
                            f"{_zero_mode_origin(problem, worst.classification)} computed with round-off, "
                            "not negative curvature")}


#: A run whose end point has ||U||_F above this multiple of the natural size
#: sqrt(T s) of a critical point (U ~ s^(1/2), random_starts) has run off to infinity;
#: critical points of G satisfy ||U_t U_t^T|| <= ||A*_t - A|| = O(s).
DIVERGENCE_FACTOR = 1e3

#: ||D_U|| / ||U||^2 below this: U_1 U_1^T - U_2 U_2^T stays bounded while ||U|| grows,
#: i.e. the run slides along the non-compact O(k,k) orbit (T = 2).
BOOST_RATIO = 1e-3


def _divergence(problem: LoraMLProblem, result: SearchResult):
    """None, or a one-line description of how the run diverged."""
    U = np.asarray(result.point, dtype=float)
    s = problem_scale(problem)
    if np.all(np.isfinite(U)):
        norm = float(np.linalg.norm(U))
        if norm <= DIVERGENCE_FACTOR * math.sqrt(problem.T * s):
            return None
    else:
        return (f"||U|| -> inf: the iterate overflowed after {result.iterations} iteration(s) "
                f"({_one_line(result.stop_reason)})")
    if problem.T == 2:
        D = U[0] @ U[0].T - U[1] @ U[1].T
        ratio = float(np.linalg.norm(D)) / norm**2
        if ratio < BOOST_RATIO:
            return (f"||U|| -> inf along the O(k,k) orbit (boosts of [U_1, U_2] keep U_1U_1^T - U_2U_2^T bounded: "
                    f"||D_U|| / ||U||^2 = {ratio:.1e}, ||U||_F = {norm:.2e} (normalised) after "
                    f"{result.iterations} iteration(s))")
    return (f"||U|| -> inf along U/||U|| (||U||_F = {norm:.2e} (normalised), {norm / math.sqrt(problem.T * s):.1e} "
            f"times the natural size, after {result.iterations} iteration(s))")


def _continuum_summary(problem: LoraMLProblem, glob_classes, results, units: _Units) -> dict | None:
    r"""T = 2 global minima (THEORY.md section 4, "T=2 global-minimum set"): one
    O(k,k) family, :math:`[U_1,U_2]=[U^\circ_1,U^\circ_2]\Lambda`,
    :math:`\Lambda\in O(k,k)`, of dimension :math:`k(2k-1)`, i.e. :math:`k^2` modulo
    :math:`O(k)\times O(k)`; :math:`A = A^\star_1-U_1U_1^\top`.  A few points of it are
    given (boosts of one found minimiser) instead of every sampled class."""
    if problem.T != 2 or not glob_classes:
        return None
    from scipy.linalg import expm

    k = problem.k
    rep = glob_classes[0]
    U0 = np.asarray(results[rep.representative].point, dtype=float)
    W = np.concatenate([U0[0], U0[1]], axis=1)
    J = np.zeros((2 * k, 2 * k))
    J[0, k] = J[k, 0] = 1.0  # generator of a boost in o(k,k)
    pts = []
    for t in CONTINUUM_SAMPLE_BOOSTS:
        Wt = W @ expm(t * J)
        U = np.stack([Wt[:, :k], Wt[:, k:]])
        A = problem.tasks[0] - U[0] @ U[0].T
        entry = {"boost": t, "loss": _num(units.loss(problem.reduced_loss(U)))}
        if U.size + A.size <= MAX_JSON_MATRIX_ENTRIES:
            entry["point"] = units.point(U).tolist()
            entry["A"] = units.matrix(A).tolist()
        pts.append(entry)
    return {
        "dimension": k * (2 * k - 1),
        "dimension_modulo_O(k)": k * k,
        "parametrisation": ("[U_1, U_2] = [U°_1, U°_2] Lambda, Lambda in O(k,k) (Lambda J_k Lambda^T = J_k), "
                            "A = A*_1 - U_1 U_1^T; U° = representative of class "
                            f"{rep.id}; points: Lambda = exp(t (E_(1,k+1) + E_(k+1,1)))"),
        "classes_sampled": len(glob_classes),
        "runs": sum(len(c.members) for c in glob_classes),
        "A_varies": bool(any(c.classification.A_varies_on_zero_set for c in glob_classes) or len(glob_classes) > 1),
        "points": pts,
    }


#: Boost parameters t of the sample points of a T = 2 continuum of global minima.
CONTINUUM_SAMPLE_BOOSTS = (-0.5, 0.0, 0.5)


def _markdown(data: dict, units: _Units) -> str:
    inp, st, sm, th = data["input"], data["settings"], data["summary"], data["theory"]
    lines = [
        f"# LoRA-ML landscape audit: {inp['source']}",
        "",
        f"* Tasks: T = {inp['T']}, d = {inp['d']}, adapter rank k = {inp['k']}; "
        f"truth (A*, U*) {'known' if inp['truth_known'] else 'not given'}.",
    ]
    if inp["scale_exponent"]:
        lines.append(f"* Scale: s = {units.fmt(inp['scale_normalised'], power=2)}; "
                     f"the search ran on the tasks divided by 2^{inp['scale_exponent']} (exact), "
                     "every value below is in your units (G is homogeneous of degree 2).")
    lines += [
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
    if sm["diverged_runs"]:
        lines.append(f"| (of which diverged, ||U|| -> inf) | {sm['diverged_runs']} |")
    lines += [
        "",
        f"* Global minimum found: {sm['global_minimum_found']}; distinct A among global minima: "
        f"{sm['distinct_global_A']}.",
    ]
    if inp["truth_known"]:
        lines.append(f"* A* recovered by some global minimum: {sm['A_star_recovered']}; "
                     f"a global minimum with A != A*: {sm['global_minimum_with_A_ne_A_star']}.")
    cont = sm.get("global_minima_continuum")
    if cont:
        lines.append(f"* Continuum of global minima: True: one O(k,k) family of dimension {cont['dimension']} "
                     f"({cont['dimension_modulo_O(k)']} modulo U_t -> U_t O_t), {cont['parametrisation']}; "
                     f"{cont['runs']} run(s) landed on it ({cont['classes_sampled']} sampled point(s) modulo O(k), "
                     f"summarised as one row below).")
    else:
        lines.append(f"* Continuum of global minima: {sm['continuum_of_global_minima']}"
                     + (f" (zero-loss set of dimension {sm['zero_set_dimension']} modulo O(k))"
                        if sm["zero_set_dimension"] else "") + ".")
    if sm["zero_modes_at_global_minima"]:
        lines.append(f"* Zero modes: {sm['zero_modes_at_global_minima']['explanation']}.")
    lines.append(f"* Spurious-minimum candidates: {sm['spurious_candidates']} class(es), "
                 f"certified: {sm['certified_spurious']}.")
    if th["applicable"]:
        verdict = f"* Findings agree: **{th['agrees']}**" + (f" ({th['explanation']})." if th["explanation"] else ".")
    else:
        verdict = f"* Findings agree: **not applicable** ({th['not_applicable_reason']})."
    lines += ["", "## Theory", "", f"* Regime: {th['regime']}.", f"* Applicable statement: {th['theorem']}.",
              f"* Prediction: {th['prediction']}.", verdict,
              f"* R3.1 (task diversity): {data['r31']['holds']} ({data['r31']['checked']}).",
              f"* Tasks compatible with model M1 (pairwise differences symmetric with inertia at most (k, k)): "
              f"{data['model_m1']['compatible']}."]
    lines += ["", "## Classes of critical points (modulo U_t -> U_t O_t)", "",
              "| id | kind | runs | family | G | lambda_min (quotient) | ||A - A*|| | certificate |",
              "|---|---|---|---|---|---|---|---|"]
    rows = data["classes"]
    if cont:
        glob = [c for c in rows if c["kind"] == GLOBAL_MINIMUM]
        rows = [c for c in rows if c["kind"] != GLOBAL_MINIMUM]
        if glob:
            lines.append(f"| {glob[0]['id']} (+{len(glob) - 1}) | global_minimum (O(k,k) continuum) | "
                         f"{sum(c['count'] for c in glob)} | {glob[0]['family']} | "
                         f"{units.fmt(glob[0]['loss_normalised'])} | zero modes | | |")
    for c in rows:
        cert = c["certificate"]["status"] if c["certificate"] else ""
        dist = "" if c["A_star_distance"] is None else f"{c['A_star_distance']:.2e}"
        lam = c["lambda_min_quotient"]
        lam_s = f"{lam:.3e}" if isinstance(lam, float) else str(lam)
        lines.append(f"| {c['id']} | {c['kind']} | {c['count']} | {c['family']} | {units.fmt(c['loss_normalised'])} | "
                     f"{lam_s} | {dist} | {cert} |")
    odd = [c for c in data["classes"] if c["kind"] in (DEGENERATE, SPURIOUS_CANDIDATE)]
    if odd:
        lines += ["", "### Details", ""]
        for c in odd:
            lines.append(f"* class {c['id']} ({c['kind']}): {c['reason']}")
            if c["certificate"]:
                lines.append(f"  certificate: {c['certificate']['status']} - {_one_line(c['certificate']['reason'])}")
    div = [r for r in data["runs"] if r["diverged"]]
    if div:
        lines += ["", f"{len(div)} run(s) diverged:", ""]
        lines += [f"* run {r['index']} ({r['method']}): {r['reason']}" for r in div[:MAX_LISTED_RUNS]]
        if len(div) > MAX_LISTED_RUNS:
            lines.append(f"* ... and {len(div) - MAX_LISTED_RUNS} more (see report.json)")
    nc = [r for r in data["runs"] if r["kind"] == NOT_CRITICAL and not r["diverged"]]
    if nc:
        reasons = Counter(r["stop_reason"] for r in nc)
        lines += ["", f"{len(nc)} run(s) did not reach a critical point; stopping reasons:", ""]
        lines += [f"* {n} x {reason}" for reason, n in sorted(reasons.items(), key=lambda x: (-x[1], x[0]))]
    if data["plots"]:
        lines += ["", "## Plots", ""] + [f"* `{p}`" for p in data["plots"]]
    lines.append("")
    return "\n".join(lines)


#: Diverged runs listed one per line in report.md (all of them are in report.json).
MAX_LISTED_RUNS = 20


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
    tasks = np.asarray(source)
    if tasks.dtype.kind not in "fiu":
        raise LandscapeInputError(f"tasks: expected a real numeric array, got dtype {tasks.dtype}")
    if tasks.size == 0:
        raise LandscapeInputError("tasks: the array is empty")
    return TaskInput(as_task_stack(tasks), None, None, "array", "array", ("tasks",))


def scale_exponent(tasks: np.ndarray) -> int:
    r"""Even exponent :math:`e` with the tasks divided by :math:`2^e` of natural scale
    :math:`s\in(1/2, 2]` (:func:`landscape.problem_scale`), computed without overflow
    or underflow (the tasks are first divided by the power of two of their largest
    entry).  ``0`` for all-zero tasks; also ``0`` whenever :math:`s` is already in that
    range, so ordinary inputs are audited exactly as given."""
    tasks = np.asarray(tasks, dtype=float)
    m = float(np.max(np.abs(tasks))) if tasks.size else 0.0
    if m == 0.0 or not math.isfinite(m):
        return 0
    e0 = math.frexp(m)[1]
    t = np.ldexp(tasks, -e0)
    dev = t - t.mean(axis=0)[None]
    s = math.sqrt(float(np.einsum("tij,tij->", dev, dev)) / t.shape[0])
    if s == 0.0:
        s = float(np.linalg.norm(t.mean(axis=0)))
    if s == 0.0:
        return 0
    return 2 * round((math.log2(s) + e0) / 2)


def _normalised(task_input: TaskInput, e: int) -> TaskInput:
    if e == 0:
        return task_input
    A = None if task_input.A_star is None else np.ldexp(task_input.A_star, -e)
    U = None if task_input.U_star is None else np.ldexp(task_input.U_star, -e // 2)
    tasks = np.ldexp(task_input.tasks, -e)
    tasks.flags.writeable = False
    return TaskInput(tasks, A, U, task_input.source, task_input.format, task_input.keys)


def _blas_limits(n_threads):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scipy's test deps
        return nullcontext()
    return threadpool_limits(n_threads) if n_threads else nullcontext()


#: Starts per search unit. Fixed (not derived from the number of workers), so that the
#: units, their seeds and hence the report are the same whichever executor runs them;
#: 8 keeps the batched descent methods efficient and gives 2 workers 13 units at 100 starts.
STARTS_PER_UNIT = 8


def _result_to_json(r: SearchResult) -> dict:
    sp = r.spectrum
    spec = None if sp is None else {
        "lambda_min_quotient": float(sp.lambda_min_quotient),
        "lambda_min_raw": None if sp.lambda_min_raw is None else float(sp.lambda_min_raw),
        "direction": np.asarray(sp.direction, dtype=float), "n_symmetry": int(sp.n_symmetry),
        "inertia_quotient": None if sp.inertia_quotient is None else [int(x) for x in sp.inertia_quotient],
        "method": sp.method, "eigenvalues": np.asarray(sp.eigenvalues, dtype=float)}
    return {"method": r.method, "start_index": int(r.start_index), "point": np.asarray(r.point, dtype=float),
            "loss": float(r.loss), "grad_norm": float(r.grad_norm), "spectrum": spec,
            "iterations": int(r.iterations), "stop_reason": str(r.stop_reason), "polish_steps": int(r.polish_steps),
            "loss_before_polish": float(r.loss_before_polish),
            "grad_norm_before_polish": float(r.grad_norm_before_polish)}


def _result_from_json(d: dict) -> SearchResult:
    from .._curvature import SpectrumSummary

    sp = d["spectrum"]
    spec = None if sp is None else SpectrumSummary(
        float(sp["lambda_min_quotient"]), None if sp["lambda_min_raw"] is None else float(sp["lambda_min_raw"]),
        np.asarray(sp["direction"]), int(sp["n_symmetry"]),
        None if sp["inertia_quotient"] is None else tuple(int(x) for x in sp["inertia_quotient"]),
        sp["method"], np.asarray(sp["eigenvalues"]))
    return SearchResult(d["method"], int(d["start_index"]), np.asarray(d["point"]), float(d["loss"]),
                        float(d["grad_norm"]), spec, int(d["iterations"]), d["stop_reason"], int(d["polish_steps"]),
                        float(d["loss_before_polish"]), float(d["grad_norm_before_polish"]))


def search_unit(*, tasks, k, method, starts, indices, seed, chunk, mode, max_iter, blas_threads):
    """One unit of the audit's multistart (:mod:`landscape.runtime.executor`): run ``method``
    from ``starts`` with a Generator derived from ``(seed, chunk)`` only, so the result
    does not depend on which executor or worker runs it."""
    problem = LoraMLProblem(np.asarray(tasks, dtype=float), int(k))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(chunk),)))
    with _blas_limits(blas_threads):
        out = search(problem, rng=rng, n_starts=0, methods=(method,), starts=np.asarray(starts, dtype=float),
                     mode=mode, max_iter=max_iter, progress=False)
    res = []
    for r in out:
        d = _result_to_json(r)
        d["start_index"] = int(indices[r.start_index])
        res.append(d)
    return res


def _search_units(problem, rng, seed, n_starts, methods, explicit, mode, max_iter, blas_threads):
    """The multistart of :func:`landscape.search` as executor units: random starts are
    drawn here (so they are the same for every executor), dealt round-robin to the
    methods (start ``i`` uses ``methods[i % len(methods)]``); explicit starts are run
    with every method and get indices ``n_starts, n_starts + 1, ...``, method-major."""
    from ..runtime.executor import Resources, Unit

    rand = random_starts(problem, rng, int(n_starts))
    jobs: dict[str, list[tuple[int, np.ndarray]]] = {m: [] for m in methods}
    for i in range(len(rand)):
        jobs[methods[i % len(methods)]].append((i, rand[i]))
    j = len(rand)
    if explicit is not None:
        for m in methods:
            for U0 in explicit:
                jobs[m].append((j, U0))
                j += 1
    units = []
    chunk = 0
    tasks = np.array(problem.tasks)
    for m in methods:
        todo = jobs[m]
        for a in range(0, len(todo), STARTS_PER_UNIT):
            part = todo[a:a + STARTS_PER_UNIT]
            config = {"tasks": tasks, "k": problem.k, "method": m, "starts": np.stack([u for _, u in part]),
                      "indices": [int(i) for i, _ in part], "seed": int(seed), "chunk": chunk, "mode": mode,
                      "max_iter": max_iter, "blas_threads": blas_threads}
            units.append(Unit(f"search-{chunk:05d}-{m}", search_unit, config, Resources(cpus=1)))
            chunk += 1
    return units


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
    executor=None,
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
        Directory for ``report.json``, ``report.md``, ``run.json`` and the plots;
        validated and created (and proven writable) with the other inputs, before the
        search; written atomically, ``report.json`` last (:mod:`landscape.runtime.outdir`).
    methods : str or sequence
        Names from :data:`landscape.SEARCH_METHODS` or ``"all"``.
    curvature : {"auto", "dense", "hvp"}
        ``"dense"`` fails with :class:`LandscapeInputError` when the dense Schur
        complement does not fit in memory; ``"auto"`` switches to Hessian-vector
        products for large problems and the report says so.
    extra_starts : path or array (m, T, d, k), optional
        Explicit starting points, run with every method (in the user's units).
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
    executor : landscape.runtime.executor.Executor or str, optional
        Where the search units (:data:`STARTS_PER_UNIT` starts each) run; default: in
        this process.  The report does not depend on it.

    Notes
    -----
    The tasks are divided by :math:`2^e` (:func:`scale_exponent`, exact) before the
    search, so inputs scaled by :math:`10^{\pm150}` neither underflow nor overflow;
    :math:`G` is homogeneous of degree 2 in :math:`(A^\star, A, UU^\top)`, so every
    finding is the same and the report converts values back to the user's units
    (``input.scale_exponent``; certificates are for the normalised tasks, an exact
    rescaling).

    Returns
    -------
    AuditReport

    Raises
    ------
    LandscapeInputError
        Bad input of any kind (nothing is written then).
    """
    t0 = time.perf_counter()
    # ---------------- validation: everything before the search, `out` included
    user_input = _as_input(source)
    e = scale_exponent(user_input.tasks)
    units = _Units(e)
    task_input = _normalised(user_input, e)
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
            explicit = check_starts(extra_starts, problem)
        if e:
            with np.errstate(over="ignore", under="ignore"):
                explicit = np.ldexp(explicit, -e // 2)
            if not np.all(np.isfinite(explicit)):  # pragma: no cover - ldexp by -e/2 of finite input
                raise LandscapeInputError("starting points overflow after normalisation")
    if starts == 0 and explicit is None:
        raise LandscapeInputError("nothing to search: --starts 0 and no explicit starting points")
    start_bytes = 8 * int(starts) * problem.dim_U
    if start_bytes > MAX_ARRAY_BYTES:
        raise LandscapeInputError(f"--starts {starts}: the starting points alone would take "
                                  f"{start_bytes / 2**30:.1f} GiB (limit {MAX_ARRAY_BYTES / 2**30:.0f} GiB)")
    if executor is None or isinstance(executor, str):
        from ..runtime.executor import get_executor

        try:
            executor = get_executor(executor or "local")
        except (ValueError, ImportError) as exc:
            raise LandscapeInputError(f"--executor: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
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
    out_dir = prepare_out_dir(out) if out is not None else None

    try:
        return _audit_body(t0, user_input, task_input, problem, units, starts, seed, method_list, mode, curvature,
                           explicit, max_iter, certify, plots, progress, blas_threads, executor, out_dir, cost)
    except BaseException:
        if out_dir is not None:
            out_dir.discard_if_unused()
        raise
    finally:
        if out_dir is not None:
            out_dir.release()


def _audit_body(t0, user_input, task_input, problem, units, starts, seed, method_list, mode, curvature, explicit,
                max_iter, certify, plots, progress, blas_threads, executor, out_dir, cost):
    from ..runtime.executor import run_units

    rng = np.random.default_rng(seed)
    with _blas_limits(blas_threads):
        t_search = time.perf_counter()
        units_ = _search_units(problem, rng, seed, starts, method_list, explicit, mode.mode, max_iter, blas_threads)
        chunks = run_units(units_, executor=executor, progress=progress, desc="critical-point search")
        results = sorted((_result_from_json(d) for chunk in chunks for d in chunk), key=lambda r: r.start_index)
        t_search = time.perf_counter() - t_search
        A_star = task_input.A_star
        classifications = [classify_result(problem, r, A_star=A_star, rng=rng) for r in results]
        divergence = [_divergence(problem, r) for r in results]
        classifications = [cl if dv is None else replace(cl, kind=NOT_CRITICAL, reason=dv)
                           for cl, dv in zip(classifications, divergence)]
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
                if info.get("certificate") is not None and units.e:
                    info["certificate_scale"] = (f"certificate for the tasks divided by 2^{units.e} (exact); "
                                                 f"a point U of it is 2^{units.e // 2} U in your units")
            else:
                cert, info = None, {"status": "uncertified", "reason": "certification not requested"}
            cert_objects[c.id], cert_info[c.id] = cert, info
        t_cert = time.perf_counter() - t_cert
        cert_seconds = {str(cid): info.pop("_seconds") for cid, info in cert_info.items() if "_seconds" in info}

        # ---------------- summary
        counts = Counter(cl.kind for cl in classifications)
        glob_classes = [c for c in classes if c.kind == GLOBAL_MINIMUM]
        rec_flags = [c.classification.recovers_A_star for c in glob_classes]
        zero_dims = [c.classification.zero_set_dimension or 0 for c in glob_classes]
        varies = any(c.classification.A_varies_on_zero_set for c in glob_classes)
        distinct_A = len(glob_classes)  # classes modulo O(k) of global minima <-> values of A
        continuum = bool(glob_classes) and ((max(zero_dims) > 0 and (problem.T != 2 or varies))
                                            or (problem.T == 2 and distinct_A > 1))
        cont_summary = _continuum_summary(problem, glob_classes, results, units) if continuum else None
        summary = {
            "n_runs": len(results),
            "n_critical": sum(v for k_, v in counts.items() if k_ != NOT_CRITICAL),
            "counts": {k_: int(counts.get(k_, 0)) for k_ in KINDS},
            "diverged_runs": sum(dv is not None for dv in divergence),
            "n_classes": len(classes),
            "n_families": len({c.family for c in classes}),
            "global_minimum_found": bool(glob_classes),
            "distinct_global_A": distinct_A,
            "A_star_recovered": (any(rec_flags) if A_star is not None and glob_classes else None),
            "global_minimum_with_A_ne_A_star": (any(f is False for f in rec_flags)
                                                if A_star is not None and glob_classes else None),
            "continuum_of_global_minima": continuum,
            "zero_set_dimension": (max(zero_dims) if glob_classes else None),
            "global_minima_continuum": cont_summary,
            "zero_modes_at_global_minima": _zero_mode_summary(problem, glob_classes, units),
            "spurious_candidates": sum(1 for c in classes if c.kind == SPURIOUS_CANDIDATE),
            "certified_spurious": sum(1 for v in cert_info.values() if v["status"] == "certified"),
            "strict_saddle_classes": sum(1 for c in classes if c.kind == STRICT_SADDLE),
            "degenerate_classes": sum(1 for c in classes if c.kind == DEGENERATE),
            "all_nonglobal_critical_are_strict_saddles": all(
                c.kind in (GLOBAL_MINIMUM, STRICT_SADDLE) for c in classes),
        }
        r31 = _r31_check(task_input, problem.k, np.random.default_rng(seed))
        m1 = _model_m1_check(problem.tasks, problem.k)
        identical = bool(np.all(problem.tasks == problem.tasks[:1]))
        theory = theory_assessment(problem.T, problem.d, problem.k, summary, r31=r31, m1=m1,
                                   identical_tasks=identical)

        class_of_run = {}
        for c in classes:
            for i in c.members:
                class_of_run[i] = c.id
        runs = []
        for i, (r, cl, dv) in enumerate(zip(results, classifications, divergence)):
            runs.append({
                "index": int(r.start_index), "method": r.method, "kind": cl.kind, "diverged": dv is not None,
                "class_id": class_of_run.get(i), "loss": _num(units.loss(r.loss)),
                "grad_norm": _num(units.grad(r.grad_norm)),
                "lambda_min_quotient": _num(units.lin(r.spectrum.lambda_min_quotient)) if r.spectrum else None,
                "iterations": r.iterations, "polish_steps": r.polish_steps,
                "loss_before_polish": _num(units.loss(r.loss_before_polish)),
                "grad_norm_before_polish": _num(units.grad(r.grad_norm_before_polish)),
                "stop_reason": _one_line(r.stop_reason), "reason": units.reason(cl.reason),
            })
        s_norm = problem_scale(problem)
        data: dict[str, Any] = {
            "schema_version": REPORT_SCHEMA_VERSION,
            "tool": "landscape.audit",
            "input": {"source": user_input.source, "format": user_input.format, "keys": list(user_input.keys),
                      "T": problem.T, "d": problem.d, "k": problem.k, "truth_known": user_input.truth_known,
                      "scale": _num(units.lin(s_norm)), "scale_normalised": s_norm, "scale_exponent": units.e},
            "settings": {"n_random_starts": int(starts), "n_explicit_starts": 0 if explicit is None else len(explicit),
                         "seed": int(seed), "methods": list(method_list), "curvature": mode.mode,
                         "curvature_reason": mode.reason, "hvp_switch": mode.mode == "hvp" and curvature == "auto",
                         "max_iter": max_iter, "certify": bool(certify), "blas_threads": blas_threads,
                         "starts_per_unit": STARTS_PER_UNIT,
                         "estimated_seconds": cost.seconds, "estimated_bytes": cost.bytes},
            "summary": summary,
            "theory": theory,
            "r31": r31,
            "model_m1": m1,
            "classes": [_class_dict(c, results, cert_info.get(c.id), units, _zero_mode_note(problem, c, units))
                        for c in classes],
            "runs": runs,
            "plots": [],
        }
        timing = {"search_s": t_search, "certificates_s": t_cert, "certificate_s_by_class": cert_seconds}

        # ---------------- files: stale outputs removed, each file atomic, report.json last
        files = []
        if out_dir is not None:
            writer = ReportWriter(out_dir)
            writer.clear_stale()
            if plots:
                plot_rng = np.random.default_rng(seed)

                def saver(name):
                    def save(fig):
                        files.append(writer.save_figure(name, fig))
                        data["plots"].append(name)
                    return save

                crit = [cl for cl in classifications if cl.kind != NOT_CRITICAL]
                _plot_losses(saver("losses.png"), crit, units.e)
                for c in [c for c in classes if c.kind == SPURIOUS_CANDIDATE][:MAX_SPECTRUM_PLOTS]:
                    _plot_spectrum(saver(f"spectrum_class{c.id}.png"), c, results[c.representative])
                saddles = sorted((c for c in classes if c.kind == STRICT_SADDLE),
                                 key=lambda c: c.classification.loss)
                if saddles:
                    _plot_saddle(saver("saddle_direction.png"), problem, saddles[0],
                                 results[saddles[0].representative])
                pick = (glob_classes or [c for c in classes if c.kind == SPURIOUS_CANDIDATE] or classes)
                if pick:
                    _plot_orbit(saver("orbit.png"), problem, pick[0], results[pick[0].representative], plot_rng)
            md = _markdown(data, units)
            files.append(writer.write_text("report.md", md))
            timing["total_s"] = time.perf_counter() - t0
            run_info = {"timing": timing, "executor": getattr(executor, "name", "?"),
                        "workers": getattr(executor, "workers", None)}
            files.append(writer.write_text("run.json", json.dumps(_sanitize(run_info), indent=1, allow_nan=False)))
            files.append(writer.write_report(json.dumps(_sanitize(data), indent=1, allow_nan=False)))
        else:
            md = _markdown(data, units)
            timing["total_s"] = time.perf_counter() - t0
        data["timing"] = timing
    return AuditReport(data, md, tuple(files), problem, tuple(results), tuple(classifications), tuple(classes),
                       cert_objects)
