"""figures._registry pinned where a cosmic-ray sample found it loose: the seconds a make()
reports, and saved arrays that pass their sha256 but hold pickled objects (refused as
saved-data errors, never unpickled)."""
from __future__ import annotations

import time

import numpy as np
import pytest

import figures
import figures._registry as reg


def test_make_reports_the_seconds_it_took(tmp_path, tiny_figure):
    t0 = time.perf_counter()
    res = figures.make("tinyfig", out=tmp_path, progress=False)
    took = time.perf_counter() - t0
    assert 0 <= res["seconds"] <= took
    again = figures.make("tinyfig", out=tmp_path, progress=False)  # reused data: timed too
    assert again["source"] == "reused" and 0 <= again["seconds"] <= time.perf_counter() - t0


def test_saved_arrays_holding_pickled_objects_are_refused_not_unpickled(tmp_path):
    """An npz whose sha256 the JSON records (a consistent pair, as a hostile folder can be)
    but which holds an object array: loading it would unpickle, so it is a saved-data
    error (a ValueError naming the file), not a crash and not a load."""
    reg.save_data(tmp_path, "fig", {"x": np.array([{"a": 1}, None], dtype=object), "n": 2}, {"m": 1})
    with pytest.raises(reg.SavedDataError, match=r"fig\.npz: ValueError: Object arrays cannot be loaded"):
        reg.load_data(tmp_path, "fig")
    reg.save_data(tmp_path, "ok", {"x": np.arange(3.0), "n": 2}, {"m": 1})
    data, meta = reg.load_data(tmp_path, "ok")
    assert np.array_equal(data["x"], np.arange(3.0)) and data["n"] == 2 and meta == {"m": 1}


@pytest.mark.parametrize("key, configured, value, ok", [
    ("trials", 1, 0, False), ("trials", 1, 1, True), ("workers", 3, 0, False), ("epochs", 5, 0, False),
    ("seed", 7, 0, True), ("seed", 7, -1, False), ("offset", 0, 0, True), ("trials", 1, 2.5, False),
])
def test_an_integer_override_keeps_the_configured_value_s_floor(key, configured, value, ok):
    """A count configured at 1 or more (trials, workers, epochs: any key but the seed) takes
    only integers >= 1; a seed, or a count configured at 0, any integer >= 0; never a float."""
    from figures._registry import check_overrides

    if ok:
        check_overrides("fig", {key: configured}, {key: value})
    else:
        with pytest.raises(ValueError, match="an integer >= "):
            check_overrides("fig", {key: configured}, {key: value})


def test_what_cannot_be_inspected_takes_no_executor():
    """A figure's compute function takes an executor only when its signature names one; an
    object without a signature (not callable: TypeError; no signature: ValueError) takes none."""
    from figures._registry import _takes_executor

    assert _takes_executor(lambda config, executor=None: None) is True
    assert _takes_executor(lambda config: None) is False
    assert _takes_executor(object()) is False


def test_an_unset_configured_value_takes_any_override():
    """A key configured as None (no type to hold it to: e.g. a rank that defaults later) takes
    any finite value; typed keys stay checked."""
    from figures._registry import check_overrides

    check_overrides("fig", {"rank": None, "trials": 3}, {"rank": 3})
    check_overrides("fig", {"rank": None}, {"rank": [1, 2]})
    with pytest.raises(ValueError, match="--set trials: expected an integer >= 1"):
        check_overrides("fig", {"rank": None, "trials": 3}, {"trials": 0})


def test_figure_data_is_saved_into_a_folder_created_with_its_parents(tmp_path):
    """save_data creates the output folder and any missing parents."""
    import numpy as np

    from figures._registry import save_data

    out = tmp_path / "a" / "b" / "c"
    npz, js = save_data(out, "fig", {"x": np.arange(3.0), "note": "n"}, {"what": "test"})
    assert npz.is_file() and js.is_file() and npz.parent == out
