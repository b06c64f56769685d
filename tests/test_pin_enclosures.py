"""landscape.certificates.enclosures pinned: the orbit penalty c Y Y^T that the ball-arithmetic
Taylor certificate adds to the Schur complement is, block by block over the tasks, exactly the
float penalty of the tangent generators for every k >= 2 (k = 3 included, where the orbit has
three directions per task), and nothing for k = 1 or c = 0.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flint")

from landscape.certificates.enclosures import _arb_penalty, _arb_to_mid, _tangent_generators  # noqa: E402


@pytest.mark.parametrize("T, d, k", [(2, 4, 2), (2, 4, 3), (3, 3, 3), (1, 5, 4)])
def test_the_arb_penalty_is_c_Y_Y_transpose_per_task(T, d, k):
    U = np.random.default_rng(k).integers(-3, 4, (T, d, k)).astype(float)  # exact products
    c = 0.5
    P = _arb_to_mid(_arb_penalty(U, c))
    want = np.zeros((T * d * k,) * 2)
    for t, Y in enumerate(_tangent_generators(U)):
        assert Y.shape == (d * k, k * (k - 1) // 2)
        want[t * d * k:(t + 1) * d * k, t * d * k:(t + 1) * d * k] = c * Y @ Y.T
    np.testing.assert_array_equal(P, want)
    assert np.any(P)


@pytest.mark.parametrize("k, c", [(1, 0.5), (3, 0.0)])
def test_no_penalty_without_an_orbit_or_a_weight(k, c):
    U = np.ones((2, 3, k))
    assert not np.any(_arb_to_mid(_arb_penalty(U, c)))


def test_tangent_generators_are_the_columns_of_U_swapped_with_a_sign():
    U = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    Y = _tangent_generators(U)
    # one pair (0, 1): column 0 of U_t goes to block 1, minus column 1 to block 0 (column-major vec of U_t E_01 - U_t E_10)
    for t in range(2):
        np.testing.assert_array_equal(Y[t][:, 0], np.concatenate([-U[t, :, 1], U[t, :, 0]]))


def test_orbit_penalty_lifts_the_smallest_nonzero_generator_direction_twice_above_the_spectrum():
    """c = PENALTY_FACTOR max(||S||_2, 1) / sigma, sigma the smallest eigenvalue of Y^T Y above
    GENERATOR_RTOL times its largest (a rounding-level eigenvalue of a dependent Y is left out)."""
    from landscape.certificates import enclosures as E

    assert E.PENALTY_FACTOR == 2.0 and E.GENERATOR_RTOL == 1e-10
    Y1 = np.array([[2.0, 0.0], [0.0, 1e-6], [0.0, 0.0]])  # Y^T Y: eigenvalues 1e-12 (below 1e-10 x 4) and 4
    Y2 = np.array([[3.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # eigenvalues 4 and 9
    S = np.diag([-5.0, 0.5, 3.0])
    assert E._choose_penalty(S, [Y1, Y2]) == 2.0 * 5.0 / 4.0
    assert E._choose_penalty(np.diag([0.25, -0.5]), [Y2]) == 2.0 * 1.0 / 4.0  # spectrum below 1: max(., 1)
    assert E._choose_penalty(S, []) == 0.0 and E._choose_penalty(S, [np.zeros((3, 0))]) == 0.0


def test_lambda_min_bound_when_every_shifted_cholesky_fails(monkeypatch):
    """Every shift fails: the bound is -inf (nothing certified) after CHOL_RETRIES = 6 shifts,
    each 16 times the last, from max(1e-6 |lambda_1|, 64 n eps max|lambda|) below lambda_1."""
    import math

    from landscape.certificates import enclosures as E

    tried = []

    def fails(H, H_mid, mu):
        tried.append(mu)
        return None

    monkeypatch.setattr(E, "_cholesky_lower_bound", fails)
    H_mid = np.diag([-2.0, 1.0, 3.0])
    bound, mu, res = E._lambda_min_lower(None, H_mid)
    delta = max(1e-6 * 2.0, 64.0 * 3 * np.finfo(float).eps * 3.0)
    assert tried == [-2.0 - delta * 16.0**i for i in range(6)]
    assert mu == -2.0 - delta * 16.0**6 and res == math.inf
    assert bound.upper() == -math.inf and bound.lower() == -math.inf


@pytest.mark.parametrize("lam1", [0.0, 1e-12])
def test_the_first_cholesky_shift_is_64_n_eps_scale_where_the_relative_part_is_smaller(monkeypatch, lam1):
    """lambda_1 = 0 (or tiny): the relative part 1e-6 |lambda_1| vanishes and the absolute part,
    CHOL_SHIFT_ABS = 64 times n eps max|lambda|, sets the first shift exactly."""
    from landscape.certificates import enclosures as E

    tried = []
    monkeypatch.setattr(E, "_cholesky_lower_bound", lambda H, H_mid, mu: tried.append(mu))
    H_mid = np.diag([lam1, 1.0, 3.0])
    E._lambda_min_lower(None, H_mid)
    assert E.CHOL_SHIFT_ABS == 64.0
    assert tried[0] == lam1 - 64.0 * 3 * np.finfo(float).eps * 3.0


@pytest.mark.parametrize("lo,hi", [(4.0, 9.0), (0.25, 0.25), (0.0, 2.0), (-1e-30, 1.0), (-2.0, -1.0)])
def test_the_square_root_enclosure_is_tight_at_both_ends(lo, hi):
    """The enclosure of sqrt(y) for y in [lo, hi] (y >= 0 known): [sqrt(lo), sqrt(hi)] outward
    rounded (to arb's radius precision), with the lower end 0 where lo <= 0 and the whole
    enclosure 0 where hi <= 0."""
    from flint import arb

    from landscape.certificates.enclosures import _sqrt_nonneg

    r = _sqrt_nonneg(arb((lo + hi) / 2, (hi - lo) / 2))
    want_lo, want_hi = (np.sqrt(max(lo, 0.0)), np.sqrt(max(hi, 0.0)))
    slack = 1e-8 * (1 + want_hi)  # arb keeps radii to 30 bits: the ball is outward by about 1e-9
    assert want_lo - slack <= float(r.lower()) <= want_lo
    assert want_hi <= float(r.upper()) <= want_hi + slack
