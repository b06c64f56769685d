r"""Exact verdicts inside the audit: the complete enumeration of issue 20.

When the instance is small enough (or the caller asks), the audit runs
:func:`landscape.enumeration.enumerate_critical_points` on the user's tasks and
compares it with what the search found:

* recall: how many of the critical orbits (and, for :math:`k=1`, :math:`T\ge3`, of the
  critical points with every sign copy) the search reached;
* exact verdicts: the lowest critical value, and for every class of the search its
  certified class from the enumeration (a spurious candidate is *spurious* only when a
  certainly lower critical value exists).

Classes and orbits are matched through invariants of the symmetry: the matrices
:math:`X_t=U_tU_t^\top` for :math:`T\ge3`, and :math:`X_1-X_2` for :math:`T=2` (which
the :math:`O(k,k)` boosts preserve).  The audit works on the tasks divided by
:math:`2^e`; its points are rescaled by :math:`2^{e}` in :math:`X` before matching.
"""
from __future__ import annotations

import numpy as np

from .._validation import LandscapeInputError

__all__ = ["AUTO_MAX_UNKNOWNS", "ENUMERATION_MODES", "invariant_unknowns", "small_enough_for_auto", "enumeration_section",
           "enumeration_markdown"]

#: ``enumeration="auto"`` runs the enumeration when the invariant system has at most this
#: many unknowns (T d(d+1)/2): (2, T<=4, 1) and (3, 2, 1) take about a second; (3, 3, 1)
#: (18 unknowns, tens of seconds) needs ``enumeration="on"`` (``--enumerate``).
AUTO_MAX_UNKNOWNS = 12
ENUMERATION_MODES = ("auto", "on", "off")
MATCH_RTOL = 1e-6


def invariant_unknowns(T: int, d: int) -> int:
    """Unknowns of the invariant system of T tasks of side d: one symmetric d x d matrix
    X_t = U_t U_t^T per task, T d(d+1)/2."""
    return T * d * (d + 1) // 2


def small_enough_for_auto(T: int, d: int) -> bool:
    """Whether ``enumeration="auto"`` enumerates T tasks of side d (msolve installed):
    at most :data:`AUTO_MAX_UNKNOWNS` unknowns."""
    return invariant_unknowns(T, d) <= AUTO_MAX_UNKNOWNS


def _invariant(U: np.ndarray, scale_exp: int) -> np.ndarray:
    X = np.ldexp(U @ np.swapaxes(U, 1, 2), scale_exp)
    return X[0] - X[1] if X.shape[0] == 2 else X


def enumeration_section(mode: str, user_tasks: np.ndarray, k: int, classes, results, scale_exp: int,
                        timeout: float = 300.0) -> dict:
    """The report's ``enumeration`` object (``{"ran": false, "reason": ...}`` when skipped)."""
    if mode not in ENUMERATION_MODES:
        raise LandscapeInputError(f"enumeration must be one of {ENUMERATION_MODES}, got {mode!r}")
    from ..enumeration import algebra_available, enumerate_critical_points
    from ..enumeration._points import GLOBAL_MINIMUM, LOWEST_MINIMUM, SPURIOUS

    T, d = user_tasks.shape[0], user_tasks.shape[1]
    unknowns = invariant_unknowns(T, d)
    if mode == "off":
        return {"ran": False, "reason": "switched off"}
    if not algebra_available("msolve"):
        if mode == "on":
            raise LandscapeInputError("--enumerate needs msolve (pip install '.[algebra]')")
        return {"ran": False, "reason": "msolve not installed (extra 'algebra')"}
    if mode == "auto" and not small_enough_for_auto(T, d):
        return {"ran": False, "reason": f"instance too large for the automatic enumeration ({unknowns} > "
                                        f"{AUTO_MAX_UNKNOWNS} unknowns); use --enumerate"}
    res = enumerate_critical_points(user_tasks, k, timeout=timeout)
    orbits = res.data["orbit_list"]
    refs = [_invariant(U, 0) for U in res.points]
    found = [False] * len(orbits)
    exact_of_class = {}
    for c in classes:
        if c.kind == "not_critical":
            continue
        U = results[c.representative].point
        inv = _invariant(U, scale_exp)
        if not refs:
            continue
        dists = [float(np.max(np.abs(inv - R))) for R in refs]
        j = int(np.argmin(dists))
        if dists[j] <= MATCH_RTOL * (1.0 + float(np.max(np.abs(inv)))):
            found[j] = True
            exact_of_class[int(c.id)] = {"orbit": j, "exact_class": orbits[j]["class"]}
        else:
            exact_of_class[int(c.id)] = {"orbit": None, "exact_class": None}
    copies = [o["copies"] for o in orbits]
    low = res.data["lowest_critical_value"]
    minima = (GLOBAL_MINIMUM, LOWEST_MINIMUM)
    spurious = [i for i, o in enumerate(orbits) if o["class"] == SPURIOUS]
    return {
        "ran": True,
        "complete": res.complete,
        "non_isolated": res.data["non_isolated"],
        "real_critical_points": res.data["real_critical_points"],
        "copies_counted": res.data.get("copies_counted", False),
        "orbits": len(orbits),
        "orbits_found_by_search": int(sum(found)),
        "points_found_by_search": int(sum(c for c, f in zip(copies, found) if f)),
        "spurious_minima": len(spurious),
        "spurious_minima_found_by_search": int(sum(found[i] for i in spurious)),
        "lowest_critical_value": low,
        "lowest_minimum_found_by_search": any(found[i] for i, o in enumerate(orbits) if o["class"] in minima),
        "counts_by_class": res.data["counts_by_class"],
        "classes": {str(k_): v for k_, v in exact_of_class.items()},
        "degree": res.data["degree"],
        "seconds": res.data["wall_time_s"],
    }


def enumeration_markdown(sec: dict) -> str:
    if not sec or not sec.get("ran"):
        reason = (sec or {}).get("reason", "not run")
        return f"\n## Complete enumeration\n\nNot run: {reason}.\n"
    unit = "critical points" if sec["copies_counted"] else "critical orbits"
    total = sec["real_critical_points"] if sec["copies_counted"] else sec["orbits"]
    got = sec["points_found_by_search"] if sec["copies_counted"] else sec["orbits_found_by_search"]
    lines = ["", "## Complete enumeration", "",
             f"Complete enumeration ({'certified complete' if sec['complete'] else 'NOT certified complete'}): "
             f"the search found {got} of {total} {unit} "
             f"({sec['orbits_found_by_search']} of {sec['orbits']} orbits); "
             f"spurious local minima: {sec['spurious_minima']} "
             f"(found by the search: {sec['spurious_minima_found_by_search']}).",
             f"Lowest critical value: {sec['lowest_critical_value']:.6g} "
             f"(found by the search: {sec['lowest_minimum_found_by_search']}); a class above it is a spurious "
             "minimum only if the enumeration certifies it a local minimum."]
    if sec["non_isolated"]:
        lines.append("The critical set is not isolated (T = 2 boosts); counts are per boost orbit.")
    return "\n".join(lines) + "\n"
