"""empirics.real._paths pinned: the project root and the shared data beside it, and the cache
folder -- explicit, else $LORAML_CACHE, else ~/.cache/loraml -- created with its parents,
refused (an environment failure, with the hint that fits) when it cannot be made or written."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from empirics.real import _paths as P
from landscape.runtime.exits import EnvironmentFailure

ROOT = Path(__file__).resolve().parents[1]


def test_project_root_and_shared_data():
    assert P.PROJECT_ROOT == ROOT and (P.PROJECT_ROOT / "pyproject.toml").is_file()
    assert P.SHARED_DATA == ROOT.parent / "shared" / "data"
    assert P.CACHE_ENV == "LORAML_CACHE"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LORAML_CACHE", raising=False)
    return tmp_path / "home"


def test_the_default_cache_is_under_home_and_created_with_its_parents(home):
    assert P.cache_dir() == home / ".cache" / "loraml" and (home / ".cache" / "loraml").is_dir()


def test_the_environment_then_an_explicit_folder_take_precedence(home, tmp_path, monkeypatch):
    monkeypatch.setenv("LORAML_CACHE", str(tmp_path / "env" / "cache"))
    assert P.cache_dir() == tmp_path / "env" / "cache" and (tmp_path / "env" / "cache").is_dir()
    assert P.cache_dir(tmp_path / "mine" / "deep") == tmp_path / "mine" / "deep"
    assert not (home / ".cache").exists()


def test_a_tilde_is_expanded(home):
    assert P.cache_dir("~/c") == home / "c"


@pytest.mark.parametrize("how,hint", [("explicit", "give another --cache folder"),
                                      ("env", "give another --cache folder"),
                                      ("default", "HOME is missing or read-only; set LORAML_CACHE or --cache")])
def test_an_unwritable_cache_is_an_environment_failure_with_its_hint(home, tmp_path, monkeypatch, how, hint):
    monkeypatch.setattr(P.os, "access", lambda p, mode: not (mode & (os.W_OK | os.X_OK)))
    if how == "env":
        monkeypatch.setenv("LORAML_CACHE", str(tmp_path / "env"))
    with pytest.raises(EnvironmentFailure, match=rf"cannot use the cache folder \(.*\); {hint}"):
        P.cache_dir(tmp_path / "x" if how == "explicit" else None)


def test_without_a_home_the_failure_says_so(monkeypatch):
    monkeypatch.delenv("LORAML_CACHE", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(P.Path, "home", staticmethod(no_home))
    with pytest.raises(EnvironmentFailure, match="Could not determine home directory.*HOME is missing or read-only"):
        P.cache_dir()


def test_a_file_in_the_way_is_an_environment_failure(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(EnvironmentFailure, match="give another --cache folder"):
        P.cache_dir(tmp_path / "f" / "sub")


@pytest.mark.parametrize("allowed", [os.W_OK, os.X_OK])
def test_write_without_search_permission_or_the_reverse_is_not_enough(tmp_path, monkeypatch, allowed):
    monkeypatch.setattr(P.os, "access", lambda p, mode: not (mode & ~allowed & (os.W_OK | os.X_OK)))
    with pytest.raises(EnvironmentFailure, match=r"permission denied: .*; give another --cache folder"):
        P.cache_dir(tmp_path / "c")


def test_an_existing_cache_folder_is_used_again(tmp_path):
    assert P.cache_dir(tmp_path / "c") == P.cache_dir(tmp_path / "c") == tmp_path / "c"
