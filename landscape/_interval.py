r"""Rigorous enclosures used by the certificates (THEORY.md section 8).

Two tools live here.

* :class:`IntervalArray`: a vectorised interval type over numpy arrays with outward
  rounding.  Every elementary operation (``+``, ``-``, ``*``, ``/``, ``sqrt``) is
  computed in IEEE-754 double precision with round-to-nearest and the result is then
  moved outward by at least one unit in the last place (:func:`_down`, :func:`_up`).
  Since a correctly rounded operation is off by at most half a unit in the last
  place, the widened interval contains the exact result.  numpy evaluates these ufuncs elementwise
  with correctly rounded IEEE operations (no fused multiply-add contraction), which is
  the only assumption.  This is the workhorse of the epsilon-net certificate, where the
  reduced loss must be enclosed at millions of points.
* Helpers around python-flint's ``arb`` (midpoint-radius balls with rigorous error
  propagation, arbitrary precision): a precision context manager, conversion of
  ``arb`` balls to outward-rounded float pairs, and the reduced loss, its gradient and
  its Hessian enclosed in ``arb``.  These serve the Taylor certificate, which needs
  only a handful of enclosures but wants them tight.

Floats are exact dyadic rationals, so a point stored as float64 is an exact real
point; all enclosures below are enclosures of exact quantities at that point.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

__all__ = [
    "IntervalArray",
    "arb_precision",
    "arb_pair",
    "arb_from_array",
]

#: Relative widening: for a correctly rounded result ``f``, ``ulp(f) <= |f| 2^-52``;
#: widening by ``|f| 2^-51`` (twice that) leaves slack for the rounding of the widening
#: itself, so the widened endpoint is at or beyond ``nextafter(f, -+inf)``.
_WIDEN_REL = 2.0**-51
#: Absolute widening, a few subnormal spacings (2^-1074), for results near 0.
_WIDEN_ABS = 2.0**-1072


def _down(x):
    """A float <= the exact value whose round-to-nearest result is ``x``.

    ``x - (|x| 2^-51 + 2^-1072)`` lies at or below ``x - ulp(x)``; rounding is
    monotone, so the computed value is <= ``nextafter(x, -inf)``, which is <= the
    exact value because that is within half a spacing of ``x``.  (Cheaper than
    :func:`numpy.nextafter`; widens by two units in the last place instead of one.)
    """
    return x - (np.abs(x) * _WIDEN_REL + _WIDEN_ABS)


def _up(x):
    """Mirror image of :func:`_down`."""
    return x + (np.abs(x) * _WIDEN_REL + _WIDEN_ABS)


class IntervalArray:
    """Arrays of closed intervals ``[lo, hi]`` with outward-rounded arithmetic.

    Parameters
    ----------
    lo, hi : array_like
        Lower and upper endpoints (broadcast to a common shape).  ``hi`` defaults to
        ``lo`` (a degenerate, exact interval).

    Notes
    -----
    Only the operations the certificates need are provided.  Multiplication takes
    the min and max of the four endpoint products, each rounded outward, so it is
    valid for any signs.  Division requires a denominator interval that excludes 0.
    """

    __slots__ = ("lo", "hi")
    __array_priority__ = 1000  # make ndarray <op> IntervalArray defer to us

    def __init__(self, lo, hi=None):
        lo = np.asarray(lo, dtype=np.float64)
        hi = lo if hi is None else np.asarray(hi, dtype=np.float64)
        self.lo, self.hi = np.broadcast_arrays(lo, hi)

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _coerce(x) -> "IntervalArray":
        return x if isinstance(x, IntervalArray) else IntervalArray(x)

    @property
    def shape(self):
        return self.lo.shape

    def __getitem__(self, item) -> "IntervalArray":
        return IntervalArray(self.lo[item], self.hi[item])

    def __repr__(self) -> str:
        return f"IntervalArray(lo={self.lo!r}, hi={self.hi!r})"

    def contains(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return (self.lo <= x) & (x <= self.hi)

    # ---------------------------------------------------------------- arithmetic
    def __add__(self, other):
        o = self._coerce(other)
        return IntervalArray(_down(self.lo + o.lo), _up(self.hi + o.hi))

    __radd__ = __add__

    def __neg__(self):
        return IntervalArray(-self.hi, -self.lo)

    def __sub__(self, other):
        o = self._coerce(other)
        return IntervalArray(_down(self.lo - o.hi), _up(self.hi - o.lo))

    def __rsub__(self, other):
        return self._coerce(other) - self

    def __mul__(self, other):
        if isinstance(other, (float, int)) and not isinstance(other, bool):
            c = float(other)  # exact scalar: two products suffice
            lo, hi = (self.lo * c, self.hi * c) if c >= 0 else (self.hi * c, self.lo * c)
            return IntervalArray(_down(lo), _up(hi))
        o = self._coerce(other)
        p = (self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi)
        lo = np.minimum(np.minimum(p[0], p[1]), np.minimum(p[2], p[3]))
        hi = np.maximum(np.maximum(p[0], p[1]), np.maximum(p[2], p[3]))
        return IntervalArray(_down(lo), _up(hi))

    __rmul__ = __mul__

    def __truediv__(self, other):
        o = self._coerce(other)
        if np.any((o.lo <= 0) & (o.hi >= 0)):
            raise ZeroDivisionError("interval division by an interval containing 0")
        p = (self.lo / o.lo, self.lo / o.hi, self.hi / o.lo, self.hi / o.hi)
        lo = np.minimum(np.minimum(p[0], p[1]), np.minimum(p[2], p[3]))
        hi = np.maximum(np.maximum(p[0], p[1]), np.maximum(p[2], p[3]))
        return IntervalArray(_down(lo), _up(hi))

    def square(self) -> "IntervalArray":
        """Tight enclosure of ``x**2`` (non-negative even when the interval straddles 0)."""
        a, b = np.abs(self.lo), np.abs(self.hi)
        straddles = (self.lo <= 0) & (self.hi >= 0)
        lo = np.where(straddles, 0.0, _down(np.minimum(a, b) ** 2))
        hi = _up(np.maximum(a, b) ** 2)
        return IntervalArray(np.maximum(lo, 0.0), hi)

    def sqrt(self) -> "IntervalArray":
        """Enclosure of the square root (endpoints clipped at 0 first)."""
        lo = np.maximum(_down(np.sqrt(np.maximum(self.lo, 0.0))), 0.0)
        return IntervalArray(lo, _up(np.sqrt(np.maximum(self.hi, 0.0))))

    def sum(self, axis) -> "IntervalArray":
        """Sum along one axis, one outward-rounded addition at a time."""
        lo = np.moveaxis(self.lo, axis, 0)
        hi = np.moveaxis(self.hi, axis, 0)
        acc = IntervalArray(lo[0], hi[0])
        for i in range(1, lo.shape[0]):
            acc = acc + IntervalArray(lo[i], hi[i])
        return acc


# --------------------------------------------------------------------------------------
# python-flint arb helpers
# --------------------------------------------------------------------------------------
@contextlib.contextmanager
def arb_precision(bits: int):
    """Temporarily set python-flint's working precision (restored on exit)."""
    import flint

    old = flint.ctx.prec
    flint.ctx.prec = int(bits)
    try:
        yield
    finally:
        flint.ctx.prec = old


def _float_down(x) -> float:
    """Largest float that is <= the exact real ``x`` (an exact ``arb`` point)."""
    from flint import arb

    f = float(x)
    if math.isinf(f):
        return f
    return f if arb(f) <= x else float(np.nextafter(f, -np.inf))


def _float_up(x) -> float:
    from flint import arb

    f = float(x)
    if math.isinf(f):
        return f
    return f if arb(f) >= x else float(np.nextafter(f, np.inf))


def arb_pair(x) -> tuple[float, float]:
    """Outward-rounded float endpoints ``(lo, hi)`` of an ``arb`` ball."""
    if not x.is_finite():
        return (-math.inf, math.inf)
    return (_float_down(x.lower()), _float_up(x.upper()))


def arb_from_array(X: np.ndarray):
    """Exact ``arb_mat`` copy of a 2-D float array (floats convert exactly)."""
    from flint import arb_mat

    X = np.asarray(X, dtype=np.float64)
    return arb_mat([[float(v) for v in row] for row in X])
