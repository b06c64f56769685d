"""The audit's zero-mode note, table-driven (issue 16, item 8: a survivor of the cosmic-ray
sample of ``landscape/_audit/theory.py``).

A global minimum whose smallest quotient eigenvalue is negative but within its zero
tolerance gets the note "a zero mode ... computed with round-off, not negative curvature";
nothing else may get it: not a global minimum with a non-negative eigenvalue (nothing to
explain), not one beyond the tolerance (real negative curvature), and never a saddle or a
degenerate point, whose small negative eigenvalue is exactly what the classification must
not explain away.  Each row sits a factor 2 inside or outside the tolerance.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from landscape._audit.theory import _zero_mode_note
from landscape._audit.units import _Units
from landscape._classify import DEGENERATE, GLOBAL_MINIMUM, SPURIOUS_CANDIDATE, STRICT_SADDLE

TOL = 1e-9

#: (kind, lambda_min_quotient / TOL, note expected)
TABLE = [
    (GLOBAL_MINIMUM, -0.5, True),
    (GLOBAL_MINIMUM, -2.0, False),
    (GLOBAL_MINIMUM, 0.0, False),
    (GLOBAL_MINIMUM, 0.5, False),
    (STRICT_SADDLE, -0.5, False),
    (DEGENERATE, -0.5, False),
    (SPURIOUS_CANDIDATE, -0.5, False),
    (SPURIOUS_CANDIDATE, 0.5, False),
]


@pytest.mark.parametrize("T", [2, 3])
@pytest.mark.parametrize("kind,lam,expected", TABLE, ids=[f"{k}-{x}" for k, x, _ in TABLE])
def test_only_a_global_minimum_within_tolerance_gets_the_zero_mode_note(kind, lam, expected, T):
    c = SimpleNamespace(lambda_min_quotient=lam * TOL, eigenvalue_tolerance=TOL, n_zero_symmetry=1,
                        zero_set_dimension=0)
    note = _zero_mode_note(SimpleNamespace(T=T), SimpleNamespace(kind=kind, classification=c), _Units(0))
    assert (note is not None) == expected
    if expected:
        assert "not negative curvature" in note and ("O(k,k)" in note) == (T == 2)
