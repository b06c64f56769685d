r"""The audit's numbers in the user's units, and their JSON form.

The audit runs on the tasks divided by an exact power of two (:func:`~landscape._audit.run.scale_exponent`);
:class:`_Units` converts what it finds back (G is homogeneous of degree 2), and
:func:`_num`/:func:`_sanitize` give numbers a JSON form that keeps infinities readable.
"""
from __future__ import annotations

import math

import numpy as np

#: ``A_hat`` is written to report.json only up to this many entries (d <= 100);
#: beyond, it is derivable from ``point`` as A(U) = mean_t(A*_t - U_t U_t^T) and would
#: dominate the file size (one d x d matrix per class).
MAX_JSON_MATRIX_ENTRIES = 10_000


def _num(x):
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _sanitize(x):
    """JSON-safe copy: non-finite floats become the strings "inf", "-inf" or None."""
    if isinstance(x, dict):
        return {str(k): _sanitize(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_sanitize(v) for v in x]
    if isinstance(x, np.ndarray):
        return _sanitize(x.tolist())
    if isinstance(x, (float, np.floating)):
        return _num(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


class _Units:
    r"""Conversion from the normalised problem back to the user's units.

    The audit runs on the tasks divided by :math:`c=2^e` (``e`` even, so the division
    and :math:`\sqrt c=2^{e/2}` are exact in floating point).  :math:`G` is homogeneous
    of degree 2 in :math:`(A^\star, A, UU^\top)` (THEORY.md section 5): with
    :math:`U\to c^{1/2}U` the loss scales by :math:`c^2`, the gradient by
    :math:`c^{3/2}`, eigenvalues of :math:`S` (and :math:`A`) by :math:`c`; critical
    points, their kinds and every dimensionless ratio are unchanged.
    """

    def __init__(self, e: int):
        self.e = int(e)

    def _ldexp(self, x, p):
        if x is None:
            return None
        x = float(x)
        if not math.isfinite(x) or p == 0:
            return x
        try:
            return math.ldexp(x, p)
        except OverflowError:
            return math.copysign(float("inf"), x)

    def loss(self, x):
        return self._ldexp(x, 2 * self.e)

    def reason(self, text) -> str:
        """A classification sentence (its numbers are those of the normalised tasks)."""
        text = _one_line(text)
        return text if self.e == 0 else f"[numbers for the tasks divided by 2^{self.e}] {text}"

    def grad(self, x):
        return self._ldexp(x, 3 * self.e // 2)

    def lin(self, x):  # A, tasks, eigenvalues of S
        return self._ldexp(x, self.e)

    def point(self, U):
        return np.ldexp(np.asarray(U, dtype=float), self.e // 2)

    def matrix(self, A):
        return np.ldexp(np.asarray(A, dtype=float), self.e)

    def fmt(self, x, spec: str = ".3e", power: int = 4) -> str:
        """``x * 2**(power * e / 2)`` (power 4: a loss, 2: a matrix or eigenvalue) in
        scientific notation, also outside the float64 range (computed through log10)."""
        if x is None:
            return ""
        x = float(x)
        p = power * self.e // 2
        if not math.isfinite(x) or x == 0.0 or p == 0:
            return format(x, spec)
        y = self._ldexp(x, p)
        if y != 0.0 and math.isfinite(y) and abs(y) >= 1e-300:
            return format(y, spec)
        lg = math.log10(abs(x)) + p * math.log10(2.0)
        ex = math.floor(lg)
        mant = 10 ** (lg - ex)
        digits = int(spec[1:-1]) if spec.startswith(".") and spec.endswith("e") else 3
        if round(mant, digits) >= 10.0:  # 9.9996 at 3 digits is 1.000 of the next power, not 10.000
            mant, ex = mant / 10.0, ex + 1
        return f"{math.copysign(mant, x):.{digits}f}e{ex:+03d}"


def _one_line(text) -> str:
    """A stop reason or message collapsed to one line."""
    return " ".join(str(text).split())
