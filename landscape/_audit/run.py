r"""Audit of given task matrices: what does the LoRA-ML landscape look like?

:func:`audit` runs the critical-point searches of :mod:`landscape._search` from many
starts, classifies every end point modulo the orthogonal symmetry
(:mod:`landscape._classify`), identifies repeated points, asks the certificate module
about every spurious candidate, compares the findings with the theorem of THEORY.md
that applies to :math:`(T, d, k)` (:mod:`~landscape._audit.theory`) and writes
``report.json``, ``report.md`` (:mod:`~landscape._audit.report`) and SVG plots
(:mod:`~landscape._audit.plots`).  ``python -m landscape audit FILE --rank k`` is a thin
wrapper around it.  This module validates the input, has the searches run
(:mod:`~landscape._audit.search`), certifies candidates and puts the findings together.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from .._classify import (
    DEGENERATE,
    GLOBAL_MINIMUM,
    KINDS,
    NOT_CRITICAL,
    SPURIOUS_CANDIDATE,
    STRICT_SADDLE,
    classify_result,
    deduplicate,
)
from .._io import TaskInput, audit_problem, check_starts, load_starts, load_tasks
from .._objective import LoraMLProblem
from ..runtime.outdir import ReportWriter, prepare_out_dir
from ..runtime.safe_load import MAX_ARRAY_BYTES
from .._search import (SearchResult, _expand_methods, available_memory_bytes, curvature_mode, estimate_audit_cost,
                       problem_scale)
from .._random import renamed_keyword, seed_from
from .._validation import LandscapeInputError, as_task_stack
from .plots import MAX_SPECTRUM_PLOTS, _plot_losses, _plot_orbit, _plot_saddle, _plot_spectrum
from .report import REPORT_SCHEMA_VERSION, _class_dict, _markdown
from .search import STARTS_PER_UNIT, _blas_limits, _result_from_json, _search_units
from .theory import (_continuum_summary, _model_m1_check, _r31_check, _zero_mode_note, _zero_mode_summary,
                     theory_assessment)
from .units import _num, _one_line, _sanitize, _Units
from .result import AuditReport
from .enumeration import ENUMERATION_MODES, enumeration_markdown, enumeration_section, small_enough_for_auto

__all__ = ["AuditReport", "audit", "theory_assessment", "REPORT_SCHEMA_VERSION", "DEFAULT_STARTS"]

#: Default number of random starts: enough to hit every basin of more than ~5% mass
#: with probability > 0.99 (0.95^100 < 0.01) at a few seconds per audit for d ~ 10.
DEFAULT_STARTS = 100


def _bar(items, progress: bool, desc: str, unit: str):
    """``items`` with a progress bar on stderr when ``progress`` and stderr is a terminal."""
    if not progress or not items:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit=unit, leave=False, disable=None)


def _certify(problem, U, witness, rng):
    """Run the Taylor certificate of THEORY.md section 8 if the module provides it.

    Returns ``(certificate_or_None, summary_dict)``.
    """
    try:
        from .. import certificates as cert_mod
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


def enumeration_runs(enumeration: str, T: int, d: int) -> bool:
    """Whether an audit with ``enumeration`` (auto, on, off) of T tasks of side d runs the
    complete enumeration: always when "on", when "auto" for at most
    :data:`AUTO_MAX_UNKNOWNS` unknowns T d(d+1)/2 and msolve installed."""
    from ..enumeration import algebra_available

    return enumeration == "on" or (enumeration == "auto" and small_enough_for_auto(T, d)
                                   and algebra_available("msolve"))


def continuum_of_global_minima(T: int, zero_dims, varies: bool, distinct_A: int) -> bool:
    """Whether the global minima found lie on a continuum (the summary's
    ``continuum_of_global_minima``): none found, no; a zero-loss set of positive dimension
    modulo O(k) (``zero_dims``, one per class of global minima) is one for T != 2, and for
    T = 2 -- where every global minimum carries the O(k,k) family -- only when A varies
    along it; at T = 2, two distinct values of A among the minima found are one as well."""
    if not zero_dims:
        return False
    return (max(zero_dims) > 0 and (T != 2 or bool(varies))) or (T == 2 and distinct_A > 1)


def orbit_class(classes):
    """The class whose symmetry orbit the audit plots (``orbit.svg``): the first global
    minimum, else the first spurious-minimum candidate, else the first class of any kind;
    ``None`` when there are no classes."""
    for kind in (GLOBAL_MINIMUM, SPURIOUS_CANDIDATE):
        for c in classes:
            if c.kind == kind:
                return c
    return classes[0] if classes else None


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
    if isinstance(source, tuple) and len(source) == 2 and hasattr(source[0], "A_star"):
        raise LandscapeInputError("got a pair (instance, point): pass the instance as tasks, and the point as "
                                  "extra_starts=point[None] to start a search there")
    try:
        tasks = np.asarray(source)
    except (TypeError, ValueError) as exc:
        raise LandscapeInputError(f"tasks: not an array of shape (T, d, d) ({_one_line(exc)})") from None
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
    # the even e with log2(s) - e in (-1, 1], i.e. s / 2^e in (1/2, 2] (a rounding of
    # (log2 s) / 2 to the nearest integer put s / 2^e at 1/2 at half the odd powers of two)
    return 2 * math.ceil((math.log2(s) + e0 - 1) / 2)


def _normalised(task_input: TaskInput, e: int) -> TaskInput:
    if e == 0:
        return task_input
    A = None if task_input.A_star is None else np.ldexp(task_input.A_star, -e)
    U = None if task_input.U_star is None else np.ldexp(task_input.U_star, -e // 2)
    tasks = np.ldexp(task_input.tasks, -e)
    tasks.flags.writeable = False
    return TaskInput(tasks, A, U, task_input.source, task_input.format, task_input.keys)


def audit(
    source,
    k: int | None = None,
    *,
    starts: int = DEFAULT_STARTS,
    seed=0,
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
    enumeration: str = "auto",
    rank: int | None = None,
) -> AuditReport:
    r"""Audit the LoRA-ML landscape of given task matrices.

    Parameters
    ----------
    source : path, array (T, d, d), TaskInput or PlantedInstance
        The task matrices (see :func:`landscape.load_tasks` for file formats).
    k : int
        Adapter rank :math:`k` (:math:`1\le k<d`), the toolkit's one name for it
        (:mod:`landscape._random`); the old keyword ``rank=`` still works and warns.
    starts : int
        Number of random starts (dealt round-robin to the methods).
    seed : int >= 0 or numpy.random.Generator
        Seed of the ``numpy.random.Generator`` that drives everything.  A Generator
        gives its next integer as the seed (:func:`landscape.seed_from`); the report
        records the integer, which reproduces the audit.
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
        Ask :mod:`landscape.certificates` for a Taylor certificate at every spurious
        candidate (if that module is present); otherwise candidates are "uncertified".
    max_seconds : float, optional
        Refuse (:class:`LandscapeInputError`, nothing run or written) when
        :func:`landscape.estimate_audit_cost` predicts more seconds than this (CPU time
        of one idle core, within a factor 2 of measured audits; a busy machine takes
        longer).  A predicted peak memory above the available memory
        (:func:`landscape._search.available_memory_bytes`) is always refused.
    blas_threads : int or None
        BLAS threads during the audit.  The matrices are small (d x d per task), where
        OpenBLAS threading costs more than it saves (10-100x slower ``eigh`` of 30 x 30
        matrices measured on 2 busy cores); None leaves the setting alone.
    executor : landscape.runtime.executor.Executor or str, optional
        Where the search units (:data:`STARTS_PER_UNIT` starts each) run; default: in
        this process.  The report does not depend on it.
    enumeration : {"auto", "on", "off"}
        Complete, certified enumeration of the critical points (issue 20,
        :mod:`landscape._audit.enumeration`): ``"auto"`` runs it when msolve is installed
        and the instance is small, ``"on"`` always (an error without msolve).  The report's
        ``enumeration`` object then gives the recall of the search and exact verdicts.

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
    k = renamed_keyword("audit", "rank", "k", rank, k)
    if k is None:
        raise TypeError("audit() needs the adapter rank k: audit(source, k, ...)")
    # ---------------- validation: everything before the search, `out` included
    user_input = _as_input(source)
    e = scale_exponent(user_input.tasks)
    units = _Units(e)
    task_input = _normalised(user_input, e)
    # the user's tasks as given are read only by the exact enumeration: a rescaled input
    # keeps them only when one runs (zeros of the same shape stand in otherwise)
    T_, d_ = user_input.tasks.shape[:2]
    enumerates = enumeration_runs(enumeration, T_, d_)
    keep = e == 0 or enumerates
    user_input = SimpleNamespace(**{a: getattr(user_input, a) for a in ("source", "format", "keys", "truth_known")},
                                 tasks=user_input.tasks if keep else np.broadcast_to(0.0, user_input.tasks.shape))
    problem = audit_problem(task_input, k)
    if isinstance(starts, bool) or not isinstance(starts, (int, np.integer)) or starts < 0:
        raise LandscapeInputError(f"--starts must be a non-negative integer, got {starts!r}")
    try:
        seed = seed_from(seed)
    except TypeError as exc:
        raise LandscapeInputError(str(exc)) from None
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
            # the refusal's first non-blank line as written, its repr when it has none
            first = next((ln for ln in str(exc).splitlines() if ln.strip()), repr(exc))
            raise LandscapeInputError(f"--executor: {first}") from None
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                    or not np.isfinite(max_seconds) or max_seconds <= 0):
        raise LandscapeInputError(f"--max-seconds must be a positive number, got {max_seconds!r}")
    if enumeration not in ENUMERATION_MODES:
        raise LandscapeInputError(f"enumeration must be one of {ENUMERATION_MODES}, got {enumeration!r}")
    from ..enumeration import algebra_available

    if enumeration == "on" and not algebra_available("msolve"):
        raise LandscapeInputError("--enumerate needs msolve (pip install '.[algebra]')")
    n_total = int(starts) + (0 if explicit is None else len(explicit) * len(method_list))
    cost = estimate_audit_cost(problem.d, problem.T, problem.k, n_total, curvature=mode.mode, plots=bool(plots),
                               certify=bool(certify), truth_known=task_input.U_star is not None,
                               enumeration=enumerates)
    if max_seconds is not None and cost.seconds > max_seconds:
        raise LandscapeInputError(f"refused: {cost.describe()}, above --max-seconds {max_seconds:g}")
    avail = available_memory_bytes()
    if cost.bytes > avail:
        raise LandscapeInputError(f"refused: {cost.describe()}, above the {avail / 2**30:.2f} GiB of memory available")
    out_dir = prepare_out_dir(out) if out is not None else None

    try:
        return _audit_body(t0, user_input, task_input, problem, units, starts, seed, method_list, mode, curvature,
                           explicit, max_iter, certify, plots, progress, blas_threads, executor, out_dir, cost,
                           enumeration)
    except BaseException:
        if out_dir is not None:
            out_dir.discard_if_unused()
        raise
    finally:
        if out_dir is not None:
            out_dir.release()


def _audit_body(t0, user_input, task_input, problem, units, starts, seed, method_list, mode, curvature, explicit,
                max_iter, certify, plots, progress, blas_threads, executor, out_dir, cost, enumeration="off"):
    from ..runtime.executor import run_units

    rng = np.random.default_rng(seed)
    with _blas_limits(blas_threads):
        t_search = time.perf_counter()
        units_ = _search_units(problem, rng, seed, starts, method_list, explicit, mode.mode, max_iter, blas_threads)
        chunks = run_units(units_, executor=executor, progress=progress, desc="critical-point search")
        results = sorted((_result_from_json(d) for chunk in chunks for d in chunk), key=lambda r: r.start_index)
        t_search = time.perf_counter() - t_search
        A_star = task_input.A_star
        # the minutes after the search (classification, certificates) get their own bars
        classifications = [classify_result(problem, r, A_star=A_star, rng=rng)
                           for r in _bar(results, progress, "classifying endpoints", "run")]
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
        for c in _bar([c for c in classes if c.kind == SPURIOUS_CANDIDATE], progress and certify,
                      "certifying spurious candidates", "class"):
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
        continuum = continuum_of_global_minima(problem.T, zero_dims, varies, distinct_A)
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
        t_enum = time.perf_counter()
        enum_sec = enumeration_section(enumeration, np.asarray(user_input.tasks), problem.k, classes, results,
                                       units.e)
        t_enum = time.perf_counter() - t_enum
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
            "classes": [_class_dict(c, results, cert_info.get(c.id), units, _zero_mode_note(problem, c, units),
                                    g0=0.5 * problem.T * s_norm ** 2)
                        for c in classes],
            "runs": runs,
            "plots": [],
            "enumeration": enum_sec,
        }
        timing = {"search_s": t_search, "certificates_s": t_cert, "certificate_s_by_class": cert_seconds,
                  "enumeration_s": t_enum}

        # ---------------- files: stale outputs removed, each file atomic, report.json last
        files = []
        if out_dir is not None:
            writer = ReportWriter(out_dir)
            writer.clear_stale()
            if plots:
                t_plots = time.perf_counter()
                plot_rng = np.random.default_rng(seed)

                def saver(name):
                    def save(chart):
                        files.append(writer.write_text(name, chart.to_svg()))
                        data["plots"].append(name)
                    return save

                crit = [cl for cl in classifications if cl.kind != NOT_CRITICAL]
                _plot_losses(saver("losses.svg"), crit, units.e)
                for c in [c for c in classes if c.kind == SPURIOUS_CANDIDATE][:MAX_SPECTRUM_PLOTS]:
                    _plot_spectrum(saver(f"spectrum_class{c.id}.svg"), c, results[c.representative], units=units,
                                   problem=problem)
                saddles = sorted((c for c in classes if c.kind == STRICT_SADDLE),
                                 key=lambda c: c.classification.loss)
                if saddles:
                    _plot_saddle(saver("saddle_direction.svg"), problem, saddles[0],
                                 results[saddles[0].representative], units=units)
                shown = orbit_class(classes)
                if shown is not None:
                    _plot_orbit(saver("orbit.svg"), problem, shown, results[shown.representative], plot_rng,
                                units=units)
                timing["plots_s"] = time.perf_counter() - t_plots
            md = _markdown(data, units) + enumeration_markdown(enum_sec)
            files.append(writer.write_text("report.md", md))
            timing["total_s"] = time.perf_counter() - t0
            run_info = {"timing": timing, "executor": getattr(executor, "name", "?"),
                        "workers": getattr(executor, "workers", None)}
            files.append(writer.write_text("run.json", json.dumps(_sanitize(run_info), indent=1, allow_nan=False)))
            files.append(writer.write_report(json.dumps(_sanitize(data), indent=1, allow_nan=False)))
        else:
            md = _markdown(data, units) + enumeration_markdown(enum_sec)
            timing["total_s"] = time.perf_counter() - t0
        data["timing"] = timing
    return AuditReport(data, md, tuple(files), problem, tuple(results), tuple(classifications), tuple(classes),
                       cert_objects)
