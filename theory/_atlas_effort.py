r"""The atlas's counts against the search effort (issue 16, item 5).

The atlas's existence counts (second global minimisers, spurious minima) are what a
finite multistart search found: lower bounds.  :func:`effort_sweep` reruns one cell's
instances (the same seeds as the atlas) with growing numbers of starts, so that one can
see where the counts stop growing.  Command line:
``python -m theory atlas --effort-sweep D,K,T [--sweep-starts 12,25,50,100,200]``.
"""
from __future__ import annotations

import time

from . import _atlas

__all__ = ["SWEEP_STARTS", "effort_sweep"]

#: Starts per instance of the default effort sweep (the committed atlas used 12).
SWEEP_STARTS = (12, 25, 50, 100, 200)


def effort_sweep(d: int, k: int, T: int, *, seed: int = 0, instances: int = 4, starts=SWEEP_STARTS,
                 certify_max_dim: int = 100) -> dict:
    """The counts of one atlas cell against the search effort.

    The same instances as the atlas (:func:`theory._atlas.instance_seed`) are searched with each number
    of starts in ``starts`` (gradient descent and root finding, as in the atlas; no
    Levenberg-Marquardt or paper-GD runs, which do not change the existence counts of
    the search).  Returns, per effort, the instances with a spurious candidate, the
    distinct spurious classes, the certified ones and the instances with a second global
    minimiser from the search; counts that stop growing with the effort are the ones to
    trust as more than a lower bound.  Cost: about ``sum(starts) * instances`` searches.
    """
    rows = []
    for n in starts:
        t0 = time.perf_counter()
        recs = [_atlas._instance(d, k, T, _atlas.instance_seed(seed, d, k, T, i), int(n), 0, 0, 1, certify_max_dim)
                for i in range(instances)]
        counts = _atlas._counts(recs)
        rows.append({"starts": int(n), "spurious": counts["spurious"], "spurious_classes": counts["spurious_classes"],
                     "spurious_certified": counts["spurious_certified"],
                     "second_minimisers_search": [sum(r["second_minimisers_search"] > 0 for r in recs), len(recs)],
                     "per_instance_spurious_classes": [r["spurious_classes"] for r in recs],
                     "seconds": round(time.perf_counter() - t0, 2)})
    grew = [b["spurious_classes"][0] - a["spurious_classes"][0] for a, b in zip(rows, rows[1:])]
    return {"format": "loraml-atlas-effort-sweep", "d": d, "k": k, "T": T, "seed": int(seed),
            "instances": int(instances), "rows": rows,
            "stopped_growing_at": next((rows[i]["starts"] for i in range(len(grew)) if all(g == 0 for g in grew[i:])),
                                       None)}
