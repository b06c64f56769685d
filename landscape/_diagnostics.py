r"""Derivative verification usable on any objective (not only LoRA-ML).

The Taylor-slope test: along a direction :math:`v`,

.. math::
    e_1(t) = |f(x+tv) - f(x) - t\langle g, v\rangle| = O(t^2),\qquad
    e_2(t) = |e_1(t)\text{ with } -\tfrac{t^2}2\langle v, Hv\rangle| = O(t^3).

A wrong gradient makes :math:`e_1` decay like :math:`t` (slope 1 on a log-log plot);
a wrong Hessian makes :math:`e_2` decay like :math:`t^2`.  The slope is fitted on the
step sizes where the error is well above round-off; if it is below round-off at
every step the model is exact along :math:`v` (e.g. a quadratic) and the test passes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._random import accepts_seed

__all__ = ["TaylorCheck", "taylor_check", "finite_difference_gradient"]

#: Step sizes of the test, 1e-2 down to 1e-5.  Steps near 0.1 are not yet in the
#: asymptotic range of a quartic (the t^3 and t^4 terms can cancel and bend the
#: log-log line); below ~1e-5 the O(t^3) error of a correct Hessian is lost in
#: round-off.  Seven points keep at least three above round-off for O(1) problems.
DEFAULT_STEPS = np.logspace(-2, -5, 7)

#: Fewest points above round-off from which a slope is fitted; two points give a
#: slope but no evidence that the errors lie on a line.
MIN_FIT_POINTS = 3

#: A measured slope passes if it is at least the expected order minus this margin.
#: Wrong derivatives lose a whole order (slope 1 instead of 2, 2 instead of 3), so
#: 0.5 separates right from wrong with room for curvature in the fit.
SLOPE_MARGIN = 0.5

#: Errors below this multiple of :math:`\varepsilon\,\max(|f|,1)` are round-off.
ROUNDOFF_FACTOR = 1e3


@dataclass(frozen=True)
class TaylorCheck:
    """Outcome of :func:`taylor_check`.

    ``slope_gradient`` / ``slope_hessian`` are ``inf`` when the corresponding error
    is at round-off level at every step (exact along the direction), and
    ``slope_hessian`` is ``None`` when no Hessian-vector product was given.
    """

    slope_gradient: float
    slope_hessian: float | None
    steps: np.ndarray
    errors_gradient: np.ndarray
    errors_hessian: np.ndarray | None
    passed: bool

    def __repr__(self) -> str:
        hess = "None" if self.slope_hessian is None else f"{self.slope_hessian:.3g}"
        return (f"TaylorCheck(passed={self.passed}, slope_gradient={self.slope_gradient:.3g}, "
                f"slope_hessian={hess}, {np.size(self.steps)} steps)")


def _fit_slope(steps, errors, floor):
    mask = errors > floor
    if mask.sum() < MIN_FIT_POINTS:
        # At round-off for all but the largest steps: the model is exact along the
        # direction to working precision.  A wrong derivative leaves an error of
        # order t (gradient) or t^2 (Hessian), far above round-off at most steps.
        return float("inf")
    return float(np.polyfit(np.log(steps[mask]), np.log(errors[mask]), 1)[0])


@accepts_seed()
def taylor_check(
    f: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    *,
    hvp: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    direction: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    steps: np.ndarray = DEFAULT_STEPS,
) -> TaylorCheck:
    """Taylor-slope test of ``grad`` (and ``hvp``) against ``f`` at ``x``.

    Parameters
    ----------
    f, grad : callables on flat float arrays
    x : ndarray
        Point of the test (flat).
    hvp : callable ``(x, v) -> H v``, optional
    direction : ndarray, optional
        Direction of the test; a unit Gaussian direction from ``rng`` otherwise.
    rng : numpy.random.Generator, optional
        Required when ``direction`` is not given.
    """
    x = np.asarray(x, dtype=float)
    if direction is None:
        if rng is None:
            raise ValueError("give either a direction or a numpy Generator rng")
        direction = rng.standard_normal(x.shape)
    v = np.asarray(direction, dtype=float)
    v = v / np.linalg.norm(v)
    f0 = float(f(x))
    g0 = float(np.vdot(grad(x), v))
    h0 = float(np.vdot(v, hvp(x, v))) if hvp is not None else None
    ft = np.array([float(f(x + t * v)) for t in steps])
    floor = ROUNDOFF_FACTOR * np.finfo(float).eps * max(abs(f0), float(np.max(np.abs(ft))), 1.0)
    e1 = np.abs(ft - f0 - steps * g0)
    s1 = _fit_slope(steps, e1, floor)
    passed = s1 >= 2 - SLOPE_MARGIN
    e2 = s2 = None
    if hvp is not None:
        e2 = np.abs(ft - f0 - steps * g0 - 0.5 * steps**2 * h0)
        s2 = _fit_slope(steps, e2, floor)
        passed = passed and s2 >= 3 - SLOPE_MARGIN
    return TaylorCheck(s1, s2, np.asarray(steps), e1, e2, bool(passed))


def finite_difference_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, *, step: float = 1e-6):
    """Central finite-difference gradient (O(step^2) accurate), for small problems."""
    x = np.asarray(x, dtype=float)
    E = np.eye(x.size) * step
    return np.array([(f(x + e) - f(x - e)) / (2 * step) for e in E])
