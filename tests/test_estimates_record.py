"""The audit's estimate against the committed measurements (issue 17, item 6).

``benchmarks/records/estimates.json`` is written by ``benchmarks/bench_estimates.py``: for
every size of its grid, the audit command's CPU time and peak resident memory measured in
a child process, next to :func:`landscape.estimate_audit_cost`.  Nothing is timed here:
the tests read the record, and recompute the estimates with the code of this checkout.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import landscape as ls

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "records" / "estimates.json"


@pytest.fixture(scope="module")
def record():
    return json.loads(RECORD.read_text())


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_estimates
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return bench_estimates


def _ratios(row):
    return (row["measured"]["cpu_s"] / row["estimate"]["seconds"],
            row["measured"]["peak_bytes"] / row["estimate"]["bytes"])


def test_every_measurement_is_within_a_factor_2_of_its_estimate(record):
    assert record["tolerance"] == 2.0
    bad = []
    for row in record["rows"]:
        t, m = _ratios(row)
        if not (0.5 <= t <= 2.0 and 0.5 <= m <= 2.0):
            bad.append((row["point"]["name"], round(t, 2), round(m, 2)))
        assert row["ratios"]["time"] == pytest.approx(t) and row["ratios"]["memory"] == pytest.approx(m)
    assert not bad, f"measured / estimated outside [1/2, 2] (name, time, memory): {bad}"


def test_the_estimator_of_this_checkout_gives_the_recorded_estimates(record, bench):
    """A changed cost model needs a new measurement (``python benchmarks/bench_estimates.py
    --out benchmarks/records/estimates.json``): the stored estimates are this code's."""
    for row in record["rows"]:
        now = bench.estimate(row["point"])
        assert now["curvature"] == row["estimate"]["curvature"] == row["measured"]["curvature"], row["point"]
        assert now["seconds"] == pytest.approx(row["estimate"]["seconds"], rel=1e-12, abs=0), row["point"]
        assert now["bytes"] == row["estimate"]["bytes"], row["point"]


def test_the_record_is_of_the_benchmark_grid_and_spans_it(record, bench):
    points = [row["point"] for row in record["rows"]]
    assert [p["name"] for p in points] == [g[0] for g in bench.GRID]
    from landscape._audit.enumeration import AUTO_MAX_UNKNOWNS

    for p, (name, dims, starts, opts) in zip(points, bench.GRID):
        here = bench.grid_point(name, dims, starts, opts)
        # whether the automatic enumeration runs depends on msolve being installed here
        assert {**here, "enumeration": None} == {**p, "enumeration": None}
        assert p["enumeration"] == (p["T"] * p["d"] * (p["d"] + 1) // 2 <= AUTO_MAX_UNKNOWNS)
    # what item 6 of issue 17 names: large T at d = 3, large d at T = 3, k = 1, 2, 3
    assert max(p["T"] for p in points if p["d"] == 3) >= 1000
    assert max(p["d"] for p in points if p["T"] == 3) >= 2000
    assert {p["k"] for p in points} >= {1, 2, 3}
    assert {row["measured"]["curvature"] for row in record["rows"]} == {"dense", "hvp"}
    assert {p["plots"] for p in points} == {True, False} and {p["truth_known"] for p in points} == {True, False}
    # what the audit did is what the estimate assumed
    for row in record["rows"]:
        assert row["measured"]["enumerated"] == row["point"]["enumeration"]
        assert row["measured"]["truth_known"] == row["point"]["truth_known"]
    assert {"python", "numpy", "scipy", "commit"} <= set(record["versions"])
