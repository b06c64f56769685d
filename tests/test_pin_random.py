"""landscape._random pinned: the seed conventions (an integer >= 0, a Generator used as it is,
a SeedSequence; None, floats, booleans and the legacy RandomState refused with their own error
types), the drawn seed's range, the (d, k, T) -> (d, T, k) reordering of old size lists, the
renamed keywords' warnings, and the decorator's handling of positional, keyword and default
arguments.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from landscape import _random as R
from landscape._validation import LandscapeInputError


def test_seed_bound_and_size_order():
    assert R._SEED_BOUND == 2 ** 63 - 1
    assert R.Size._fields == ("d", "T", "k")


@pytest.mark.parametrize("seed", [0, 7, np.int64(7), np.uint8(7), 2 ** 70])
def test_integer_seeds_give_default_rng(seed):
    g = R.as_generator(seed)
    assert g.integers(10 ** 9) == np.random.default_rng(int(seed)).integers(10 ** 9)
    assert R.seed_from(seed) == int(seed) and type(R.seed_from(seed)) is int


def test_a_generator_is_used_as_it_is_and_a_seed_sequence_seeds_one():
    g = np.random.default_rng(3)
    assert R.as_generator(g) is g
    ss = np.random.SeedSequence(5)
    assert R.as_generator(ss).integers(10 ** 9) == np.random.default_rng(np.random.SeedSequence(5)).integers(10 ** 9)


def test_a_seed_drawn_from_a_generator_is_its_next_integer_below_the_bound():
    g = np.random.default_rng(11)
    want = int(np.random.default_rng(11).integers(2 ** 63 - 1))
    assert R.seed_from(g) == want
    assert R.seed_from(g) != want  # the stream advanced
    assert all(0 <= R.seed_from(np.random.default_rng(s)) < 2 ** 63 - 1 for s in range(50))


@pytest.mark.parametrize("bad", [None, 1.0, True, False, "3", np.random.RandomState(0), [1]])
def test_non_integer_seeds_are_a_type_error_naming_the_argument(bad):
    with pytest.raises(TypeError, match=r"^rng must be an integer >= 0 or a numpy.random.Generator, got "):
        R.as_generator(bad, name="rng")
    with pytest.raises(TypeError, match=r"^seed must be"):
        R.seed_from(bad)


@pytest.mark.parametrize("bad", [-1, np.int32(-5), -(2 ** 70)])
def test_negative_seeds_are_bad_input(bad):
    with pytest.raises(LandscapeInputError, match=rf"^seed must be an integer >= 0 or a numpy.random.Generator, got {int(bad)}$"):
        R.as_generator(bad)
    with pytest.raises(LandscapeInputError):
        R.seed_from(bad)


def test_long_values_are_shortened_in_the_message():
    with pytest.raises(TypeError) as info:
        R.as_generator("x" * 100)
    shown = str(info.value).split("got ", 1)[1]
    assert len(shown) == 60 and shown.endswith("...") and shown.startswith("'xxx")
    assert R._describe("x" * 58) == repr("x" * 58)  # 60 characters: shown whole


def test_old_size_lists_are_reordered_from_d_k_T():
    with pytest.warns(DeprecationWarning, match=r"^f\(configs=\.\.\.\) with sizes in the order \(d, k, T\) is deprecated"):
        got = R.sizes_from_dkt("f", [(10, 2, 3), (np.int64(5), 1, 4)])
    assert got == (R.Size(10, 3, 2), R.Size(5, 4, 1))
    assert all(type(v) is int for s in got for v in s)


def test_renamed_keywords():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert R.renamed_keyword("f", "rank", "k", None, 3) == 3
        assert R.renamed_keyword("f", "rank", "k", None, None) is None
    with pytest.warns(DeprecationWarning, match=r"^f\(rank=\.\.\.\) is deprecated, use k=$"):
        assert R.renamed_keyword("f", "rank", "k", 2, None) == 2
    with pytest.raises(TypeError, match=r"^f\(\) got both k= and its old name rank=; pass only k=$"):
        R.renamed_keyword("f", "rank", "k", 2, 3)


def test_the_warning_points_at_the_caller_s_caller():
    def api(rank=None, k=None):
        return R.renamed_keyword("api", "rank", "k", rank, k)

    with pytest.warns(DeprecationWarning) as rec:
        api(rank=1)
    assert rec[0].filename == __file__


def test_accepts_seed_converts_positional_keyword_and_default():
    @R.accepts_seed("rng")
    def f(n, rng=None):
        return rng

    g = np.random.default_rng(0)
    assert f(1) is None and f(1, None) is None and f(1, rng=None) is None  # the default None passes
    assert f(1, g) is g and f(1, rng=g) is g
    for call in (lambda: f(1, 5), lambda: f(1, rng=5)):
        out = call()
        assert isinstance(out, np.random.Generator)
        assert out.integers(10 ** 9) == np.random.default_rng(5).integers(10 ** 9)
    with pytest.raises(TypeError, match=r"^rng must be"):
        f(1, 2.5)
    with pytest.raises(LandscapeInputError):
        f(1, rng=-1)
    assert f.__name__ == "f"


def test_accepts_seed_without_a_none_default_refuses_none():
    @R.accepts_seed("seed")
    def g(seed=0):
        return seed

    @R.accepts_seed("seed")
    def h(*, seed):
        return seed

    assert isinstance(g(), int) and g() == 0  # the default itself is not converted
    with pytest.raises(TypeError):
        g(None)
    with pytest.raises(TypeError):
        h(seed=None)
    assert isinstance(h(seed=4), np.random.Generator)


def test_renamed_keyword_takes_its_arguments_by_name_and_stacklevel_by_name_only():
    import inspect

    kinds = [p.kind for p in inspect.signature(R.renamed_keyword).parameters.values()]
    assert kinds == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * 5 + [inspect.Parameter.KEYWORD_ONLY]
    assert R.renamed_keyword(func_name="f", old="rank", new="k", old_value=None, new_value=4) == 4


def test_a_61_character_value_is_shortened_to_60():
    assert R._describe("x" * 59) == "'" + "x" * 56 + "..."  # repr of 61 characters: cut to 57 + "..."


def test_the_deprecation_names_the_line_that_called_the_converting_function():
    """By default the warning points two frames above sizes_from_dkt: at the caller of the
    function that took the old ``configs=`` (here ``old_api``), not inside that function."""
    import inspect

    def old_api(configs):
        return R.sizes_from_dkt("old_api", configs)

    with pytest.warns(DeprecationWarning) as rec:
        line = inspect.currentframe().f_lineno + 1
        old_api([(4, 1, 2)])
    assert rec[0].filename == __file__ and rec[0].lineno == line
