r"""Judging the audit's findings against the theorems of THEORY.md.

Which statement applies to :math:`(T, d, k)` and whether the findings agree with it
(:func:`theory_assessment`), the hypotheses it needs (task diversity R3.1, tasks of model
M1), and what the theory says about the global minima found: the zero modes of their
symmetry orbits and the T = 2 continuum (THEORY.md section 4).
"""
from __future__ import annotations

import numpy as np

from .._classify import DEGENERATE, GLOBAL_MINIMUM, CriticalClass
from .._io import TaskInput
from .._objective import LoraMLProblem
from .units import MAX_JSON_MATRIX_ENTRIES, _num, _Units

#: Singular values of a column subset below this fraction of the largest count as
#: dependent in the R3.1 check (Gaussian factors are far from this, ~1e-2 or more).
R31_RTOL = 1e-10


#: Pairwise task differences count as symmetric below this relative asymmetry
#: (round-off of a difference of O(1) matrices is ~1e-16; text inputs keep ~1e-12).
M1_SYMMETRY_RTOL = 1e-9


#: Random column subsets examined by the R3.1 check when the truth is known.
R31_SUBSETS = 64


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
