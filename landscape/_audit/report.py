r"""Writing the audit's report: ``report.json``'s entries and ``report.md``.

The JSON schema is documented in ``landscape/REPORT_SCHEMA.md``
(:data:`REPORT_SCHEMA_VERSION`); the files themselves are written atomically by
:class:`landscape.runtime.outdir.ReportWriter`.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .._classify import DEGENERATE, GLOBAL_MINIMUM, KINDS, NOT_CRITICAL, SPURIOUS_CANDIDATE, CriticalClass
from .units import MAX_JSON_MATRIX_ENTRIES, _num, _one_line, _Units

REPORT_SCHEMA_VERSION = "1.0"


def _class_dict(cls: CriticalClass, results, certificate_info, units: _Units, note, g0=None):
    """One entry of ``report.json``'s ``classes``; ``g0`` is G(0) of the normalised tasks
    (:math:`Ts^2/2`), which gives the scale-free ``loss_relative`` = G / G(0)."""
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
        "loss_relative": _num(c.loss / g0) if g0 else None,
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
        "A_hat": units.matrix(c.A_hat).tolist() if rep.point.shape[1] ** 2 <= MAX_JSON_MATRIX_ENTRIES else None,
        "negative_direction": None if c.negative_direction is None else np.asarray(c.negative_direction).tolist(),
        "certificate": certificate_info,
    }


def _markdown(data: dict, units: _Units) -> str:
    inp, st, sm, th = data["input"], data["settings"], data["summary"], data["theory"]
    lines = [
        f"# LoRA-ML landscape audit: {inp['source']}",
        "",
        f"* Tasks: T = {inp['T']}, d = {inp['d']}, adapter rank k = {inp['k']}; "
        f"truth (A*, U*) {'known' if inp['truth_known'] else 'not given'}.",
        "* G is in your units; G / G(0) is the same value relative to the loss at U = 0, "
        "G(0) = T s^2 / 2 with s the tasks' natural scale, so it does not depend on how the tasks are scaled.",
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
              "| id | kind | runs | family | G | G / G(0) | lambda_min (quotient) | ||A - A*|| | certificate |",
              "|---|---|---|---|---|---|---|---|---|"]
    rows = data["classes"]
    if cont:
        glob = [c for c in rows if c["kind"] == GLOBAL_MINIMUM]
        rows = [c for c in rows if c["kind"] != GLOBAL_MINIMUM]
        if glob:
            lines.append(f"| {glob[0]['id']} (+{len(glob) - 1}) | global_minimum (O(k,k) continuum) | "
                         f"{sum(c['count'] for c in glob)} | {glob[0]['family']} | "
                         f"{units.fmt(glob[0]['loss_normalised'])} | {_rel(glob[0])} | zero modes | | |")
    for c in rows:
        cert = c["certificate"]["status"] if c["certificate"] else ""
        dist = "" if c["A_star_distance"] is None else f"{c['A_star_distance']:.2e}"
        lam = c["lambda_min_quotient"]
        lam_s = f"{lam:.3e}" if isinstance(lam, float) else str(lam)
        lines.append(f"| {c['id']} | {c['kind']} | {c['count']} | {c['family']} | {units.fmt(c['loss_normalised'])} | "
                     f"{_rel(c)} | {lam_s} | {dist} | {cert} |")
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
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in data["plots"]]
    lines.append("")
    return "\n".join(lines)


def _rel(c) -> str:
    """G / G(0) of a class entry, as report.md prints it."""
    r = c.get("loss_relative")
    return "" if r is None else f"{r:.3e}"


#: Diverged runs listed one per line in report.md (all of them are in report.json).
MAX_LISTED_RUNS = 20
