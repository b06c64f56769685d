"""empirics.real._cost pinned: the printed durations switch units exactly at 120 s, 2 h and 2
days; the GPU assumptions (100 TFLOP/s sustained, 3 ms per optimizer step) and the GPU seconds
they give; the calibration times the optimizer the run will use.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from empirics.real import _cost as C  # noqa: E402
from empirics.real._config import RunConfig  # noqa: E402


@pytest.mark.parametrize("s, text", [(0.4, "0 s"), (119.4, "119 s"), (120, "2 min"), (7199, "120 min"),
                                     (7200, "2.0 h"), (172_799, "48.0 h"), (172_800, "2.0 days"),
                                     (10 * 86_400, "10.0 days")])
def test_durations_switch_units_at_their_boundaries(s, text):
    assert C._duration(s) == text


def test_gpu_assumptions_and_seconds():
    assert C.GPU_ASSUMED == {"flops_per_s": 1.0e14, "pass_latency_s": 3.0e-3}
    counts = {"eval": 10, "steps": 1000, "work": {k: 0 for k in C.KINDS}}
    counts["work"]["train"], counts["work"]["ft-lora"] = 2000, 500
    rates = {"eval_flops": 1e9, "flops": {k: 0.0 for k in C.KINDS}}
    rates["flops"]["train"], rates["flops"]["ft-lora"] = 3e12, 4e12
    want = (10 * 1e9 + 2000 * 3e12 + 500 * 4e12) / 1e14 + 1000 * 3e-3
    assert C.gpu_seconds(counts, rates) == pytest.approx(want, rel=1e-15, abs=0)
    assert C.gpu_seconds(counts, rates, {"flops_per_s": 2e14, "pass_latency_s": 0.0}) == pytest.approx(
        (10 * 1e9 + 2000 * 3e12 + 500 * 4e12) / 2e14, rel=1e-15, abs=0)


TINY = dict(dataset="random", seeds=(1,), epochs=1, finetune_epochs=1, width=8, batch_size=16, max_per_task=40,
            max_eval_per_task=24, reptile_outer_epochs=1, reptile_inner_steps=3, retrain=("sr",),
            peft=("last-layer",))


@pytest.mark.parametrize("optimizer, cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                                            ("sgd", torch.optim.SGD)])
def test_calibration_times_the_runs_optimizer(monkeypatch, optimizer, cls):
    from empirics.real._protocol import build_family

    made = []
    orig_init = torch.optim.Optimizer.__init__

    def record(self, params, defaults):
        made.append(type(self))
        return orig_init(self, params, defaults)

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", record)
    cfg = RunConfig(**TINY, optimizer=optimizer)
    fam = build_family(cfg, verbose=False)
    made.clear()
    C.calibrate(fam, cfg, ["train"])
    assert made and set(made) == {cls}
