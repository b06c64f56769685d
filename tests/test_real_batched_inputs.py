"""The batched vision engine's step inputs, each against its direct per-image / per-slot
definition, bit for bit: the random crops and flips (one gather of whole windows), the
normalised patches (arithmetic in the images' layout, then two copies), the dropout
multipliers (one comparison written into the mask, padded slots included) and an epoch's
index and validity tensors (offsets per task, padded batches). The end-to-end equality
with the trainer is tests/test_real_batched.py; these pin each piece on its own, so a
wrong window, channel order, mask site or offset fails here by name."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from empirics.real import _batched_engine, _vision_data  # noqa: E402
from empirics.real._cifar import VisionArrays  # noqa: E402
from empirics.real._mixer import dropout_noise, keep_mask  # noqa: E402
from empirics.real._vision import VisionFamily  # noqa: E402
from empirics.real._vision_data import CROP_PAD  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def engine():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (60, 32, 32, 3)).astype(np.uint8)
    y = np.arange(60) % 10
    arrays = VisionArrays(x, y, x[:20], y[:20], tuple(f"c{i}" for i in range(10)), source="test", reader="in-memory")
    family = VisionFamily(_vision_data.build_vision_tasks(arrays), batch_size=4, dim=8)
    return _batched_engine.Engine(family, "cpu", bf16=False)


def _images(g, *shape):
    return torch.randint(0, 256, shape, generator=g).to(torch.uint8)


def test_crop_windows_equal_the_padded_crop_then_flip_of_each_image():
    g = torch.Generator().manual_seed(0)
    S, T, b, c, h, w = 2, 3, 4, 3, 10, 12
    x = _images(g, S, T, b, c, h, w)
    oy = torch.randint(0, 2 * CROP_PAD + 1, (S, T, b), generator=g)
    ox = torch.randint(0, 2 * CROP_PAD + 1, (S, T, b), generator=g)
    flip = torch.rand((S, T, b), generator=g) < 0.5
    # the extreme windows: the very last image's bottom-right window of its mirror image
    # ends at the last byte of the gathered memory (a flipped crop at column ox is the
    # mirror image's window at 2 pad - ox: ox = 0 there); the first image's top-left of the original
    oy[-1, -1, -1], ox[-1, -1, -1] = 2 * CROP_PAD, 0
    flip[-1, -1, -1] = True
    oy[0, 0, 0] = ox[0, 0, 0] = 0
    flip[0, 0, 0] = False
    got = _batched_engine.Engine._augment(x, oy, ox, flip)
    assert got.shape == x.shape and got.dtype == torch.uint8
    for i in np.ndindex(S, T, b):
        padded = torch.nn.functional.pad(x[i], (CROP_PAD,) * 4)
        crop = padded[:, oy[i]:oy[i] + h, ox[i]:ox[i] + w]
        assert torch.equal(got[i], crop.flip(-1) if flip[i] else crop), i


def test_patches_equal_the_trainers_normalisation_then_patchify(engine):
    g = torch.Generator().manual_seed(1)
    x = _images(g, 2, 2, 3, 3, 32, 32)
    got = engine.patches(x)  # (S, T, b, patches, p*p*C)
    tasks, net = engine.tasks, engine.net
    ref = net.patchify(tasks.normalize(x.reshape(-1, 3, 32, 32).to(torch.float32) / 255.0))
    assert torch.equal(got.reshape(ref.shape), ref)


@pytest.mark.parametrize("buffer", [False, True])
@pytest.mark.parametrize("sizes", [[[4, 4], [4, 4]], [[4, 3], [1, 4]], [[4, 3], [4, 3]]])
def test_dropout_multipliers_equal_the_trainers_masks_drawn_site_after_site(engine, sizes, buffer):
    """Per seed one draw of all mask words; per slot and site the trainer's ``keep_mask`` of
    the slot's own batch size continues the same stream; padded images' multipliers 0.
    ``buffer``: the seeds' words drawn into the rows of one (S, count) tensor, as the engine
    draws equal counts (full batches, or seeds padded alike: the padded path reads its rows)."""
    net, bmax = engine.net, 4
    words, refs = [], []
    counts = [sum(math.ceil(math.prod(shp) / 4) for b in row for shp in net.mask_shapes(b)) for row in sizes]
    buf = torch.full((len(sizes), counts[0]), 7, dtype=torch.int64) if buffer and len(set(counts)) == 1 else None
    for s, row in enumerate(sizes):
        words.append(_batched_engine.mask_words(counts[s], torch.Generator().manual_seed(10 + s),
                                                out=None if buf is None else buf[s]))
        g = torch.Generator().manual_seed(10 + s)
        refs.append([[dropout_noise(keep_mask(shp, net.p, g), net.p) for shp in net.mask_shapes(b)] for b in row])
    if buf is not None:
        assert all(w.data_ptr() == buf[s].data_ptr() for s, w in enumerate(words))
        words = buf
    masks = engine.dropout_multipliers(words, sizes, bmax)
    assert len(masks) == len(net.mask_shapes(bmax))
    for k, m in enumerate(masks):
        # back to the trainer's layout (S, T, b, rows, cols)
        inv = np.argsort(net.mask_permutation(k)).tolist()
        m = m.permute(*inv)
        for s, row in enumerate(sizes):
            for j, b in enumerate(row):
                assert torch.equal(m[s, j, :b], refs[s][j][k]), (k, s, j)
                assert not m[s, j, b:].any(), (k, s, j)
    # one multiplier for kept entries, and about a tenth of the real images' entries dropped
    real = torch.cat([masks[0][s, j, :b].reshape(-1) for s, row in enumerate(sizes) for j, b in enumerate(row)])
    kept = real[real != 0]
    assert torch.all(kept == kept[0]) and 0.05 < float((real == 0).float().mean()) < 0.2


def test_index_steps_offset_each_task_and_mask_padded_rows(engine):
    data = _batched_engine.BatchData([torch.zeros((5, 3, 32, 32), dtype=torch.uint8)] * 3,
                                     [torch.zeros(5, dtype=torch.long), torch.ones(5, dtype=torch.long),
                                      torch.full((5,), 2, dtype=torch.long)])
    steps = [[[(torch.tensor([4, 0, 2]), 7), (torch.tensor([1]), 8)]],
             [[(torch.tensor([3, 3]), 9), (torch.tensor([0, 1, 2]), 5)]]]
    tasks = [[[2, 0]], [[1, 2]]]
    gidx, valid = engine.index_steps(data, steps, tasks)
    assert gidx.shape == valid.shape == (2, 1, 2, 3)
    for k, st in enumerate(steps):
        for j, (idx, _) in enumerate(st[0]):
            n = len(idx)
            assert gidx[k, 0, j, :n].tolist() == (idx + 5 * tasks[k][0][j]).tolist()
            assert valid[k, 0, j].tolist() == [1.0] * n + [0.0] * (3 - n)
            assert gidx[k, 0, j, n:].tolist() == [0] * (3 - n)
    assert valid.dtype == torch.float32


def test_mask_words_into_a_buffer_are_the_same_words():
    fresh = _batched_engine.mask_words(37, torch.Generator().manual_seed(3))
    buf = torch.zeros((2, 37), dtype=torch.int64)
    got = _batched_engine.mask_words(37, torch.Generator().manual_seed(3), out=buf[1])
    assert got.data_ptr() == buf[1].data_ptr() and torch.equal(buf[1], fresh) and not buf[0].any()
    for bad in (torch.zeros(36, dtype=torch.int64), torch.zeros(37, dtype=torch.int32),
                torch.zeros((37, 2), dtype=torch.int64)[:, 0]):
        with pytest.raises(ValueError, match="contiguous int64"):
            _batched_engine.mask_words(37, torch.Generator(), out=bad)


def test_one_backward_per_task_slot_exactly_above_the_fused_image_limit(engine, monkeypatch):
    b = engine.batch_size  # 4
    limit = _batched_engine.FUSED_IMAGES_CPU
    assert limit == 256 and limit % b == 0
    for seeds, slots, chunk in [(limit // b, 1, False), (limit // b + 1, 1, True), (1, limit // b, False),
                                (1, limit // b + 1, True), (2, limit // (2 * b), False), (2, limit // (2 * b) + 1, True)]:
        engine.plan_chunks(seeds, slots)
        assert engine.chunk_tasks is chunk, (seeds, slots)
    monkeypatch.setattr(engine, "device", torch.device("meta"))  # only a CPU chunks
    engine.plan_chunks(limit, limit)
    assert engine.chunk_tasks is False


def test_the_engine_sets_malloc_on_a_cpu_only(engine, monkeypatch):
    calls = []
    monkeypatch.setattr(_batched_engine.malloc, "tune", lambda: calls.append(1))
    _batched_engine.Engine(engine.family, "meta", bf16=False)
    assert calls == []
    _batched_engine.Engine(engine.family, "cpu", bf16=False)
    assert calls == [1]


@pytest.mark.parametrize("scaling", [1.0, 0.5, 2.0])
def test_lora_is_merged_as_w_plus_scaling_times_b_a_per_seed_and_task(scaling):
    """W + s B_t A_t for every (seed, task): at s = 1 the product is added as it is, otherwise
    scaled (alpha / r of LoRA with lora_alpha != r)."""
    from empirics.real._batched_model import BatchedMixer, StackedModel

    g = torch.Generator().manual_seed(4)
    S, T, out, inp, r = 2, 3, 5, 4, 2
    w, b = torch.randn((S, out, inp), generator=g), torch.randn((S, out), generator=g)
    a, bb = torch.randn((S, T, r, inp), generator=g), torch.randn((S, T, out, r), generator=g)
    model = StackedModel(base={"lin.weight": w, "lin.bias": b}, lora={"lin": (a, bb)}, lora_scaling=scaling)
    W, B = BatchedMixer._weight("lin", model, S, T)
    assert W.shape == (S * T, out, inp) and B.shape == (S * T, out)
    for s in range(S):
        for t in range(T):
            want = w[s] + scaling * (bb[s, t] @ a[s, t])
            torch.testing.assert_close(W[s * T + t], want, rtol=1e-6, atol=1e-6)
            assert torch.equal(B[s * T + t], b[s])

def test_the_batched_engine_takes_a_vision_run_named_at_run_time():
    """check_config compares the experiment by value: a 'vision' read from a file or a
    command line (not the interned literal) is a vision run; 'language' is refused."""
    from empirics.real._batched import check_config
    from empirics.real._config import RunConfig

    literal, built = "vision", "".join(["vis", "ion"])
    assert built == literal and built is not literal
    check_config(RunConfig(experiment=built, dataset="random"))
    with pytest.raises(ValueError, match="vision experiment only"):
        check_config(RunConfig(experiment="language"))
