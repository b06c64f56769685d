"""landscape.runtime.version pinned: the version from the installed distribution, else from
pyproject.toml's [project] table (with tomllib, and with the one-line reader kept for Python
3.10, which pyproject.toml still admits), else "unknown"."""
from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from landscape.runtime import version as V

ROOT = Path(__file__).resolve().parents[1]
PROJECT = """[build-system]
requires = ["setuptools"]

[project]
name = "loraml"
version = "7.8.9"
dependencies = ["numpy"]

[tool.other]
version = "0.0.0"
"""


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    """version.py as if it lived in a checkout at ``tmp_path`` (pyproject.toml two levels up)."""
    here = tmp_path / "landscape" / "runtime" / "version.py"
    here.parent.mkdir(parents=True)
    here.write_text("")
    monkeypatch.setattr(V, "__file__", str(here))
    return tmp_path


@pytest.mark.parametrize("with_tomllib", [True, False], ids=["tomllib", "python-3.10-reader"])
def test_the_project_version_is_read_from_pyproject(fake_root, monkeypatch, with_tomllib):
    if not with_tomllib:
        monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib raises ImportError
    (fake_root / "pyproject.toml").write_text(PROJECT)
    assert V._from_pyproject() == "7.8.9"
    (fake_root / "pyproject.toml").write_text(PROJECT.replace('version = "7.8.9"\n', ""))
    assert V._from_pyproject() == "unknown"


def test_no_pyproject_is_an_unknown_version(fake_root):
    assert V._from_pyproject() == "unknown"


def test_the_installed_distribution_comes_first_then_pyproject(monkeypatch):
    monkeypatch.setattr(V.metadata, "version", lambda name: "1.2.3" if name == "loraml" else None)
    assert V._version() == "1.2.3"

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(V.metadata, "version", missing)
    want = [ln.split('"')[1] for ln in (ROOT / "pyproject.toml").read_text().splitlines() if ln.startswith("version =")]
    assert V._version() == want[0]
