"""theory._sizes: the old size orders still work, convert to (d, T, k), and their deprecation
warnings point at the caller's line (the frames between are the toolkit's own)."""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import theory
from theory._checks_calculus import check_schur


def _caught(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn()
    dep = [x for x in w if issubclass(x.category, DeprecationWarning)]
    assert len(dep) == 1, [str(x.message) for x in w]
    return out, dep[0]


def test_old_configs_of_a_check_warn_at_the_callers_line_and_mean_d_k_t():
    line = inspect.currentframe().f_lineno + 1
    res, w = _caught(lambda: check_schur(np.random.default_rng(0), configs=((3, 1, 3),)))
    assert (w.filename, w.lineno) == (__file__, line) and "(d, k, T)" in str(w.message)
    assert res.cases[0].label.startswith("d=3 k=1 T=3")  # (d, k, T) = (3, 1, 3): three tasks of rank one
    new = check_schur(np.random.default_rng(0), sizes=((3, 3, 1),))
    assert [c.label for c in new.cases] == [c.label for c in res.cases]
    with pytest.raises(TypeError, match="both sizes= and its old form configs="):
        check_schur(np.random.default_rng(0), configs=((3, 1, 3),), sizes=((3, 3, 1),))


def test_positional_sizes_of_a_formula_warn_at_the_callers_line_and_mean_d_k_t():
    line = inspect.currentframe().f_lineno + 1
    value, w = _caught(lambda: theory.thm31_expected_sr_loss(6, 1, 3))
    assert (w.filename, w.lineno) == (__file__, line) and "positional sizes is deprecated" in str(w.message)
    assert value == theory.thm31_expected_sr_loss(d=6, k=1, T=3) != theory.thm31_expected_sr_loss(d=6, k=3, T=1)
    with pytest.raises(TypeError, match="takes the keywords d=, T=, k="):
        theory.thm31_expected_sr_loss(6, 1)
    with pytest.raises(TypeError, match="takes the keywords d=, T=, k="):
        theory.thm31_expected_sr_loss(6, 1, 3, d=6)
    with pytest.raises(TypeError, match="takes the keywords d=, T=, k="):
        theory.thm31_expected_sr_loss(6, 1, 3, 4)
    # the wrapped formula keeps its own name and documentation
    assert theory.thm31_expected_sr_loss.__name__ == "thm31_expected_sr_loss"
    assert theory.thm31_expected_sr_loss.__doc__ and "wrapper" not in repr(theory.thm31_expected_sr_loss)


def test_resolve_sizes_takes_its_default_by_name_only():
    from theory._sizes import resolve_sizes

    kinds = [p.kind for p in inspect.signature(resolve_sizes).parameters.values()]
    assert kinds == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * 3 + [inspect.Parameter.KEYWORD_ONLY]
    assert resolve_sizes(func_name="f", configs=None, sizes=[(4.0, 3, 1)]) == ((4, 3, 1),)
