"""landscape._search.cost: the dense Schur complement's byte count in closed form, the memory
refusal of an explicit dense request at its exact boundary, and the reason an automatic
switch to Hessian-vector products gives (in MiB)."""
from __future__ import annotations

import numpy as np
import pytest

from landscape import LoraMLProblem
from landscape._search import cost
from landscape._validation import LandscapeInputError


def _problem(T, d, k):
    return LoraMLProblem(np.zeros((T, d, d)), k)


@pytest.mark.parametrize("T, d, k", [(3, 4, 2), (2, 5, 1), (7, 3, 3)])
def test_dense_schur_bytes_in_closed_form(T, d, k):
    # four d^2 x dk float64 arrays per task plus three (T d k)^2 arrays
    assert cost.dense_schur_bytes(_problem(T, d, k)) == 8 * (4 * T * d ** 3 * k + 3 * (T * d * k) ** 2)


def test_dense_schur_bytes_of_one_size_by_hand():
    assert cost.dense_schur_bytes(_problem(3, 4, 2)) == 8 * (1536 + 1728) == 26112


def test_a_dense_request_fits_exactly_at_the_available_memory(monkeypatch):
    prob = _problem(3, 4, 2)
    need = cost.dense_schur_bytes(prob)
    monkeypatch.setattr(cost, "available_memory_bytes", lambda: need)
    assert cost.curvature_mode(prob, "dense").mode == "dense"
    monkeypatch.setattr(cost, "available_memory_bytes", lambda: need - 1)
    with pytest.raises(LandscapeInputError, match="does not fit in memory"):
        cost.curvature_mode(prob, "dense")


def test_the_automatic_switch_says_the_dense_size_in_mib(monkeypatch):
    prob = _problem(3, 20, 2)
    need = cost.dense_schur_bytes(prob)  # 1,881,600 bytes
    monkeypatch.setattr(cost, "AUTO_DENSE_MAX_BYTES", need - 1)
    mode = cost.curvature_mode(prob, "auto")
    assert mode.mode == "hvp" and mode.dense_bytes == need == 1_881_600
    assert "would need 2 MiB" in mode.reason
    monkeypatch.setattr(cost, "AUTO_DENSE_MAX_BYTES", need)
    assert cost.curvature_mode(prob, "auto").mode == "dense"


@pytest.mark.parametrize("cgroup", [None, "max", str(2**30)])
def test_available_memory_without_meminfo_or_sysconf_assumes_16_gib_under_any_cgroup_limit(monkeypatch, cgroup):
    """Nothing readable (no /proc/meminfo, no sysconf): 16 GiB is assumed, then capped by a
    cgroup v2 limit when one is set ("max" is none)."""
    import builtins
    import io
    import os

    from landscape._search.cost import available_memory_bytes

    real_open = builtins.open

    def fake_open(path, *a, **k):
        if str(path) == "/sys/fs/cgroup/memory.max" and cgroup is not None:
            return io.StringIO(cgroup + "\n")
        if str(path).startswith(("/proc/meminfo", "/sys/fs/cgroup")):
            raise OSError("not here")
        return real_open(path, *a, **k)

    def no_sysconf(name):
        raise ValueError(name)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "sysconf", no_sysconf)
    want = 2**34 if cgroup in (None, "max") else 2**30
    assert available_memory_bytes() == want


def test_an_estimate_describes_its_memory_in_gibibytes():
    from landscape._search.cost import ESTIMATE_BASIS, AuditCost

    c = AuditCost(seconds=12.4, bytes=3 * 2**29, curvature="dense", detail="3 starts")
    assert c.describe() == f"estimated 12 s ({ESTIMATE_BASIS}) and 1.50 GiB (dense curvature; 3 starts)"


@pytest.mark.parametrize("T, mode", [(1500, "dense"), (1501, "hvp")])
def test_the_estimate_takes_the_dense_path_up_to_the_same_size_the_audit_does(T, mode):
    """With curvature "auto", T d k = DENSE_EIGH_MAX_DIM = 1500 unknowns still take the dense
    path and one more the matrix-free one -- in the up-front estimate as in the audit's own
    choice (both inclusive at 1500; d = k = 1 keeps the dense matrices small)."""
    import numpy as np

    from landscape import LoraMLProblem
    from landscape._curvature import DENSE_EIGH_MAX_DIM
    from landscape._search.cost import curvature_mode, estimate_audit_cost

    assert DENSE_EIGH_MAX_DIM == 1500
    assert estimate_audit_cost(1, T, 1, 1).curvature == mode
    prob = LoraMLProblem(np.random.default_rng(0).standard_normal((T, 1, 1)), 1)
    assert curvature_mode(prob).mode == mode
