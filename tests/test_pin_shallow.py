"""empirics._shallow pinned: the configuration's bounds at their edges (k <= d, 1 <= k' <= d,
sigma, lr and weight decay >= 0 and finite, counts >= 1), the paper's defaults (Table 9), the
data model redrawn independently from the same stream, the Kaiming bound, the initialisation's
shapes and range, the central range's order statistics exactly, and the hand-written gradient
of one retraining step against autograd.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from empirics import _shallow as S
from empirics._shallow import SHALLOW_PAPER_DEFAULTS, ShallowConfig, central_range, draw_shallow_init, draw_shallow_problem


def test_paper_defaults():
    c = SHALLOW_PAPER_DEFAULTS
    assert (c.T, c.d, c.k, c.N, c.n, c.sigma) == (3, 10, 1, 1000, 100, 0.1)
    assert (c.retrain_epochs, c.finetune_epochs, c.lr, c.weight_decay, c.record_every) == (40000, 15000, 1e-3, 0.01, 100)
    assert c.finetune_rank is None and c.rank_prime == 1
    assert ShallowConfig(d=5, k=2, finetune_rank=4).rank_prime == 4
    assert S.INIT_STREAM == "seedsequence-child-0"


@pytest.mark.parametrize("name", ["T", "d", "k", "N", "n", "retrain_epochs", "finetune_epochs", "record_every"])
def test_counts_are_at_least_one(name):
    ShallowConfig(**{name: 1}) if name not in ("d",) else ShallowConfig(d=1, k=1)
    with pytest.raises(ValueError, match=rf"^ShallowConfig\.{name} must be >= 1, got 0$"):
        ShallowConfig(**{name: 0})


def test_rank_bounds_at_their_edges():
    ShallowConfig(d=3, k=3)
    with pytest.raises(ValueError, match=r"^k \(the adapter rank\) must be <= d=3, got 4$"):
        ShallowConfig(d=3, k=4)
    ShallowConfig(d=3, finetune_rank=1)
    ShallowConfig(d=3, finetune_rank=3)
    for bad in (0, 4, -1):
        with pytest.raises(ValueError, match=rf"^finetune_rank must lie in \[1, d=3\], got {bad}$"):
            ShallowConfig(d=3, finetune_rank=bad)


@pytest.mark.parametrize("name", ["sigma", "lr", "weight_decay"])
def test_real_settings_are_finite_and_non_negative(name):
    ShallowConfig(**{name: 0.0})
    for bad in (-1e-12, math.inf, math.nan):
        with pytest.raises(ValueError, match=rf"must be a finite number >= 0, got {bad}"):
            ShallowConfig(**{name: bad})


def test_the_problem_is_the_data_model_drawn_in_this_order():
    cfg = ShallowConfig(T=2, d=3, k=2, N=7, n=4, sigma=0.3)
    P = draw_shallow_problem(cfg, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    A = rng.standard_normal((3, 3))
    U = rng.standard_normal((3, 3, 2))
    c = rng.standard_normal(3)
    np.testing.assert_array_equal(P.A_star, A)
    np.testing.assert_array_equal(P.U_star, U)
    np.testing.assert_array_equal(P.c, c)
    assert [x.shape for x in P.X] == [(7, 3), (7, 3), (4, 3)]
    for t in range(3):
        X = rng.standard_normal((7 if t < 2 else 4, 3))
        W = A + U[t] @ U[t].T
        clean = np.array([c @ (1 / (1 + np.exp(-(W @ x)))) for x in X])
        noise = 0.3 * rng.standard_normal(len(X))
        np.testing.assert_array_equal(P.X[t], X)
        np.testing.assert_allclose(P.Y_clean[t], clean, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(P.Y[t], P.Y_clean[t] + noise, rtol=0, atol=0)


def test_sigmoid_values():
    assert S._sigmoid(0.0) == 0.5
    assert S._sigmoid(np.log(3.0)) == pytest.approx(0.75, abs=1e-16)
    assert S._sigmoid(-np.log(3.0)) == pytest.approx(0.25, abs=1e-16)


def test_kaiming_bound_is_one_over_sqrt_fan_in():
    assert S._kaiming_bound(4) == 0.5 and S._kaiming_bound(100) == 0.1 and S._kaiming_bound(1) == 1.0


def test_initialisation_shapes_range_and_stream_order():
    cfg = ShallowConfig(T=3, d=4, k=2, finetune_rank=3)
    init = draw_shallow_init(cfg, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    want = {"W1": rng.uniform(-0.5, 0.5, (4, 4)), "c": rng.uniform(-0.5, 0.5, (1, 4)),
            "LA": rng.uniform(-0.5, 0.5, (3, 2, 4)), "FA": rng.uniform(-0.5, 0.5, (3, 4))}
    assert list(init) == list(want)
    for k in want:
        np.testing.assert_array_equal(init[k], want[k])


def test_trial_streams_are_the_seed_and_its_first_child():
    data, init = S.trial_streams(9)
    assert data.integers(10 ** 9) == np.random.default_rng(9).integers(10 ** 9)
    child = np.random.SeedSequence(9).spawn(1)[0]
    assert init.integers(10 ** 9) == np.random.default_rng(child).integers(10 ** 9)


@pytest.mark.parametrize("n, clip", [(5, 2), (10, 2), (7, 3), (3, 0), (1, 0), (11, 1)])
def test_central_range_is_the_order_statistics_and_the_usual_median(n, clip):
    v = np.random.default_rng(n).permutation(np.arange(n, dtype=float) ** 2)
    s = np.sort(v)
    med, lo, hi = central_range(v, clip=clip)
    assert lo == s[clip] and hi == s[n - 1 - clip]
    assert med == (s[(n - 1) // 2] + s[n // 2]) / 2


def test_central_range_needs_more_than_twice_the_clip():
    central_range(np.arange(5.0), clip=2)
    with pytest.raises(ValueError, match=r"^need more than 4 values for a central range, got 4$"):
        central_range(np.arange(4.0), clip=2)
    with pytest.raises(ValueError, match="need more than 0 values"):
        central_range(np.array([]), clip=0)
    assert central_range(np.arange(10.0).reshape(2, 5)) == (4.5, 2.0, 7.0)  # all values, flattened


def test_the_default_clip_is_two():
    assert central_range(np.arange(10.0)) == (4.5, 2.0, 7.0)


def test_retrain_step_gradients_are_autograd_s():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    B, T, d, k, N = 2, 3, 4, 2, 5
    dt = torch.float64
    W1, c = torch.randn(B, d, d, generator=g, dtype=dt), torch.randn(B, 1, d, generator=g, dtype=dt)
    LA, LB = torch.randn(B, T, k, d, generator=g, dtype=dt), torch.randn(B, T, d, k, generator=g, dtype=dt)
    X, Y = torch.randn(B, T, N, d, generator=g, dtype=dt), torch.randn(B, T, N, generator=g, dtype=dt)
    mask = torch.tensor([1.0, 0.0], dtype=dt).view(B, 1, 1, 1)  # LoRA-ML, then SR
    leaves = [t.clone().requires_grad_() for t in (W1, c, LA, LB)]
    w, cc, la, lb = leaves
    Z = (w.unsqueeze(1) + mask * (lb @ la)) @ X.transpose(-1, -2)
    ref = (((cc.unsqueeze(1) @ torch.sigmoid(Z)).squeeze(-2) - Y) ** 2).mean(-1).sum()
    ref.backward()
    mine = [t.clone() for t in (W1, c, LA, LB)]
    loss = S._retrain_step(*mine, mask, X, X.transpose(-1, -2), Y)
    assert float(loss) == pytest.approx(float(ref.detach()), rel=1e-14)
    for got, want in zip(mine, leaves):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-12, atol=1e-14)
    assert float(mine[2].grad[1].abs().max()) == 0.0 and float(mine[3].grad[1].abs().max()) == 0.0  # SR: no adapters


@pytest.mark.parametrize("finetune_epochs, record_every, epochs", [(14, 5, [5, 10, 14]), (15, 5, [5, 10, 15]),
                                                                   (7, 3, [3, 6, 7]), (4, 9, [4])])
def test_the_curve_is_recorded_every_record_every_epochs_and_at_the_last(finetune_epochs, record_every, epochs):
    cfg = ShallowConfig(T=2, d=3, k=1, N=8, n=6, retrain_epochs=3, finetune_epochs=finetune_epochs,
                        record_every=record_every)
    res = S.run_shallow_batched(cfg, [1], dtype="float64")
    assert res["curve_epochs"].tolist() == epochs
    assert res["curve"].shape == (2, 1, len(epochs))
    np.testing.assert_array_equal(res["final_mse"], res["curve"][..., -1])


def test_a_checkpoint_fits_only_with_exactly_this_run_s_shapes():
    torch = pytest.importorskip("torch")
    cfg = ShallowConfig(T=2, d=4, k=1, N=8, n=6, retrain_epochs=5, finetune_epochs=5)
    shapes = [(2, 4, 4), (2, 1, 4)]
    good = {"stage": "retrain", "epoch": 3, "opt": {}, "tensors": [torch.zeros(s) for s in shapes]}
    assert S._checkpoint_fits(good, shapes, [], cfg)
    for bad_shapes in ([(2, 3, 3), (2, 1, 4)], [(2, 4, 4), (2, 1, 3)], [(1, 4, 4), (2, 1, 4)], [(2, 4, 5), (2, 1, 4)]):
        saved = dict(good, tensors=[torch.zeros(s) for s in bad_shapes])
        assert not S._checkpoint_fits(saved, shapes, [], cfg), bad_shapes
    nan = dict(good, tensors=[torch.full(shapes[0], float("nan")), torch.zeros(shapes[1])])
    assert not S._checkpoint_fits(nan, shapes, [], cfg)
    assert not S._checkpoint_fits(dict(good, epoch=6), shapes, [], cfg)
    assert S._checkpoint_fits(dict(good, epoch=5), shapes, [], cfg) and S._checkpoint_fits(dict(good, epoch=0), shapes, [], cfg)
    assert not S._checkpoint_fits(dict(good, epoch=-1), shapes, [], cfg)
    assert not S._checkpoint_fits(dict(good, epoch=True), shapes, [], cfg)


@pytest.mark.parametrize("epoch, fits", [(0, True), (5, True), (6, False), (-1, False)])
def test_a_fine_tuning_checkpoint_fits_from_epoch_0_to_the_last(epoch, fits):
    """A fine-tuning checkpoint (the frozen base, the adapter, the curve so far) fits at every
    epoch 0 .. finetune_epochs, epoch 0 included, and at no other."""
    torch = pytest.importorskip("torch")
    cfg = ShallowConfig(T=2, d=4, k=1, N=8, n=6, retrain_epochs=5, finetune_epochs=5)
    base, ft = [(2, 4, 4), (2, 1, 4)], [(2, 1, 4), (2, 4, 1)]
    saved = {"stage": "finetune", "epoch": epoch, "opt": {}, "tensors": [torch.zeros(s) for s in ft],
             "extra": {"base": [torch.zeros(s) for s in base], "curve": [], "epochs": []}}
    assert S._checkpoint_fits(saved, base, ft, cfg) is fits


def test_the_shallow_family_s_loss_is_the_mean_squared_error():
    """The generic trainer's shallow family scores a batch by mean((f(x) - y)^2) (squared,
    so over- and under-predictions count alike)."""
    torch = pytest.importorskip("torch")
    from empirics._shallow import ShallowFamily, draw_shallow_problem

    fam = ShallowFamily(draw_shallow_problem(ShallowConfig(T=2, d=3, k=1, N=8, n=6), np.random.default_rng(0)))
    model = fam.init_model(torch.Generator().manual_seed(0))
    x, y = fam.retrain_tasks()[0].train
    with torch.no_grad():
        want = float(torch.mean((model(x).squeeze(-1) - y) ** 2))
        shifted = float(torch.mean((model(x).squeeze(-1) - y - 1) ** 2))
        assert float(fam.loss(model, (x, y))) == pytest.approx(want, rel=1e-6)
        assert float(fam.loss(model, (x, y + 1.0))) == pytest.approx(shifted, rel=1e-6)


@pytest.mark.parametrize("clip", [-1, -8, 1.5, True])
def test_a_central_range_refuses_a_clip_that_is_not_a_count(clip):
    """A negative clip would index from the end (-8 of 10 reads the same values as 2) and
    hide a wrong fraction; a float or a boolean is no count either."""
    with pytest.raises(ValueError, match="clip must be an integer >= 0"):
        central_range(np.arange(10.0), clip=clip)


@pytest.mark.parametrize("n, clip", [(3, 2), (4, 2), (1, 1), (0, 0)])
def test_a_central_range_needs_more_than_twice_clip_values(n, clip):
    """Fewer values than 2 clip + 1 (3 for clip 2, not only exactly 4) leave nothing between
    the clipped ends: refused."""
    with pytest.raises(ValueError, match="need more than"):
        central_range(np.arange(float(n)), clip=clip)


@pytest.mark.parametrize("saved", [["retrain", 3], "retrain", None, {"stage": "retrain", "epoch": 3, "opt": {},
                                                                      "tensors": None}])
def test_a_checkpoint_of_another_structure_does_not_fit(saved):
    """Whatever was unpickled -- a list, a string, None, tensors missing -- is not this run's
    checkpoint (no exception escapes the check)."""
    pytest.importorskip("torch")
    cfg = ShallowConfig(T=2, d=4, k=1, N=8, n=6, retrain_epochs=5, finetune_epochs=5)
    assert S._checkpoint_fits(saved, [(2, 4, 4)], [], cfg) is False
