"""Shared test configuration: one BLAS/OpenMP thread, headless plotting and bounded
hypothesis profiles."""
import os

# The suite's matrices and models are small: a second OpenMP/BLAS thread mostly spin-waits,
# and on a shared 2-core machine that made single tests 4-10x slower (measured: the dense
# plot-value check 21.7 s -> 2.2 s, the language step count 56 s -> 14 s at load 5). Set
# before numpy or torch is imported, so this process and every child it starts inherit it;
# a value given in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# CI runs on 2 cores with a 10-minute budget for the whole suite: keep example counts
# bounded and deadlines generous enough for a loaded machine.
settings.register_profile(
    "ci",
    max_examples=25,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "dev",
    max_examples=40,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch intra-op thread, restoring the previous setting.

    The models in the tests are tiny: a second OpenMP thread only spin-waits, and on a
    shared 2-core machine that made them about 10x slower.  torch is imported here,
    not at module level, so tests that do not use torch never import it.
    """
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def figures_saved(monkeypatch):
    """Every matplotlib figure saved while the test runs (still written where asked), so a
    test can read the artists a plotting function drew: bars, lines, markers, texts."""
    import matplotlib.figure

    saved = []
    original = matplotlib.figure.Figure.savefig

    def savefig(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    return saved


@pytest.fixture
def tiny_figure(monkeypatch):
    """A registered figure whose compute counts its calls and whose rendering is one table."""
    from pathlib import Path

    import numpy as np

    import figures._registry as reg

    calls = {"compute": 0}

    def compute(config, workdir, progress):
        calls["compute"] += 1
        return {"x": np.arange(config["n"], dtype=float)}

    def render(data, out_dir, stem):
        p = Path(out_dir) / f"{stem}.md"
        p.write_text(f"sum {float(np.sum(data['x']))}\n")
        return [p]

    spec = reg.FigureSpec("tinyfig", "a test figure", compute, render, {"n": 4}, {"n": 3}, kind="table")
    monkeypatch.setitem(reg.REGISTRY, "tinyfig", spec)
    return calls


@pytest.fixture
def units_asked(monkeypatch):
    """``run_units`` replaced by a recorder that stops its caller at once: (the units it was
    asked to run, the exception it raises)."""
    import landscape.runtime.executor as ex

    class Stop(Exception):
        pass

    seen = []

    def record(units, **kw):
        seen.extend(units)
        raise Stop

    monkeypatch.setattr(ex, "run_units", record)
    return seen, Stop
