"""Run records: provenance, atomic JSON writing and resumable run directories.

Every run of :mod:`empirics` writes a JSON record holding its configuration, seed, the
git revision of the working tree, library versions, the device and the metrics per
step or epoch (DESIGN.md, "empirics"). Sweeps are split into *units* (a group of
trials); each finished unit is written to its own file, so an interrupted sweep resumes
without losing finished units.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import _malloc

__all__ = ["provenance", "to_jsonable", "write_json", "read_json", "RunDir"]

#: Libraries whose versions enter every record (looked up without importing them).
RECORDED_PACKAGES = ("numpy", "scipy", "torch", "peft", "transformers", "matplotlib")

_REPO_ROOT = Path(__file__).resolve().parents[1]


def _git_revision() -> dict[str, Any]:
    """Return the git revision of the project checkout and whether it has local edits."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_REPO_ROOT, capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"revision": "unknown", "dirty": None}
    if rev.returncode != 0:
        return {"revision": "unknown", "dirty": None}
    return {"revision": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def provenance(device: str | None = None) -> dict[str, Any]:
    """Describe where and with what a result was produced.

    Parameters
    ----------
    device : str, optional
        The device the computation ran on (``"cpu"``, ``"cuda"``, ...).

    Returns
    -------
    dict
        ``git`` (revision, dirty flag), ``versions`` of :data:`RECORDED_PACKAGES`,
        ``python``, ``platform``, ``cpu_count``, ``device``, ``malloc`` (how this process's
        malloc is set, :func:`empirics._malloc.state`) and a UTC ``timestamp``.
    """
    versions = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info: dict[str, Any] = {
        "git": _git_revision(),
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "malloc": _malloc.state(),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if device is not None and str(device).startswith("cuda") and "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            info["device_name"] = torch.cuda.get_device_name(0)
    return info


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, numpy/torch scalars and arrays, paths and tuples to JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch tensor, without importing torch
        return obj.detach().cpu().tolist()
    if isinstance(obj, float) and not np.isfinite(obj):
        return repr(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write the dict ``obj`` as JSON atomically (temporary file then rename), sealed with
    its content hash (:mod:`landscape.runtime.integrity`); return the path."""
    from landscape.runtime.atomic import atomic_write_text
    from landscape.runtime.integrity import sealed_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a unique temporary name in the same folder, then os.replace: a reader (or a run
    # killed mid-write) only ever sees the old file or the complete new one
    return atomic_write_text(path, sealed_text(to_jsonable(obj), indent=1))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by :func:`write_json`, after checking its content hash.

    Raises :class:`landscape.runtime.integrity.StoreIntegrityError` (a ``ValueError``)
    naming the file when it is truncated, edited or has no hash; its content is never
    returned then.
    """
    from landscape.runtime.integrity import read_sealed

    return read_sealed(path)


class RunDir:
    """A directory of finished units of a sweep, for resuming after an interruption.

    Parameters
    ----------
    root : path
        Directory; created if missing. Each unit ``key`` is stored as
        ``root/units/<key>.npz`` (arrays) plus ``root/units/<key>.json`` (metadata); a
        unit counts as finished only once its JSON file exists (written last, atomically).
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        (self.root / "units").mkdir(parents=True, exist_ok=True)

    def _paths(self, key: str) -> tuple[Path, Path]:
        if not key or any(c in key for c in "/\\") or key.startswith("."):
            raise ValueError(f"unit key must be a plain file name, got {key!r}")
        # the key and a suffix appended (``with_suffix`` would replace a dotted key's last
        # part: units "lr0.1" and "lr0.2" would share one file)
        units = self.root / "units"
        return units / f"{key}.npz", units / f"{key}.json"

    def done(self, key: str) -> bool:
        """Whether unit ``key`` has finished."""
        return self._paths(key)[1].exists()

    def save(self, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Store a finished unit: arrays first, then the JSON marker."""
        import hashlib

        npz, js = self._paths(key)
        tmp = npz.with_name(f".{key}.tmp.npz")  # a hidden name, which no unit key can have
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, npz)
        write_json(js, {"meta": dict(meta), "npz_sha256": hashlib.sha256(npz.read_bytes()).hexdigest()})

    def load(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Load a finished unit as ``(arrays, meta)``."""
        import hashlib

        from landscape.runtime.integrity import StoreIntegrityError

        npz, js = self._paths(key)
        doc = read_json(js)
        if not npz.is_file() or hashlib.sha256(npz.read_bytes()).hexdigest() != doc.get("npz_sha256"):
            raise StoreIntegrityError(f"{npz}: missing or not the arrays saved with {js.name}; it is not used; "
                                      f"delete {js} and rerun the command to recompute it")
        with np.load(npz) as data:
            arrays = {k: data[k] for k in data.files}
        return arrays, doc["meta"]
