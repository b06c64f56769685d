"""The unit result store (``landscape/runtime/store.py``) never hands one unit another's
result: a sealed file moved under another unit's name is refused whichever way the two keys
sort, as is a sealed file without a result; another configuration of the same unit is a
ConfigMismatch; a unit's own file loads exactly."""
from __future__ import annotations

import shutil

import pytest

from landscape.runtime.integrity import StoreIntegrityError, read_sealed, sealed_text
from landscape.runtime.store import ConfigMismatch, ResultStore
from landscape.runtime.units import Unit


def _unit(key, **config):
    return Unit(key, fn=lambda **kw: None, config=config)


@pytest.mark.parametrize("mine, other", [("unit-b", "unit-a"), ("unit-a", "unit-b"), ("u1", "u10")])
def test_a_file_of_another_unit_is_refused_whichever_way_the_keys_sort(tmp_path, mine, other):
    store = ResultStore(tmp_path)
    store.save(_unit(other, n=1), {"value": 2.5})
    shutil.copy(store.path(other), store.path(mine))  # the same configuration, another unit's file
    for read in (store.has, store.load):
        with pytest.raises(StoreIntegrityError, match=f"does not hold unit '{mine}'"):
            read(_unit(mine, n=1))
    assert store.load(_unit(other, n=1)) == {"value": 2.5}


def test_a_sealed_file_without_a_result_is_refused(tmp_path):
    store = ResultStore(tmp_path)
    u = _unit("u", n=1)
    store.save(u, 1.0)
    doc = read_sealed(store.path("u"))
    doc = {k: v for k, v in doc.items() if k != "result"}
    store.path("u").write_text(sealed_text(doc))
    with pytest.raises(StoreIntegrityError, match="does not hold unit 'u'"):
        store.load(u)


@pytest.mark.parametrize("saved, asked", [(1, 2), (2, 1)])
def test_another_configuration_of_the_same_unit_is_a_mismatch(tmp_path, saved, asked):
    """Whichever way the two configurations' digests sort, the stored one is refused."""
    from landscape.runtime.store import config_digest

    store = ResultStore(tmp_path)
    store.save(_unit("u", n=saved), 1.0)
    with pytest.raises(ConfigMismatch, match="computed with another configuration"):
        store.load(_unit("u", n=asked))
    assert store.load(_unit("u", n=saved)) == 1.0 and not store.has(_unit("v", n=saved))
    assert config_digest({"n": 1}) != config_digest({"n": 2})


@pytest.mark.parametrize("x", [1.5, -0.0, 1e308, 5e-324])
def test_finite_floats_are_stored_as_plain_json_numbers(x):
    from landscape.runtime.store import decode, encode

    assert encode(x) == x and type(encode(x)) is float and decode(encode(x)) == x


@pytest.mark.parametrize("x", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_floats_are_tagged_so_the_file_stays_strict_json(x):
    """Strict JSON has no NaN or Infinity: they are stored as {"__float__": repr} and read back."""
    import json
    import math

    from landscape.runtime.store import decode, encode

    enc = encode({"v": [x]})
    assert enc == {"v": [{"__float__": repr(x)}]}
    text = json.dumps(enc, allow_nan=False)
    back = decode(json.loads(text))["v"][0]
    assert (math.isnan(back) and math.isnan(x)) or back == x
