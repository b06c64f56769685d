"""landscape._audit.search pinned: how the audit's multistart becomes executor units (random
starts dealt round-robin to the methods, explicit starts run by every method with indices after
the random ones, method-major, STARTS_PER_UNIT starts per unit, one chunk number per unit), the
unit's generator derived from (seed, chunk) only, and the exact JSON round trip of a search
result through the store (nothing a resumed audit reads differs from what was computed).
"""
from __future__ import annotations

import numpy as np
import pytest

import landscape as ls
from landscape._audit import search as A
from landscape._search.result import random_starts


@pytest.fixture(scope="module")
def problem():
    return ls.random_instance(np.random.default_rng(0), 4, 3, 1).problem


def test_starts_per_unit():
    assert A.STARTS_PER_UNIT == 8


def test_units_deal_random_starts_round_robin_and_explicit_starts_to_every_method(problem):
    explicit = np.random.default_rng(5).standard_normal((2, 3, 4, 1))
    units = A._search_units(problem, np.random.default_rng(1), 7, 19, ("gd", "lbfgs"), explicit, "auto", 50, 1)
    rand = random_starts(problem, np.random.default_rng(1), 19)
    # gd: random 0, 2, ..., 18 (10) then explicit 19, 20; lbfgs: random 1, 3, ..., 17 (9) then explicit 21, 22
    want = {"gd": list(range(0, 19, 2)) + [19, 20], "lbfgs": list(range(1, 19, 2)) + [21, 22]}
    seen = {"gd": [], "lbfgs": []}
    for chunk, u in enumerate(units):
        c = u.config
        assert u.key == f"search-{chunk:05d}-{c['method']}" and c["chunk"] == chunk and c["seed"] == 7
        assert len(c["indices"]) <= 8 and c["k"] == 1 and c["mode"] == "auto" and c["max_iter"] == 50
        assert c["tasks"] is problem.tasks
        assert u.resources.cpus == 1  # a search unit asks one CPU of an executor (Ray schedules by it)
        for i, U0 in zip(c["indices"], c["starts"]):
            expected = rand[i] if i < 19 else explicit[(i - 19) % 2]
            np.testing.assert_array_equal(U0, expected)
        seen[c["method"]] += c["indices"]
    assert seen == want
    assert [len(u.config["indices"]) for u in units] == [8, 4, 8, 3]  # 12 for gd, 11 for lbfgs, 8 per unit
    assert [u.config["method"] for u in units] == ["gd", "gd", "lbfgs", "lbfgs"]


def test_a_unit_s_generator_is_derived_from_seed_and_chunk_only(problem, monkeypatch):
    starts = random_starts(problem, np.random.default_rng(2), 2)
    kw = dict(tasks=problem.tasks, k=1, method="pgd", starts=starts, indices=[5, 9], mode="auto", max_iter=30,
              blas_threads=1)
    draws = []
    real = A.search

    def recording(problem, *, rng, **k):
        draws.append(rng.integers(2 ** 62))  # the first number of the unit's stream
        return real(problem, rng=rng, **k)

    monkeypatch.setattr(A, "search", recording)
    out = A.search_unit(seed=3, chunk=1, **kw)
    A.search_unit(seed=3, chunk=2, **kw)
    want = [np.random.default_rng(np.random.SeedSequence(3, spawn_key=(c,))).integers(2 ** 62) for c in (1, 2)]
    assert draws == want and draws[0] != draws[1]
    assert [r["start_index"] for r in out] == [5, 9]


def test_search_results_round_trip_through_json_exactly(problem):
    results = ls.search(problem, rng=np.random.default_rng(4), n_starts=2, methods=("lbfgs",), progress=False)
    bare = ls.search(problem, rng=np.random.default_rng(4), n_starts=1, methods=("gd",), progress=False,
                     spectrum=False)
    for r in list(results) + list(bare):
        back = A._result_from_json(A._result_to_json(r))
        for name in ("method", "start_index", "loss", "grad_norm", "iterations", "stop_reason", "polish_steps",
                     "loss_before_polish", "grad_norm_before_polish"):
            assert getattr(back, name) == getattr(r, name) or (
                np.isnan(getattr(r, name)) and np.isnan(getattr(back, name))), name
        np.testing.assert_array_equal(back.point, r.point)
        if r.spectrum is None:
            assert back.spectrum is None
            continue
        s, t = r.spectrum, back.spectrum
        assert t.lambda_min_quotient == s.lambda_min_quotient and t.lambda_min_raw == s.lambda_min_raw
        assert t.n_symmetry == s.n_symmetry and t.inertia_quotient == s.inertia_quotient and t.method == s.method
        np.testing.assert_array_equal(t.direction, s.direction)
        np.testing.assert_array_equal(t.eigenvalues, s.eigenvalues)


def test_one_problem_per_process_only_for_the_same_tasks_and_rank(problem, monkeypatch):
    import multiprocessing

    A._share_problem(problem)
    assert A._unit_problem(problem.tasks, problem.k) is problem  # the audit's own, in its process
    other_k = A._unit_problem(problem.tasks, 2)
    assert other_k is not problem and other_k.k == 2
    # in a pool worker: the previous unit's problem when the tasks and the rank are equal
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    monkeypatch.setattr(A, "_WORKER_PROBLEM", [])
    tasks = np.array(problem.tasks)  # an equal array, not the same one
    first = A._unit_problem(tasks, 2)
    assert first.k == 2 and A._WORKER_PROBLEM == [first]
    assert A._unit_problem(np.array(tasks), 2) is first
    smaller = A._unit_problem(np.array(tasks), 1)
    assert smaller is not first and smaller.k == 1
    moved = A._unit_problem(tasks + 1.0, 1)
    assert moved is not smaller and np.array_equal(moved.tasks, tasks + 1.0)


@pytest.mark.parametrize("n,limited", [(2, True), (1, True), (None, False), (0, False)])
def test_blas_threads_are_limited_only_when_a_count_is_given(monkeypatch, n, limited):
    """With threadpoolctl present, a worker's BLAS is limited to the given thread count; with
    no count (None or 0) nothing is limited."""
    import sys
    import types
    from contextlib import nullcontext

    from landscape._audit.search import _blas_limits

    calls = []
    fake = types.ModuleType("threadpoolctl")
    fake.threadpool_limits = lambda k: calls.append(k) or nullcontext()
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)
    with _blas_limits(n):
        pass
    assert calls == ([n] if limited else [])
