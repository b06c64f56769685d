r"""The atlas's counts against the search effort (issue 16, item 5).

The atlas's existence counts (second global minimisers, spurious minima) are what a
finite multistart search found: lower bounds.  :func:`effort_sweep` searches one cell's
instances (the same instances as the atlas) with ``max(starts)`` random starts each and
reports the counts found by the first ``n`` starts for every ``n`` in ``starts``: the
start sets are nested, so a count can only grow with ``n``, and the effort at which it
stops growing is visible.  The first ``starts[0]`` starts are drawn exactly as the atlas
draws its starts (same seed, same call), so with ``starts[0] = 12`` the first row
repeats the committed atlas's search.  Command line:
``python -m theory atlas --effort-sweep D,K,T [--sweep-starts 12,25,50,100,200]``.
"""
from __future__ import annotations

import time

import numpy as np

from landscape import deduplicate, random_instance, search
from landscape._classify import DEGENERATE, GLOBAL_MINIMUM, SPURIOUS_CANDIDATE, STRICT_SADDLE, classify_result
from landscape._search import random_starts

from . import _atlas

__all__ = ["SWEEP_STARTS", "effort_markdown", "effort_sweep", "nested_instance", "stopped_growing_at"]

#: Starts per instance of the default effort sweep (its first row, 12, is the effort of the
#: atlas's first committed run; the committed atlas now uses ``_atlas.FULL.starts``).
SWEEP_STARTS = (12, 25, 50, 100, 200)

_METHODS = ("gd", "root-lm")  # dealt round-robin, as in the atlas (start i uses _METHODS[i % 2])


def nested_instance(d: int, k: int, T: int, seed: int, starts=SWEEP_STARTS, certify_max_dim: int = 100) -> list[dict]:
    """One atlas instance searched once with ``max(starts)`` starts; a record per prefix.

    Start ``i`` is run with ``_METHODS[i % 2]`` (gradient descent, root finding), as in
    :func:`theory._atlas._instance`; the record for ``n`` classifies and deduplicates the
    results of starts ``0 .. n-1`` only and has the search fields of an atlas record
    (those :func:`theory._atlas._counts` reads for the existence counts).
    """
    starts = sorted({int(n) for n in starts})
    rng = np.random.default_rng(seed)
    inst = random_instance(rng, d, T, k)
    prob = inst.problem
    # the atlas's own draw for the first block, then the rest: prefixes of one start set
    U0 = random_starts(prob, rng, starts[0])
    if starts[-1] > starts[0]:
        U0 = np.concatenate([U0, random_starts(prob, rng, starts[-1] - starts[0])])
    results = []
    for j, m in enumerate(_METHODS):
        idx = np.arange(j, len(U0), len(_METHODS))
        if len(idx):
            out = search(prob, rng=rng, n_starts=0, starts=U0[idx], methods=(m,), max_iter=_atlas.SEARCH_MAX_ITER)
            results += [(int(i), r) for i, r in zip(idx, out)]
    results = [r for _, r in sorted(results, key=lambda x: x[0])]
    cls = [classify_result(prob, r, A_star=inst.A_star, rng=rng) for r in results]
    certs: dict[int, str] = {}  # start index of a class representative -> certificate outcome
    recs = []
    for n in starts:
        classes = deduplicate(prob, [r.point for r in results[:n]], cls[:n])
        spurious = [c for c in classes if c.kind == SPURIOUS_CANDIDATE]
        positive = [c for c in classes if c.kind in (STRICT_SADDLE, SPURIOUS_CANDIDATE, DEGENERATE)]
        second = [c for c in classes if c.kind == GLOBAL_MINIMUM and c.classification.recovers_A_star is False]
        for c in spurious[:_atlas.MAX_CERTIFICATES]:
            if c.representative not in certs:
                certs[c.representative] = _atlas._certify(prob, results[c.representative].point, inst.U_star,
                                                          certify_max_dim)
        gd_kinds = [c.kind for c in cls[:n:len(_METHODS)]]
        recs.append({"seed": int(seed), "starts": n, "gd_starts": len(gd_kinds),
                     "gd_starts_spurious": int(sum(kd == SPURIOUS_CANDIDATE for kd in gd_kinds)),
                     "second_minimisers_search": len(second), "second_minimisers_lm": 0,
                     "positive_critical": len(positive),
                     "strict_saddles": int(sum(c.kind == STRICT_SADDLE for c in positive)),
                     "spurious_classes": len(spurious),
                     "degenerate_classes": int(sum(c.kind == DEGENERATE for c in positive)),
                     "certificates": [certs[c.representative] for c in spurious[:_atlas.MAX_CERTIFICATES]],
                     "spurious_G": sorted(float(prob.reduced_loss(results[c.representative].point))
                                          for c in spurious)})
    return recs


def effort_sweep(d: int, k: int, T: int, *, seed: int = 0, instances: int = 4, starts=SWEEP_STARTS,
                 certify_max_dim: int = 100) -> dict:
    """The counts of one atlas cell against the search effort (nested start sets).

    Each instance of the atlas cell (:func:`theory._atlas.instance_seed`) is searched
    once with ``max(starts)`` starts (:func:`nested_instance`; no Levenberg-Marquardt or
    paper-GD runs, which do not enter the search's existence counts).  Returns, per
    number of starts, the instances with a spurious candidate, the distinct spurious
    classes, the certified ones and the instances with a second global minimiser from
    the search, and the effort from which none of these grew any more
    (``stopped_growing_at``; ``None`` when the last step still added something).
    Cost: ``max(starts) * instances`` searches.
    """
    starts = sorted({int(n) for n in starts})
    t0 = time.perf_counter()
    per = [nested_instance(d, k, T, _atlas.instance_seed(seed, d, k, T, i), starts, certify_max_dim)
           for i in range(instances)]
    rows = []
    for j, n in enumerate(starts):
        recs = [p[j] for p in per]
        counts = _atlas._counts([{**r, "gd_reached": [], "gd_endpoint_reached": []} for r in recs])
        rows.append({"starts": n, "spurious": counts["spurious"], "spurious_classes": counts["spurious_classes"],
                     "spurious_certified": counts["spurious_certified"],
                     "second_minimisers_search": [sum(r["second_minimisers_search"] > 0 for r in recs), len(recs)],
                     "strict_saddle": counts["strict_saddle"], "undecided": counts["undecided"],
                     "per_instance_degenerate_classes": [r["degenerate_classes"] for r in recs],
                     "per_instance_spurious_classes": [r["spurious_classes"] for r in recs],
                     "per_instance_second_minimisers": [r["second_minimisers_search"] for r in recs],
                     "per_instance_spurious_G": [r["spurious_G"] for r in recs]})
    stopped = stopped_growing_at(rows)
    return {"format": "loraml-atlas-effort-sweep", "version": 2, "nested": True, "d": d, "k": k, "T": T,
            "seed": int(seed), "instances": int(instances), "methods": list(_METHODS),
            "max_iter": _atlas.SEARCH_MAX_ITER, "rows": rows, "stopped_growing_at": stopped,
            "seconds": round(time.perf_counter() - t0, 2)}


def _row_key(r):
    return (r["spurious"][0], r["spurious_classes"][0], r["spurious_certified"][0], r["second_minimisers_search"][0],
            tuple(r["per_instance_spurious_classes"]), tuple(r["strict_saddle"]),
            tuple(r.get("per_instance_degenerate_classes", ())))


def _spurious_key(r):
    return (r["spurious"][0], r["spurious_classes"][0], r["spurious_certified"][0],
            tuple(r["per_instance_spurious_classes"]))


def stopped_growing_at(rows, key=_row_key):
    """The smallest number of starts from which no count of the rows changed up to the
    last row; ``None`` when the last step still changed one (or there is a single row).

    The counts are the instance counts, the distinct spurious and degenerate classes per
    instance and the strict-saddle count; the number of distinct second minimisers per
    instance is not among them: where the zero set of G is positive-dimensional beyond
    the symmetries it is a continuum, and every new start finds a new point of it."""
    if len(rows) < 2 or key(rows[-1]) != key(rows[-2]):
        return None
    return next(r["starts"] for i, r in enumerate(rows) if all(key(q) == key(r) for q in rows[i:]))


def effort_markdown(sweeps, atlas_starts: int | None = None) -> str:
    """``EFFORT.md``: a table per swept cell (counts per number of starts) and where they
    stopped growing; ``sweeps`` are :func:`effort_sweep` results; ``atlas_starts``: the
    committed atlas's starts per instance (default ``_atlas.FULL.starts``)."""
    atlas_starts = _atlas.FULL.starts if atlas_starts is None else atlas_starts
    lines = ["# Atlas counts against the search effort", "",
             "Written by `python -m theory atlas --effort-sweep D,K,T --out DIR` (every sweep in DIR). "
             "Each instance of the cell (the atlas's instances, same seeds) is searched once with the largest "
             "number of starts; a row counts what the first n starts found (nested start sets, gradient descent "
             "and root finding dealt alternately as in the atlas; the first block of starts is the atlas's own "
             "draw). Existence counts are lower bounds at every n; 'stopped growing at n' means no count of the "
             "row grew from n to the largest n swept, which is evidence, not proof, that they are complete. "
             "Distinct second minimisers per instance are shown but not part of that rule: where G's zero set "
             "is positive-dimensional beyond the symmetries (the atlas's Levenberg-Marquardt nullity > 0) they are "
             "points of a continuum and grow with every start. "
             f"The committed atlas uses {atlas_starts} starts per instance (its first run used 12, the "
             "first row here).", "",
             "| (d, k, T) | spurious instances, first row -> last row | distinct spurious classes | "
             "instances with a second minimiser (search) | spurious counts stopped growing at | all counts stopped growing at |",
             "|---|---|---|---|---|---|"]
    ordered = sorted(sweeps, key=lambda s: (s["k"], s["d"], s["T"]))
    for s in ordered:
        a, b = s["rows"][0], s["rows"][-1]
        stop = stopped_growing_at(s["rows"])
        lines.append(f"| ({s['d']}, {s['k']}, {s['T']}) | {a['spurious'][0]}/{a['spurious'][1]} at {a['starts']} -> "
                     f"{b['spurious'][0]}/{b['spurious'][1]} at {b['starts']} | {a['spurious_classes'][0]} -> "
                     f"{b['spurious_classes'][0]} | {a['second_minimisers_search'][0]} -> "
                     f"{b['second_minimisers_search'][0]} | "
                     + (f"{sp} starts | " if (sp := stopped_growing_at(s["rows"], _spurious_key)) is not None
                        else f"still growing at {b['starts']} | ")
                     + (f"{stop} starts" if stop is not None else f"still growing at {b['starts']}") + " |")
    lines.append("")
    for s in ordered:
        lines += [f"## (d, k, T) = ({s['d']}, {s['k']}, {s['T']}), {s['instances']} instances, seed {s['seed']}", "",
                  "| starts | instances with a spurious minimum | distinct spurious classes (per instance) | "
                  "certified | instances with a second minimiser, search (distinct per instance) | "
                  "instances with an undecided (degenerate) point (classes per instance) | strict saddle (<=) |",
                  "|---|---|---|---|---|---|---|"]
        for r in s["rows"]:
            per = ", ".join(str(x) for x in r["per_instance_spurious_classes"])
            sec = ", ".join(str(x) for x in r["per_instance_second_minimisers"])
            deg = ", ".join(str(x) for x in r.get("per_instance_degenerate_classes", ()))
            und = r.get("undecided", ["?", "?"])
            lines.append(f"| {r['starts']} | >= {r['spurious'][0]}/{r['spurious'][1]} | >= {r['spurious_classes'][0]} "
                         f"({per}) | >= {r['spurious_certified'][0]} | >= {r['second_minimisers_search'][0]}/"
                         f"{r['second_minimisers_search'][1]} ({sec}) | >= {und[0]}/{und[1]} ({deg}) | "
                         f"<= {r['strict_saddle'][0]}/{r['strict_saddle'][1]} |")
        stop = stopped_growing_at(s["rows"])
        lines += ["", (f"Counts stopped growing at {stop} starts (up to {s['rows'][-1]['starts']})." if stop is not None
                       else f"Counts still grew at the last step ({s['rows'][-1]['starts']} starts): lower bounds."),
                  f"Search time: {s['seconds']:.0f} s.", ""]
    lines += [f"Cells not listed here: the atlas's counts are lower bounds at its {atlas_starts} starts per instance, "
              "with no evidence about saturation.", ""]
    return "\n".join(lines)
