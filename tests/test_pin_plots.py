"""landscape._audit.plots: the orbit figure's curves as mathematics -- G is constant along the
O(k) orbit of one factor, the O(k,k) boost (T = 2) is drawn over t in [-1, 1] mapped onto
[0, 2 pi] and passes through G(U) at t = 0."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from landscape import LoraMLProblem
from landscape._audit.plots import _orbit_curves


def test_orbit_curves_for_two_tasks():
    rng = np.random.default_rng(4)
    T, d, k = 2, 4, 2
    prob = LoraMLProblem(rng.standard_normal((T, d, d)), k)
    U = rng.standard_normal((T, d, k))
    G0 = prob.reduced_loss(U)
    curves = {label.split(":")[0].split(" (")[0]: (x, y) for x, y, _, label in
              _orbit_curves(prob, SimpleNamespace(point=U), np.random.default_rng(0))}
    assert set(curves) == {"O(k) orbit", "O(k,k) boost", "generic path"}
    x, y = curves["O(k) orbit"]
    assert np.allclose(x, np.linspace(0, 2 * np.pi, 121)) and np.allclose(y, G0, rtol=1e-10, atol=0)
    x, y = curves["O(k,k) boost"]
    assert np.allclose(x, np.pi * (np.linspace(-1.0, 1.0, 121) + 1.0), rtol=0, atol=1e-12)
    assert x[0] == 0.0 and abs(x[-1] - 2 * np.pi) < 1e-12 and np.all(np.diff(x) > 0)
    assert abs(y[60] - G0) <= 1e-10 * max(1.0, abs(G0))  # t = 0: the point itself
    x, y = curves["generic path"]
    assert abs(y[0] - G0) <= 1e-10 * max(1.0, abs(G0))
