"""The Ray backend: same results as the local one, reruns after a worker dies, resources.

All Ray tests share one local Ray instance (2 CPUs, no dashboard) started once per
session; the module is skipped when Ray is not installed (``pip install '.[cluster]'``).
"""
import os
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the Ray backend needs the 'cluster' extra: pip install '.[cluster]'")

from landscape.runtime.ray_executor import RayExecutor, driver_import_path  # noqa: E402
from landscape.runtime.store import ConfigMismatch, ResultStore  # noqa: E402
from landscape.runtime.executor import LocalExecutor, Resources, Unit, get_executor, run_units  # noqa: E402
from tests import _executor_units as eu  # noqa: E402

#: CPUs of the test cluster: the CI machine's cores.
RAY_CPUS = 2

#: How long a force-cancelled task's worker may take to exit on a loaded 2-core machine.
EXIT_SECONDS = 20.0


@pytest.fixture(scope="session")
def ray_cluster():
    with driver_import_path():  # the workers import this checkout and the tests' unit module
        ray.init(address="local", num_cpus=RAY_CPUS, include_dashboard=False, logging_level="ERROR")
    try:
        yield RayExecutor()  # joins the instance started here; closing it leaves the instance up
    finally:
        ray.shutdown()


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes(), k
        else:
            assert a[k] == b[k], k


def test_same_sweep_on_both_backends(ray_cluster, tmp_path):
    units = [Unit(f"r{s}", eu.random_arrays, {"seed": s, "n": 5}) for s in range(6)]
    local = run_units(units, executor=LocalExecutor(1))
    remote = run_units(units, executor=ray_cluster, store=tmp_path / "s")
    for a, b in zip(local, remote):
        _same(a, b)
    assert get_executor("ray").name == "ray"  # the CLI path joins the running instance too


def test_figure1_smoke_is_identical_on_ray(ray_cluster, tmp_path):
    """``figures make figure1 --smoke`` gives the same arrays with ``--executor ray`` and ``local``."""
    from figures.__main__ import main as figures_main

    base = ["make", "figure1", "--smoke", "--no-progress", "--out"]
    assert figures_main(base + [str(tmp_path / "local"), "--executor", "local"]) == 0
    assert figures_main(base + [str(tmp_path / "ray"), "--executor", "ray"]) == 0  # joins the test instance
    assert ray.is_initialized()  # the command closed its executor without stopping an instance it did not start
    with np.load(tmp_path / "local" / "figure1-smoke.npz") as za, np.load(tmp_path / "ray" / "figure1-smoke.npz") as zb:
        assert za.files and za.files == zb.files
        for k in za.files:
            assert za[k].dtype == zb[k].dtype and za[k].tobytes() == zb[k].tobytes(), k
    assert list((tmp_path / "ray" / "work" / "figure1-smoke" / "units").glob("linear-*.json"))


def test_a_unit_error_reaches_the_driver_and_is_not_retried(ray_cluster, tmp_path):
    units = [Unit(f"f{s}", eu.fail_on, {"seed": s, "bad": 1}, hints={"marker_dir": str(tmp_path)}) for s in range(2)]
    with pytest.raises(RuntimeError, match="on purpose"):
        run_units(units, executor=ray_cluster)
    assert (tmp_path / "1").read_text().count("\n") == 1


def test_resources_are_passed_and_impossible_ones_refused_up_front(ray_cluster):
    units = [Unit("c2", eu.assigned_resources, resources=Resources(cpus=2)),
             Unit("c1", eu.assigned_resources, resources=Resources(cpus=0.5))]
    got = run_units(units, executor=ray_cluster)
    assert got[0].get("CPU") == 2.0 and got[1].get("CPU") == 0.5
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="GPU"):
        run_units([Unit("g", eu.assigned_resources, resources=Resources(gpus=0.5))], executor=ray_cluster)
    with pytest.raises(ValueError, match="no node"):
        run_units([Unit("big", eu.assigned_resources, resources=Resources(cpus=RAY_CPUS + 1))], executor=ray_cluster)
    with pytest.raises(ValueError, match="whole number"):
        run_units([Unit("frac", eu.assigned_resources, resources=Resources(cpus=1.5))], executor=ray_cluster)
    assert time.monotonic() - t0 < EXIT_SECONDS  # refused, not pending forever


def test_store_resume_across_backends(ray_cluster, tmp_path):
    marks = tmp_path / "m"
    marks.mkdir()
    units = [Unit(f"r{s}", eu.random_arrays, {"seed": s, "n": 3}, hints={"marker_dir": str(marks)}) for s in range(4)]
    first = run_units(units[:2], executor=LocalExecutor(1), store=tmp_path / "s")
    allr = run_units(units, executor=ray_cluster, store=tmp_path / "s")  # only r2, r3 run on Ray
    assert {p.name: p.read_text().count("\n") for p in marks.iterdir()} == {"0": 1, "1": 1, "2": 1, "3": 1}
    for a, b in zip(first, allr):
        _same(a, b)
    for r, s in zip(allr, range(4)):
        _same(r, ResultStore(tmp_path / "s").load(units[s]))
    with pytest.raises(ConfigMismatch):
        run_units([Unit("r0", eu.random_arrays, {"seed": 0, "n": 4})], executor=ray_cluster, store=tmp_path / "s")


def test_a_killed_worker_is_rerun_and_nothing_is_lost(ray_cluster, tmp_path):
    units = [Unit(f"r{s}", eu.random_arrays, {"seed": s, "n": 4}) for s in (0, 2)]
    units.insert(1, Unit("d1", eu.die_once, {"seed": 1}, hints={"marker_dir": str(tmp_path)}))
    got = run_units(units, executor=ray_cluster, store=tmp_path / "store")
    for s, r in enumerate(got):
        _same(r, eu.random_arrays(s, 4))
    assert (tmp_path / "died-1").exists()  # the unit's first worker did die
    assert len(list((tmp_path / "store").glob("*.json"))) == 3


def test_without_retries_a_killed_worker_fails_the_sweep(ray_cluster, tmp_path):
    """Negative control: the rerun above is Ray's retry, not luck."""
    from ray.exceptions import WorkerCrashedError

    units = [Unit("d0", eu.die_once, {"seed": 0}, hints={"marker_dir": str(tmp_path)})]
    with pytest.raises(WorkerCrashedError):
        run_units(units, executor=RayExecutor(max_retries=0))


def test_stopping_the_sweep_cancels_outstanding_tasks(ray_cluster, tmp_path):
    """What a KeyboardInterrupt does in ``run_units``: the generator is closed, running
    tasks are killed and queued ones never start."""
    units = [Unit("quick", eu.sleep_then_mark, {"seed": 0, "seconds": 0.0, "marker_dir": str(tmp_path)})]
    units += [Unit(f"slow{s}", eu.sleep_then_mark, {"seed": s, "seconds": 120.0, "marker_dir": str(tmp_path)})
              for s in (1, 2, 3)]
    gen = ray_cluster.imap(units)
    i, _ = next(gen)
    assert units[i].key == "quick"
    t0 = time.monotonic()
    while not list(tmp_path.glob("[123].pid")):
        assert time.monotonic() - t0 < EXIT_SECONDS, "no slow unit started"
        time.sleep(0.05)
    gen.close()
    pids = [int(p.read_text()) for p in tmp_path.glob("[123].pid")]
    t1 = time.monotonic()
    while any(eu.pid_alive(p) for p in pids) and time.monotonic() - t1 < EXIT_SECONDS:
        time.sleep(0.05)
    assert not any(eu.pid_alive(p) for p in pids), "a cancelled unit kept running"
    assert not list(tmp_path.glob("[123].done"))


def _strip_walls(obj):
    """A unit result without its wall-clock fields (the only thing that may differ between backends)."""
    if isinstance(obj, dict):
        return {k: _strip_walls(v) for k, v in obj.items() if not (k.endswith("wall_s") or k == "seconds")}
    if isinstance(obj, list):
        return [_strip_walls(v) for v in obj]
    return obj


def test_atlas_cells_are_identical_on_ray(ray_cluster, tmp_path):
    """The atlas's cells (tiny grid) give the same counts through Ray as in this process."""
    from theory import AtlasConfig, atlas_units

    tiny = AtlasConfig(ks=(1,), ratios=(2,), Ts=(2, 3), instances=1, starts=4, lm_starts=2, gd_runs=1, gd_outer=100,
                       certify_max_dim=30)
    units = atlas_units(tiny, seed=0)
    local = run_units(units, executor=LocalExecutor(1))
    remote = run_units(units, executor=ray_cluster, store=tmp_path / "cells")
    assert len(local) == len(units) >= 2
    assert [_strip_walls(a) for a in local] == [_strip_walls(b) for b in remote]


@pytest.mark.skipif(not os.environ.get("LORAML_RAY_TORCH_TESTS"),
                    reason="torch units start slowly in Ray workers on a 2-core machine (~90 s); "
                           "set LORAML_RAY_TORCH_TESTS=1 to run")
def test_real_data_smoke_is_identical_on_ray(ray_cluster, tmp_path):
    """``python -m empirics vision`` (tiny random-image run) trains the same numbers with
    ``--executor ray`` as with ``--executor local``: every unit's histories and accuracies."""
    import json

    from empirics.real.cli import main

    tiny = ["vision", "--dataset", "random", "--seeds", "1", "--epochs", "1", "--finetune-epochs", "1",
            "--width", "8", "--batch-size", "16", "--retrain", "lora-ml", "sr", "--peft", "lora", "--quiet"]
    assert main(tiny + ["--out", str(tmp_path / "local"), "--executor", "local"]) == 0
    assert main(tiny + ["--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    names = sorted(p.name for p in (tmp_path / "local" / "units").glob("*.json"))
    assert len(names) == 2 and names == sorted(p.name for p in (tmp_path / "ray" / "units").glob("*.json"))
    for name in names:
        a = json.loads((tmp_path / "local" / "units" / name).read_text())
        b = json.loads((tmp_path / "ray" / "units" / name).read_text())
        assert a["config_sha256"] == b["config_sha256"]
        assert _strip_walls(a["result"]) == _strip_walls(b["result"]), name


def test_the_ray_executor_is_got_by_its_name(ray_cluster):
    from landscape.runtime.executor import get_executor

    assert type(get_executor("ray")).__name__ == "RayExecutor"


def test_a_cluster_job_ships_the_four_packages_of_this_checkout():
    """cluster_runtime_env: py_modules are this checkout's landscape, theory, empirics and
    figures folders (each a package beside pyproject.toml), nothing else."""
    from pathlib import Path

    from landscape.runtime.ray_executor import PROJECT_PACKAGES, cluster_runtime_env

    root = Path(__file__).resolve().parents[1]
    env = cluster_runtime_env()
    assert set(PROJECT_PACKAGES) == {"landscape", "theory", "empirics", "figures"}
    assert sorted(env["py_modules"]) == sorted(str(root / p) for p in PROJECT_PACKAGES)
    assert all((Path(m) / "__init__.py").is_file() and (Path(m).parent / "pyproject.toml").is_file()
               for m in env["py_modules"])
    assert "*.npz" in env["excludes"] and "__pycache__/" in env["excludes"]


def test_driver_paths_leave_out_exactly_the_interpreters_own_folders(tmp_path, monkeypatch):
    """A folder of PYTHONPATH or sys.path goes to the workers unless it is an interpreter
    prefix or inside one: the prefix and prefix/lib are left out, the siblings prefiw,
    prefiy and prefix2 (which sort before and after it, or start with its name) are kept;
    the checkout's root comes first, and nothing twice."""
    import sys
    from pathlib import Path

    from landscape.runtime import ray_executor as RE

    prefix = tmp_path / "prefix"
    dirs = {n: tmp_path / n for n in ("prefix", "prefiw", "prefiy", "prefix2")}
    for p in dirs.values():
        p.mkdir()
    (prefix / "lib").mkdir()
    for attr in ("prefix", "base_prefix", "exec_prefix"):
        monkeypatch.setattr(sys, attr, str(prefix))
    monkeypatch.setattr(sys, "path", [str(prefix / "lib"), str(dirs["prefiy"]), str(dirs["prefiy"]), ""])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(prefix), str(dirs["prefiw"]), str(dirs["prefix2"]),
                                                      str(tmp_path / "missing")]))
    got = RE._driver_paths()
    root = str(Path(RE.__file__).resolve().parents[2])
    assert got == [root] + [os.path.realpath(dirs[n]) for n in ("prefiw", "prefix2", "prefiy")]
