r"""landscape._audit.units pinned against the homogeneity of the LoRA-ML loss: with the tasks
divided by :math:`c = 2^e` (e even) and :math:`U \to c^{-1/2} U`, G scales by :math:`c^{-2}`,
its gradient in U by :math:`c^{-3/2}`, A and the eigenvalues of S by :math:`c^{-1}`; the audit
converts back by exactly these powers of two, so the conversions are compared bit for bit with
the objective evaluated on the user's own tasks. The scientific formatting beyond the float64
range is compared with exact rational arithmetic.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landscape._audit.units import MAX_JSON_MATRIX_ENTRIES, _num, _one_line, _sanitize, _Units
from landscape._objective import LoraMLProblem


def _instance(seed=0, T=3, d=4, k=2):
    rng = np.random.default_rng(seed)
    tasks = rng.standard_normal((T, d, d))
    tasks = tasks + np.swapaxes(tasks, 1, 2)
    return tasks, rng.standard_normal((T, d, k))


@settings(max_examples=25, deadline=None)
@given(e=st.integers(-40, 40).map(lambda v: 2 * v), seed=st.integers(0, 10 ** 6))
def test_conversions_are_the_homogeneity_of_the_loss_exactly(e, seed):
    tasks, U = _instance(seed)
    user = LoraMLProblem(tasks, 2)
    norm = LoraMLProblem(np.ldexp(tasks, -e), 2)  # the audit's tasks: divided by 2^e
    Un = np.ldexp(U, -(e // 2))                    # the same point in the audit's units
    units = _Units(e)
    np.testing.assert_array_equal(units.point(Un), U)
    A_n = norm.optimal_A(Un)
    np.testing.assert_array_equal(units.matrix(A_n), user.optimal_A(U))
    assert units.loss(norm.reduced_loss(Un)) == user.reduced_loss(U)
    assert units.grad(np.linalg.norm(norm.reduced_grad(Un))) == np.linalg.norm(user.reduced_grad(U))
    lam_n = np.linalg.eigvalsh(norm.mean_task)
    np.testing.assert_array_equal([units.lin(v) for v in lam_n], np.linalg.eigvalsh(user.mean_task))


@pytest.mark.parametrize("e, loss, grad, lin, half", [(0, 0, 0, 0, 0), (2, 4, 3, 2, 1), (-4, -8, -6, -4, -2),
                                                      (10, 20, 15, 10, 5)])
def test_the_powers_of_two_of_each_quantity(e, loss, grad, lin, half):
    u = _Units(e)
    assert u.loss(1.0) == 2.0 ** loss and u.grad(1.0) == 2.0 ** grad and u.lin(1.0) == 2.0 ** lin
    assert u.point(np.ones(2)).tolist() == [2.0 ** half] * 2
    assert u.matrix(np.ones((1, 1))).tolist() == [[2.0 ** lin]]
    assert u.loss(-3.0) == -3.0 * 2.0 ** loss


def test_none_and_non_finite_values_pass_unchanged():
    u = _Units(6)
    assert u.loss(None) is None and u.grad(None) is None and u.lin(None) is None
    assert u.loss(math.inf) == math.inf and u.lin(-math.inf) == -math.inf and math.isnan(u.grad(math.nan))
    assert u.loss(0.0) == 0.0


def test_overflow_of_a_conversion_is_a_signed_infinity():
    u = _Units(600)
    assert u.loss(1.0) == math.inf and u.loss(-1.0) == -math.inf  # 2^1200 > float64's range
    assert u.lin(1.0) == 2.0 ** 600


def test_the_reason_names_the_scale_only_when_there_is_one():
    assert _Units(0).reason("a\n  b") == "a b"
    assert _Units(-6).reason("saddle\tat  x") == "[numbers for the tasks divided by 2^-6] saddle at x"


def _exact_sci(x: float, p: int, digits: int) -> str:
    """x * 2^p in scientific notation with ``digits`` decimals, rounded half-even from the exact value."""
    v = Fraction(x) * (Fraction(2) ** p)
    sign = "-" if v < 0 else ""
    v = abs(v)
    ex = 0
    while v >= 10:
        v /= 10
        ex += 1
    while v < 1:
        v *= 10
        ex -= 1
    m = round(v * 10 ** digits)
    if m == 10 ** (digits + 1):
        m //= 10
        ex += 1
    s = str(m)
    return f"{sign}{s[0]}.{s[1:]}e{ex:+03d}"


@pytest.mark.parametrize("x, e, power", [(1.5, 2000, 4), (-7.25, 3000, 2), (3.0, -2200, 4), (1e-300, -100, 4),
                                         (6.02e23, 1100, 4), (2.5, 700, 4)])
def test_fmt_beyond_float64_matches_exact_arithmetic(x, e, power):
    got = _Units(e).fmt(x, power=power)
    want = _exact_sci(x, power * e // 2, 3)
    # through log10 the last digit may differ by one unit; the exponent and leading digits are exact
    assert got[-5:] == want[-5:] and got[:4] == want[:4], (got, want)
    assert abs(float(got.split("e")[0]) - float(want.split("e")[0])) <= 1.0001e-3


@pytest.mark.parametrize("x, e, power, spec", [(1.5, 8, 4, ".3e"), (-2.0, -10, 2, ".3e"), (1.0, 0, 4, ".2f"),
                                               (1.0, 4, 4, ".2f"), (-1.0, 4, 4, ".2f"), (3.0, -300, 2, ".3e"),
                                               (0.0, 4000, 4, ".3e"), (math.inf, 4000, 4, ".3e"), (5.0, 6, 4, ".5e")])
def test_fmt_within_float64_is_format_of_the_converted_value(x, e, power, spec):
    y = x * 2.0 ** (power * e // 2) if math.isfinite(x) and x else x
    assert _Units(e).fmt(x, spec, power) == format(y, spec)
    assert _Units(e).fmt(None) == ""


def test_fmt_keeps_the_requested_digits_beyond_the_range():
    assert _Units(2000).fmt(1.0, ".5e") == _exact_sci(1.0, 4000, 5)
    assert _Units(2000).fmt(1.0) == _exact_sci(1.0, 4000, 3)


def test_num_and_sanitize_json_forms():
    assert _num(None) is None and _num(math.nan) is None
    assert _num(math.inf) == "inf" and _num(-math.inf) == "-inf" and _num(np.float32(0.5)) == 0.5
    assert _num(3) == 3.0 and type(_num(3)) is float
    got = _sanitize({1: [np.float64(math.inf), np.nan, (np.int64(2), np.bool_(False))], "a": np.array([1.5, -np.inf])})
    assert got == {"1": ["inf", None, [2, False]], "a": [1.5, "-inf"]}
    assert type(got["1"][2][0]) is int and type(got["1"][2][1]) is bool
    assert _sanitize("text") == "text" and _sanitize(None) is None


def test_one_line_and_matrix_limit():
    assert _one_line("a\n\n b \t c ") == "a b c" and _one_line(3) == "3"
    assert MAX_JSON_MATRIX_ENTRIES == 100 ** 2  # A_hat written for d <= 100


def test_values_beyond_the_float_range_print_with_three_decimals_by_default():
    """2^2000 in user units is no float: printed from its logarithm as m.mmm e+XXX, three
    decimals unless the spec says '.Ne'."""
    from landscape._audit.units import _Units

    u = _Units(4000)
    assert u.fmt(1.0, "g", 1) == "1.148e+602"
    assert u.fmt(1.0, ".1e", 1) == "1.1e+602"
    assert u.fmt(-1.0, "g", 1) == "-1.148e+602"


@pytest.mark.parametrize("e, power, x, want", [(1, 2, 3.0, "6.000e+00"), (1, 4, 3.0, "1.200e+01"),
                                               (2, 2, 3.0, "1.200e+01"), (0, 4, 3.0, "3.000e+00"),
                                               (-1, 2, 3.0, "1.500e+00")])
def test_numbers_are_printed_in_the_user_s_units(e, power, x, want):
    """fmt shows x 2^(power e / 2): a matrix or eigenvalue (power 2) of tasks divided by 2^e
    is 2^e times larger in the user's units, a loss (power 4) 2^(2e) -- also when the shift is
    a single factor 2 (e = 1, power 2)."""
    from landscape._audit.units import _Units

    assert _Units(e).fmt(x, ".3e", power) == want



@pytest.mark.parametrize("e", [6, -6, 2])
def test_a_value_that_scales_to_exactly_one_is_printed_as_one(e):
    """x = 2^-p with p = power e / 2: the user's value is exactly 1, printed by the float path
    as 1.000e+00 (the log10 path is for values outside the float range only)."""
    u = _Units(e)
    for power in (4, 2):
        p = power * e // 2
        assert u.fmt(2.0 ** -p, power=power) == "1.000e+00"
        assert u.fmt(-(2.0 ** -p), ".2e", power=power) == "-1.00e+00"


@pytest.mark.parametrize("ex", [400, 401])
def test_the_carry_adds_one_to_an_exponent_of_either_parity(ex):
    """9.9999 x 10^ex beyond the float range prints as 1.000 x 10^(ex + 1) for an even and an
    odd ex alike."""
    x = float(Fraction(99999, 10**4) * 10**ex / Fraction(2) ** 1200)
    assert _Units(600).fmt(x) == f"1.000e+{ex + 1}"


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_beyond_the_float_range_a_mantissa_that_rounds_to_ten_carries_into_the_exponent(sign):
    """9.9999e400 (outside float64, printed through log10) at 3 digits is 1.000e+401, never
    10.000e+400; the exact value is checked with rationals."""
    from decimal import Decimal

    e = 600  # power 4: the user's value is x * 2^1200
    x = sign * float(Fraction(99999, 10**4) * 10**400 / Fraction(2) ** 1200)
    exact = Fraction(x) * Fraction(2) ** 1200
    assert f"{Decimal(exact.numerator) / Decimal(exact.denominator):.3e}".replace("E", "e") == \
        ("-" if sign < 0 else "") + "1.000e+401"
    assert _Units(e).fmt(x) == ("-" if sign < 0 else "") + "1.000e+401"
    # a value not at the carry keeps its digits
    assert _Units(e).fmt(sign * float(Fraction(12341, 10**4) * 10**400 / Fraction(2) ** 1200)) == \
        ("-" if sign < 0 else "") + "1.234e+400"


def test_a_value_whose_scaled_float_would_be_subnormal_keeps_all_its_digits():
    """A user value near 1e-320 is a subnormal double (few significant bits): it is printed
    through log10 from the normal scaled value, so 6 digits are right (checked with rationals)."""
    from decimal import Decimal

    e, power = -200, 4  # the user's value is x * 2^-400
    x = float(Fraction(1234567, 10**6) * Fraction(10) ** -320 * Fraction(2) ** 400)
    exact = Fraction(x) / Fraction(2) ** 400
    want = f"{Decimal(exact.numerator) / Decimal(exact.denominator):.6e}".replace("E", "e")
    assert want == "1.234567e-320"
    assert _Units(e).fmt(x, ".6e", power=power) == want
