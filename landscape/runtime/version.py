"""The toolkit's version, shared by its four packages (``theory``, ``landscape``, ``empirics``, ``figures``).

Read from the installed distribution's metadata (``importlib.metadata``); in a source
checkout that is not installed, from the ``[project]`` table of ``pyproject.toml`` next
to the packages; ``"unknown"`` if neither is available.
"""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

#: Name of the distribution in ``pyproject.toml``.
DISTRIBUTION = "loraml"


def _from_pyproject() -> str:
    path = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        text = path.read_text()
    except OSError:
        return "unknown"
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # 3.10: the one line we need, without a TOML parser
        m = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', text, flags=re.M | re.S)
        return m.group(1) if m else "unknown"
    return str(tomllib.loads(text).get("project", {}).get("version", "unknown"))


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return _from_pyproject()


__version__ = _version()
