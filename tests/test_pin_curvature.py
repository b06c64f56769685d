"""landscape._curvature pinned: inertia's three counts at exactly the zero tolerance (an
eigenvalue of modulus tol is zero, never also negative: the counts always add up to n), the
smallest eigenpairs of known spectra on both the dense and the Lanczos path, and the quotient
Hessian (the Schur complement itself at k = 1, where there is no orbit; symmetric with the
orbit's zero modes removed at k = 2).
"""
from __future__ import annotations

import numpy as np
import pytest

from landscape._curvature import inertia, quotient_hessian, smallest_eigenpairs, symmetry_tangent_basis
from landscape._objective import LoraMLProblem


@pytest.mark.parametrize("lam, counts", [([-1.0, 0.0, 1.0], (0, 0, 3)), ([-1.0000001, 0.5, 1.0000001], (1, 1, 1)),
                                         ([-2.0, -1.0, 1.0, 2.0], (1, 1, 2))])
def test_inertia_counts_the_tolerance_itself_as_zero(lam, counts):
    got = inertia(None, eigenvalues=np.array(lam), rtol=1.0, scale=1.0)
    assert got == counts and sum(got) == len(lam)


def test_inertia_default_scale_is_the_spectral_radius():
    lam = np.array([-4.0, -1e-12, 3e-12, 2.0])
    assert inertia(None, eigenvalues=lam, rtol=1e-12) == (1, 1, 2)  # tol = 4e-12
    assert inertia(np.diag(lam), rtol=1e-12) == (1, 1, 2)


@pytest.mark.parametrize("dense_max_dim", [1500, 0])  # the dense path, then Lanczos on the same matrix
def test_smallest_eigenpairs_of_a_known_spectrum(dense_max_dim):
    n = 200  # 20 n iterations allowed; 200 shares no bit with 20 (a bitwise slip would allow none)
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.concatenate([[-3.0, -1.0, 0.5], np.linspace(2.0, 10.0, n - 3)])
    M = (Q * lam) @ Q.T
    M = M + 0.25 * (M - M.T)  # an antisymmetric part: only the symmetric part counts
    got, vecs, method = smallest_eigenpairs(M, count=3, dense_max_dim=dense_max_dim)
    assert method == ("dense" if dense_max_dim else "lanczos")
    np.testing.assert_allclose(got, [-3.0, -1.0, 0.5], atol=1e-8)
    S = 0.5 * (M + M.T)
    np.testing.assert_allclose(S @ vecs, vecs * got, atol=1e-6)
    # a matrix-free operator gives the same numbers
    got2, _, _ = smallest_eigenpairs(lambda x: M @ x, n, count=3, dense_max_dim=dense_max_dim)
    np.testing.assert_allclose(got2, got, atol=1e-8)


def _problem(k, seed=0):
    rng = np.random.default_rng(seed)
    tasks = rng.standard_normal((3, 4, 4))
    return LoraMLProblem(tasks + np.swapaxes(tasks, 1, 2), k), rng


def test_quotient_hessian_is_the_schur_complement_at_k1():
    prob, rng = _problem(1)
    U = rng.standard_normal((3, 4, 1))
    Hq = quotient_hessian(prob, U)
    S = prob.schur_complement(U)
    Q = np.linalg.eigvalsh(Hq)
    np.testing.assert_allclose(Q, np.linalg.eigvalsh(0.5 * (S + S.T)), atol=1e-10)
    assert np.array_equal(Hq, Hq.T)


def test_quotient_hessian_removes_exactly_the_orbit_at_k2():
    prob, rng = _problem(2)
    U = rng.standard_normal((3, 4, 2))
    V = symmetry_tangent_basis(U)
    Hq = quotient_hessian(prob, U)
    assert Hq.shape == (prob.dim_U - V.shape[1],) * 2 and np.array_equal(Hq, Hq.T)
    # the Schur complement's quadratic form on the complement of the orbit: same spectrum as N^T S N
    S = prob.schur_complement(U)
    Qb, _ = np.linalg.qr(V, mode="complete")
    N = Qb[:, V.shape[1]:]
    np.testing.assert_allclose(np.linalg.eigvalsh(Hq), np.linalg.eigvalsh(N.T @ (0.5 * (S + S.T)) @ N), atol=1e-9)


def test_lanczos_spectrum_without_a_generator_is_the_seed_zero_one():
    """rng=None is np.random.default_rng(0): the same Lanczos start, the same numbers, and
    another generator is honoured (its start differs)."""
    import landscape as ls

    inst = ls.random_instance(np.random.default_rng(8), 5, 3, 1)
    U = inst.U_star + 0.3 * np.random.default_rng(9).standard_normal(inst.U_star.shape)
    plain = ls.reduced_spectrum(inst.problem, U, dense_max_dim=0, count=2, rng=None)
    zero = ls.reduced_spectrum(inst.problem, U, dense_max_dim=0, count=2, rng=np.random.default_rng(0))
    assert plain.method == zero.method and plain.method != "dense"
    np.testing.assert_array_equal(plain.eigenvalues, zero.eigenvalues)
    np.testing.assert_array_equal(plain.direction, zero.direction)


@pytest.mark.parametrize("side,m", [(1 + 1e-3, 3), (1 - 1e-3, 2)])
def test_tangent_generators_are_dropped_below_1e_10_of_the_largest(side, m):
    """U = [u1, e u2, e u3] (orthonormal u): the three generators are orthogonal with norms
    sqrt(1 + e^2), sqrt(1 + e^2) and sqrt(2) e; at sqrt(2) e = (1 +- 1e-3) 1e-10 sqrt(1 + e^2)
    the third is kept / dropped."""
    e = side * 1e-10 / np.sqrt(2.0)
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 3)))[0]
    U = (Q * np.array([1.0, e, e]))[None]
    assert symmetry_tangent_basis(U).shape == (12, m)
    # relative to the largest generator: the same at any scale of U (1e-10 of it, not absolute)
    for scale in (1e-6, 1e6):
        assert symmetry_tangent_basis(scale * U).shape == (12, m)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_lanczos_orbit_shift_stays_above_the_quotient_at_any_scale(scale):
    """Lanczos mode puts the O(k) orbit directions at c = |Rayleigh quotient| + 1, above the
    quotient's smallest eigenvalue whatever the scale: on tasks scaled to eigenvalues far
    below 1 (where c = |r| - 1 would be about -1 and pass for the smallest eigenvalue) the
    smallest is still the dense quotient's."""
    import landscape as ls

    rng = np.random.default_rng(4)
    inst = ls.random_instance(rng, 3, 4, 2)
    P = ls.LoraMLProblem(scale * inst.problem.tasks, 2)
    U = np.sqrt(scale) * (inst.U_star + 0.3 * rng.standard_normal(inst.U_star.shape))
    dense = ls.reduced_spectrum(P, U)
    lanczos = ls.reduced_spectrum(P, U, dense_max_dim=0, count=2)
    assert dense.method == "dense" and lanczos.method != "dense" and lanczos.n_symmetry > 0
    top = np.abs(dense.eigenvalues).max()
    assert top < 0.1 if scale < 1 else top > 0.1  # the small scale is small indeed
    assert abs(lanczos.lambda_min_quotient - dense.lambda_min_quotient) < 1e-7 * top


def test_the_zero_point_has_no_orbit_directions():
    """At U = 0 every generator U_t Omega vanishes: the tangent basis has no column (not a
    zero column), and the spectrum quotients out nothing, in both modes."""
    import landscape as ls

    inst = ls.random_instance(np.random.default_rng(2), 3, 4, 2)
    U = np.zeros(inst.U_star.shape)
    V = ls.symmetry_tangent_basis(U)
    assert V.shape == (U.size, 0)
    for dense_max_dim in (10**6, 0):
        assert ls.reduced_spectrum(inst.problem, U, dense_max_dim=dense_max_dim).n_symmetry == 0


@pytest.mark.parametrize("n, method", [(1500, "dense"), (1501, "lanczos")])
def test_the_dense_eigensolver_serves_up_to_1500_dimensions(n, method):
    """DENSE_EIGH_MAX_DIM = 1500 (about 3e10 flops and 18 MB, under a second): a 1500-dimensional
    operator is materialised and solved by eigh, one dimension more goes to Lanczos; both
    find the smallest eigenvalue of a diagonal operator exactly enough."""
    import landscape as ls
    from landscape._curvature import DENSE_EIGH_MAX_DIM

    assert DENSE_EIGH_MAX_DIM == 1500
    diag = np.linspace(-1.0, 2.0, n)
    lam, vec, got = ls.smallest_eigenpairs(lambda x: diag * np.ravel(x), n, count=1)
    assert got == method
    assert abs(lam[0] + 1.0) < 1e-8


@pytest.mark.parametrize("rtol,columns", [(0.6, 2), (0.6 * (1 - 1e-15), 3), (0.0, 3)])
def test_a_generator_at_exactly_rtol_times_the_largest_is_dropped(rtol, columns):
    """U = diag(0, 3, 4) (k = 3): the three O(3) generators are orthogonal with norms
    3, 4 and 5 (exact singular values). A singular value is kept only when strictly above
    rtol s_max: at rtol = 3 / 5 (0.6 x 5 == 3.0 exactly) the generator of norm 3 is dropped,
    just below it is kept. A rank-one U_t's exactly dependent generator is dropped even at
    rtol = 0."""
    U = np.zeros((1, 3, 3))
    U[0, 1, 1], U[0, 2, 2] = 3.0, 4.0
    assert 0.6 * 5.0 == 3.0
    assert symmetry_tangent_basis(U, rtol=rtol).shape == (9, columns)
    one = np.zeros((1, 3, 3))
    one[0, 0, 0] = 1.0
    assert symmetry_tangent_basis(one, rtol=0.0).shape == (9, 2)


@pytest.mark.parametrize("dense_max_dim", [10**6, 0])
def test_the_spectrum_direction_is_the_eigenvector_of_the_smallest_eigenvalue(dense_max_dim):
    """With several eigenpairs asked for (count = 3), the direction reported is the unit
    eigenvector of the smallest one, on both paths: its Rayleigh quotient under S = grad^2 G is
    lambda_min and S d = lambda_min d (another eigenvector has another eigenvalue)."""
    import landscape as ls

    rng = np.random.default_rng(12)
    inst = ls.random_instance(rng, 5, 3, 1)
    U = inst.U_star + 0.4 * rng.standard_normal(inst.U_star.shape)
    spec = ls.reduced_spectrum(inst.problem, U, dense_max_dim=dense_max_dim, count=3)
    assert (spec.method == "dense") is (dense_max_dim > 0) and np.size(spec.eigenvalues) >= 3
    lam = np.sort(np.asarray(spec.eigenvalues))
    assert lam[1] - lam[0] > 1e-3 * np.abs(lam).max()  # a simple smallest eigenvalue
    d = np.asarray(spec.direction).reshape(-1)
    S = inst.problem.schur_complement(U)
    assert np.linalg.norm(d) == pytest.approx(1.0, abs=1e-10)
    assert d @ S @ d == pytest.approx(spec.lambda_min_quotient, abs=1e-8 * np.abs(lam).max())
    assert np.linalg.norm(S @ d - spec.lambda_min_quotient * d) < 1e-6 * np.abs(lam).max()


def test_tangent_basis_spans_every_skew_rotation_at_k3():
    """At k = 3 (three generators per task, where a wrong vectorisation of a generator is no
    longer a relabelling) every direction (U_t Omega_t)_t with skew Omega_t lies in the span
    of the basis, in the flat (vec U_1, ...) column-major layout; a generic direction does not."""
    rng = np.random.default_rng(3)
    U = rng.standard_normal((2, 5, 3))
    V = symmetry_tangent_basis(U)
    assert V.shape == (2 * 5 * 3, 2 * 3)
    np.testing.assert_allclose(V.T @ V, np.eye(6), atol=1e-12)

    def flat(D):
        return np.concatenate([D[t].reshape(-1, order="F") for t in range(D.shape[0])])

    for _ in range(3):
        Om = rng.standard_normal((2, 3, 3))
        Om = Om - np.swapaxes(Om, 1, 2)
        v = flat(U @ Om)
        assert np.linalg.norm(v - V @ (V.T @ v)) < 1e-12 * np.linalg.norm(v)
    g = rng.standard_normal(30)
    assert np.linalg.norm(g - V @ (V.T @ g)) > 0.1 * np.linalg.norm(g)
