"""The epsilon-net certificate's own choices, against properties that do not depend on them
(issue 16, item 8: survivors of the cosmic-ray sample of ``landscape/certificates/net.py``).

* Units: rescaling the tasks by c and the point by sqrt(c) rescales G by c^2 and every
  length by sqrt(c); the suggested net must scale with it, so the ratio r / eps, and with
  it the net's size (r / eps)^(n-1), is the same in every unit (sphere and ellipsoid).
* Stored count: the verifier re-counts the net; a certificate claiming one point more
  than it evaluated is refused.
* Witness: with no comparison point given, the certificate looks for one; at the F.2
  point (spurious: the global value is 0) it finds a point lower than every point of the
  ball, so (N2) holds, decided in ``arb`` from the stored enclosures.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from landscape import LoraMLProblem
from landscape._instances import f2_spurious_instance
from landscape.certificates import epsilon_net_certificate, net_size_estimate
from landscape.certificates import net as _net


@pytest.fixture(scope="module")
def f2_point():
    inst, U0 = f2_spurious_instance()
    return inst.problem, U0


@pytest.mark.parametrize("shape", ["sphere", "ellipsoid"])
def test_suggested_net_is_the_same_in_every_unit(f2_point, shape):
    problem, U0 = f2_point
    ratios, sizes = [], []
    for c in (1e-2, 1.0, 1e2):
        scaled = LoraMLProblem(problem.tasks * c, problem.k)
        U = U0 * math.sqrt(c)
        A = _net._net_shape_matrix(scaled, U, shape)
        r, eps = _net._suggest_net_parameters(scaled, U, A)
        assert r > 0 and eps > 0
        ratios.append(r / eps)
        sizes.append(net_size_estimate(scaled.dim_U, r, eps).points_per_axis)
    assert ratios == pytest.approx([ratios[1]] * 3, rel=1e-6, abs=0)
    assert len(set(sizes)) == 1


def test_net_finds_its_own_witness_at_a_spurious_point(f2_point):
    """r = 1e-3, eps = 3e-3 (two points per axis, 4608 in all): too coarse for (N1), but
    (N2) only needs G(U0) - Lip r above the witness's G, which the F.2 point satisfies."""
    problem, U0 = f2_point
    cert = epsilon_net_certificate(problem, U0, r=1e-3, eps=3e-3, rng=np.random.default_rng(0))
    assert cert.parameters["points_per_axis"] == 2
    assert cert.witness is not None and "G(witness)" in cert.enclosures
    G0_lo = cert.enclosures["G(U0)"][0]
    assert cert.enclosures["G(witness)"][1] < 1e-6 * G0_lo  # a global minimum (G* = 0)
    assert cert.margins["N2"] > 0
    assert cert.verify()
    more = dataclasses.replace(cert, parameters={**cert.parameters, "net_points": cert.parameters["net_points"] + 1})
    assert not more.verify()


@pytest.mark.parametrize("G, R", [(0.125, 0.01), (2.0, 0.1), (0.0, 0.01)])
def test_lipschitz_bound_a_carries_sqrt_2g(G, R):
    """Bound (a) is ||A|| 2 (m + rho)(sqrt(2 G(U0)) + 2 m rho + rho^2), rho = ||A|| R: the
    residual's size sqrt(2G) enters also when 2G is below 1 (A = I here, ||A|| = 1)."""
    import math

    from flint import arb

    from landscape._interval import arb_from_array
    from landscape.certificates.net import _net_lipschitz

    S = np.diag([1.0, -2.0, 0.5])
    st = {"m_upper": arb(1.0), "gnorm": arb(0.1), "G": arb(G)}
    bound, details = _net_lipschitz(st, arb_from_array(S), S, None, R)
    want = 2 * (1.0 + R) * (math.sqrt(2 * G) + 2 * R + R * R)
    got = float(details["lipschitz_bound_a_upper"].mid())
    assert want <= got <= want * (1 + 1e-12) + 1e-300
    assert details["shape_norm_upper"] == 1


@pytest.mark.parametrize("x", [1.0, 3.7, 2.0**-30])
def test_net_claims_are_inflated_by_a_billionth(x):
    """A stored Lipschitz-type claim is the rigorous bound times 1 + 1e-9, rounded up once
    (an outward widening of a few ulps): y / x - 1 is 1e-9 to 1e-14."""
    from landscape.certificates.net import _inflate

    assert 0.0 <= _inflate(x) / x - (1.0 + 1e-9) <= 1e-14


@pytest.mark.parametrize("n, p", [(2, 5), (3, 4), (4, 3)])
def test_net_points_are_the_grid_points_of_the_surface_of_the_cube_minus_one_to_one(n, p):
    """Each face x_axis = +-1 carries the grid linspace(-1, 1, p) on its free axes: every
    point has sup-norm exactly 1, each coordinate is a grid value, and every grid point of
    the surface appears."""
    import itertools

    from landscape.certificates.net import _net_faces

    pts = np.concatenate(list(_net_faces(n, p, 7)))
    grid = np.linspace(-1.0, 1.0, p)
    assert np.all(np.max(np.abs(pts), axis=1) == 1.0)
    assert np.all(np.isin(pts, grid))
    surface = {q for q in itertools.product(grid, repeat=n) if max(abs(v) for v in q) == 1.0}
    assert {tuple(x) for x in pts} == surface


def test_the_net_shape_is_compared_by_value():
    """A shape name built at run time (read from a command line or a file, not the interned
    literal) is accepted; an unknown one is refused."""
    from landscape.certificates.net import _net_shape_matrix

    inst, U0 = f2_spurious_instance()
    M = _net_shape_matrix(inst.problem, U0, "".join(["ellip", "soid"]))
    assert M is not None and M.shape == (U0.size, U0.size)
    assert _net_shape_matrix(inst.problem, U0, "".join(["sph", "ere"])) is None
    with pytest.raises(ValueError, match="shape must be 'sphere' or 'ellipsoid'"):
        _net_shape_matrix(inst.problem, U0, "cube")
