"""Vision data: CIFAR-10 readers and JPEG decoder, Fashion-MNIST idx reader, tasks, augmentation.

All inputs are tiny fixtures written by the tests (no shared data, no download).
"""
import io
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from empirics.real import _cifar, _fixtures, _fmnist, _vision_data  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_numpy_reader_reads_original_layout_with_bytes_keys(tmp_path):
    rng = np.random.default_rng(0)
    root = _fixtures.write_cifar_batches(tmp_path, rng, per_batch=10, n_test=10, bytes_keys=True)
    x, y, names = _cifar.read_cifar_batches(root, train=True)
    assert x.shape == (50, 32, 32, 3) and x.dtype == np.uint8
    assert y.tolist() == [i % 10 for i in range(10)] * 5
    assert names[0] == "airplane"
    # the folder itself is accepted as well as its parent
    x2, _, _ = _cifar.read_cifar_batches(root / "cifar-10-batches-py", train=False)
    assert x2.shape == (10, 32, 32, 3)
    # planar R, G, B rows -> NHWC
    with open(root / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    flat = raw[b"data"] if b"data" in raw else raw["data"]
    np.testing.assert_array_equal(x2[3, :, :, 1].ravel(), flat[3, 1024:2048])


def test_load_cifar10_from_user_folder_says_which_reader(tmp_path, capsys):
    root = _fixtures.write_cifar_batches(tmp_path, np.random.default_rng(1), per_batch=4, n_test=4)
    arrays = _cifar.load_cifar10(root)
    assert arrays.train_x.shape == (20, 32, 32, 3) and not arrays.lossy
    err = capsys.readouterr().err
    # always the plain-data reader, also where torchvision imports (it unpickles without restriction)
    assert "numpy" in arrays.reader and "CIFAR-10 reader: numpy" in err


def test_missing_data_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        _cifar.load_cifar10(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="missing.tar.xz"):
        _cifar.decode_jpeg_archive(tmp_path / "missing.tar.xz", tmp_path / "out")


def test_decode_jpeg_archive_layout_pixels_and_cache(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(2)
    archive = tmp_path / "tiny_jpeg.tar.xz"
    written = _fixtures.write_jpeg_archive(archive, rng, n_train=2, n_test=1)
    root = _cifar.decode_jpeg_archive(archive, tmp_path / "cache")
    err = capsys.readouterr().err
    assert "LOSSY" in err
    # pixels that differ from the shared copy's hashes are expected here: another archive
    assert "warning: decoded pixels differ" not in err
    d = root / "cifar-10-batches-py"
    for name in ["data_batch_1", "data_batch_5", "test_batch", "batches.meta"]:
        assert (d / name).is_file()
    with open(d / "data_batch_1", "rb") as f:
        assert f.read(2) == b"\x80\x04"  # pickle protocol 4
    with open(d / "data_batch_1", "rb") as f:
        b1 = pickle.load(f)
    assert set(b1) == {"data", "labels", "filenames", "batch_label"}
    with open(d / "batches.meta", "rb") as f:
        assert pickle.load(f)["label_names"] == list(_cifar.CIFAR10_CLASSES)
    arrays = _cifar.load_cifar10(root)
    assert arrays.lossy and arrays.train_x.shape == (20, 32, 32, 3) and arrays.test_x.shape == (10, 32, 32, 3)
    assert "LOSSY" in capsys.readouterr().err
    # sorted by (class, file name); pixels equal Pillow's decoding of the same JPEG bytes
    assert arrays.train_y.tolist() == sorted(arrays.train_y.tolist())
    ref = np.asarray(Image.open(io.BytesIO(written[("train", 3, "0001.jpg")])).convert("RGB"))
    np.testing.assert_array_equal(arrays.train_x[3 * 2 + 1], ref)
    # cached: a second call does not decode again
    mtime = (d / "data_batch_1").stat().st_mtime_ns
    _cifar.decode_jpeg_archive(archive, tmp_path / "cache")
    assert (d / "data_batch_1").stat().st_mtime_ns == mtime


def test_torchvision_subclass_when_available(tmp_path):
    if not _cifar._torchvision_available():
        pytest.skip("torchvision not importable beside this torch build (numpy reader is used)")
    root = _fixtures.write_cifar_batches(tmp_path, np.random.default_rng(3), per_batch=4, n_test=4)
    ds = _cifar.torchvision_cifar10_class()(str(root), train=True)
    np.testing.assert_array_equal(ds.data, _cifar.read_cifar_batches(root)[0])


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_reader_and_fashion_mnist_loader(tmp_path, suffix):
    rng = np.random.default_rng(4)
    imgs = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 10
    for stem, arr in [("train-images-idx3-ubyte", imgs), ("train-labels-idx1-ubyte", labels),
                      ("t10k-images-idx3-ubyte", imgs[:6]), ("t10k-labels-idx1-ubyte", labels[:6])]:
        _fixtures.write_idx(tmp_path / (stem + suffix), arr)
    np.testing.assert_array_equal(_fmnist.read_idx(tmp_path / ("train-images-idx3-ubyte" + suffix)), imgs)
    a = _fmnist.load_fashion_mnist(tmp_path, reader="numpy")
    assert a.train_x.shape == (12, 28, 28, 1) and a.test_y.tolist() == labels[:6].tolist()
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an idx file"):
        _fmnist.read_idx(bad)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        _fmnist.load_fashion_mnist(tmp_path / "none", reader="numpy")


def test_tasks_pairs_labels_and_balanced_subsample():
    arrays = _fixtures.random_vision_arrays(np.random.default_rng(5), n_train=200, n_test=100)
    tasks = _vision_data.build_vision_tasks(arrays)
    assert tasks.names == ["0/1", "2/3", "4/5", "6/7"]
    assert [len(y) for y in tasks.train_y] == [40] * 4 and len(tasks.ft_y) == 40 and len(tasks.eval_y) == 20
    for y in tasks.train_y + [tasks.ft_y, tasks.eval_y]:
        assert set(y.tolist()) == {0, 1}
    assert tasks.train_x[0].shape[1:] == (3, 32, 32) and tasks.train_x[0].dtype == torch.uint8
    small = _vision_data.build_vision_tasks(arrays, max_per_task=10, rng=np.random.default_rng(0))
    assert [int(y.sum()) for y in small.train_y] == [5] * 4
    with pytest.raises(ValueError, match="Generator"):
        _vision_data.build_vision_tasks(arrays, max_per_task=10)


def test_augmentation_is_a_padded_crop_plus_flip_and_differs_between_epochs():
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    a = _vision_data.augment_batch(x, g, pad=2, flip=False)
    b = _vision_data.augment_batch(x, g, pad=2, flip=False)
    assert a.shape == x.shape and a.dtype == torch.float32 and 0 <= a.min() and a.max() <= 1
    assert not torch.equal(a, b)  # a new draw on each call (each epoch)
    padded = torch.nn.functional.pad(x.float() / 255, (2, 2, 2, 2))
    for i in range(len(x)):  # every output is some 8x8 window of the padded image
        windows = [padded[i, :, r:r + 8, c:c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(a[i], w) for w in windows)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(_vision_data.augment_batch(x, g1), _vision_data.augment_batch(x, g2))
    f = _vision_data.augment_batch(x, torch.Generator().manual_seed(1), pad=0, flip=True)
    ref = x.float() / 255
    for i in range(len(x)):
        assert torch.equal(f[i], ref[i]) or torch.equal(f[i], ref[i].flip(-1))


def test_an_archive_named_as_the_shared_copy_warns_when_its_pixels_differ(tmp_path, capsys):
    # named as the shared copy (but not its size: no sha256 check): its decoded pixels are
    # compared with the data README's hashes, and the difference is reported
    archive = tmp_path / _cifar.DEFAULT_ARCHIVE.name
    _fixtures.write_jpeg_archive(archive, np.random.default_rng(2), n_train=1, n_test=1)
    _cifar.decode_jpeg_archive(archive, tmp_path / "cache")
    assert "warning: decoded pixels differ from the data README's sha256" in capsys.readouterr().err


def test_a_copy_named_and_sized_as_the_shared_archive_is_checked_against_its_sha256(tmp_path):
    """A file with the shared archive's name and exact size (18,437,864 bytes) elsewhere is
    taken for a copy of it and must carry its sha256: a sparse file of that size is refused;
    one byte shorter, or another name, is not taken for the copy."""
    def sparse(name, size):
        p = tmp_path / name
        with open(p, "wb") as f:
            f.write(b"\xfd7zXZ\x00")
            f.truncate(size)
        return p

    size = _cifar.DEFAULT_ARCHIVE_BYTES
    assert size == 18_437_864
    with pytest.raises(ValueError, match="sha256 differs from the one in"):
        _cifar.check_archive(sparse(_cifar.DEFAULT_ARCHIVE.name, size))
    assert _cifar.check_archive(sparse("a_" + _cifar.DEFAULT_ARCHIVE.name, size)).is_file()
    assert _cifar.check_archive(sparse("z_" + _cifar.DEFAULT_ARCHIVE.name, size)).is_file()  # names compared by equality
    (tmp_path / "short").mkdir()
    assert _cifar.check_archive(sparse("short/" + _cifar.DEFAULT_ARCHIVE.name, size - 1)).is_file()


def test_decoded_images_are_sorted_by_class_then_file_name(tmp_path):
    """The archive lost CIFAR-10's order: images are sorted by (class, file name), whatever
    order the tar holds them in, and keep their file names."""
    import tarfile

    from PIL import Image

    archive = tmp_path / "reversed.tar"
    rng = np.random.default_rng(3)
    pixels = {}
    with tarfile.open(archive, "w") as tar:
        for split, cls, name in [("train", "dog", "0009.jpg"), ("train", "dog", "0002.jpg"),
                                 ("train", "airplane", "0005.jpg"), ("test", "cat", "0001.jpg")]:
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG", quality=75)
            info = tarfile.TarInfo(f"x/{split}/{cls}/{name}")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
            pixels[(split, name)] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    out = _cifar._decode_members(archive)
    dog, plane = _cifar.CIFAR10_CLASSES.index("dog"), _cifar.CIFAR10_CLASSES.index("airplane")
    assert [(c, n) for c, n, _ in out["train"]] == [(plane, "0005.jpg"), (dog, "0002.jpg"), (dog, "0009.jpg")]
    for c, n, arr in out["train"]:
        np.testing.assert_array_equal(arr, pixels[("train", n)])


def test_the_lossy_marker_records_which_splits_match_the_readme_hashes(tmp_path, monkeypatch):
    """The decoded cache's marker states, per split, whether the decoded pixels' sha256 is the
    data README's: here the train split's is made the expected one and the test split's is not."""
    import json

    archive = tmp_path / "tiny_jpeg.tar.xz"
    _fixtures.write_jpeg_archive(archive, np.random.default_rng(3), n_train=1, n_test=1)
    root = _cifar.decode_jpeg_archive(archive, tmp_path / "c1")
    marker = json.loads((root / "cifar-10-batches-py" / _cifar.LOSSY_MARKER).read_text())
    hashes = marker["sha256_nhwc"]
    monkeypatch.setattr(_cifar, "EXPECTED_SHA256", {"train": hashes["train"], "test": "0" * 64})
    root = _cifar.decode_jpeg_archive(archive, tmp_path / "c2")
    marker = json.loads((root / "cifar-10-batches-py" / _cifar.LOSSY_MARKER).read_text())
    assert marker["matches_readme_sha256"] == {"train": True, "test": False}
