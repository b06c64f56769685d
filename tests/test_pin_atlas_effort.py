"""Pins of the effort sweep (:mod:`theory._atlas_effort`).

* The defaults are the committed effort: the sweep's default start counts are those of every
  committed sweep and of the command line's default, and its certificate budget and
  instance count are the atlas's, so that the first row repeats the atlas's own search.
* Each row counts exactly its own starts: start i runs gradient descent for even i (the
  methods are dealt round-robin), so the row for n starts has ceil(n / 2) of them.
"""
import inspect
import json
from pathlib import Path

import pytest

from theory import _atlas
from theory._atlas_effort import SWEEP_STARTS, effort_sweep, nested_instance

EFFORT = Path(__file__).resolve().parents[1] / "theory" / "results" / "atlas" / "effort"


def _default(fn, name):
    return inspect.signature(fn).parameters[name].default


def test_defaults_are_the_committed_effort_and_the_atlas_s():
    from theory.__main__ import build_atlas_parser

    sweeps = [json.loads(f.read_text()) for f in sorted(EFFORT.glob("effort-sweep-*.json"))]
    assert sweeps
    for s in sweeps:
        assert tuple(r["starts"] for r in s["rows"]) == SWEEP_STARTS
        assert s["instances"] == _default(effort_sweep, "instances")
    args = build_atlas_parser().parse_args([])
    assert tuple(int(x) for x in args.sweep_starts.split(",")) == SWEEP_STARTS
    assert args.sweep_instances == _default(effort_sweep, "instances") == _atlas.AtlasConfig().instances
    budget = _atlas.AtlasConfig().certify_max_dim
    assert budget == _atlas.FULL.certify_max_dim
    assert _default(effort_sweep, "certify_max_dim") == _default(nested_instance, "certify_max_dim") == budget
    assert _default(effort_sweep, "starts") == _default(nested_instance, "starts") == SWEEP_STARTS
    assert list(SWEEP_STARTS) == sorted(set(SWEEP_STARTS))


@pytest.mark.parametrize("starts", [(2, 4, 7), (3,)])
def test_each_row_counts_exactly_its_own_starts(starts):
    seed = _atlas.instance_seed(0, 3, 1, 3, 0)
    recs = nested_instance(3, 1, 3, seed, starts=starts, certify_max_dim=30)
    assert [r["starts"] for r in recs] == list(starts)
    for r in recs:
        assert r["gd_starts"] == (r["starts"] + 1) // 2
        assert 0 <= r["gd_starts_spurious"] <= r["gd_starts"]


def test_at_two_tasks_the_sweep_counts_the_second_minimisers_the_atlas_counts():
    """T = 2: global minima whose A is not A* (the O(k,k) family) are found; the sweep's first
    block counts as many as the atlas's own search of those starts, and more starts find more."""
    seed = _atlas.instance_seed(0, 3, 1, 2, 0)
    first, second = nested_instance(3, 1, 2, seed, starts=(4, 6), certify_max_dim=30)
    rec = _atlas._instance(3, 1, 2, seed, 4, 0, 0, 1, 30)
    assert first["second_minimisers_search"] == rec["second_minimisers_search"] > 0
    assert second["second_minimisers_search"] >= first["second_minimisers_search"]


def test_the_sweep_searches_exactly_its_largest_number_of_starts(monkeypatch):
    # one start set for all prefixes: max(starts) starts in all, dealt round-robin to the methods
    import theory._atlas_effort as E

    seen, real = [], E.search

    def counting(prob, **kw):
        seen.append(len(kw["starts"]))
        return real(prob, **kw)

    monkeypatch.setattr(E, "search", counting)
    nested_instance(3, 1, 3, _atlas.instance_seed(0, 3, 1, 3, 0), starts=(3, 7), certify_max_dim=30)
    assert sum(seen) == 7 and seen == [4, 3]


def test_each_spurious_class_is_certified_once_across_the_prefixes(monkeypatch):
    """A spurious class found at a smaller effort keeps its certificate outcome at the larger
    ones: one _certify call per representative, and every record lists the outcomes of its
    first MAX_CERTIFICATES spurious classes (the planted classes: start 0 from the first
    prefix on, start 4 from the second)."""
    from types import SimpleNamespace

    import theory._atlas_effort as E
    from landscape._classify import SPURIOUS_CANDIDATE

    calls = []

    def dedup(prob, points, cls):
        return [SimpleNamespace(kind=SPURIOUS_CANDIDATE, representative=i, classification=None)
                for i in (0, 4) if i < len(points)]

    def certify(prob, U, U_star, max_dim):
        calls.append(len(calls))
        return f"outcome {len(calls)}"

    monkeypatch.setattr(E, "deduplicate", dedup)
    monkeypatch.setattr(E._atlas, "_certify", certify)
    recs = nested_instance(3, 1, 3, _atlas.instance_seed(0, 3, 1, 3, 0), starts=(3, 7), certify_max_dim=30)
    assert calls == [0, 1]
    assert [r["certificates"] for r in recs] == [["outcome 1"], ["outcome 1", "outcome 2"]]
    assert [r["spurious_classes"] for r in recs] == [1, 2]


def test_a_row_counts_the_instances_with_a_second_minimiser_not_all_instances(monkeypatch):
    """The row's second-minimiser entry is [instances with at least one, instances]: with
    counts 0, 2 and 0 over three instances it is [1, 3] (and each count is kept per instance)."""
    import copy

    import theory._atlas_effort as E

    base = nested_instance(3, 1, 3, _atlas.instance_seed(0, 3, 1, 3, 0), starts=(3,), certify_max_dim=30)
    counts = iter([0, 2, 0])

    def fake(d, k, T, seed, starts, certify_max_dim):
        recs = copy.deepcopy(base)
        recs[0]["second_minimisers_search"] = next(counts)
        return recs

    monkeypatch.setattr(E, "nested_instance", fake)
    (row,) = E.effort_sweep(3, 1, 3, instances=3, starts=(3,))["rows"]
    assert row["second_minimisers_search"] == [1, 3]
    assert row["per_instance_second_minimisers"] == [0, 2, 0]
