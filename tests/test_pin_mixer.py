"""empirics.real._mixer pinned against independent definitions: the dropout word stream
against the Mersenne Twister as numpy implements it, the keep rule against 16-bit words
split by hand, the dropout's dtype, and the official Mixer's architecture constants.

The word stream is what every committed vision record was trained with; a change of its
bounds or of the generator changes every mask without failing the engine-vs-trainer
equality (both sides draw through ``mask_words``), so it is pinned here from outside torch.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from empirics.real import _mixer  # noqa: E402


def reference_words(seed: int, count: int) -> list:
    """torch's CPU ``randint(-2^63, 2^63 - 1)`` from ``manual_seed(seed)``, written out: the
    generator is MT19937 seeded by init_genrand (numpy's legacy seeding is the same); a
    64-bit draw is two 32-bit outputs, the first the high half; a range of 2^64 - 1 values
    takes it modulo that range, then adds the low end."""
    raw = [int(v) for v in np.random.RandomState(seed)._bit_generator.random_raw(2 * count)]
    return [((raw[2 * i] << 32 | raw[2 * i + 1]) % (2 ** 64 - 1)) - 2 ** 63 for i in range(count)]


@pytest.mark.parametrize("seed, count", [(0, 1), (7, 6), (2 ** 31 - 1, 13), (123456789, 40)])
def test_mask_words_are_the_mersenne_twister_stream(seed, count):
    assert _mixer.mask_words(count, torch.Generator().manual_seed(seed)).tolist() == reference_words(seed, count)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.25, 1 / 65536, 0.0])
def test_keep_mask_reads_four_little_endian_16_bit_words_per_draw(p):
    n, seed = 4 * 9 + 3, 11  # a partial last draw: its unused words are ignored
    words = reference_words(seed, -(-n // 4))
    u16 = [(w % 2 ** 64) >> (16 * j) & 0xFFFF for w in words for j in range(4)][:n]
    want = [u ^ 0x8000 >= round(p * 65536) for u in u16]  # the top bit flipped: int16 order
    got = _mixer.keep_mask((3, 13), p, torch.Generator().manual_seed(seed)).reshape(-1).tolist()
    assert got == want


@pytest.mark.parametrize("p", [0.0, 1 / 65536, 0.1, 0.5, 0.9, 65535 / 65536])
def test_exactly_the_realised_share_of_all_16_bit_words_is_kept(p):
    every = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    kept = int((every >= _mixer.keep_threshold(p)).sum())
    assert kept == 65536 - round(p * 65536) == round((1 - _mixer.drop_probability(p)) * 65536)


def test_threshold_and_realised_probability_at_their_boundaries():
    assert _mixer.DROP_LEVELS == 2 ** 16
    assert _mixer.drop_probability(0.1) == 6554 / 65536  # 6553.6 rounds up
    assert _mixer.keep_threshold(0.1) == 6554 - 32768
    assert _mixer.keep_threshold(0.0) == -32768  # every int16 kept
    assert _mixer.keep_words(1) == 1 and _mixer.keep_words(4) == 1 and _mixer.keep_words(5) == 2
    # the multiplier is 1 / (1 - q) with q the realised probability, in float32
    keep = torch.tensor([True, False, True])
    noise = _mixer.dropout_noise(keep, 0.1)
    assert noise.dtype == torch.float32
    assert noise.tolist() == [float(np.float32(1.0 / (1.0 - 6554 / 65536))), 0.0, float(np.float32(1.0 / (1.0 - 6554 / 65536)))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_generator_dropout_keeps_the_input_dtype(dtype):
    x = torch.linspace(-2, 2, 64, dtype=dtype).reshape(4, 16)
    drop = _mixer.GeneratorDropout(0.1, lambda device: torch.Generator(device).manual_seed(5)).train()
    got = drop(x)
    keep = _mixer.keep_mask(x.shape, 0.1, torch.Generator().manual_seed(5))
    assert got.dtype == dtype
    assert torch.equal(got, (x * _mixer.dropout_noise(keep, 0.1)).to(dtype))
    assert torch.equal(drop.eval()(x), x)


def test_mixer_defaults_are_the_official_architecture():
    # the official vision code: patch 4, width 512, depth 1, token expansion 4, channel
    # expansion 0.5, dropout 0.1, on 32 x 32 RGB images, binary tasks
    defaults = {k: v.default for k, v in inspect.signature(_mixer.MLPMixer).parameters.items()
                if v.default is not inspect.Parameter.empty and k != "generator_for"}
    assert defaults == {"image_size": 32, "patch_size": 4, "channels": 3, "dim": 512, "depth": 1,
                        "num_classes": 2, "dropout": 0.1}
    assert (_mixer.TOKEN_EXPANSION, _mixer.CHANNEL_EXPANSION, _mixer.DROPOUT) == (4.0, 0.5, 0.1)
    D, n, pp = 512, 64, 48
    count = ((pp * D + D) + 2 * D + (n * 4 * n + 4 * n) + (4 * n * n + n) + 2 * D
             + (D * D // 2 + D // 2) + (D // 2 * D + D) + 2 * D + (2 * D + 2))
    assert sum(p.numel() for p in _mixer.MLPMixer().parameters()) == count


@pytest.mark.parametrize("patch", [1, 2, 4, 8])
def test_the_patch_embedding_takes_channels_times_patch_squared_inputs(patch):
    """Patches of p x p pixels of C channels are vectors of C p^2 numbers, at every patch size
    (4 x 4 alone cannot tell C p^2 from (C p) << 2)."""
    import torch

    m = _mixer.MLPMixer(image_size=8, patch_size=patch, channels=3, dim=4, depth=1, num_classes=2, dropout=0.0)
    assert m.patch_embed.in_features == 3 * patch * patch
    assert m(torch.zeros(2, 3, 8, 8)).shape == (2, 2)


@pytest.mark.parametrize("p", [-0.1, -1e-12, 1.0, 1.5, float("nan")])
def test_dropout_refuses_a_probability_outside_zero_to_one(p):
    """A negative p would keep everything and scale by 1 / (1 - p) < 1 (no error from the
    generator path); p >= 1 divides by zero; nan is no probability."""
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\)"):
        _mixer.GeneratorDropout(p)


def test_dropout_of_zero_is_the_identity_while_training():
    d = _mixer.GeneratorDropout(0.0, generator_for=lambda dev: torch.Generator().manual_seed(0))
    d.train()
    x = torch.randn(4, 6)
    assert d(x) is x
