r"""The theory atlas: where the landscape theorems hold, inside and beyond their hypotheses.

A sweep over :math:`(d, k, T)` (``d/k`` from 1 to 4, ``T`` from 2 to 6), several
random model-M1 instances per cell (:func:`landscape.random_instance`).  Per instance,
with the landscape tools:

``non-uniqueness`` (Thm 3.3, THEORY.md section 4)
    A zero-loss point with :math:`A\ne A^\star` found by the multistart search on
    :math:`G` (:func:`landscape.search` + :func:`landscape.classify`) or by
    Levenberg-Marquardt on the joint residuals (:func:`theory.uniqueness_report`).
    Thm 3.3 needs :math:`T\ge3` and :math:`d\ge3k`; for :math:`T=2` the global minima
    form an :math:`O(k,k)` continuum (Thm 3.2), and below :math:`3k` THEORY.md reports
    second minimisers (:math:`d=2k`; :math:`d=5,k=2,T=3`).
``spurious local minima`` (App. F.2, THEORY.md section 8)
    Critical points with :math:`G>0` and :math:`S` positive definite on the quotient
    (``spurious_candidate``), certified with :func:`landscape.taylor_certificate`
    (witness :math:`U^\star`) where its size budget allows; their frequency is the
    fraction of gradient-descent starts from random points that end at one.
``strict saddle`` (Thm 3.4, THEORY.md section 6)
    Every critical point with :math:`G>0` found (root finding on :math:`\nabla G=0`
    lands on saddles) is a strict saddle.  Thm 3.4 claims this for :math:`T=2`,
    :math:`d\ge2k`; the atlas measures it everywhere.
``GD success`` (THEORY.md 9.1, "we do not encounter spurious minima in practice")
    The fraction of runs of the official alternating gradient descent from the paper's
    initialisation (:math:`A_0=0`, :math:`U_{t,0}\sim\mathcal N(0,0.1^2)`, official
    step sizes, ``gd_outer`` outer steps) that end at a global minimum after monotone
    descent (:func:`landscape.gradient_descent`) from the GD endpoint, classified by
    :func:`landscape.classify`.  Whether the raw endpoint already has
    :math:`\mathcal L\le` ``GD_REACH_RTOL`` :math:`G(0)` is recorded too.

Each cell is one :class:`landscape.runtime.executor.Unit` (``atlas_cell``), a pure function
of its configuration (the seed included): results are stored atomically in a
:class:`landscape.runtime.executor.ResultStore`, an interrupted sweep resumes, and cells run
anywhere can be merged by copying their files into one store.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
import numpy as np

from landscape import (
    CertificateNotApplicable,
    CertificateTooLarge,
    LoraMLProblem,
    deduplicate,
    gradient_descent,
    random_instance,
    search,
    taylor_certificate,
)
from landscape._classify import (
    DEGENERATE,
    GLOBAL_MINIMUM,
    NOT_CRITICAL,
    SPURIOUS_CANDIDATE,
    STRICT_SADDLE,
    classify_result,
)
from landscape._search import problem_scale
from landscape.runtime.store import ResultStore
from landscape.runtime.executor import Unit, run_units
from landscape.runtime.atomic import atomic_write_text

from ._atlas_plots import plot_property
from ._checks_minima import uniqueness_report
from ._result import CI_LEVEL, clopper_pearson

__all__ = [
    "AtlasConfig",
    "SMOKE",
    "FULL",
    "PROPERTIES",
    "atlas",
    "atlas_cell",
    "atlas_units",
    "paper_gd",
    "summarise",
    "write_atlas",
]

#: A GD endpoint has reached the zero set when its joint loss is below this fraction of
#: G(0) (the loss at U = 0 with the optimal A, the natural loss scale).  The official GD
#: converges linearly to a global minimum (THEORY.md: ~1e-27 after 3000 outer steps);
#: the positive critical values met on M1 instances are >= 1e-3 G(0) (F.2: ~1e-2), so
#: any threshold in between separates "reached" from "stuck"; 1e-8 leaves room for the
#: slowest linear rates seen on the grid.
GD_REACH_RTOL = 1e-8

#: Iteration cap of the multistart searches (gradient descent and root finding).  The
#: landscape default (5000) is for an audit of one instance; descent from random starts
#: converges in a few hundred Barzilai-Borwein steps except next to non-isolated zero sets
#: (2k < d < 3k), where the extra iterations only turn a "not critical" into a global
#: minimum and cost most of the atlas's time.  The continued descent from the paper's
#: GD endpoint keeps the landscape default, since there the end point is the outcome.
SEARCH_MAX_ITER = 2000

#: At most this many spurious candidates per instance are certified (each certificate
#: is an arb computation of O(n^3) in n = T d k); the others are counted as candidates.
MAX_CERTIFICATES = 2

#: The properties drawn as heat maps: key, title, what one trial is.
PROPERTIES = (
    ("non_unique", "second global minimiser (A != A*)", "instances"),
    ("spurious", "spurious local minimum found", "instances"),
    ("spurious_frequency", "GD from random starts ending at a spurious minimum", "starts"),
    ("strict_saddle", "every critical point with G > 0 is a strict saddle", "instances"),
    ("gd_success", "paper-initialised GD reaches a global minimum", "runs"),
)

#: How a count relates to the truth of an instance.  Existence properties are found by a
#: finite search, so their counts are lower bounds ("at least"); "every critical point
#: with G > 0 found is a strict saddle" can only be refuted by more search ("at most");
#: frequencies are estimates over the starts or runs made.
BOUNDS = {
    "non_unique": "at least",
    "spurious": "at least",
    "spurious_certified": "at least",
    "spurious_classes": "at least",
    "strict_saddle": "at most",
    "spurious_frequency": "estimate",
    "gd_success": "estimate",
}


@dataclass(frozen=True)
class AtlasConfig:
    """Grid and effort of an atlas run.

    ``ratios`` are the values of d/k; each cell is ``(d, k, T) = (r k, k, T)``; with
    ``every_d`` the rows are every integer d with ``min(ratios) k <= d <= max(ratios) k``
    (for k = 2 also d/k = 1.5, 2.5, 3.5, e.g. the d = 5, k = 2 case of THEORY.md).
    ``starts`` random starts per instance are dealt to gradient descent and root
    finding alternately (:func:`landscape.search`); ``lm_starts`` more go to
    Levenberg-Marquardt on the joint residuals; ``gd_runs`` runs of the paper's GD of
    ``gd_outer`` outer steps each.
    """

    ks: tuple = (1, 2)
    ratios: tuple = (1, 2, 3, 4)
    Ts: tuple = (2, 3, 4, 5, 6)
    instances: int = 4
    starts: int = 100
    lm_starts: int = 50
    gd_runs: int = 3
    gd_outer: int = 1000
    certify_max_dim: int = 100
    every_d: bool = True

    def ds(self, k: int) -> list[int]:
        if self.every_d:
            return list(range(int(math.ceil(min(self.ratios) * k)), int(max(self.ratios) * k) + 1))
        return [int(r * k) for r in self.ratios]

    def cells(self):
        return [(d, k, T) for k in self.ks for d in self.ds(k) for T in self.Ts]


#: Tiny grid for the tests and ``--smoke`` (well under a minute).
SMOKE = AtlasConfig(ks=(1,), ratios=(1, 2, 3), Ts=(2, 3), instances=2, starts=4, lm_starts=2, gd_runs=1,
                    gd_outer=200, certify_max_dim=30, every_d=False)

#: The committed run (theory/results/atlas): 55 cells (k = 1: d = 1..4; k = 2:
#: d = 2..8) x 4 instances at 100 starts (+ 50 Levenberg-Marquardt starts) per instance.
#: The effort sweep (theory/results/atlas/effort/EFFORT.md) saw every spurious count stop
#: growing by 25 starts and every other count but the continua's by 50, so 100 leaves a
#: factor of 4 and 2; about 1.5 hours of one core.  ``python -m theory atlas --starts N``
#: runs the same grid with less effort (a "custom" run).
FULL = AtlasConfig(starts=100, lm_starts=50)


def instance_seed(seed: int, d: int, k: int, T: int, i: int) -> int:
    """The seed of instance ``i`` of cell ``(d, k, T)`` (stored in the results)."""
    return int(np.random.SeedSequence([int(seed), d, k, T, i]).generate_state(1, dtype=np.uint64)[0])


def paper_gd(problem: LoraMLProblem, rng: np.random.Generator, runs: int, *, outer: int = 3000, inner: int = 10,
             lr_U: float = 0.003, lr_A: float = 0.03, init_std: float = 0.1):
    r"""The official alternating GD (THEORY.md 9.1) for ``runs`` independent
    initialisations at once; the same iteration as
    :func:`theory.official_alternating_gd`, batched over runs.

    Returns ``(A, U)`` of shapes ``(runs, d, d)`` and ``(runs, T, d, k)``.
    """
    T, d, k = problem.T, problem.d, problem.k
    A = np.zeros((runs, d, d))
    U = init_std * rng.standard_normal((runs, T, d, k))
    tasks = problem.tasks[None]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(outer):
            for _ in range(inner):
                R = A[:, None] + U @ np.swapaxes(U, -1, -2) - tasks
                U = U - lr_U * (R + np.swapaxes(R, -1, -2)) @ U
            R = A[:, None] + U @ np.swapaxes(U, -1, -2) - tasks
            A = A - lr_A * R.mean(axis=1)
    return A, U


def _certify(problem, U, U_star, max_dim):
    """Taylor certificate of a spurious candidate: 'certified', 'refused' or 'too_large'."""
    if problem.dim_U > max_dim:
        return "too_large"
    try:
        cert = taylor_certificate(problem, U, witness=U_star, max_dim=max_dim)
    except (CertificateTooLarge, CertificateNotApplicable):
        return "too_large"
    return "certified" if cert.certified else "refused"


def _instance(d, k, T, seed, starts, lm_starts, gd_runs, gd_outer, certify_max_dim) -> dict:
    rng = np.random.default_rng(seed)
    inst = random_instance(rng, d, T, k)
    prob = inst.problem
    # -- critical points: GD (minima) and root finding (saddles) from random starts
    results = search(prob, rng=rng, n_starts=starts, methods=("gd", "root-lm"), max_iter=SEARCH_MAX_ITER)
    cls = [classify_result(prob, r, A_star=inst.A_star, rng=rng) for r in results]
    classes = deduplicate(prob, [r.point for r in results], cls)
    gd_kinds = [c.kind for r, c in zip(results, cls) if r.method == "gd"]
    glob = [c for c in classes if c.kind == GLOBAL_MINIMUM]
    second = [c for c in glob if c.classification.recovers_A_star is False]
    positive = [c for c in classes if c.kind in (STRICT_SADDLE, SPURIOUS_CANDIDATE, DEGENERATE)]
    spurious = [c for c in classes if c.kind == SPURIOUS_CANDIDATE]
    certs = [_certify(prob, results[c.representative].point, inst.U_star, certify_max_dim)
             for c in spurious[:MAX_CERTIFICATES]]
    # -- zero-loss points by Levenberg-Marquardt on the joint residuals
    # (MINPACK's LM needs at least as many residuals, T d^2, as unknowns, d^2 + T d k)
    lm_ok = T * d * d >= d * d + T * d * k
    rep = uniqueness_report(inst, rng, starts=lm_starts) if lm_starts and lm_ok else None
    # -- the paper's GD: official initialisation and steps, then continued descent
    A_gd, U_gd = paper_gd(prob, rng, gd_runs, outer=gd_outer)
    G0 = prob.reduced_loss(np.zeros((T, d, k)))
    gd_loss, kinds = [], {}
    finite = [j for j in range(gd_runs) if np.all(np.isfinite(A_gd[j])) and np.all(np.isfinite(U_gd[j]))]
    for j in range(gd_runs):
        gd_loss.append(float(prob.loss(A_gd[j], U_gd[j])) if j in finite else float("inf"))
    if finite:
        # The official step sizes are tuned for d = 10; on small d its linear rate is so
        # slow that a fixed budget says nothing about *where* GD goes.  Monotone descent
        # (Barzilai-Borwein + Armijo on G) from the GD endpoint finishes the trip without
        # leaving the basin, and the classification of its end point is the outcome.
        cont = gradient_descent(prob, U_gd[finite], rng=rng)
        kinds = {j: classify_result(prob, r, A_star=inst.A_star, rng=rng).kind for j, r in zip(finite, cont)}
    gd_kind = [kinds[j] if j in finite else "diverged" for j in range(gd_runs)]
    return {
        "seed": int(seed),
        "scale": float(problem_scale(prob)),
        "kinds": {kind: int(sum(c.kind == kind for c in cls)) for kind in
                  (GLOBAL_MINIMUM, SPURIOUS_CANDIDATE, STRICT_SADDLE, DEGENERATE, NOT_CRITICAL)},
        "classes": {kind: int(sum(c.kind == kind for c in classes)) for kind in
                    (GLOBAL_MINIMUM, SPURIOUS_CANDIDATE, STRICT_SADDLE, DEGENERATE)},
        "gd_starts": len(gd_kinds),
        "gd_starts_spurious": int(sum(kd == SPURIOUS_CANDIDATE for kd in gd_kinds)),
        "gd_starts_global": int(sum(kd == GLOBAL_MINIMUM for kd in gd_kinds)),
        "second_minimisers_search": len(second),
        "max_A_distance": float(max((c.classification.A_star_distance for c in second), default=0.0)),
        "lm_starts": int(lm_starts) if rep else 0,
        "lm_zero": int(rep.n_zero) if rep else 0,
        "second_minimisers_lm": int(rep.n_exceptions) if rep else 0,
        "lm_nullity": int(rep.nullity) if rep else -1,
        "positive_critical": len(positive),
        "strict_saddles": int(sum(c.kind == STRICT_SADDLE for c in positive)),
        "spurious_classes": len(spurious),
        "degenerate_classes": int(sum(c.kind == DEGENERATE for c in positive)),
        "certificates": certs,
        "gd_endpoint_loss_relative": [x / G0 if G0 > 0 else x for x in gd_loss],
        "gd_endpoint_reached": [bool(x <= GD_REACH_RTOL * G0) for x in gd_loss],
        "gd_reached": [kd == GLOBAL_MINIMUM for kd in gd_kind],
        "gd_final_kind": gd_kind,
    }


def atlas_cell(*, d: int, k: int, T: int, seed: int, instances: int, starts: int, lm_starts: int, gd_runs: int,
               gd_outer: int, certify_max_dim: int) -> dict:
    """One cell of the atlas (a :class:`landscape.runtime.executor.Unit` function): every
    instance's record and the cell's counts (see :func:`summarise`)."""
    t0 = time.perf_counter()
    recs = [_instance(d, k, T, instance_seed(seed, d, k, T, i), starts, lm_starts, gd_runs, gd_outer,
                      certify_max_dim) for i in range(instances)]
    return {"d": d, "k": k, "T": T, "instances": recs, "counts": _counts(recs),
            "effort": _effort(starts, lm_starts, gd_runs, gd_outer, T, d, k),
            "seconds": round(time.perf_counter() - t0, 3)}


def _effort(starts, lm_starts, gd_runs, gd_outer, T, d, k) -> dict:
    """Search effort per instance of a cell (the counts are what this effort found)."""
    return {"starts": int(starts), "gd_starts": int((starts + 1) // 2), "root_starts": int(starts // 2),
            "lm_starts": int(lm_starts) if T * d * d >= d * d + T * d * k else 0,
            "gd_runs": int(gd_runs), "gd_outer": int(gd_outer)}


def _effort_args(cfg) -> dict:
    return {key: cfg[key] for key in ("starts", "lm_starts", "gd_runs", "gd_outer", "T", "d", "k")}


def _counts(recs) -> dict:
    """Per-property (successes, trials) of a cell."""
    n = len(recs)
    return {
        "non_unique": [sum(r["second_minimisers_search"] + r["second_minimisers_lm"] > 0 for r in recs), n],
        "spurious": [sum(r["spurious_classes"] > 0 for r in recs), n],
        # distinct spurious classes (modulo O(k)) over the instances, not instances with one
        "spurious_classes": [sum(r["spurious_classes"] for r in recs), n],
        "spurious_certified": [sum("certified" in r["certificates"] for r in recs), n],
        "spurious_frequency": [sum(r["gd_starts_spurious"] for r in recs), sum(r["gd_starts"] for r in recs)],
        "strict_saddle": [sum(r["positive_critical"] > 0 and r["strict_saddles"] == r["positive_critical"]
                              for r in recs), sum(r["positive_critical"] > 0 for r in recs)],
        "undecided": [sum(r["degenerate_classes"] > 0 for r in recs), n],
        "gd_success": [sum(sum(r["gd_reached"]) for r in recs), sum(len(r["gd_reached"]) for r in recs)],
        "gd_endpoint_reached": [sum(sum(r["gd_endpoint_reached"]) for r in recs),
                                sum(len(r["gd_endpoint_reached"]) for r in recs)],
        "critical_points_positive": [sum(r["strict_saddles"] for r in recs), sum(r["positive_critical"] for r in recs)],
    }


def atlas_units(config: AtlasConfig, seed: int) -> list[Unit]:
    """One :class:`landscape.runtime.executor.Unit` per cell."""
    units = []
    for d, k, T in config.cells():
        cfg = dict(d=d, k=k, T=T, seed=int(seed), instances=config.instances, starts=config.starts,
                   lm_starts=config.lm_starts, gd_runs=config.gd_runs, gd_outer=config.gd_outer,
                   certify_max_dim=config.certify_max_dim)
        units.append(Unit(f"cell-d{d}-k{k}-T{T}", atlas_cell, cfg))
    return units


# --------------------------------------------------------------------------------------
# Findings beside the hypotheses
# --------------------------------------------------------------------------------------
def _region_sum(cells, key, pred):
    a = sum(c["counts"][key][0] for c in cells if pred(c))
    b = sum(c["counts"][key][1] for c in cells if pred(c))
    n = sum(1 for c in cells if pred(c))
    return a, b, n


def contradictions(cells) -> list[str]:
    r"""Measurements that contradict a theorem *inside* its hypotheses (empty if none).

    Thm 3.3: a second global minimiser with :math:`T\ge3`, :math:`d\ge3k`.  Thm 3.4: a
    spurious candidate (a second-order stationary point with :math:`G>0`) with
    :math:`T=2`, :math:`d\ge2k`.  Degenerate points (undecided by the classifier) are
    reported, not counted as contradictions.
    """
    out = []
    for c in cells:
        d, k, T = c["d"], c["k"], c["T"]
        if T >= 3 and d >= 3 * k and c["counts"]["non_unique"][0]:
            out.append(f"Thm 3.3: (d,k,T)=({d},{k},{T}): {c['counts']['non_unique'][0]} instance(s) with A != A*")
        if T == 2 and d >= 2 * k and c["counts"]["spurious"][0]:
            out.append(f"Thm 3.4: (d,k,T)=({d},{k},{T}): {c['counts']['spurious'][0]} instance(s) with a spurious "
                       "second-order point")
    return out


def summarise(cells) -> list[dict]:
    """Each finding with the hypothesis of the theorem it probes: region, counts."""
    regions = [
        ("Thm 3.3 (uniqueness)", "non_unique", "T >= 3, d >= 3k (hypothesis)", "0 instances",
         lambda c: c["T"] >= 3 and c["d"] >= 3 * c["k"]),
        ("Thm 3.3 (uniqueness)", "non_unique", "T >= 3, 2k <= d < 3k (beyond)", "not claimed",
         lambda c: c["T"] >= 3 and 2 * c["k"] <= c["d"] < 3 * c["k"]),
        ("Thm 3.3 (uniqueness)", "non_unique", "T >= 3, d < 2k (beyond)", "not claimed",
         lambda c: c["T"] >= 3 and c["d"] < 2 * c["k"]),
        ("Thm 3.2 (T = 2 continuum)", "non_unique", "T = 2, d >= 2k", "all instances (O(k,k) family)",
         lambda c: c["T"] == 2 and c["d"] >= 2 * c["k"]),
        ("Thm 3.4 (strict saddles)", "strict_saddle", "T = 2, d >= 2k (hypothesis)", "all instances",
         lambda c: c["T"] == 2 and c["d"] >= 2 * c["k"]),
        ("Thm 3.4 (strict saddles)", "strict_saddle", "T = 2, d < 2k (beyond)", "not claimed",
         lambda c: c["T"] == 2 and c["d"] < 2 * c["k"]),
        ("Thm 3.4 (strict saddles)", "strict_saddle", "T >= 3 (beyond; F.2 is a counterexample)", "not claimed",
         lambda c: c["T"] >= 3),
        ("App F.2 (spurious minima)", "spurious", "T >= 3", "exist for some instances",
         lambda c: c["T"] >= 3),
        ("App F.2 (spurious minima)", "spurious_certified", "T >= 3, certified", "exist for some instances",
         lambda c: c["T"] >= 3),
        ("App F.2 (spurious minima)", "spurious_frequency", "T >= 3, GD from random starts", "rare",
         lambda c: c["T"] >= 3),
        ("Thm 3.4 (T = 2: no spurious minima)", "spurious", "T = 2, d >= 2k", "0 instances",
         lambda c: c["T"] == 2 and c["d"] >= 2 * c["k"]),
        ("Sec. 9.1 (GD in practice)", "gd_success", "T = 2", "'no spurious minima in practice'",
         lambda c: c["T"] == 2),
        ("Sec. 9.1 (GD in practice)", "gd_success", "T >= 3, d >= 3k", "'no spurious minima in practice'",
         lambda c: c["T"] >= 3 and c["d"] >= 3 * c["k"]),
        ("Sec. 9.1 (GD in practice)", "gd_success", "T >= 3, d < 3k", "'no spurious minima in practice'",
         lambda c: c["T"] >= 3 and c["d"] < 3 * c["k"]),
    ]
    out = []
    for theorem, key, region, predicted, pred in regions:
        a, b, n = _region_sum(cells, key, pred)
        if n == 0:
            continue
        efforts = sorted({c["effort"]["starts"] for c in cells if pred(c) and "effort" in c})
        out.append({"theorem": theorem, "property": key, "region": region, "predicted": predicted,
                    "count": int(a), "trials": int(b), "cells": int(n), "bound": BOUNDS.get(key, "estimate"),
                    "starts_per_instance": efforts})
    return out


# --------------------------------------------------------------------------------------
# Driver and outputs
# --------------------------------------------------------------------------------------
def atlas(*, smoke: bool = False, config: AtlasConfig | None = None, seed: int = 0, out: str | os.PathLike | None = None,
          executor=None, progress: bool = False) -> dict:
    """Run the atlas and return its JSON-able result; with ``out``, write it there.

    Cells are stored under ``out/cells`` (resumable, mergeable); the outputs are
    ``atlas.json``, one heat map per property (``<property>.png``) and ``SUMMARY.md``
    (:func:`write_atlas`).
    """
    config = (SMOKE if smoke else FULL) if config is None else config
    units = atlas_units(config, seed)
    from landscape.runtime.outguard import OutLock  # one run at a time in out; stale temporaries removed

    with OutLock(out, "theory atlas") if out is not None else contextlib.nullcontext():
        return _atlas_locked(config, units, seed, out, executor, progress)


def _atlas_locked(config, units, seed, out, executor, progress) -> dict:
    store = ResultStore(Path(out) / "cells") if out is not None else None
    t0 = time.perf_counter()
    cells = run_units(units, executor=executor, store=store, progress=progress, desc="atlas cells")
    # counts and effort are functions of the stored records and of the unit's configuration:
    # recomputed here, so cells stored before a count or the effort field existed get them
    cells = [{**c, "counts": _counts(c["instances"]), "effort": _effort(**_effort_args(u.config))}
             for c, u in zip(cells, units)]
    result = {
        "format": "loraml-theory-atlas",
        "version": 1,
        "seed": int(seed),
        "config": {**asdict(config), "name": "smoke" if config == SMOKE else "full" if config == FULL else "custom"},
        "constants": {"GD_REACH_RTOL": GD_REACH_RTOL, "MAX_CERTIFICATES": MAX_CERTIFICATES},
        "cells": [_plain(c) for c in cells],
        "findings": summarise(cells),
        "contradictions": contradictions(cells),
        "seconds": round(time.perf_counter() - t0, 2),
        "cell_seconds": round(sum(float(c["seconds"]) for c in cells), 2),
    }
    if out is not None:
        write_atlas(result, out)
    return result


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    return x


def summary_markdown(result: dict) -> str:
    cfg = result["config"]
    lines = [
        "# Theory atlas: where the landscape theorems hold",
        "",
        f"Produced by `python -m theory atlas{' --smoke' if cfg.get('name') == 'smoke' else ''} "
        f"--seed {result['seed']} --out DIR` ({cfg.get('name', 'custom')} configuration).",
        "",
        f"Grid: k in {tuple(cfg['ks'])}, d/k from {min(cfg['ratios'])} to {max(cfg['ratios'])}"
        f"{' (every integer d)' if cfg.get('every_d') else ''}, T in {tuple(cfg['Ts'])}; "
        f"{cfg['instances']} random model-M1 instances per cell (seed {result['seed']}); per instance "
        f"{cfg['starts']} random starts (gradient descent and root finding on grad G = 0, alternately), "
        f"{cfg['lm_starts']} Levenberg-Marquardt starts on the joint residuals, {cfg['gd_runs']} runs of the "
        f"paper's alternating GD ({cfg['gd_outer']} outer steps, A_0 = 0, U ~ N(0, 0.1^2)). "
        f"Compute: {result['cell_seconds']:.0f} s of cell time.",
        "",
        "Counts are what the stated search effort found: existence counts (second minimisers, spurious "
        "minima) are lower bounds ('>= a/b'), the strict-saddle count an upper bound ('<= a/b'); "
        "more starts can only raise the former and lower the latter "
        "(`python -m theory atlas --effort-sweep d,k,T --out DIR/effort` measures where they stop changing, "
        "in `effort/EFFORT.md`; cells not swept there are lower bounds at the stated starts only). "
        "Counts are over instances unless the property says starts or runs; intervals are exact "
        "(Clopper-Pearson) binomial intervals of the fraction. A 'second global "
        "minimiser' is a zero-loss point with A != A*; 'spurious' is a critical point with G > 0 and "
        "a positive definite quotient Hessian (certified with the Taylor certificate where the "
        "size budget allows); 'strict saddle' means every critical point with G > 0 found on the "
        "instance has negative curvature on the quotient (instances where no such point was "
        "found are not counted).",
        "",
        f"| statement | property | region | theorem says | measured | {CI_LEVEL:.0%} interval |",
        "|---|---|---|---|---|---|",
    ]
    for f in result["findings"]:
        lo, hi = clopper_pearson(f["count"], f["trials"], CI_LEVEL) if f["trials"] else (float("nan"),) * 2
        sign = {"at least": ">= ", "at most": "<= "}.get(f.get("bound", BOUNDS.get(f["property"])), "")
        lines.append(f"| {f['theorem']} | {f['property']} | {f['region']} | {f['predicted']} | "
                     f"{sign}{f['count']}/{f['trials']} ({f['cells']} cells) | [{lo:.3f}, {hi:.3f}] |")
    missed = [(c["d"], c["k"], c["T"], r["seed"], kd) for c in result["cells"] for r in c["instances"]
              for kd, ok in zip(r["gd_final_kind"], r["gd_reached"]) if not ok]
    if missed:
        kinds = sorted({m[4] for m in missed})
        lines += ["", f"Paper-GD runs that did not end at a global minimum: {len(missed)}, final classification "
                  + ", ".join(f"{kd}: {sum(m[4] == kd for m in missed)}" for kd in kinds)
                  + " ('not_critical' = still descending after the step budget, not a spurious minimum); "
                  + "cells " + ", ".join(sorted({f"(d,k,T)=({m[0]},{m[1]},{m[2]})" for m in missed})) + "."]
    bad = result.get("contradictions", [])
    lines += ["", "Contradictions inside a theorem's hypotheses: " + ("none." if not bad else "")]
    lines += [f"- {b}" for b in bad]
    lines += ["", "Heat maps: " + ", ".join(f"`{key}.png`" for key, _, _ in PROPERTIES) + ".", ""]
    keys = [key for key, _, _ in PROPERTIES] + ["spurious_classes"]
    sign = [{"at least": ">=", "at most": "<="}.get(BOUNDS.get(key), "") for key in keys]
    lines += ["Per-cell counts ('>=' at least, '<=' at most, with the stated starts per instance; "
              "spurious_classes: distinct spurious classes over the instances; `atlas.json` has every "
              "instance's seed and record):", "",
              "| d | k | T | starts | " + " | ".join(keys) + " |", "|---|---|---|---|" + "---|" * len(keys)]
    for c in result["cells"]:
        lines.append(f"| {c['d']} | {c['k']} | {c['T']} | {c.get('effort', {}).get('starts', '?')} | "
                     + " | ".join(f"{g}{c['counts'][key][0]}/{c['counts'][key][1]}" for g, key in zip(sign, keys))
                     + " |")
    return "\n".join(lines) + "\n"


def write_atlas(result: dict, out: str | os.PathLike) -> dict:
    """Write ``atlas.json``, the heat maps and ``SUMMARY.md`` into ``out`` as one set whose
    manifest ``atlas.set.json`` is removed first and written last
    (:class:`landscape.runtime.outguard.FileSet`)."""
    from landscape.runtime.outguard import FileSet

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    members = ["atlas.json", "SUMMARY.md"] + [f"{key}.png" for key, _, _ in PROPERTIES]
    fileset = FileSet(out, "atlas.set.json", members, key={"config": result.get("config"), "seed": result.get("seed")})
    fileset.begin()
    fileset.add(atomic_write_text(out / "atlas.json", json.dumps(result, indent=1) + "\n"))
    for key, title, _ in PROPERTIES:
        fileset.add(plot_property(result, key, title, out / f"{key}.png"))
    fileset.add(atomic_write_text(out / "SUMMARY.md", summary_markdown(result)))
    fileset.commit()
    return result

