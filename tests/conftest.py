"""Shared test configuration: headless plotting and bounded hypothesis profiles."""
import os

import matplotlib

matplotlib.use("Agg")

import pytest
from hypothesis import HealthCheck, settings

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
