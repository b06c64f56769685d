r"""Running the audit's critical-point searches: the multistart as executor units
(:data:`STARTS_PER_UNIT` starts each, seeded by ``(seed, chunk)`` only, so the report does
not depend on the executor), the JSON form of a unit's results, and BLAS thread limits.

A unit carries the task matrices in its configuration (it must run on any worker), but
does not build a LoraMLProblem of its own each time (a pass over T d^2 numbers, a
FactoredObjective with two more T d^2 arrays, its scale, one more copy of the tasks
alive while it runs): units run in the audit's own process find the audit's problem by
the identity of its task array, and units in a pool worker reuse the previous unit's
problem when the tasks are equal (:func:`_unit_problem`).
"""
from __future__ import annotations

import weakref
from contextlib import nullcontext

import numpy as np

from .._objective import LoraMLProblem
from .._search import SearchResult, random_starts, search

#: The problems of the audits running in this process, by the identity of their task
#: array (which the search units carry): units run in this process use the audit's own
#: LoraMLProblem, and so its FactoredObjective and scale, instead of building their own
#: (T d^2 numbers and a pass over them each).  Held weakly: an entry goes with its audit.
_LIVE_PROBLEMS: "weakref.WeakValueDictionary[int, LoraMLProblem]" = weakref.WeakValueDictionary()

#: In a pool worker process: the problem of the previous unit, reused by the next unit
#: when its tasks are equal (the units of one audit all carry the same tasks).  The pool's
#: processes end with the search, and this reference with them.
_WORKER_PROBLEM: list = []


def _share_problem(problem: LoraMLProblem) -> None:
    """Let the search units run in this process use ``problem`` (:func:`_unit_problem`)."""
    _LIVE_PROBLEMS[id(problem.tasks)] = problem


def _unit_problem(tasks, k) -> LoraMLProblem:
    """One LoraMLProblem per process for all the search units of an audit: the audit's own
    when the unit runs in its process (the same task array), else the previous unit's
    in a pool worker when the tasks are equal, else a new one."""
    import multiprocessing

    p = _LIVE_PROBLEMS.get(id(tasks))
    if p is not None and p.tasks is tasks and p.k == int(k):
        return p
    tasks = np.asarray(tasks, dtype=float)
    worker = multiprocessing.parent_process() is not None
    if worker and _WORKER_PROBLEM:
        p = _WORKER_PROBLEM[0]
        if p.k == int(k) and p.tasks.shape == tasks.shape and np.array_equal(p.tasks, tasks):
            return p
    p = LoraMLProblem(tasks, int(k))
    if worker:
        _WORKER_PROBLEM[:] = [p]
    return p


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
    problem = _unit_problem(tasks, k)
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
    tasks = problem.tasks  # the problem's own array, no copy: units in this process share the problem
    _share_problem(problem)
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
