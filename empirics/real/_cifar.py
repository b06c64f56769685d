"""CIFAR-10: decode the shared JPEG copy once, then read the ``cifar-10-batches-py`` layout.

The shared archive ``../shared/data/cifar10/cifar10_jpeg_q75.tar.xz`` holds genuine
CIFAR-10 images stored as JPEG quality 75 (lossy, see its README). It is decoded once
into the layout ``torchvision.datasets.CIFAR10`` reads (``data_batch_1..5``,
``test_batch``, ``batches.meta``; pickle protocol 4) in a cache folder. Two readers
of that layout are provided:

* :func:`read_cifar_batches` -- the reader every load uses: numpy plus a restricted
  unpickler (:mod:`empirics.real._safe_pickle`) that admits plain data only, so a
  crafted batch file under ``--data-root`` cannot run code (exit status 2 instead).
* :func:`torchvision_cifar10_class` -- a subclass of ``torchvision.datasets.CIFAR10``
  whose md5 checks are bypassed, kept for users who want torchvision's dataset object;
  :func:`load_cifar10` no longer reads through it, since torchvision unpickles the
  batch files without restriction.

A user's own original CIFAR-10 python folder is read unchanged.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._paths import SHARED_DATA, cache_dir
from ._safe_pickle import load_data_pickle

__all__ = [
    "CIFAR10_CLASSES",
    "DEFAULT_ARCHIVE",
    "LOSSY_NOTICE",
    "VisionArrays",
    "decode_jpeg_archive",
    "read_cifar_batches",
    "torchvision_cifar10_class",
    "load_cifar10",
]

#: Class names in torchvision order; the archive's folder names (its README says so).
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

#: The shared lossy copy, relative to the project root.
DEFAULT_ARCHIVE = SHARED_DATA / "cifar10" / "cifar10_jpeg_q75.tar.xz"

#: Folder name torchvision expects under its ``root``.
BATCHES_DIR = "cifar-10-batches-py"

#: Number of training batch files in the original layout.
N_TRAIN_BATCHES = 5
#: Images in CIFAR-10 (50,000 train + 10,000 test): the decoding bar's total.
N_IMAGES = 60_000

#: Pickle protocol 4: 31 MB per batch; protocol 2 inflates the files by 40 % (data README).
PICKLE_PROTOCOL = 4

#: sha256 and size of the shared archive itself (its README), checked before decoding.
DEFAULT_ARCHIVE_SHA256 = "7afd887e08038127557e86b633422a90c1572edab3ca64a82d64b08c103c072a"
DEFAULT_ARCHIVE_BYTES = 18437864

#: Marker written beside decoded batches, so every later load can repeat the notice.
LOSSY_MARKER = "LOSSY_JPEG_COPY.json"

#: sha256 of the decoded uint8 NHWC arrays sorted by (class, filename), from the data
#: README (identical with Pillow 12.3 and 13.0); a mismatch means another decoder.
EXPECTED_SHA256 = {
    "train": "bf3aabd52be912dae02a0435296c4dab5289524b57f55cd162dc4796935a611b",
    "test": "5a6aa8185204d80b65d3dfb540696dadd5f10d185ded226a96665d3e0fc6259f",
}

LOSSY_NOTICE = (
    "NOTICE: this CIFAR-10 copy was decoded from JPEG quality 75 (4:2:0 chroma); "
    "the images are genuine but LOSSY, not the original pixels (expect about 2-3 % "
    "lower accuracy than on the original data)."
)

#: Image side length and channels of CIFAR-10.
SIDE, CHANNELS = 32, 3


@dataclass(frozen=True)
class VisionArrays:
    """A labelled image data set as uint8 NHWC arrays.

    Attributes
    ----------
    train_x, test_x : numpy.ndarray
        uint8 arrays of shape (N, H, W, C).
    train_y, test_y : numpy.ndarray
        int64 class indices.
    class_names : tuple of str
    source : str
        Human-readable description of where the arrays came from.
    reader : str
        Which reader produced them (``torchvision`` or ``numpy``).
    lossy : bool
        True for the JPEG-decoded CIFAR-10 copy.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: tuple
    source: str
    reader: str
    lossy: bool = False
    extra: dict = field(default_factory=dict)


def _decode_members(archive: Path, progress: bool = False) -> dict:
    """Decode every ``*/{train,test}/<class>/<name>.jpg`` of a tar archive (with a count of
    the decoded images on stderr when ``progress`` and stderr is a terminal)."""
    from PIL import Image
    from tqdm.auto import tqdm

    out = {"train": [], "test": []}
    with tarfile.open(archive, mode="r:*") as tar, tqdm(desc="decoding CIFAR-10", unit="image",
                                                        total=N_IMAGES, leave=False,
                                                        disable=None if progress else True) as bar:
        for member in tar:
            if not member.isfile() or not member.name.lower().endswith((".jpg", ".jpeg")):
                continue
            parts = Path(member.name).parts
            if len(parts) < 3 or parts[-3] not in out:
                continue
            split, cls, fname = parts[-3], parts[-2], parts[-1]
            if cls not in CIFAR10_CLASSES:
                raise ValueError(
                    f"{archive}: unknown class folder {cls!r} in {member.name!r}; "
                    f"expected one of {CIFAR10_CLASSES}"
                )
            raw = tar.extractfile(member).read()
            with Image.open(io.BytesIO(raw)) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
            if arr.shape != (SIDE, SIDE, CHANNELS):
                raise ValueError(f"{member.name}: image of shape {arr.shape}, expected 32x32x3")
            out[split].append((CIFAR10_CLASSES.index(cls), fname, arr))
            bar.update()
    for split, items in out.items():
        if not items:
            raise ValueError(f"{archive}: no JPEG images found under */{split}/<class>/")
        items.sort(key=lambda t: (t[0], t[1]))
    return out


def _write_batch(path: Path, x: np.ndarray, y: list, names: list, label: str) -> None:
    # planar R, G, B rows of 1024 bytes, as in the original files
    data = np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), -1))
    obj = {"batch_label": label, "labels": [int(v) for v in y], "data": data, "filenames": names}
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=PICKLE_PROTOCOL)


def decode_jpeg_archive(archive: str | os.PathLike = DEFAULT_ARCHIVE,
                        out_root: str | os.PathLike | None = None,
                        *, force: bool = False, verbose: bool = True) -> Path:
    """Decode the JPEG CIFAR-10 archive once into ``<out_root>/cifar-10-batches-py``.

    Parameters
    ----------
    archive : path-like
        ``tar`` (any compression) with ``*/{train,test}/<class>/<name>.jpg``.
    out_root : path-like, optional
        Parent folder of ``cifar-10-batches-py``; default ``<cache>/cifar10_jpeg_q75``
        (see :func:`empirics.real._paths.cache_dir`).
    force : bool
        Decode again even if a finished copy exists.

    Returns
    -------
    pathlib.Path
        The ``root`` to give to a CIFAR-10 reader (parent of ``cifar-10-batches-py``).

    Notes
    -----
    Images are sorted by (class, filename): the archive lost the original order.
    The train split is cut into five equal batch files. The result is written to a
    temporary folder and renamed, so an interrupted decode leaves no half copy.
    """
    archive = check_archive(archive)
    root = Path(out_root) if out_root is not None else cache_dir() / "cifar10_jpeg_q75"
    final = root / BATCHES_DIR
    if (final / LOSSY_MARKER).is_file() and not force:
        return root
    if verbose:
        print(f"decoding {archive} into {final} (once) ...", file=sys.stderr)
        print(LOSSY_NOTICE, file=sys.stderr)
    root.mkdir(parents=True, exist_ok=True)  # before decoding: an unusable cache is seen at once
    try:
        decoded = _decode_members(archive, progress=verbose)
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib_error(), lzma_error()) as exc:
        if isinstance(exc, OSError) and exc.errno is not None and not isinstance(exc, FileNotFoundError):
            raise  # the machine (disk, permissions), not the archive
        raise ValueError(f"{archive}: the archive is truncated or corrupted ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:100] if str(exc) else ''}); fetch it again") from None
    # a private temporary folder: concurrent decoders (one process per seed) never share one
    tmp = root / f"{BATCHES_DIR}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    hashes = {}
    for split, items in decoded.items():
        x = np.stack([t[2] for t in items])
        y = [t[0] for t in items]
        names = [f"{CIFAR10_CLASSES[t[0]]}_{t[1]}" for t in items]
        hashes[split] = hashlib.sha256(x.tobytes()).hexdigest()
        if split == "train":
            bounds = np.linspace(0, len(x), N_TRAIN_BATCHES + 1).astype(int)
            for i in range(N_TRAIN_BATCHES):
                lo, hi = bounds[i], bounds[i + 1]
                _write_batch(tmp / f"data_batch_{i + 1}", x[lo:hi], y[lo:hi], names[lo:hi],
                             f"training batch {i + 1} of {N_TRAIN_BATCHES}")
        else:
            _write_batch(tmp / "test_batch", x, y, names, "testing batch 1 of 1")
    with open(tmp / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch":
                     int(np.ceil(len(decoded["train"]) / N_TRAIN_BATCHES)), "num_vis":
                     SIDE * SIDE * CHANNELS}, f, protocol=PICKLE_PROTOCOL)
    matches = {s: hashes[s] == EXPECTED_SHA256[s] for s in hashes}
    with open(tmp / LOSSY_MARKER, "w") as f:
        json.dump({"notice": LOSSY_NOTICE, "archive": archive.name, "sha256_nhwc": hashes,
                   "matches_readme_sha256": matches}, f, indent=1)
    if (final / LOSSY_MARKER).is_file() and not force:
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
        return root
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    if verbose and archive.name == DEFAULT_ARCHIVE.name and not all(matches.values()):
        print("warning: decoded pixels differ from the data README's sha256 "
              "(another JPEG decoder?)", file=sys.stderr)
    return root


def zlib_error():
    import zlib

    return zlib.error


def lzma_error():
    try:
        import lzma
    except ImportError:  # pragma: no cover - Python built without lzma
        return ValueError
    return lzma.LZMAError


def check_archive(archive: str | os.PathLike) -> Path:
    """Check a JPEG archive before decoding it: a regular file, a tar archive (magic bytes of
    xz/gzip/bz2/plain tar), and for the shared copy the sha256 its README gives."""
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(
            f"CIFAR-10 JPEG archive not found: {archive}. Pass --data-root pointing at an "
            "original 'cifar-10-batches-py' folder, or --archive pointing at cifar10_jpeg_q75.tar.xz "
            "(see ../shared/data/cifar10/README.md).")
    with open(archive, "rb") as f:
        head = f.read(512)
    magics = (b"\xfd7zXZ\x00", b"\x1f\x8b", b"BZh")
    if not (head.startswith(magics) or head[257:262] == b"ustar"):
        raise ValueError(f"{archive}: not a tar archive (xz, gzip, bz2 or plain)")
    is_shared = archive.resolve() == DEFAULT_ARCHIVE.resolve()
    if is_shared and archive.stat().st_size != DEFAULT_ARCHIVE_BYTES:
        raise ValueError(f"{archive}: {archive.stat().st_size} bytes, not the {DEFAULT_ARCHIVE_BYTES} of the shared "
                         "copy (truncated?); fetch it again")
    if is_shared or (archive.name == DEFAULT_ARCHIVE.name and archive.stat().st_size == DEFAULT_ARCHIVE_BYTES):
        from landscape.runtime.integrity import file_sha256

        if file_sha256(archive) != DEFAULT_ARCHIVE_SHA256:
            raise ValueError(f"{archive}: sha256 differs from the one in ../shared/data/cifar10/README.md "
                             "(corrupted copy); fetch it again")
    return archive


def _batches_dir(root: Path) -> Path:
    if (root / BATCHES_DIR).is_dir():
        return root / BATCHES_DIR
    if (root / "data_batch_1").is_file() or (root / "test_batch").is_file():
        return root
    raise FileNotFoundError(
        f"no CIFAR-10 batches under {root} (expected {root / BATCHES_DIR}/data_batch_1 ...). "
        "Download the python version from https://www.cs.toronto.edu/~kriz/cifar.html, "
        "or decode the shared JPEG copy with empirics.real.decode_jpeg_archive()."
    )


def _load_pickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"missing CIFAR-10 batch file {path}")
    # latin1 reads the original Python-2 pickles and our protocol-4 files alike; only
    # plain data is admitted (a crafted file cannot run code: UnsafePickleError, exit 2)
    obj = load_data_pickle(path, encoding="latin1")
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a CIFAR-10 batch file (a pickled {type(obj).__name__}, expected a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar_batches(root: str | os.PathLike, train: bool = True):
    """Read the ``cifar-10-batches-py`` layout with numpy and a plain-data unpickler.

    Parameters
    ----------
    root : path-like
        Either the ``cifar-10-batches-py`` folder or its parent (torchvision's ``root``).
    train : bool
        ``data_batch_1..5`` if True, else ``test_batch``.

    Returns
    -------
    images : numpy.ndarray
        uint8, shape (N, 32, 32, 3) (NHWC, as ``torchvision.datasets.CIFAR10.data``).
    labels : numpy.ndarray
        int64, shape (N,).
    label_names : list of str
    """
    d = _batches_dir(Path(root))
    files = [f"data_batch_{i}" for i in range(1, N_TRAIN_BATCHES + 1)] if train else ["test_batch"]
    xs, ys = [], []
    for name in files:
        obj = _load_pickle(d / name)
        data = obj.get("data")
        labels = obj["labels"] if "labels" in obj else obj.get("fine_labels")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[1] != CHANNELS * SIDE * SIDE:
            raise ValueError(f"{d / name}: 'data' is not a uint8 array of rows of {CHANNELS * SIDE * SIDE} bytes")
        if not isinstance(labels, list) or len(labels) != len(data) \
                or not all(isinstance(v, int) and 0 <= v < len(CIFAR10_CLASSES) for v in labels):
            raise ValueError(f"{d / name}: 'labels' is not a list of {len(data)} class indices 0..9")
        xs.append(data.reshape(-1, CHANNELS, SIDE, SIDE))
        ys.extend(labels)
    meta = _load_pickle(d / "batches.meta")
    names = meta.get("label_names")
    if not isinstance(names, list) or not all(isinstance(v, (str, bytes)) for v in names):
        raise ValueError(f"{d / 'batches.meta'}: 'label_names' is not a list of names")
    names = [v.decode("latin1") if isinstance(v, bytes) else v for v in names]
    x = np.concatenate(xs).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), np.asarray(ys, dtype=np.int64), names


def torchvision_cifar10_class():
    """Return a ``torchvision.datasets.CIFAR10`` subclass that skips the md5 checks.

    Raises
    ------
    ImportError
        When torchvision cannot be imported.
    """
    from torchvision.datasets import CIFAR10

    class CIFAR10AnyCopy(CIFAR10):
        """CIFAR-10 reader accepting any file contents in the original layout (md5=None)."""

        train_list = [[f"data_batch_{i}", None] for i in range(1, N_TRAIN_BATCHES + 1)]
        test_list = [["test_batch", None]]
        meta = {"filename": "batches.meta", "key": "label_names", "md5": None}

    return CIFAR10AnyCopy


#: The ``reader=`` values the vision loaders take.
READERS = ("auto", "torchvision", "numpy")


def check_reader(reader: str) -> None:
    """Refuse a ``reader=`` that is not one of :data:`READERS` (ValueError)."""
    if reader not in READERS:
        raise ValueError(f"reader must be {'|'.join(READERS)}, got {reader!r}")


def _torchvision_available() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # an ABI-mismatched torchvision raises more than ImportError
        return False
    return True


def load_cifar10(root: str | os.PathLike | None = None, *,
                 archive: str | os.PathLike = DEFAULT_ARCHIVE,
                 cache: str | os.PathLike | None = None,
                 reader: str = "auto", verbose: bool = True) -> VisionArrays:
    """Load CIFAR-10 from a user's folder, or from the decoded shared JPEG copy.

    Parameters
    ----------
    root : path-like, optional
        A folder holding ``cifar-10-batches-py`` (or that folder itself), e.g. the
        original CIFAR-10 download. When omitted, ``archive`` is decoded once into
        ``cache`` and read from there.
    archive : path-like
        JPEG archive, default ``../shared/data/cifar10/cifar10_jpeg_q75.tar.xz``.
    cache : path-like, optional
        Cache folder for the decoded copy (default ``$LORAML_CACHE`` or ``~/.cache/loraml``).
    reader : {"auto", "torchvision", "numpy"}
        Accepted for compatibility; every value reads the batches with
        :func:`read_cifar_batches` (plain data only): torchvision's reader would unpickle
        files from ``root`` without restriction.
    """
    check_reader(reader)
    if root is None:
        root = decode_jpeg_archive(archive, None if cache is None else Path(cache) / "cifar10_jpeg_q75",
                                   verbose=verbose)
    root = Path(root)
    bdir = _batches_dir(root)
    lossy = (bdir / LOSSY_MARKER).is_file()
    if verbose and lossy:
        print(LOSSY_NOTICE, file=sys.stderr)
    trx, try_, names = read_cifar_batches(bdir, train=True)
    tex, tey, _ = read_cifar_batches(bdir, train=False)
    arrays = (trx, try_, tex, tey, tuple(names))
    used = "numpy (cifar-10-batches-py reader, plain-data unpickler)"
    if verbose:
        print(f"CIFAR-10 reader: {used}", file=sys.stderr)
    return VisionArrays(*arrays[:4], class_names=arrays[4],
                        source=("CIFAR-10 decoded from JPEG q75 (lossy)" if lossy
                                else f"CIFAR-10 batches from {bdir.name}"),
                        reader=used, lossy=lossy)
