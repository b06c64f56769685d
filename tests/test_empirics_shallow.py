"""Shallow network (THEORY.md 9.2): batched trials are independent runs, central ranges."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from empirics._shallow import (
    ShallowConfig,
    central_range,
    draw_shallow_init,
    draw_shallow_problem,
    run_shallow_batched,
    trial_streams,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = ShallowConfig(T=2, d=3, k=1, N=12, n=6, retrain_epochs=25, finetune_epochs=15, record_every=5)


def test_batched_trials_equal_separate_runs_and_are_deterministic():
    together = run_shallow_batched(TINY, [1, 2, 3], dtype="float64")
    alone = run_shallow_batched(TINY, [2], dtype="float64")
    np.testing.assert_allclose(together["curve"][:, 1], alone["curve"][:, 0], rtol=1e-10)
    again = run_shallow_batched(TINY, [1, 2, 3], dtype="float64")
    assert np.array_equal(together["curve"], again["curve"])
    assert together["curve"].shape == (2, 3, 3)
    assert list(together["curve_epochs"]) == [5, 10, 15]


def test_batched_kernel_matches_a_plain_per_trial_implementation():
    """SR and LoRA-ML halves of the batch against a straightforward nn.Module + AdamW loop
    started from the same draws (the problem from ``default_rng(seed)``; W1, c, retraining
    A_t, fine-tuning A from the independent child stream ``SeedSequence(seed).spawn(1)[0]``)."""
    import torch

    cfg, seed = TINY, 7
    res = run_shallow_batched(cfg, [seed], dtype="float64")
    P = draw_shallow_problem(cfg, np.random.default_rng(seed))
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    b = 1 / np.sqrt(cfg.d)
    W1, c = rng.uniform(-b, b, (cfg.d, cfg.d)), rng.uniform(-b, b, (1, cfg.d))
    LA, FA = rng.uniform(-b, b, (cfg.T, cfg.k, cfg.d)), rng.uniform(-b, b, (cfg.k, cfg.d))
    tt = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    for m, use_adapters in ((0, True), (1, False)):
        w1, cc = tt(W1).requires_grad_(), tt(c).requires_grad_()
        As = [tt(LA[t]).requires_grad_() for t in range(cfg.T)]
        Bs = [torch.zeros(cfg.d, cfg.k, dtype=torch.float64, requires_grad=True) for _ in range(cfg.T)]
        opt = torch.optim.AdamW([w1, cc] + (As + Bs if use_adapters else []), lr=cfg.lr,
                                weight_decay=cfg.weight_decay)
        for _ in range(cfg.retrain_epochs):
            opt.zero_grad()
            loss = 0
            for t in range(cfg.T):
                W = w1 + Bs[t] @ As[t] if use_adapters else w1
                out = torch.sigmoid(tt(P.X[t]) @ W.T) @ cc.T
                loss = loss + torch.mean((out.squeeze(-1) - tt(P.Y[t])) ** 2)
            loss.backward()
            opt.step()
        with torch.no_grad():  # the reported retraining loss: the summed task MSEs at the retrained weights
            final = sum(torch.mean(((torch.sigmoid(tt(P.X[t]) @ (w1 + Bs[t] @ As[t] if use_adapters else w1).T)
                                     @ cc.T).squeeze(-1) - tt(P.Y[t])) ** 2) for t in range(cfg.T))
        assert res["retrain_loss"][m, 0] == pytest.approx(float(final), rel=1e-9)
        fa = tt(FA).requires_grad_()
        fb = torch.zeros(cfg.d, cfg.k, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.AdamW([fa, fb], lr=cfg.lr, weight_decay=cfg.weight_decay)
        pred = lambda: (torch.sigmoid(tt(P.X[-1]) @ (w1.detach() + fb @ fa).T) @ cc.detach().T).squeeze(-1)  # noqa
        for _ in range(cfg.finetune_epochs):
            opt.zero_grad()
            torch.mean((pred() - tt(P.Y[-1])) ** 2).backward()
            opt.step()
        with torch.no_grad():
            mse = float(torch.mean((pred() - tt(P.Y_clean[-1])) ** 2))
        assert res["final_mse"][m, 0] == pytest.approx(mse, rel=1e-9, abs=0)


def test_initialisation_does_not_depend_on_n_or_N():
    """The init stream is independent of the data stream: a sweep over n (or N) changes
    the data, never the network's starting point (THEORY.md 9.2)."""
    seed = 11
    inits = []
    for n, N in ((5, 12), (500, 12), (5, 300)):
        cfg = ShallowConfig(T=2, d=3, k=1, N=N, n=n)
        data_rng, init_rng = trial_streams(seed)
        P = draw_shallow_problem(cfg, data_rng)
        assert P.X[-1].shape == (n, 3)
        inits.append(draw_shallow_init(cfg, init_rng))
    for other in inits[1:]:
        for name in ("W1", "c", "LA", "FA"):
            assert np.array_equal(inits[0][name], other[name])
    # negative control: drawing the init after the data (the old scheme) does depend on n
    old = []
    for n in (5, 500):
        rng = np.random.default_rng(seed)
        draw_shallow_problem(ShallowConfig(T=2, d=3, k=1, N=12, n=n), rng)
        old.append(draw_shallow_init(ShallowConfig(T=2, d=3, k=1, N=12, n=n), rng)["W1"])
    assert not np.array_equal(old[0], old[1])
    # the two streams of one trial differ, and the data stream is default_rng(seed)
    data_rng, init_rng = trial_streams(seed)
    assert data_rng.random() == np.random.default_rng(seed).random() != init_rng.random()


def test_problem_draw_uses_clean_outputs_plus_noise():
    cfg = ShallowConfig(T=2, d=4, N=5000, n=50, sigma=0.2)
    P = draw_shallow_problem(cfg, np.random.default_rng(0))
    assert len(P.X) == 3 and P.X[-1].shape == (50, 4)
    assert (P.Y[0] - P.Y_clean[0]).std() == pytest.approx(0.2, rel=0.05, abs=0)


@settings(max_examples=25, deadline=None)
@given(v=arrays(np.float64, st.integers(5, 20), elements=st.floats(0, 1e3)), clip=st.integers(0, 2))
def test_central_range_is_ordered_and_permutation_invariant(v, clip):
    med, lo, hi = central_range(v, clip=clip)
    assert lo <= med <= hi
    assert central_range(v[::-1], clip=clip) == (med, lo, hi)
    assert np.sum(v < lo) <= clip and np.sum(v > hi) <= clip


def test_bad_inputs():
    with pytest.raises(ValueError, match="d"):
        ShallowConfig(d=0)
    with pytest.raises(ValueError, match="adapter rank"):
        ShallowConfig(d=3, k=4)
    with pytest.raises(ValueError, match="sigma"):
        ShallowConfig(sigma=float("nan"))
    with pytest.raises(ValueError, match="finetune_rank"):
        ShallowConfig(d=3, finetune_rank=4)
    with pytest.raises(ValueError, match="seed"):
        run_shallow_batched(TINY, [])
    with pytest.raises(ValueError, match="central range"):
        central_range(np.arange(4.0), clip=2)


@pytest.mark.parametrize("interrupt_after, steps_left", [(7, 19 + 15), (31, 9)])  # retraining / fine-tuning
def test_interrupted_run_resumes_from_checkpoint(tmp_path, monkeypatch, capsys, interrupt_after, steps_left):
    """Killed at optimizer step 8 (retraining epoch 8; its checkpoint: epoch 6) or 32
    (fine-tuning epoch 7; checkpoint: fine-tuning epoch 6), the run resumes from the
    checkpoint -- only the steps after it are taken, no restart is reported -- and ends with
    the uninterrupted run's curve, bit for bit."""
    import torch

    full = run_shallow_batched(TINY, [1, 2], dtype="float64")
    ck = tmp_path / "state.pt"
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def flaky_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > interrupt_after:
            raise KeyboardInterrupt("simulated interruption")
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", flaky_step)
    with pytest.raises(KeyboardInterrupt):
        run_shallow_batched(TINY, [1, 2], dtype="float64", checkpoint=str(ck), checkpoint_every=3)
    assert ck.exists()
    taken = []

    def counting_step(self, *a, **k):
        taken.append(None)
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", counting_step)
    capsys.readouterr()
    resumed = run_shallow_batched(TINY, [1, 2], dtype="float64", checkpoint=str(ck), checkpoint_every=3)
    assert len(taken) == steps_left and "starting from the beginning" not in capsys.readouterr().err
    np.testing.assert_array_equal(full["curve"], resumed["curve"])
    assert not ck.exists()


def test_parallel_trial_chunks_give_the_same_numbers(tmp_path):
    """Trials split across 2 worker processes are concatenated into exactly the arrays of
    a single-process run (trials are independent; each chunk is its own unit)."""
    from figures._synthetic import _SHALLOW_SMOKE, compute_shallow_sweep

    cfg = dict(_SHALLOW_SMOKE, sweep="d", trials=3)
    one = compute_shallow_sweep(cfg, tmp_path / "one" / "w", False)
    two = compute_shallow_sweep(dict(cfg, workers=2), tmp_path / "two" / "w", False)
    keys = [k for k in one if k.startswith(("final_mse_", "curve_"))]
    assert keys
    for k in keys:
        assert np.array_equal(one[k], two[k]), k


def test_checkpoints_are_written_every_checkpoint_every_epochs(tmp_path, monkeypatch):
    """checkpoint_every=3: the state is saved after epochs 3, 6, ... of each stage, no others."""
    import torch

    saved = []
    real = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: (saved.append((obj["stage"], obj["epoch"])), real(obj, f))[1])
    run_shallow_batched(TINY, [1], dtype="float64", checkpoint=str(tmp_path / "state.pt"), checkpoint_every=3)
    assert saved == [("retrain", e) for e in range(3, 26, 3)] + [("finetune", e) for e in range(3, 16, 3)]
