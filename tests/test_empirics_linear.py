"""Linear model (THEORY.md 9.1): the second-moment batched kernel equals the official
full-data algorithm, the generic trainer reproduces it, options mean what they say."""
import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from empirics._linear import (LinearConfig, LinearFamily, LinearOptions, draw_linear_problem, full_data_reference,
                              run_linear_batched)
from empirics._trainer import StageConfig, finetune, retrain

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = dict(outer_steps=12, inner_steps=3, sr_epochs=15, finetune_iters=10, record_every=1)


@settings(max_examples=8, deadline=None)
@given(T=st.integers(1, 4), d=st.integers(2, 5), k=st.integers(1, 2), official=st.booleans(),
       seed=st.integers(0, 2**31))
def test_second_moment_kernel_equals_full_data_algorithm(T, d, k, official, seed):
    cfg = LinearConfig(T=T, d=d, k=min(k, d), N=30, n=12, **SMALL)
    opts = LinearOptions.official() if official else LinearOptions()
    res = run_linear_batched([cfg], [[seed]], opts)[0]
    P = draw_linear_problem(cfg, np.random.default_rng(seed), opts, keep_data=True)
    ref = full_data_reference(cfg, P, outer_steps=cfg.outer_steps, sr_epochs=cfg.sr_epochs,
                              finetune_iters=cfg.finetune_iters)
    for m, key in enumerate(("metric_ml", "metric_sr")):
        np.testing.assert_allclose(res["loss_sum"][m, 0], ref[key], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res["loss_per_sample"], res["loss_sum"] / cfg.n)


def test_generic_trainer_reproduces_batched_kernel():
    cfg = LinearConfig(T=3, d=4, k=1, N=40, n=15, **SMALL)
    P = draw_linear_problem(cfg, np.random.default_rng(1), keep_data=True)
    ref = full_data_reference(cfg, P, outer_steps=cfg.outer_steps, sr_epochs=cfg.sr_epochs,
                              finetune_iters=cfg.finetune_iters)
    g = torch.Generator().manual_seed(0)
    ml = retrain(LinearFamily(P, 0), StageConfig("lora-ml", epochs=cfg.outer_steps, lr=cfg.lr_A / cfg.T,
                                                  adapter_lr=cfg.lr_U, optimizer="sgd",
                                                  inner_adapter_steps=cfg.inner_steps), g)
    np.testing.assert_allclose(ml.model.A.detach().numpy(), ref["A_ml"], atol=1e-12)
    sr = retrain(LinearFamily(P, 1), StageConfig("sr", epochs=cfg.sr_epochs, lr=cfg.sr_lr / cfg.T, optimizer="sgd"), g)
    np.testing.assert_allclose(sr.model.A.detach().numpy(), ref["A_sr"], atol=1e-12)
    ft = finetune(LinearFamily(P, 0), ml.model, StageConfig("lora", epochs=cfg.finetune_iters, lr=cfg.finetune_lr,
                                                            optimizer="sgd", k=cfg.rank_prime), g)
    assert ft.history[-1]["test"]["loss_sum"] == pytest.approx(ref["metric_ml"][-1], rel=1e-9, abs=0)


def test_batching_points_together_changes_nothing():
    a = LinearConfig(T=3, d=4, k=1, N=50, n=10, **SMALL)
    b = dataclasses.replace(a, N=80)      # same shape: stacked with a
    c = dataclasses.replace(a, T=2)       # other shape: its own group
    alone = run_linear_batched([a], [[3, 4]])[0]
    together = run_linear_batched([b, a, c], [[5, 6], [3, 4], [7, 8]])[1]
    np.testing.assert_allclose(alone["loss_sum"], together["loss_sum"], rtol=1e-12)
    again = run_linear_batched([a], [[3, 4]])[0]
    assert np.array_equal(alone["loss_sum"], again["loss_sum"])          # deterministic
    other = run_linear_batched([a], [[9, 4]])[0]
    assert not np.allclose(alone["loss_sum"][:, 0], other["loss_sum"][:, 0])


def test_options_noise_level_and_a_star():
    cfg = LinearConfig(T=1, d=3, k=1, N=20000, n=10, sigma=0.3)
    for squared, std in ((False, 0.3), (True, 0.09)):
        P = draw_linear_problem(cfg, np.random.default_rng(0), LinearOptions(noise_std_squared=squared),
                                keep_data=True)
        X, Y = P.data[0]
        resid = Y - (P.A_star + P.U_star[0] @ P.U_star[0].T) @ X
        assert resid.std() == pytest.approx(std, rel=0.02, abs=0)
    P = draw_linear_problem(cfg, np.random.default_rng(0), LinearOptions(symmetric_a_star=True))
    np.testing.assert_allclose(P.A_star, P.A_star.T)
    P = draw_linear_problem(cfg, np.random.default_rng(0))
    assert not np.allclose(P.A_star, P.A_star.T)
    assert np.array_equal(P.FU0[0], P.FU0[1])  # same fine-tuning init for both methods
    P = draw_linear_problem(cfg, np.random.default_rng(0), LinearOptions(shared_finetune_init=False))
    assert not np.array_equal(P.FU0[0], P.FU0[1])


def test_lora_ml_beats_sr_for_three_tasks_and_sr_has_no_rank_k_fit():
    # THEORY.md 3 (Prop 1) and 4 (Cor 4): after LoRA-ML a rank-k adapter fits the test task,
    # after SR it cannot; with T = 3 the gap is orders of magnitude.
    cfg = LinearConfig(T=3, d=6, k=1, N=2000, n=200, outer_steps=1500, inner_steps=10, sr_epochs=500,
                       finetune_iters=1500, record_every=100)
    r = run_linear_batched([cfg], [[11, 12]])[0]
    ml, sr = r["loss_per_sample"][0, :, -1], r["loss_per_sample"][1, :, -1]
    assert np.all(ml * 100 < sr)
    assert np.all(r["A_err"][0] < 0.1 * r["A_err"][1])


def test_bad_inputs():
    with pytest.raises(ValueError, match="T"):
        LinearConfig(T=0)
    with pytest.raises(ValueError, match="finetune_rank"):
        LinearConfig(d=3, finetune_rank=4)
    with pytest.raises(ValueError, match="seed lists"):
        run_linear_batched([LinearConfig(), LinearConfig()], [[1], [2], [3]])
    assert LinearConfig(T=2, k=2).rank_prime == 6 and LinearConfig(T=3, k=2).rank_prime == 2


def test_second_moments_give_the_data_loss_exactly():
    """Each task keeps Sxx = X X^T / m, Syx = Y X^T / m and Syy = tr(Y Y^T) / m, so that
    (1/2)(tr(M Sxx M^T) - 2 tr(M Syx^T) + Syy) is the data loss ||Y - M X||^2 / (2 m) at any M
    (the test task with its own m = n)."""
    cfg = LinearConfig(T=2, d=3, k=1, N=20, n=7, **SMALL)
    P = draw_linear_problem(cfg, np.random.default_rng(4), keep_data=True)
    M = np.random.default_rng(5).standard_normal((3, 3))
    moments = [(P.Sxx[t], P.Syx[t], P.Syy[t]) for t in range(2)] + [(P.Sxx_test, P.Syx_test, P.Syy_test)]
    for (X, Y), (Sxx, Syx, Syy) in zip(P.data, moments):
        m = X.shape[1]
        via_moments = 0.5 * (np.sum((M @ Sxx) * M) - 2 * np.sum(M * Syx) + Syy)
        assert via_moments == pytest.approx(np.sum((Y - M @ X) ** 2) / (2 * m), rel=1e-10)


@pytest.mark.parametrize("stage, good, bad", [("retrain", "k", "k + 1"), ("finetune", "kp", "kp - 1")])
def test_adapters_of_another_rank_than_the_problem_s_are_refused(stage, good, bad):
    """The linear family's adapters are the problem's own initial factors: a rank other than
    k (retraining) or k' (fine-tuning), larger or smaller, is refused."""
    cfg = LinearConfig(T=2, d=4, k=1, N=20, n=7, finetune_rank=2, **SMALL)
    P = draw_linear_problem(cfg, np.random.default_rng(4))
    fam = LinearFamily(P, 0)
    model = fam.init_model(torch.Generator().manual_seed(0))
    names = [f"task_{t}" for t in range(2)] if stage == "retrain" else ["test"]
    ranks = {"k": 1, "k + 1": 2, "kp": 2, "kp - 1": 1}
    fam.attach_lora(model, names, rank=ranks[good], stage=stage, generator=torch.Generator())
    with pytest.raises(ValueError, match="differs from the problem"):
        fam.attach_lora(fam.init_model(torch.Generator().manual_seed(0)), names, rank=ranks[bad], stage=stage,
                        generator=torch.Generator())
