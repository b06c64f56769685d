"""Where real data live by default and where decoded copies are cached.

Nothing here is specific to one machine: the shared data folder is found relative
to the project root (``../shared/data`` beside the checkout, as DESIGN.md lays it
out) and caches go to a folder the user chooses.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PROJECT_ROOT", "SHARED_DATA", "cache_dir", "CACHE_ENV"]

#: Repository root (the folder holding ``pyproject.toml``).
PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Shared read-only data beside the checkout (DESIGN.md, "Data and models available offline").
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

#: Environment variable naming the cache folder; overrides the default below.
CACHE_ENV = "LORAML_CACHE"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Return (and create) the cache folder for decoded data.

    Parameters
    ----------
    path : path-like, optional
        Explicit folder. When omitted, ``$LORAML_CACHE`` if set, else
        ``~/.cache/loraml``. Never inside the repository.
    """
    from landscape.runtime.exits import EnvironmentFailure, describe_os_error

    explicit = path is not None or bool(os.environ.get(CACHE_ENV))
    try:
        if path is None:
            path = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "loraml"
        out = Path(path).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied", str(out))
    except (OSError, RuntimeError) as exc:  # RuntimeError: Path.home() without a HOME
        why = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        hint = "give another --cache folder" if explicit else \
            f"HOME is missing or read-only; set {CACHE_ENV} or --cache to a writable folder"
        raise EnvironmentFailure(f"cannot use the cache folder ({why}); {hint}") from None
    return out
