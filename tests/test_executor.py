"""The execution layer without Ray: exact encoding, the result store, resuming, the local pool.

The Ray backend's tests are in ``test_executor_ray.py``.
"""
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from landscape.runtime.store import ConfigMismatch, ResultStore, config_digest, decode, encode
from landscape.runtime.executor import (
    LocalExecutor,
    Resources,
    Unit,
    add_executor_arguments,
    check_executor_args,
    executor_from_args,
    get_executor,
    run_units,
)
from tests import _executor_units as eu

ROOT = Path(__file__).resolve().parents[1]

#: dtypes a unit result may hold, both byte orders where they differ.
DTYPES = ["bool", "int8", "uint8", "<i2", ">i2", "<i4", "<i8", ">i8", "<u8", "<f2", "<f4", ">f4", "<f8", ">f8",
          "<c8", "<c16", ">c16", "S3", "<U2", "<M8[ns]", "<m8[s]"]

#: How long a SIGINT-ed driver and its terminated pool workers may take to go away on a
#: loaded 2-core machine (they exit within a second when the machine is idle).
EXIT_SECONDS = 20.0


def _through_json(obj):
    return decode(json.loads(json.dumps(encode(obj))))


# ---------------------------------------------------------------------------- encoding

@settings(max_examples=25, deadline=None)
@given(st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))))
def test_array_round_trip_is_bitwise_exact(a):
    b = _through_json({"a": a, "nested": [a, {"b": a}]})
    for got in (b["a"], b["nested"][0], b["nested"][1]["b"]):
        assert got.dtype == a.dtype and got.shape == a.shape
        assert got.tobytes() == a.tobytes()  # bytes, so NaN payloads and -0.0 count too


@settings(max_examples=25, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-2**80, 2**80) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10))
def test_plain_values_round_trip(obj):
    def same(x, y):
        if isinstance(x, float):
            return isinstance(y, float) and (math.isnan(x) and math.isnan(y) or x == y and
                                             math.copysign(1, x) == math.copysign(1, y))
        if isinstance(x, list):
            return isinstance(y, list) and len(x) == len(y) and all(map(same, x, y))
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        return type(x) is type(y) and x == y

    assert same(obj, _through_json(obj))


def test_numpy_scalars_keep_their_dtype():
    for v in (np.float32(1.5), np.int16(-3), np.float64(np.nan), np.complex64(1 - 2j)):
        got = _through_json(v)
        assert got.dtype == v.dtype and got.tobytes() == np.asarray(v).tobytes()


def test_unencodable_results_are_refused():
    with pytest.raises(TypeError):
        encode(np.array([object()], dtype=object))
    with pytest.raises(TypeError):
        encode({1: "int key"})
    with pytest.raises(TypeError):
        encode({"x": {1, 2}})


def test_config_digest_sees_every_bit():
    a = np.arange(4.0)
    b = a.copy()
    b[2] = np.nextafter(b[2], 3.0)
    assert config_digest({"a": a}) == config_digest({"a": a.copy()})
    assert config_digest({"a": a}) != config_digest({"a": b})
    assert config_digest({"s": 1, "t": 2}) == config_digest({"t": 2, "s": 1})  # key order is not identity


# ---------------------------------------------------------------------------- units and store

def test_unit_validation():
    with pytest.raises(ValueError):
        Unit("a/b", eu.random_arrays)
    with pytest.raises(ValueError):
        Unit(".hidden", eu.random_arrays)
    with pytest.raises(ValueError):
        Unit("k", eu.random_arrays, {"seed": 1}, hints={"seed": 2})
    with pytest.raises(ValueError):
        Resources(gpus=-1)
    with pytest.raises(ValueError):
        Resources(cpus=float("nan"))


def test_store_round_trip_mismatch_and_atomicity(tmp_path):
    store = ResultStore(tmp_path / "s")
    u = Unit("u1", eu.random_arrays, {"seed": 3, "n": 5})
    assert not store.has(u)
    res = u.run()
    store.save(u, res)
    back = store.load(u)
    for k in ("x", "gram", "ints", "f32"):
        assert back[k].dtype == res[k].dtype and back[k].tobytes() == res[k].tobytes()
    assert back["norm"] == res["norm"] and back["seed"] == 3
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["u1.json"]  # no temporary file left
    # hints are not part of a unit's identity
    assert store.has(Unit("u1", eu.random_arrays, {"seed": 3, "n": 5}, hints={"marker_dir": None}))
    with pytest.raises(ConfigMismatch):
        store.has(Unit("u1", eu.random_arrays, {"seed": 4, "n": 5}))


def test_run_units_resumes_after_a_failure_and_refuses_duplicates(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    store = tmp_path / "store"

    def units(bad):
        return [Unit(f"u{s}", eu.fail_on, {"seed": s, "bad": bad}, hints={"marker_dir": str(marks)})
                for s in range(5)]

    with pytest.raises(RuntimeError, match="on purpose"):
        run_units(units(bad=2), store=store)
    assert sorted(p.name for p in store.iterdir()) == ["u0.json", "u1.json"]
    # a rerun with the failure fixed computes only what is missing; the bad unit's config
    # changed (bad=-1), so it and everything after it is new, the first two are loaded
    with pytest.raises(ConfigMismatch):
        run_units(units(bad=-1), store=store)
    fixed = [Unit(u.key, u.fn, {"seed": u.config["seed"], "bad": 2 if i < 2 else -1}, hints=u.hints)
             for i, u in enumerate(units(bad=-1))]
    assert run_units(fixed, store=store) == [0, 1, 2, 3, 4]
    counts = {s: len((marks / str(s)).read_text().split()) for s in range(5)}
    assert counts == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}
    assert run_units(fixed, store=store) == [0, 1, 2, 3, 4]  # everything stored: nothing runs
    assert {s: len((marks / str(s)).read_text().split()) for s in range(5)} == counts
    with pytest.raises(ValueError, match="duplicate"):
        run_units([fixed[0], fixed[0]])


def test_process_pool_gives_the_in_process_results(tmp_path, monkeypatch):
    import landscape.runtime.executor as ex

    forced = []
    monkeypatch.setattr(ex, "_stop_workers", lambda pool: forced.append(pool))
    units = [Unit(f"r{s}", eu.random_arrays, {"seed": s, "n": 6}) for s in range(4)]
    here = run_units(units, executor=LocalExecutor(1))
    pool = run_units(units, executor=LocalExecutor(2), store=tmp_path)
    assert forced == []  # a pool that finished is shut down and joined, never terminated
    for a, b in zip(here, pool):
        assert a.keys() == b.keys()
        for k in ("x", "gram", "ints", "f32"):
            assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes()
    # a negative control: another seed gives other numbers
    other = eu.random_arrays(99, 6)
    assert not np.array_equal(other["x"], here[0]["x"])


def test_sigint_stops_the_local_pool(tmp_path):
    """Ctrl-C in the driver terminates the pool's workers instead of letting them finish."""
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to check processes")
    sleep_s = 120
    # the driver starts with Python's own Ctrl-C handling, whatever signal disposition or
    # mask the test runner's process (and so this child) inherited from earlier tests
    script = textwrap.dedent(f"""
        import signal
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGINT}})
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from landscape.runtime.executor import LocalExecutor, Unit, run_units
        from tests import _executor_units as eu
        cfg = {{"seconds": {sleep_s}, "marker_dir": {str(tmp_path)!r}}}
        units = [Unit(f"s{{i}}", eu.sleep_then_mark, dict(cfg, seed=i)) for i in range(3)]
        run_units(units, executor=LocalExecutor(2))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        t0 = time.monotonic()
        while len(list(tmp_path.glob("*.pid"))) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() - t0 < EXIT_SECONDS, "workers did not start"
            time.sleep(0.05)
        pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
        assert all(eu.pid_alive(p) for p in pids)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=EXIT_SECONDS)
        t1 = time.monotonic()
        while any(eu.pid_alive(p) for p in pids) and time.monotonic() - t1 < EXIT_SECONDS:
            time.sleep(0.05)
        assert not any(eu.pid_alive(p) for p in pids), "a pool worker survived the interrupt"
        assert not list(tmp_path.glob("*.done")) and len(list(tmp_path.glob("*.pid"))) == 2  # third never started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------- CLI helpers

def test_executor_arguments():
    import argparse

    p = argparse.ArgumentParser()
    add_executor_arguments(p)
    a = p.parse_args([])
    assert (a.executor, a.ray_address, a.workers) == ("local", None, 1)
    ex = executor_from_args(p.parse_args(["--workers", "3"]))
    assert isinstance(ex, LocalExecutor) and ex.workers == 3
    with pytest.raises(ValueError, match="--workers"):
        executor_from_args(p.parse_args(["--workers", "0"]))
    with pytest.raises(ValueError, match="--executor ray"):
        executor_from_args(p.parse_args(["--ray-address", "auto"]))
    q = argparse.ArgumentParser()
    add_executor_arguments(q, workers_default=None)
    assert q.parse_args([]).workers is None
    assert executor_from_args(q.parse_args([])).workers == 1
    with pytest.raises(SystemExit):
        p.parse_args(["--executor", "slurm"])


def test_only_the_ray_executor_needs_ray(monkeypatch):
    """Without Ray importable, --executor ray is refused up front (ImportError) and the
    local executor does not care."""
    import argparse
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    p = argparse.ArgumentParser()
    add_executor_arguments(p)
    assert check_executor_args(p.parse_args(["--workers", "2"])) == 2
    with pytest.raises(ImportError, match="--executor ray needs Ray"):
        check_executor_args(p.parse_args(["--executor", "ray"]))


def test_get_executor_options_are_keyword_only():
    import inspect

    params = list(inspect.signature(get_executor).parameters.values())
    assert params[0].name == "name" and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert [p.kind for p in params[1:]] == [inspect.Parameter.KEYWORD_ONLY] * (len(params) - 1) and params[1:]


@pytest.mark.parametrize("flags", [["--ray-address", "auto"], ["--workers", "0"]])
def test_figures_make_refuses_bad_execution_flags_before_any_work(flags, tmp_path, capsys):
    from figures.__main__ import main as figures_main

    out = tmp_path / "out"
    assert figures_main(["make", "figure1", "--smoke", "--no-progress", "--out", str(out)] + flags) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists()


# ---------------------------------------------------------------------------- figures as units

def test_figure1_units_equal_one_batched_run(tmp_path):
    """Splitting Figure 1 into per-shape units changes no number, and a rerun loads them."""
    import dataclasses

    from empirics._linear import LinearOptions, run_linear_batched
    from figures._synthetic import _LINEAR_SMOKE, _linear_points, compute_figure1, trial_seeds

    cfg = dict(_LINEAR_SMOKE, trials=2)
    data = compute_figure1(cfg, tmp_path / "w", False)
    pts = _linear_points(cfg)
    ref = run_linear_batched([c for _, _, c in pts], [trial_seeds(cfg["seed"], 2)] * len(pts), LinearOptions())
    for i, r in enumerate(ref):
        for k in ("loss_sum", "iterations", "A_err"):
            assert np.array_equal(data[f"{k}_{i}"], r[k]), (i, k)
    stored = sorted((tmp_path / "w" / "units").glob("linear-*.json"))
    assert len(stored) == len({c.shape_key() for _, _, c in pts})
    # resuming: the stored units are loaded, nothing is recomputed
    import figures._figure1 as syn  # where compute_figure1 looks the unit function up

    def boom(**kw):
        raise AssertionError("recomputed a stored unit")

    real = syn._linear_group_unit
    syn._linear_group_unit = boom
    try:
        again = compute_figure1(cfg, tmp_path / "w", False)
    finally:
        syn._linear_group_unit = real
    assert all(np.array_equal(again[f"loss_sum_{i}"], data[f"loss_sum_{i}"]) for i in range(len(pts)))
    assert dataclasses.asdict(pts[0][2]) == data["points"][0]["config"]


def test_units_and_resources_are_frozen():
    import dataclasses

    u = Unit("k", eu.random_arrays, {"seed": 1, "n": 2}, Resources(cpus=2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.key = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.resources.cpus = 3


def test_a_unit_asks_one_cpu_and_no_gpu_unless_it_says_otherwise():
    """A GPU asked by default would leave every unit waiting on a machine without one."""
    from landscape.runtime.units import Resources, Unit

    assert Resources() == Resources(cpus=1.0, gpus=0.0)
    assert Unit("u", fn=lambda **kw: None, config={}).resources.gpus == 0.0


@pytest.mark.parametrize("ignores_sigterm", [False, True])
def test_stopped_pool_workers_get_sigterm_then_sigkill_after_the_join_grace(ignores_sigterm):
    """_stop_workers: SIGTERM, up to _JOIN_SECONDS for the workers to go, then SIGKILL: a worker
    that honours SIGTERM is gone, and one that ignores it is killed only after that grace
    (_stop_workers takes about _JOIN_SECONDS), never after its 60 s task. Liveness is read from
    the pid (the pool's own thread may reap the worker before its Process object notices)."""
    import time
    from concurrent.futures import ProcessPoolExecutor

    import landscape.runtime.executor as ex

    pool = ProcessPoolExecutor(1, initializer=eu.ignore_sigterm if ignores_sigterm else None)
    pool.submit(eu.sleep_seconds, 60)
    queued = [pool.submit(eu.sleep_seconds, 60) for _ in range(3)]  # the last is still waiting when stopped
    deadline = time.monotonic() + EXIT_SECONDS
    while not pool._processes and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the worker has run its initializer and taken the task
    (pid,) = list(pool._processes)
    t0 = time.monotonic()
    ex._stop_workers(pool)
    took = time.monotonic() - t0
    deadline = time.monotonic() + EXIT_SECONDS
    while eu.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not eu.pid_alive(pid)
    assert took < EXIT_SECONDS
    assert queued[-1].cancelled()  # units not yet handed to a worker are cancelled, never run
    if ignores_sigterm:
        assert took >= ex._JOIN_SECONDS - 0.5
    else:  # SIGTERM was sent at once: no wait for the grace
        assert took < ex._JOIN_SECONDS / 2


def test_duplicate_keys_are_named_and_the_bar_starts_at_the_stored_units(tmp_path, monkeypatch):
    """Two units of one key: the refusal names that key. With 3 of 5 units stored, the
    progress bar counts 5 and starts at 3."""
    import tqdm.auto

    units = [Unit(f"r{s}", eu.random_arrays, {"seed": s, "n": 2}) for s in range(5)]
    with pytest.raises(ValueError, match=r"duplicate unit keys: \['r1'\]"):
        run_units([units[0], units[1], units[1]])
    run_units(units[:3], store=tmp_path)
    bars = []

    class Bar:
        def __init__(self, **kw):
            bars.append(kw)

        def update(self, n=1):
            pass

        def close(self):
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    run_units(units, store=tmp_path, progress=True)
    assert len(bars) == 1 and bars[0]["total"] == 5 and bars[0]["initial"] == 3


def test_the_progress_bar_counts_each_unit_once_from_those_already_stored(tmp_path, monkeypatch):
    """The bar starts at the units loaded from the store and advances by one per unit run, so
    it ends at the total."""
    import tqdm.auto

    bars = []

    class Bar:
        def __init__(self, total, initial=0, **kw):
            self.total, self.n, self.closed = total, initial, False
            bars.append(self)

        def update(self, k=1):
            self.n += k

        def close(self):
            self.closed = True

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    marks = tmp_path / "marks"
    marks.mkdir()
    store = tmp_path / "store"
    units = [Unit(f"u{s}", eu.fail_on, {"seed": s, "bad": -1}, hints={"marker_dir": str(marks)}) for s in range(5)]
    run_units(units[:2], store=store)
    run_units(units, store=store, progress=True)
    (bar,) = bars
    assert (bar.total, bar.n, bar.closed) == (5, 5, True)
