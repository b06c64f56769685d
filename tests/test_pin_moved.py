"""landscape.runtime.moved pinned: an old import path forwards its home modules' public names and
``__version__``, never another dunder (an old module must not look like a package or carry its
home's ``__file__``), and its DeprecationWarning names the line that imported it."""
from __future__ import annotations

import sys
import types
import warnings

import pytest

from landscape.runtime.moved import forward


@pytest.fixture
def home(monkeypatch):
    mod = types.ModuleType("fake_home_mod")
    mod.value, mod.__version__ = 3, "1.0"
    mod.__aa__, mod.__zz__, mod.__path__ = "a", "z", ["somewhere"]
    monkeypatch.setitem(sys.modules, "fake_home_mod", mod)
    return mod


def test_public_names_and_version_are_forwarded_other_dunders_are_not(home):
    with pytest.warns(DeprecationWarning, match="old_mod is deprecated and will be removed; import from new_mod"):
        getattr_, dir_ = forward("old_mod", "new_mod", ["fake_home_mod"])
    assert getattr_("value") == 3 and getattr_("__version__") == "1.0"
    for name in ("__aa__", "__zz__", "__path__", "missing"):
        with pytest.raises(AttributeError, match=f"module 'old_mod' has no attribute '{name}'"):
            getattr_(name)
    assert dir_() == sorted({n for n in dir(home) if not n.startswith("__")} | {"__version__"})


def test_importing_an_old_path_warns_at_the_importing_line():
    sys.modules.pop("landscape._rump", None)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        import landscape._rump  # noqa: F401
    moved = [w for w in seen if issubclass(w.category, DeprecationWarning) and "landscape._rump" in str(w.message)]
    assert moved and (moved[0].filename, moved[0].lineno) == (__file__, line)
