"""figures._real_tables pinned: a run's device and bf16 default (bf16 on CUDA only), and Table 3's
ranks -- the paper's 1, 4, 8, 16 and a smoke configuration of distinct ranks."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")

from figures import _real_tables as R  # noqa: E402
from figures._registry import REGISTRY  # noqa: E402


@pytest.mark.parametrize("cuda", [False, True])
def test_bf16_is_on_for_cuda_only(monkeypatch, tmp_path, cuda):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    cfg = R._run_config({"experiment": "vision"}, tmp_path)
    assert (cfg.device, cfg.bf16) == (("cuda", True) if cuda else ("cpu", False))
    given = R._run_config({"experiment": "vision", "device": "cpu", "bf16": False}, tmp_path)
    assert (given.device, given.bf16) == ("cpu", False)  # a stated device is kept as stated


def test_table3_ranks_are_the_papers_and_the_smoke_ranks_are_distinct():
    spec = REGISTRY["table3"]
    assert spec.paper["ranks"] == [1, 4, 8, 16]
    smoke = spec.smoke["ranks"]
    assert len(smoke) >= 2 and smoke == sorted(set(smoke))
