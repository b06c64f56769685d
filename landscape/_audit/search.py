r"""Running the audit's critical-point searches: the multistart as executor units
(:data:`STARTS_PER_UNIT` starts each, seeded by ``(seed, chunk)`` only, so the report does
not depend on the executor), the JSON form of a unit's results, and BLAS thread limits.
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from .._objective import LoraMLProblem
from .._search import SearchResult, random_starts, search

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
