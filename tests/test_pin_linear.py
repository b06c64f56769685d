"""Draws of the synthetic linear experiment (``empirics/_linear.py``): every adapter
initialisation is init_std times a standard normal (exactly linear in init_std, both
signs), SR's stray adapters exist only when asked for, and the data matrices are kept
only when asked for (by default a trial holds its second moments alone)."""
from __future__ import annotations

import dataclasses

import numpy as np

from empirics._linear import LinearConfig, LinearOptions, draw_linear_problem


def _draw(init_std, options=LinearOptions(), **kw):
    cfg = LinearConfig(T=3, d=4, k=1, N=20, n=6, init_std=init_std)
    return draw_linear_problem(cfg, np.random.default_rng(11), options, **kw)


def test_initialisations_are_init_std_times_standard_normals():
    opts = dataclasses.replace(LinearOptions(), sr_stray_adapters=True)
    a, b = _draw(0.1, opts), _draw(0.2, opts)
    for name in ("U0", "stray", "FU0", "FV0"):
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(y, 2.0 * x), name  # 0.2 = 2 x 0.1 in binary: doubling is exact
        assert (x < 0).any() and (x > 0).any(), name
    assert np.array_equal(a.Sxx, b.Sxx) and np.array_equal(a.A_star, b.A_star)


def test_stray_adapters_only_when_asked_for():
    assert not _draw(0.1).stray.any()
    assert _draw(0.1, dataclasses.replace(LinearOptions(), sr_stray_adapters=True)).stray.any()


def test_data_kept_only_when_asked_for_and_moments_are_its_moments():
    assert _draw(0.1).data is None
    p = _draw(0.1, keep_data=True)
    assert len(p.data) == 4  # T retraining tasks and the test task
    X, Y = p.data[0]
    assert X.shape == (4, 20) and np.array_equal(p.Sxx[0], X @ X.T / 20) and np.array_equal(p.Syx[0], Y @ X.T / 20)
    Xt, Yt = p.data[3]
    assert Xt.shape == (4, 6) and np.array_equal(p.Sxx_test, Xt @ Xt.T / 6)
    q = _draw(0.1)
    assert np.array_equal(q.Sxx, p.Sxx) and np.array_equal(q.U0, p.U0)  # keeping data draws nothing more


def _small(**kw):
    return LinearConfig(T=3, d=4, k=1, N=20, n=6, outer_steps=3, inner_steps=2, sr_epochs=3, finetune_iters=7,
                        record_every=3, **kw)


def test_one_flat_seed_list_serves_every_point_and_iterations_start_at_zero():
    from empirics._linear import run_linear_batched

    points = [_small(), _small(sigma=0.2)]
    flat = run_linear_batched(points, [5, 6])
    nested = run_linear_batched(points, [[5, 6], [5, 6]])
    for a, b in zip(flat, nested):
        np.testing.assert_array_equal(a["loss_sum"], b["loss_sum"])
        assert list(a["seeds"]) == [5, 6]
    # the curve starts before the first fine-tuning step, records every 3 and at the last
    assert flat[0]["iterations"].tolist() == [0, 3, 6, 7]
    assert flat[0]["loss_sum"].shape == (2, 2, 4)


def test_a_trial_draws_a_symmetrised_a_star_and_documented_shapes():
    """A* is G (the trial's first Gaussian draw) or its symmetric part (G + G^T) / 2, and the
    fine-tuning initialisations are one per method, (2, d, k')."""
    cfg = LinearConfig(d=5, k=1, T=3, N=20, n=10, finetune_rank=2)
    G = np.random.default_rng(4).standard_normal((5, 5))
    sym = draw_linear_problem(cfg, np.random.default_rng(4), LinearOptions(symmetric_a_star=True))
    np.testing.assert_array_equal(sym.A_star, (G + G.T) / 2)
    plain = draw_linear_problem(cfg, np.random.default_rng(4), LinearOptions(symmetric_a_star=False))
    np.testing.assert_array_equal(plain.A_star, G)
    assert sym.FU0.shape == sym.FV0.shape == (2, 5, 2)
