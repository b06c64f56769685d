"""Shared test configuration: headless plotting and bounded hypothesis profiles."""
import os

import matplotlib

matplotlib.use("Agg")

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
