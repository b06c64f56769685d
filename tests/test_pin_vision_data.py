"""empirics.real._vision_data pinned: every crop offset 0 .. 2 pad occurs (both axes, all
(2 pad + 1)^2 windows), flips are about half, the class pairs and labels of the paper's
protocol, the class-balanced subsample (limit // 2 of each class), the normalisation constants
of the official script (and the data's own statistics for other data), and the signature of
minibatch_indices (generator by keyword, options keyword-only).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from empirics.real import _vision_data as V  # noqa: E402


def test_protocol_constants():
    assert V.RETRAIN_PAIRS == ((0, 1), (2, 3), (4, 5), (6, 7)) and V.TEST_PAIR == (8, 9)
    assert V.CIFAR10_MEAN == (0.4914, 0.4822, 0.4465) and V.CIFAR10_STD == (0.2023, 0.1994, 0.2010)
    assert V.CROP_PAD == 4


@pytest.mark.parametrize("pad", [1, 2, 4])
def test_every_crop_offset_occurs(pad):
    h = w = 6
    base = (torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w) + 1)  # every pixel distinct, none 0
    x = base.expand(600, 1, h, w).to(torch.uint8)
    out = V.augment_batch(x, torch.Generator().manual_seed(3), pad=pad, flip=False)
    padded = torch.nn.functional.pad(base / 255.0, (pad, pad, pad, pad))[0, 0]
    seen = set()
    for img in out[:, 0]:
        hits = [(r, c) for r in range(2 * pad + 1) for c in range(2 * pad + 1)
                if torch.equal(img, padded[r:r + h, c:c + w])]
        assert len(hits) == 1
        seen.add(hits[0])
    assert seen == {(r, c) for r in range(2 * pad + 1) for c in range(2 * pad + 1)}


def test_flips_are_about_half_and_pixels_scale_to_unit_interval():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    x = (x % 251).to(torch.uint8).repeat(1000, 1, 1, 1)
    out = V.augment_batch(x, torch.Generator().manual_seed(0), pad=0, flip=True)
    ref = x.to(torch.float32) / 255.0
    flipped = [not torch.equal(o, r) for o, r in zip(out, ref)]
    assert all(torch.equal(o, r.flip(-1)) for o, r, f in zip(out, ref, flipped) if f)
    assert 900 <= sum(flipped) <= 1100  # Binomial(2000, 1/2): 1000 +- 22
    torch.testing.assert_close(V.augment_batch(x[:4], torch.Generator(), pad=0, flip=False), ref[:4], rtol=0, atol=0)


def _arrays(n_per_class=20, channels=3, names=("airplane",) + tuple(f"c{i}" for i in range(1, 10))):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), n_per_class)
    x = rng.integers(0, 256, (len(y), 4, 4, channels), dtype=np.uint8)
    return SimpleNamespace(train_x=x, train_y=y, test_x=x[::2].copy(), test_y=y[::2].copy(), class_names=names,
                           source="fixture")


def test_pairs_labels_and_sizes():
    a = _arrays()
    t = V.build_vision_tasks(a)
    assert t.names == ["0/1", "2/3", "4/5", "6/7"]
    for pair, ty, tx in zip(V.RETRAIN_PAIRS, t.train_y, t.train_x):
        idx = np.flatnonzero(np.isin(a.train_y, pair))
        assert ty.tolist() == (a.train_y[idx] % 2).tolist()
        assert torch.equal(tx, torch.from_numpy(a.train_x[idx].transpose(0, 3, 1, 2).copy()))
    assert t.ft_y.tolist() == [0] * 20 + [1] * 20 and t.eval_y.tolist() == [0] * 10 + [1] * 10
    assert t.sizes() == {"retrain": [40] * 4, "val": [20] * 4, "finetune": 40, "eval": 20}
    assert t.image_shape == (3, 4, 4) and t.description == "fixture"


@pytest.mark.parametrize("limit, per_class", [(10, 5), (11, 5), (2, 1), (39, 19), (40, 20), (1000, 20)])
def test_class_balanced_subsample(limit, per_class):
    a = _arrays()
    t = V.build_vision_tasks(a, max_per_task=limit, max_eval_per_task=limit, rng=np.random.default_rng(1))
    for ty in [*t.train_y, t.ft_y]:
        assert ty.tolist().count(0) == ty.tolist().count(1) == per_class
    for vy in [*t.val_y, t.eval_y]:
        assert vy.tolist().count(0) == vy.tolist().count(1) == min(per_class, 10)


def test_normalisation_constants_and_data_statistics():
    t = V.build_vision_tasks(_arrays())
    assert t.mean.shape == t.std.shape == (1, 3, 1, 1)
    torch.testing.assert_close(t.mean.flatten(), torch.tensor(V.CIFAR10_MEAN), rtol=0, atol=0)
    x = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(t.normalize(x), (x - t.mean) / t.std)
    gray = _arrays(channels=1, names=tuple(f"c{i}" for i in range(10)))
    g = V.build_vision_tasks(gray)
    pix = gray.train_x.reshape(-1, 1) / 255.0
    torch.testing.assert_close(g.mean.flatten(), torch.tensor(pix.mean(0), dtype=torch.float32), rtol=0, atol=0)
    torch.testing.assert_close(g.std.flatten(), torch.tensor(pix.std(0), dtype=torch.float32), rtol=0, atol=0)
    other = V.build_vision_tasks(_arrays(names=tuple(f"c{i}" for i in range(10))))  # 3 channels, not CIFAR-10
    assert not torch.allclose(other.mean.flatten(), torch.tensor(V.CIFAR10_MEAN))
    given = V.build_vision_tasks(_arrays(), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert given.mean.flatten().tolist() == [0.5] * 3 and given.std.flatten().tolist() == [0.25] * 3


def test_a_missing_class_is_refused():
    a = _arrays()
    keep = a.train_y != 9
    a.train_x, a.train_y = a.train_x[keep], a.train_y[keep]
    with pytest.raises(ValueError, match=r"classes \[9\] absent from the training split"):
        V.build_vision_tasks(a)


def test_minibatch_indices_signature_and_cover():
    g = torch.Generator().manual_seed(0)
    parts = V.minibatch_indices(n=10, batch_size=3, generator=g)
    assert [len(p) for p in parts] == [3, 3, 3, 1] and sorted(torch.cat(parts).tolist()) == list(range(10))
    assert [p.tolist() for p in V.minibatch_indices(7, 3, None, shuffle=False)] == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(TypeError):
        V.minibatch_indices(7, 3, g, False)  # options are keyword-only


@pytest.mark.parametrize("shape", [(3, 8, 16), (3, 16, 8)])
def test_the_vision_family_refuses_images_that_are_not_square(shape):
    from types import SimpleNamespace

    from empirics.real._vision import VisionFamily

    with pytest.raises(ValueError, match=rf"square images expected, got {shape[1]}x{shape[2]}"):
        VisionFamily(SimpleNamespace(image_shape=shape))


def test_the_vision_family_classifies_class_pairs():
    """Every task is a pair of classes: a two-way head."""
    from empirics.real._vision import VisionFamily
    from empirics.real._fixtures import random_vision_arrays
    from empirics.real._vision_data import build_vision_tasks

    fam = VisionFamily(build_vision_tasks(random_vision_arrays(np.random.default_rng(0), n_train=100, n_test=50)), dim=8)
    assert fam.arch["num_classes"] == 2


def _small_family(**kw):
    from empirics.real._fixtures import random_vision_arrays
    from empirics.real._vision import VisionFamily

    tasks = V.build_vision_tasks(random_vision_arrays(np.random.default_rng(0), n_train=100, n_test=50))
    return VisionFamily(tasks, **kw)


def test_an_evaluation_batch_is_scaled_by_255_then_normalised():
    """Evaluation images (uint8) go to [0, 1] by / 255 before the per-channel normalisation:
    white is exactly the normalisation of 1, black of 0."""
    torch = pytest.importorskip("torch")
    fam = _small_family()
    x = torch.full((2, 3, 32, 32), 255, dtype=torch.uint8)
    x[1] = 0
    got = fam._prepare(x)
    assert torch.equal(got[0], fam.tasks.normalize(torch.ones(1, 3, 32, 32))[0])
    assert torch.equal(got[1], fam.tasks.normalize(torch.zeros(1, 3, 32, 32))[0])


def test_the_vision_family_batches_256_images_by_default_like_the_paper():
    import inspect

    from empirics.real._config import RunConfig
    from empirics.real._vision import VisionFamily

    assert inspect.signature(VisionFamily).parameters["batch_size"].default == RunConfig().batch_size


def test_linear_layers_are_redrawn_with_biases_of_both_signs_within_their_bound():
    """torch's default Linear init, from the run's generator: weights Kaiming-uniform, biases
    uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)] -- of both signs."""
    torch = pytest.importorskip("torch")
    from empirics.real._vision import init_linear_layers_

    lin = torch.nn.Linear(16, 400)
    init_linear_layers_(lin, torch.Generator().manual_seed(0))
    b = lin.bias.detach()
    assert float(b.abs().max()) <= 0.25 and float(b.min()) < -0.2 and float(b.max()) > 0.2


def test_batch_seeds_are_drawn_from_a_62_bit_range():
    """The per-batch seeds of the dropout / augmentation streams are uniform below 2^62 (fit
    an int64): 200 draws are distinct and reach far above 2^32."""
    torch = pytest.importorskip("torch")
    from empirics.real._batched_engine import seed_draw

    g = torch.Generator().manual_seed(0)
    seeds = [seed_draw(g) for _ in range(200)]
    assert len(set(seeds)) == 200 and max(seeds) < 2**62 and max(seeds) > 2**60
