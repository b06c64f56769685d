"""The enclosure of G(U0) in the float Taylor certificate, against exact truth (issue 16, item 8).

``_loss_bounds`` encloses G = 1/2 sum_t ||R_t||_F^2 from the float residuals R^ and their
entrywise error bounds e: the lower end sums (|R^| - e)_+^2 by one float dot product and
divides by the dot product's rounding factor (1 + gamma_{M+1}) and by (1 + u)^2 for the
rounding of |R^| - e; the upper end likewise.  Two oracles, both with G computed in
rationals from the float inputs:

* tightness: on generic problems the enclosure is a few hundred units of roundoff wide
  relative to G (its analysis: 2 theta c + gamma_{M+1} + 2u on each side, c the ratio of
  the absolute expression to |R|), so a bound weakened by a constant factor is exposed;
* adversarial dot product: a stand-in for ``flat @ flat`` returns the farthest value the
  a priori bound |fl - exact| <= gamma_M sum x_i^2 (Higham, eq. (3.5)) allows, upwards
  for the lower end and downwards for the upper end.  The enclosure must still hold; with
  the dot product's rounding factor dropped it does not, on an instance whose residuals
  are exact floats (so e is the only slack) and whose M = T d^2 is large against T + 4.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from landscape.certificates import taylor_fp as _fp

U_ROUND = Fraction(1, 2**53)


def _gamma(m: int) -> Fraction:
    return m * U_ROUND / (1 - m * U_ROUND)


def _exact_G(tasks: np.ndarray, u: np.ndarray) -> Fraction:
    """1/2 sum_t ||mean_s D_s - D_t||_F^2, D_t = A_t - u_t u_t^T, in rationals."""
    T, d = u.shape
    D = [[[Fraction(float(tasks[t, i, j])) - Fraction(float(u[t, i])) * Fraction(float(u[t, j]))
           for j in range(d)] for i in range(d)] for t in range(T)]
    mean = [[sum(D[t][i][j] for t in range(T)) / T for j in range(d)] for i in range(d)]
    return sum((mean[i][j] - D[t][i][j]) ** 2 for t in range(T) for i in range(d) for j in range(d)) / 2


def _generic(seed: int, T: int, d: int, common: float):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((d, d))
    tasks = common * (base + base.T) + rng.standard_normal((T, d, d))
    return tasks, rng.standard_normal((T, d))


@pytest.mark.parametrize("seed,T,d,common", [(0, 2, 3, 0.0), (1, 3, 4, 1.0), (2, 5, 2, 10.0), (3, 4, 3, 0.0)])
def test_loss_enclosure_contains_G_and_is_a_few_hundred_ulps_wide(seed, T, d, common):
    tasks, u = _generic(seed, T, d, common)
    G = _exact_G(tasks, u)
    assert G > 0
    lo, hi = _fp._loss_bounds(_fp._residuals(tasks, u))
    assert Fraction(lo) <= G <= Fraction(hi)
    # relative width: e is theta = gamma_{T+4}-ish times the absolute expression (c <= 50
    # here, including the common component), plus gamma_{M+1} and 2u per end
    assert Fraction(hi) - Fraction(lo) <= 1e-11 * G


class _FarDot:
    """``x @ x`` answered at the edge of the a priori bound of an M-term dot product:
    the first call (the lower end) gets the largest float <= (1 + gamma_M) sum x_i^2, the
    second (the upper end) the smallest float >= (1 - gamma_M) sum x_i^2."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x: np.ndarray) -> float:
        exact = sum(Fraction(float(v)) ** 2 for v in x)
        self.calls += 1
        g = _gamma(x.size)
        return _fp._down(exact * (1 + g)) if self.calls == 1 else _fp._up(exact * (1 - g))


class _Buffer(np.ndarray):
    dot = None

    def __matmul__(self, other):
        assert other is self or np.shares_memory(self, other)
        return type(self).dot(np.asarray(self))


class _NumpyWithFarDot:
    """numpy, except that ``empty`` hands out buffers whose ``@`` is :class:`_FarDot`."""

    def __init__(self, dot: _FarDot):
        self._dot = dot

    def empty(self, shape, *a, **k):
        buf = np.empty(shape, *a, **k).view(_Buffer)
        _Buffer.dot = self._dot
        return buf

    def __getattr__(self, name):
        return getattr(np, name)


def _exact_float_instance(T: int, d: int, seed: int):
    """T a power of two; task 0 = even integers, u_0 dyadic of few bits, the other tasks zero:
    every residual (a mean over tasks, a product, a difference) is an exact float, so
    R^ = R and the lower end's only slack is e (relative theta on the tasks t > 0)."""
    rng = np.random.default_rng(seed)
    tasks = np.zeros((T, d, d))
    tasks[0] = 2.0 * rng.integers(-8, 9, size=(d, d))
    u = np.zeros((T, d))
    u[0] = rng.integers(-4, 5, size=d) / 4.0
    return tasks, u


@pytest.mark.parametrize("T,d,seed", [(2, 8, 0), (4, 5, 1)])
def test_loss_enclosure_holds_for_a_dot_product_at_the_edge_of_its_bound(monkeypatch, T, d, seed):
    tasks, u = _exact_float_instance(T, d, seed)
    res = _fp._residuals(tasks, u)
    R = np.concatenate([res.rows(t, 0, d).reshape(-1) for t in range(T)])
    G = _exact_G(tasks, u)
    assert sum(Fraction(float(x)) ** 2 for x in R) / 2 == G  # the float residuals are exact
    dot = _FarDot()
    monkeypatch.setattr(_fp, "np", _NumpyWithFarDot(dot))
    lo, hi = _fp._loss_bounds(res)
    assert dot.calls == 2
    assert Fraction(lo) <= G <= Fraction(hi)


@pytest.mark.parametrize("T,d,seed", [(2, 8, 0), (4, 5, 1)])
def test_the_far_dot_product_has_power_against_a_dropped_rounding_factor(monkeypatch, T, d, seed):
    """Negative control of the oracle above: with gamma_{M+1} of the lower end replaced by
    0 (the mutant '(1 + g)' -> '(1 ** g)'), the same dot product pushes the lower end above
    the exact G.  Patched through the module's gamma, which only this factor reads for
    M + 1 in _loss_bounds, and restored for everything else."""
    tasks, u = _exact_float_instance(T, d, seed)
    res = _fp._residuals(tasks, u)
    G = _exact_G(tasks, u)
    M = T * d * d
    orig = _fp._gamma
    monkeypatch.setattr(_fp, "_gamma", lambda m: Fraction(0) if m == M + 1 else orig(m))
    monkeypatch.setattr(_fp, "np", _NumpyWithFarDot(_FarDot()))
    lo, _ = _fp._loss_bounds(res)
    assert Fraction(lo) > G
    assert math.isfinite(lo)


def test_above_n_2000_the_float_bounds_need_a_given_eigenvalue_estimate():
    """The dense eigenvalue estimate is computed up to n = T d = 2000 only: at n = 2001 without
    ``lam_estimate`` the bounds are refused, saying so (no 2001 x 2001 eigensolve)."""
    rng = np.random.default_rng(0)
    tasks, U = np.round(rng.standard_normal((3, 667, 667)), 2), rng.standard_normal((3, 667, 1))
    with pytest.raises(ValueError, match="lam_estimate is needed above n = 2000"):
        _fp.fp_taylor_bounds(tasks, U)


def test_the_float_certificate_reports_the_seconds_it_took(monkeypatch):
    """diagnostics["seconds"] is the clock's reading at the end less its reading at the start
    (a clock starting at 3.25 s and advancing 5.5 s per reading)."""
    import itertools
    from types import SimpleNamespace

    from landscape._instances import f2_spurious_instance

    readings = []
    clock = itertools.count(3.25, 5.5)

    def perf_counter():
        readings.append(next(clock))
        return readings[-1]

    inst, U0 = f2_spurious_instance()
    monkeypatch.setattr(_fp, "time", SimpleNamespace(perf_counter=perf_counter))
    cert = _fp.fp_taylor_certificate(inst.problem, U0)
    secs = cert.diagnostics["seconds"]
    assert secs > 0 and secs + readings[0] in readings
