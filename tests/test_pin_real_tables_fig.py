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


def test_each_table_runs_in_its_own_folder_and_table3_defaults_to_the_papers_ranks(monkeypatch, tmp_path):
    """Tables 1 and 2 run under WORKDIR/run, Table 3 one run per rank under WORKDIR/rank<r>,
    at the paper's ranks 1, 4, 8, 16 when the configuration names none."""
    import empirics.real._run as run_mod

    seen = []
    monkeypatch.setattr(run_mod, "run", lambda cfg, out, progress=False: seen.append((cfg.k, out)) or {"k": cfg.k})
    cfg = {"experiment": "vision", "dataset": "random", "device": "cpu"}
    assert R.compute_table1(cfg, tmp_path, False) == {"record": {"k": seen[0][0]}}
    assert seen[0][1] == tmp_path / "run"
    seen.clear()
    out = R.compute_table3(cfg, tmp_path, False)
    assert [k for k, _ in seen] == [1, 4, 8, 16] and sorted(out["records"]) == ["1", "16", "4", "8"]
    assert [p for _, p in seen] == [tmp_path / f"rank{r}" for r in (1, 4, 8, 16)]
