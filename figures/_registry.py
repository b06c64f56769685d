"""The figure/table registry.

Each entry is a :class:`FigureSpec`: a ``compute(config, workdir, progress) -> data``
function, a ``render(data, out_dir) -> [paths]`` function, the paper's configuration and
a tiny ``smoke`` configuration. :func:`make` runs ``compute`` (or reuses the saved data),
saves the data with provenance (``<name>.npz`` for arrays, ``<name>.json`` for the rest)
and renders. Data can be redrawn without recomputing (:func:`redraw`).

Registering from another module is one call::

    from figures import FigureSpec, register
    register(FigureSpec("table1", "Table 1: CIFAR-10 ...", compute, render, paper, smoke))

Nothing heavy is imported here; compute functions import ``empirics`` (and torch)
themselves.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["FigureSpec", "register", "REGISTRY", "get", "make", "redraw", "save_data", "load_data",
           "DEFAULT_OUT", "SavedDataError"]

#: Default output folder of ``python -m figures make`` (ignored by git; the committed
#: paper-scale results live under ``figures/results``).
DEFAULT_OUT = Path("out") / "figures"


@dataclass(frozen=True)
class FigureSpec:
    """A figure or table of the paper.

    Attributes
    ----------
    name : str
        Registry key (``python -m figures make NAME``).
    description : str
        One line shown by ``python -m figures list``.
    compute : callable
        ``compute(config: dict, workdir: Path, progress: bool) -> dict``. The returned
        dict maps names to numpy arrays (saved to NPZ) or JSON-able values (saved to
        JSON). ``workdir`` is a folder for resumable partial results. A compute function
        that sweeps independent units takes a further keyword ``executor`` (a
        :class:`landscape.runtime.executor.Executor`, or None for its own local default) and
        submits them through :func:`landscape.runtime.executor.run_units`.
    render : callable
        ``render(data: dict, out_dir: Path, name: str) -> list[Path]`` writing PNG/PDF
        (and for tables also Markdown).
    paper : dict
        The paper's configuration.
    smoke : dict
        A tiny configuration for tests (seconds).
    kind : {"figure", "table"}
    """

    name: str
    description: str
    compute: Callable[[dict, Path, bool], dict]
    render: Callable[[dict, Path, str], list]
    paper: Mapping[str, Any]
    smoke: Mapping[str, Any]
    kind: str = "figure"

    def __post_init__(self):
        if self.kind not in ("figure", "table"):
            raise ValueError(f"kind must be 'figure' or 'table', got {self.kind!r}")
        if not self.name or any(c in self.name for c in " /\\"):
            raise ValueError(f"figure name must be a plain identifier, got {self.name!r}")


REGISTRY: dict[str, FigureSpec] = {}


def register(spec: FigureSpec) -> FigureSpec:
    """Add ``spec`` to the registry (replacing no existing entry); return it."""
    if spec.name in REGISTRY and REGISTRY[spec.name] is not spec:
        raise ValueError(f"a figure named {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> FigureSpec:
    """The registered spec ``name`` (``KeyError`` with the known names otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown figure {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def save_data(out_dir: Path, name: str, data: Mapping[str, Any], meta: Mapping[str, Any]) -> tuple[Path, Path]:
    """Save arrays of ``data`` to ``name.npz`` and everything else plus ``meta`` to ``name.json``.

    Both files are written atomically (temporary name in the same folder, then
    ``os.replace``), the NPZ first; the JSON, written last, records the NPZ's SHA-256, so
    :func:`load_data` recognises a pair left inconsistent by a kill between the two
    renames instead of rendering old numbers with new arrays.
    """
    from empirics._records import write_json
    from landscape.runtime.atomic import atomic_write
    from landscape.runtime.integrity import file_sha256

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = {k: v for k, v in data.items() if isinstance(v, np.ndarray)}
    rest = {k: v for k, v in data.items() if not isinstance(v, np.ndarray)}
    npz = out_dir / f"{name}.npz"
    atomic_write(npz, lambda fh: np.savez_compressed(fh, **arrays))
    js = write_json(out_dir / f"{name}.json", {"meta": dict(meta), "data": rest, "arrays": sorted(arrays),
                                              "npz_sha256": file_sha256(npz)})
    return npz, js




class SavedDataError(ValueError):
    """Saved figure data that cannot be used (missing, unreadable or inconsistent)."""


def load_data(out_dir: Path, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inverse of :func:`save_data`: ``(data, meta)``.

    Raises :class:`SavedDataError` when the JSON is unreadable, or the NPZ it names is
    missing, unreadable, fails its content hash (:mod:`landscape.runtime.integrity`) or the
    NPZ is not the one it was saved with (``npz_sha256``); the data are never used then.
    """
    import zipfile

    from empirics._records import read_json

    from landscape.runtime.integrity import StoreIntegrityError, file_sha256

    out_dir = Path(out_dir)
    js = out_dir / f"{name}.json"
    try:
        doc = read_json(js)
        data = dict(doc["data"])
        meta = doc["meta"]
    except StoreIntegrityError as exc:
        raise SavedDataError(str(exc)) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SavedDataError(f"{js}: {exc.__class__.__name__}: {exc}; delete it and rerun 'python -m figures make'") \
            from None
    npz = out_dir / f"{name}.npz"
    if not npz.exists() or doc.get("npz_sha256") != file_sha256(npz):
        raise SavedDataError(f"{npz} is missing or not the array file saved with {js.name}; it is not used; "
                             f"delete {js} and rerun 'python -m figures make' to recompute it")
    if npz.exists():
        try:
            with np.load(npz) as z:
                data.update({k: z[k] for k in z.files})
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise SavedDataError(f"{npz}: {exc.__class__.__name__}: {exc}") from None
    return data, meta


def make(name: str, *, smoke: bool = False, out: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
         progress: bool = True, recompute: bool = False, executor=None) -> dict[str, Any]:
    """Compute (or reuse), save and render figure ``name``.

    Parameters
    ----------
    name : str
    smoke : bool
        Use the tiny smoke configuration.
    out : path, optional
        Output folder (default :data:`DEFAULT_OUT`); data and images go to
        ``out/<name>{,-smoke}.*``; partial results to ``out/work/<name>{,-smoke}/``.
    overrides : mapping, optional
        Keys replacing entries of the configuration.
    progress : bool
    recompute : bool
        Ignore saved data and finished units.
    executor : landscape.runtime.executor.Executor, optional
        Where the figure's units run (local processes, a Ray cluster); default: the
        figure's own local default. Results are identical on every backend.

    Returns
    -------
    dict
        ``data``, ``meta``, ``files`` (rendered paths), ``seconds`` and ``source``:
        ``"reused"`` when the saved data of the same configuration was drawn again,
        ``"computed"`` when it was computed (resuming finished units, if any).
    """
    from empirics._records import provenance

    spec = get(name)
    config = dict(spec.smoke if smoke else spec.paper)
    if overrides:
        check_overrides(name, config, overrides)
        config.update(overrides)
    from landscape.runtime.outguard import FileSet, OutLock

    out_dir = Path(DEFAULT_OUT if out is None else out)
    stem = f"{name}-smoke" if smoke else name
    workdir = out_dir / "work" / stem
    # one run at a time in out_dir (a second one is refused), stale temporaries removed
    with OutLock(out_dir, "figures make"):
        t0 = time.perf_counter()
        data = None
        if not recompute and (out_dir / f"{stem}.json").exists():
            try:
                old, meta = load_data(out_dir, stem)
            except SavedDataError as exc:  # never used: recomputed from the (checked) units, and said so
                import sys

                print(f"warning: {str(exc).split('; it is not used')[0]}; recomputing it", file=sys.stderr)
                old, meta = None, {}
            if old is not None and meta.get("config") == _jsonable(config):
                data = old
        source = "reused" if data is not None else "computed"
        if data is None:
            if recompute and workdir.exists():
                import shutil

                shutil.rmtree(workdir)
            if _takes_executor(spec.compute):
                data = spec.compute(config, workdir, progress, executor=executor)
            else:
                data = spec.compute(config, workdir, progress)
            meta = {"name": name, "kind": spec.kind, "description": spec.description, "smoke": smoke,
                    "config": _jsonable(config), "provenance": provenance(device="cpu"),
                    "compute_seconds": time.perf_counter() - t0}
        if set_status(out_dir, name, smoke=smoke) == "unsealed":
            import sys

            print(f"{name}: the files in {out_dir} have no {set_manifest_name(stem)} (written before file-set "
                  f"manifests, or by a run stopped before it); rebuilt as one set with its manifest", file=sys.stderr)
        # the figure is one set (data, arrays, image, PDF, table): its manifest goes first, the
        # old members next, and the new manifest is written last (landscape.runtime.outguard)
        fileset = FileSet(out_dir, set_manifest_name(stem), [f"{stem}.{ext}" for ext in SET_EXTENSIONS],
                          key=meta.get("config"))
        fileset.begin()
        for f in save_data(out_dir, stem, data, meta):
            fileset.add(f)
        files = spec.render(data, out_dir, stem)
        for f in files:
            fileset.add(f)
        fileset.commit()
        return {"data": data, "meta": meta, "files": [Path(f) for f in files], "seconds": time.perf_counter() - t0,
                "source": source}


#: File name endings of a figure's set (data, arrays, renderings).
SET_EXTENSIONS = ("json", "npz", "png", "pdf", "md")


def set_manifest_name(stem: str) -> str:
    """The manifest of figure ``stem``'s file set: written last, lists every member's sha256."""
    return f"{stem}.set.json"


def complete_set(out: str | Path, name: str, *, smoke: bool = False) -> dict | None:
    """The manifest of figure ``name`` in ``out`` when its set is complete and consistent, else None."""
    from landscape.runtime.outguard import read_set

    return read_set(out, set_manifest_name(f"{name}-smoke" if smoke else name))


#: What :func:`set_status` says about a figure's files in a folder.
SET_STATES = ("complete", "unsealed", "incomplete", "absent")


def set_status(out: str | Path, name: str, *, smoke: bool = False) -> str:
    """Whether figure ``name``'s files in ``out`` form one trusted set.

    ``"complete"``: the manifest lists every member and each matches its sha256.
    ``"unsealed"``: the saved data (``NAME.json``) and a rendering are there but no
    manifest at all -- a set written before file-set manifests existed (issue 17; the
    files of earlier rounds), or one whose run stopped between its renderings and its
    manifest; ``python -m figures make NAME`` rebuilds it as one set with its manifest
    (reusing the data when its configuration matches) and says so in one line.
    ``"incomplete"``: a manifest that does not match its members, data without any
    rendering, or renderings without data (a run stopped part-way).  ``"absent"``: none
    of the figure's files."""
    out = Path(out)
    stem = f"{name}-smoke" if smoke else name
    if complete_set(out, name, smoke=smoke) is not None:
        return "complete"
    if (out / set_manifest_name(stem)).exists():
        return "incomplete"
    if (out / f"{stem}.json").is_file() and any((out / f"{stem}.{ext}").is_file() for ext in ("png", "pdf", "md")):
        return "unsealed"
    if any((out / f"{stem}.{ext}").exists() for ext in SET_EXTENSIONS):
        return "incomplete"
    return "absent"


def check_overrides(name: str, config: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    """Refuse (ValueError, one line) an override of an unknown key, or whose value is not of
    the kind of the configured one: an integer entry takes only integers (``trials=2.5`` is
    refused, not truncated), a number only finite numbers (``1e999`` parses as inf), a flag
    only true/false, a string only a string, a list only a list."""
    import math
    import numbers

    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"unknown configuration keys for {name}: {sorted(unknown)}")

    def nonfinite(v) -> bool:
        if isinstance(v, float):
            return not math.isfinite(v)
        if isinstance(v, (list, tuple)):
            return any(nonfinite(x) for x in v)
        if isinstance(v, Mapping):
            return any(nonfinite(x) for x in v.values())
        return False

    for key, value in overrides.items():
        old = config[key]
        if nonfinite(value):
            raise ValueError(f"--set {key}: {value!r} is not a finite number")
        if isinstance(old, bool):
            ok = isinstance(value, bool)
            want = "true or false"
        elif isinstance(old, numbers.Integral):
            # counts and sizes (trials, epochs, workers) are >= 1 where the configured value is; seeds >= 0
            low = 1 if old >= 1 and key != "seed" else 0
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
            want = f"an integer >= {low}"
        elif isinstance(old, numbers.Real):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            want = "a number"
        elif isinstance(old, str):
            ok = isinstance(value, str)
            want = "a string"
        elif isinstance(old, Mapping):
            ok = isinstance(value, Mapping)
            want = "a JSON object"
        elif isinstance(old, (list, tuple)):
            ok = isinstance(value, (list, tuple))
            want = "a JSON list"
        else:
            ok, want = True, ""
        if not ok:
            raise ValueError(f"--set {key}: expected {want} (as {name}'s {key} = {old!r}), got {value!r}")


def redraw(name: str, out: str | Path, *, smoke: bool = False) -> list[Path]:
    """Render figure ``name`` again from the data saved in ``out``."""
    from landscape.runtime.outguard import FileSet, OutLock

    spec = get(name)
    stem = f"{name}-smoke" if smoke else name
    out = Path(out)
    with OutLock(out, "figures make"):
        data, meta = load_data(out, stem)
        fileset = FileSet(out, set_manifest_name(stem), [f"{stem}.{ext}" for ext in ("png", "pdf", "md")],
                          key=meta.get("config"))
        fileset.begin()
        fileset.add(out / f"{stem}.json")
        fileset.add(out / f"{stem}.npz")
        files = [Path(p) for p in spec.render(data, out, stem)]
        for f in files:
            fileset.add(f)
        fileset.commit()
        return files


def _takes_executor(fn) -> bool:
    import inspect

    try:
        return "executor" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _jsonable(config):
    from empirics._records import to_jsonable

    import json

    return json.loads(json.dumps(to_jsonable(config)))
