"""Fashion-MNIST from raw idx files (lossless), as installed by Debian's ``dataset-fashion-mnist``.

torchvision's ``FashionMNIST`` reads the same files (under ``<root>/FashionMNIST/raw``);
when torchvision is missing our own idx reader is used. The class pairing is the
CIFAR-10 protocol's: (0,1), (2,3), (4,5), (6,7) for retraining, (8,9) for the test task.
"""
from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import numpy as np

from ._cifar import VisionArrays, _torchvision_available, check_reader

__all__ = ["FMNIST_CLASSES", "DEFAULT_FMNIST_ROOT", "read_idx", "load_fashion_mnist"]

#: Where the Debian package ``dataset-fashion-mnist`` installs the idx files.
DEFAULT_FMNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")

FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

#: idx type codes (third magic byte) -> numpy big-endian dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one idx file (plain or ``.gz``) into a numpy array.

    The format: two zero bytes, a type code, the number of dimensions, then one
    big-endian uint32 per dimension, then the data in C order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an idx file (bad magic {raw[:4]!r})")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    n = int(np.prod(dims))
    offset = 4 + 4 * ndim
    if len(raw) - offset != n * dtype.itemsize:
        raise ValueError(f"{path}: header says {tuple(int(v) for v in dims)} but the payload has "
                         f"{len(raw) - offset} bytes")
    return np.frombuffer(raw, dtype=dtype, count=n, offset=offset).reshape(dims).astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    for cand in (root / stem, root / (stem + ".gz"), root / "FashionMNIST" / "raw" / stem,
                 root / "FashionMNIST" / "raw" / (stem + ".gz")):
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found under {root}. Install the Debian package "
        "'dataset-fashion-mnist' (files in /usr/share/datasets/fashion-mnist) or pass "
        "--data-root to a folder with the four idx files."
    )


def load_fashion_mnist(root: str | os.PathLike | None = None, *, reader: str = "auto",
                       verbose: bool = True) -> VisionArrays:
    """Load Fashion-MNIST as uint8 NHWC arrays (C = 1).

    Parameters
    ----------
    root : path-like, optional
        Folder with the idx files (plain or gzipped), or torchvision's root holding
        ``FashionMNIST/raw``. Default: the Debian package's folder.
    reader : {"auto", "torchvision", "numpy"}
    """
    check_reader(reader)
    root = Path(root) if root is not None else DEFAULT_FMNIST_ROOT
    use_tv = reader == "torchvision" or (reader == "auto" and _torchvision_available()
                                         and (root / "FashionMNIST" / "raw").is_dir())
    if use_tv:
        from torchvision.datasets import FashionMNIST
        tr, te = FashionMNIST(str(root), train=True), FashionMNIST(str(root), train=False)
        out = [tr.data.numpy(), tr.targets.numpy(), te.data.numpy(), te.targets.numpy()]
        used = "torchvision FashionMNIST"
    else:
        out = []
        for split in ("train", "test"):
            img_f, lab_f = (_find(root, s) for s in _FILES[split])
            x, y = read_idx(img_f), read_idx(lab_f)
            if x.ndim != 3 or len(x) != len(y):
                raise ValueError(f"{img_f}: expected (N, 28, 28) images matching {len(y)} labels")
            out += [x, y]
        used = "numpy (own idx reader; torchvision not importable)"
    if verbose:
        print(f"Fashion-MNIST reader: {used}", file=sys.stderr)
    tx, ty, sx, sy = out
    return VisionArrays(np.ascontiguousarray(tx[..., None].astype(np.uint8)), ty.astype(np.int64),
                        np.ascontiguousarray(sx[..., None].astype(np.uint8)), sy.astype(np.int64),
                        class_names=FMNIST_CLASSES, source="Fashion-MNIST (lossless idx files)",
                        reader=used, lossy=False)
