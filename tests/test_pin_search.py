"""Derivatives and searches on tasks OUTSIDE model M1 (issue 16, item 3).

Under model M1 the residuals R_t = mean(D) - D_t are symmetric (the shared A* cancels),
so a gradient written as 2 R_t U_t instead of (R_t + R_t^T) U_t passes every test on M1
instances.  Here every task has its own non-symmetric part.  The reference derivatives
are complex-step derivatives of G written from its definition
(G = 1/2 sum_t ||D_t - mean_s D_s||_F^2, D_t = A*_t - U_t U_t^T): exact to rounding, no
step-size trade-off, and no code shared with the module.
"""
from __future__ import annotations

import numpy as np
import pytest

import landscape as ls
from landscape import _search
from landscape._factored import factored, reduced_grad, reduced_hvp_operator
from landscape._objective import unvec_factors, vec_factors

from ._pin_tools import patch_everywhere


def _G(tasks, U):
    """G from its definition; analytic in U (no conjugation), so complex steps work."""
    D = tasks - np.einsum("tik,tjk->tij", U, U)
    R = D - D.mean(axis=0)[None]
    return 0.5 * np.einsum("tij,tij->", R, R)


def _cs_grad(tasks, U, h=1e-30):
    T, d, k = U.shape
    x = vec_factors(U).astype(complex)
    g = np.empty(x.size)
    for i in range(x.size):
        xi = x.copy()
        xi[i] += 1j * h
        g[i] = _G(tasks, unvec_factors(xi, T, d, k)).imag / h
    return g


def _cs_hessian(tasks, U, grad_fn, h=1e-30):
    """Columns of the Jacobian of ``grad_fn`` (a flat gradient) by complex steps."""
    T, d, k = U.shape
    x = vec_factors(U).astype(complex)
    H = np.empty((x.size, x.size))
    for i in range(x.size):
        xi = x.copy()
        xi[i] += 1j * h
        H[:, i] = grad_fn(unvec_factors(xi, T, d, k)).imag / h
    return H


def _nonsym_problem(T, d, k, seed):
    rng = np.random.default_rng(seed)
    tasks = rng.standard_normal((T, d, d))  # each task its own non-symmetric part
    U = rng.standard_normal((T, d, k))
    p = ls.LoraMLProblem(tasks, k)
    R = p.reduced_residuals(U)
    assert np.max(np.abs(R - np.swapaxes(R, 1, 2))) > 0.1  # outside model M1 indeed
    return p, U


def _complex_grad(tasks, U):
    """(R + R^T) U in complex arithmetic: the reference gradient for the Hessian."""
    D = tasks - np.einsum("tik,tjk->tij", U, U)
    R = D.mean(axis=0)[None] - D
    return vec_factors((R + np.swapaxes(R, 1, 2)) @ U)


CASES = [(2, 3, 1, 0), (3, 4, 2, 1), (4, 3, 1, 2)]


@pytest.mark.parametrize("T,d,k,seed", CASES)
def test_every_gradient_matches_complex_step_on_nonsymmetric_tasks(T, d, k, seed):
    p, U = _nonsym_problem(T, d, k, seed)
    ref = _cs_grad(p.tasks, U)
    assert np.isclose(p.reduced_loss(U), _G(p.tasks, U), rtol=1e-13, atol=0)
    scale = np.linalg.norm(ref)
    for name, g in [
        ("problem.reduced_grad", vec_factors(p.reduced_grad(U))),
        ("reduced_grad", vec_factors(reduced_grad(p, U))),
        ("batched", vec_factors(_search._batched_loss_grad(p.tasks, U[None])[1][0])),
        ("flat fg", _search._flat_fg(p)(vec_factors(U))[1]),
        ("factored", vec_factors(factored(p).grad(U[None])[0])),
    ]:
        assert np.linalg.norm(g - ref) <= 1e-12 * scale, name


@pytest.mark.parametrize("T,d,k,seed", CASES)
def test_schur_complement_and_hvp_are_the_jacobian_of_the_gradient(T, d, k, seed):
    p, U = _nonsym_problem(T, d, k, seed)
    # the Jacobian of the (already verified) gradient formula, by complex steps
    J = _cs_hessian(p.tasks, U, lambda V: _complex_grad(p.tasks, V))
    S = p.schur_complement(U)
    assert np.linalg.norm(S - J) <= 1e-12 * np.linalg.norm(J)
    op = reduced_hvp_operator(p, U)
    V = np.random.default_rng(seed).standard_normal((p.dim_U, 3))
    HV = np.column_stack([op.matvec(V[:, j]) for j in range(3)])
    assert np.linalg.norm(HV - J @ V) <= 1e-12 * np.linalg.norm(J @ V)
    F = factored(p)
    for j in range(2):
        Vj = unvec_factors(V[:, j], T, d, k)
        assert np.allclose(vec_factors(F.hvp(U[None], Vj[None])[0]), J @ V[:, j], rtol=1e-11, atol=1e-11)


def test_root_finder_gets_the_true_jacobian(monkeypatch):
    """The Jacobian handed to scipy.optimize.root is the complex-step Jacobian of its
    residual function, at the start and wherever the solver evaluates it."""
    p, U = _nonsym_problem(3, 3, 1, 4)
    seen = []
    import scipy.optimize

    real_root = scipy.optimize.root

    def spy(fun, x0, jac=None, **kw):
        for x in (x0, x0 + 0.1):
            Ux = unvec_factors(x, 3, 3, 1)
            J = _cs_hessian(p.tasks, Ux, lambda V: _complex_grad(p.tasks, V))
            np.testing.assert_allclose(fun(x), _complex_grad(p.tasks, Ux).real, rtol=1e-12, atol=1e-12)
            seen.append(np.linalg.norm(jac(x) - J) / np.linalg.norm(J))
        return real_root(fun, x0, jac=jac, **kw)

    monkeypatch.setattr(scipy.optimize, "root", spy)
    res = _search.gradient_root(p, U, method="hybr", mode="dense", spectrum=False, polish=False)
    assert seen and max(seen) <= 1e-12
    assert res.grad_norm < 1e-8


@pytest.mark.parametrize("factored_path", [False, True])
def test_line_search_only_accepts_armijo_decreases(monkeypatch, factored_path):
    """Every accepted step of gradient descent lowers G (recomputed from the definition)
    by at least ARMIJO_C * alpha * ||g||^2 (up to rounding), on the dense and the
    factored evaluation paths."""
    p, _ = _nonsym_problem(3, 4, 2, 5)
    assert patch_everywhere(monkeypatch, "landscape._search", "uses_factored", lambda problem: factored_path)
    checked = []
    for cls in (_search._DenseBatch, _search._FactoredBatch):
        orig = cls.trials

        def trials(self, U, f, g, aux, alphas, gsq, _orig=orig):
            ok, cand, fc, gc, auxc = _orig(self, U, f, g, aux, alphas, gsq)
            for j, i in enumerate(np.flatnonzero(ok)):
                before, after = _G(p.tasks, U[i]), _G(p.tasks, cand[j])
                np.testing.assert_allclose(cand[j], U[i] - alphas[i] * g[i], rtol=1e-12, atol=1e-14)
                assert after <= before - _search.ARMIJO_C * alphas[i] * gsq[i] + 1e-12 * max(before, 1.0)
                assert np.isclose(fc[j], after, rtol=1e-9, atol=1e-12)
                checked.append(before - after)
            return ok, cand, fc, gc, auxc

        monkeypatch.setattr(cls, "trials", trials)
    starts = _search.random_starts(p, np.random.default_rng(6), 4)
    U, iters, reasons = _search._descent_batch(p, starts, max_iter=60, gtol=1e-10)
    assert len(checked) >= 60 and min(checked) > 0
    assert all(_G(p.tasks, U[i]) < _G(p.tasks, starts[i]) for i in range(4))


def test_search_reaches_critical_points_of_nonsymmetric_tasks():
    p, _ = _nonsym_problem(3, 3, 1, 8)
    res = ls.search(p, rng=np.random.default_rng(0), n_starts=3, methods=["gd", "lbfgs"], spectrum=False)
    for r in res:
        g = _cs_grad(p.tasks, r.point)
        assert np.linalg.norm(g) < 1e-7 and np.isclose(r.loss, _G(p.tasks, r.point), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("cls", ["_DenseBatch", "_FactoredBatch"])
def test_armijo_trial_rejects_a_tiny_increase_and_accepts_a_sufficient_decrease(cls):
    """alpha0 > 0 with G(U - alpha0 g) = G(U) (the step that overshoots back to the same
    level, found by bisection on G's definition): just beyond it G increases by far less
    than ARMIJO_C * alpha * ||g||^2, which must still be rejected; at alpha0 / 2 the
    decrease is sufficient and must be accepted."""
    p, U = _nonsym_problem(3, 4, 2, 9)
    ev = getattr(_search, cls)(p)
    f, g, aux = ev.evaluate(U[None])
    g0 = g[0]
    gsq = float(np.sum(g0 * g0))
    phi = lambda a: _G(p.tasks, U - a * g0) - _G(p.tasks, U)
    lo, hi = 1e-8, 1.0
    while phi(hi) < 0:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if phi(mid) < 0 else (lo, mid)
    a_up = hi * (1 + 1e-7)
    assert 0 < phi(a_up) < _search.ARMIJO_C * a_up * gsq
    a_ok = 0.5 * lo
    assert phi(a_ok) < -_search.ARMIJO_C * a_ok * gsq
    for a, expect in ((a_up, False), (a_ok, True)):
        ok = ev.trials(U[None], f, g, aux, np.array([a]), np.array([gsq]))[0]
        assert bool(ok[0]) is expect


# --------------------------------------------------------------------------------------
# survivors of the cosmic-ray sample (tools/MUTATION.md): PGD's escape window, the
# iteration count
# --------------------------------------------------------------------------------------
def test_pgd_returns_the_pre_perturbation_point_of_a_minimum_after_one_window():
    """At a global minimum (G = 0) no perturbation can lower G by the threshold: the first
    escape window ends without escape and the point before the perturbation is returned."""
    from landscape._instances import f2_spurious_instance

    inst, _ = f2_spurious_instance()
    U0 = inst.U_star[None].astype(float)
    (r,) = ls.perturbed_gradient_descent(inst.problem, U0, rng=np.random.default_rng(0), spectrum=False,
                                         polish=False)
    assert "no escape" in r.stop_reason and "perturbation 1:" in r.stop_reason, r.stop_reason
    assert np.array_equal(r.point, U0[0])


def test_gradient_descent_counts_its_iterations():
    rng = np.random.default_rng(4)
    p = ls.random_instance(rng, 4, 3, 1).problem
    U0 = 3.0 * rng.standard_normal((2, 3, 4, 1))
    for r in ls.gradient_descent(p, U0, max_iter=3, spectrum=False, polish=False):
        assert r.iterations == 3 and "iteration limit 3" in r.stop_reason, (r.iterations, r.stop_reason)


# --------------------------------------------------------------------------------------
# survivors of a second cosmic-ray sample of descent.py: the Armijo test's ||g||^2, the
# first trial step, an escape cut short by the iteration limit
# --------------------------------------------------------------------------------------
def test_armijo_test_is_given_the_squared_gradient_norm(monkeypatch):
    """The sufficient decrease asked of a step alpha is ARMIJO_C * alpha * ||grad G||^2:
    the descent hands each trial the squared norm of the gradient it steps along."""
    p, _ = _nonsym_problem(3, 4, 2, 5)
    seen = []
    orig = _search._DenseBatch.trials

    def trials(self, U, f, g, aux, alphas, gsq):
        seen.append(np.max(np.abs(gsq - np.einsum("stij,stij->s", g, g)) / np.einsum("stij,stij->s", g, g)))
        return orig(self, U, f, g, aux, alphas, gsq)

    assert patch_everywhere(monkeypatch, "landscape._search", "uses_factored", lambda problem: False)
    monkeypatch.setattr(_search._DenseBatch, "trials", trials)
    starts = 0.3 * _search.random_starts(p, np.random.default_rng(6), 3)
    _search._descent_batch(p, starts, max_iter=20, gtol=1e-12)
    assert len(seen) >= 20 and max(seen) <= 1e-15


def test_initial_step_is_below_one_over_the_hessian_norm():
    """The first trial step 1 / (6 max_t ||U_t||^2 + 2 sqrt(2 G) + s) bounds the reduced
    Hessian's norm from above (checked against the dense Hessian from reduced_hvp), at
    U of size s^(1/2) x 1e-3, 1 and 1e3: the largest ratio found is 0.67."""
    from landscape._search.descent import initial_step
    from landscape._search.result import problem_scale

    worst = 0.0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        d, T, k = (int(v) for v in (rng.integers(2, 6), rng.integers(2, 5), rng.integers(1, 3)))
        p = ls.random_instance(rng, d, T, k).problem
        for scale in (1e-3, 1.0, 1e3):
            U = scale * rng.standard_normal((T, d, k))
            H = np.array([p.reduced_hvp(U, e.reshape(U.shape)).ravel() for e in np.eye(U.size)])
            norm = np.linalg.norm(0.5 * (H + H.T), 2)
            step = initial_step(U[None], np.array([p.reduced_loss(U)]), problem_scale(p))[0]
            worst = max(worst, norm * step)
    assert worst <= 1.0, worst


def test_pgd_cut_short_in_an_escape_window_returns_the_point_before_the_perturbation():
    """At a strict saddle (F.1's U = 0) PGD perturbs at once; when the iteration limit
    falls inside the escape window, the escape is unfinished and the point it started
    from is returned, not a point on the way."""
    from landscape._instances import f1_instance

    p = f1_instance().problem
    U0 = np.zeros((1, 2, 2, 1))
    U, iters, reasons = _search._descent_batch(p, U0, max_iter=5, gtol=1e-10, rng=np.random.default_rng(0),
                                               perturb=True)
    assert "iteration limit 5" in reasons[0]
    assert np.array_equal(U, U0)


def test_pgd_perturbs_within_the_ball_of_radius_1e_2_root_s(monkeypatch):
    """PGD's perturbation at a strict saddle moves U by a point of the ball of radius
    PGD_RADIUS_REL s^(1/2) (F.1 with its tasks times 4: s = 2 sqrt 2, so s^(1/2) differs from
    the exponent 1e-2 ** s^(1/2)): never outside, and over 40 seeds reaching 80 % of it
    (uniform in the ball of dimension 4)."""
    from landscape import PlantedInstance
    from landscape._instances import f1_instance
    from landscape._search.result import problem_scale

    inst = f1_instance()
    p = PlantedInstance(np.ldexp(inst.A_star, 2), np.ldexp(inst.U_star, 1)).problem
    radius = _search.PGD_RADIUS_REL * np.sqrt(problem_scale(p))
    assert radius == pytest.approx(1e-2 * 8 ** 0.25, rel=1e-12, abs=0)
    moved = []
    orig = _search._DenseBatch.trials

    def trials(self, U, f, g, aux, alphas, gsq):
        moved.append(float(np.linalg.norm(U)))  # U0 = 0: the distance moved
        return orig(self, U, f, g, aux, alphas, gsq)

    assert patch_everywhere(monkeypatch, "landscape._search", "uses_factored", lambda problem: False)
    monkeypatch.setattr(_search._DenseBatch, "trials", trials)
    first = []
    for seed in range(40):
        moved.clear()
        _search._descent_batch(p, np.zeros((1, 2, 2, 1)), max_iter=1, gtol=1e-10, rng=np.random.default_rng(seed),
                               perturb=True)
        first.append(moved[0])
    assert 0 < min(first) and max(first) <= radius * (1 + 1e-12) and max(first) >= 0.8 * radius


@pytest.mark.parametrize("method", ["gradient_descent", "lbfgs", "trust_region_newton", "gradient_root"])
def test_a_search_without_a_generator_is_the_seed_zero_one(method):
    """rng=None is np.random.default_rng(0) for the spectra of the end points, and a
    generator that is given is the one used (another seed starts Lanczos elsewhere)."""
    inst = ls.random_instance(np.random.default_rng(8), 5, 3, 1)
    starts = np.random.default_rng(3).standard_normal((2, *inst.U_star.shape))
    fn = getattr(_search, method)
    if method != "gradient_descent":  # one start per call: a list of one result each
        starts = starts[0]
        fn = (lambda f: lambda *a, **kw: [f(*a, **kw)])(fn)
    a = fn(inst.problem, starts, max_iter=30, mode="hvp", rng=None)
    b = fn(inst.problem, starts, max_iter=30, mode="hvp", rng=np.random.default_rng(0))
    c = fn(inst.problem, starts, max_iter=30, mode="hvp", rng=np.random.default_rng(5))
    for ra, rb, rc in zip(a, b, c):
        np.testing.assert_array_equal(ra.point, rb.point)
        np.testing.assert_array_equal(ra.spectrum.eigenvalues, rb.spectrum.eigenvalues)
        np.testing.assert_array_equal(ra.spectrum.direction, rb.spectrum.direction)
        np.testing.assert_array_equal(rc.point, rb.point)  # the search itself draws nothing
    assert any(not np.array_equal(rc.spectrum.direction, rb.spectrum.direction) for rb, rc in zip(b, c))


def test_initial_step_is_the_stated_inverse_bound_exactly():
    """1 / (6 max_t ||U_t||_F^2 + 2 sqrt(2 G) + s), start by start (exact small numbers)."""
    from landscape._search.descent import initial_step

    U = np.zeros((2, 2, 1, 1))
    U[0, 0, 0, 0], U[0, 1, 0, 0] = 1.0, 2.0  # max_t ||U_t||^2 = 4
    U[1, 1, 0, 0] = 0.5                       # 0.25
    step = initial_step(U, np.array([2.0, 0.0]), 1.0)
    assert step[0] == 1.0 / 29.0  # 6 x 4 + 2 sqrt(2 x 2) + 1
    assert step[1] == 1.0 / (6 * 0.25 + 0.0 + 1.0)


def test_pgd_restarts_its_step_from_the_initial_step_after_a_perturbation(monkeypatch):
    """After each perturbation the step is initial_step at the perturbed point (its G and its
    ||U_t||), as at the start."""
    import landscape._search.descent as D

    inst = ls.f1_instance()
    calls = []
    real = D.initial_step

    def recording(U, f, s):
        calls.append((np.array(U), np.array(f)))
        return real(U, f, s)

    monkeypatch.setattr(D, "initial_step", recording)
    U0 = np.zeros((1, *inst.U_star.shape))  # F.1's U = 0: a strict saddle, perturbed at once
    ls.perturbed_gradient_descent(inst.problem, U0, rng=np.random.default_rng(0), spectrum=False, max_iter=30)
    assert len(calls) >= 2
    start, after = calls[0], calls[1]
    assert np.all(start[0] == 0) and np.any(after[0] != 0)
    assert after[1][0] == pytest.approx(inst.problem.reduced_loss(after[0][0]), rel=1e-12)


def test_bb_step_is_s_s_over_s_y_within_a_thousand_fold_of_the_last_step():
    from landscape._search.descent import bb_step

    sv = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    yv = np.array([[4.0, 0.0], [1.0, -3.0], [0.0, 5.0], [1e-4, 0.0], [1e4, 0.0], [1.0, 0.0]])
    prev = np.array([1.0, 0.5, 0.25, 2.0, 2.0, 1e-3])
    got = bb_step(sv, yv, prev)
    # 1/4; s'y < 0: 2 x 0.5; s'y = 0: 2 x 0.25; 1e4 clipped to 1e3 x 2; 1e-4 clipped to 1e-3 x 2;
    # 4 / 2 = 2 -- within [1e-6, 1] exactly at the top
    np.testing.assert_array_equal(got, [0.25, 1.0, 0.5, 2e3, 2e-3, 1.0])


def test_damped_newton_backtracks_to_a_critical_point():
    """MINRES-Newton on grad G = 0 from random starts of size s^(1/2) / 3: the step is halved
    until ||grad G|| decreases, and every start here reaches the tolerance (the fourth needs
    the halving: a step grown instead of halved never decreases ||grad G||)."""
    from landscape._objective import vec_factors
    from landscape._search.methods import _newton_minres_root
    from landscape._search.result import problem_scale

    inst = ls.random_instance(np.random.default_rng(1), 6, 3, 1)
    p = inst.problem
    s = problem_scale(p)
    for seed in range(4):
        x0 = vec_factors(np.random.default_rng(seed).standard_normal(inst.U_star.shape) * np.sqrt(s) / 3)
        _, it, reason = _newton_minres_root(p, x0, max_iter=100, gtol=1e-8 * s**1.5)
        assert reason.startswith("gradient norm") and "below tolerance" in reason, (seed, reason)


@pytest.mark.parametrize("max_iter", [1, 2])
def test_hybr_spends_at_most_max_iter_times_n_plus_1_function_calls(max_iter):
    """Dense root-hybr: MINPACK's maxfev is max_iter (n + 1), n = T d k = 18 here -- the
    budget of max_iter Jacobian-free iterations, stated in the stop reason."""
    from landscape._search.methods import gradient_root

    inst = ls.random_instance(np.random.default_rng(1), 6, 3, 1)
    U0 = 2 * np.random.default_rng(3).standard_normal(inst.U_star.shape)
    r = gradient_root(inst.problem, U0, max_iter=max_iter, mode="dense", spectrum=False, polish=False)
    assert r.stop_reason.endswith(f"reached maxfev = {max_iter * 19}.")


def test_root_finding_options_are_keyword_only():
    """gradient_root(problem, U0, *, method=...): an option passed by position is refused."""
    from landscape._search.methods import gradient_root

    inst = ls.random_instance(np.random.default_rng(1), 3, 3, 1)
    with pytest.raises(TypeError):
        gradient_root(inst.problem, inst.U_star, "lm")
    r = gradient_root(problem=inst.problem, U0=inst.U_star, method="lm", spectrum=False, polish=False)
    assert r.method == "root-lm"


# ----------------------------------------------------------------------------- PGD's perturbation
@pytest.mark.parametrize("dim", [1, 3, 12])
def test_pgd_perturbations_are_uniform_in_their_ball(dim):
    """P(|xi| <= t R) = t^dim (the ball's volume fraction): (|xi|/R)^dim is uniform on [0, 1]
    (mean 1/2, a quarter of the draws below 1/4), never outside the ball, and the
    directions have mean zero."""
    from landscape._search.descent import ball_perturbation

    rng = np.random.default_rng(0)
    R, n = 0.3, 4000
    xs = np.array([ball_perturbation(rng, dim, R) for _ in range(n)])
    assert xs.shape == (n, dim)
    t = np.linalg.norm(xs, axis=1) / R
    assert t.max() <= 1.0
    v = t ** dim
    se = np.sqrt(1 / 12 / n)  # standard error of the mean of a uniform variable
    assert abs(v.mean() - 0.5) < 5 * se
    assert abs(np.mean(v < 0.25) - 0.25) < 5 * np.sqrt(0.25 * 0.75 / n)
    if dim > 1:
        assert np.abs((xs / t[:, None]).mean(axis=0)).max() < 5 * R / np.sqrt(n)


def test_factored_batch_trials_resync_every_fifty(monkeypatch):
    """The batched factored line search carries Delta(U + a V) = Delta U + a Delta V forward
    and recomputes it from the candidates at exactly every RESYNC_EVERY-th trial."""
    from landscape._factored import RESYNC_EVERY
    from landscape._search.descent import _FactoredBatch

    rng = np.random.default_rng(1)
    P = ls.LoraMLProblem(rng.standard_normal((3, 5, 5)), 1)
    batch = _FactoredBatch(P)
    U = rng.standard_normal((2, 3, 5, 1))
    f, g, aux = batch.evaluate(U)
    calls = []
    orig = type(batch.F).apply_delta

    def counting(self, V):
        calls.append(len(calls))
        return orig(self, V)

    monkeypatch.setattr(type(batch.F), "apply_delta", counting)
    per_trial = []
    for _ in range(2 * RESYNC_EVERY):
        before = len(calls)
        batch.trials(U, f, g, aux, np.array([1e-6, 1e-6]), (g.reshape(2, -1) ** 2).sum(1))
        per_trial.append(len(calls) - before)
    assert RESYNC_EVERY == 50
    assert [i + 1 for i, c in enumerate(per_trial) if c == 2] == [RESYNC_EVERY, 2 * RESYNC_EVERY]
    assert set(per_trial) == {1, 2}


def test_a_line_search_that_finds_no_decrease_stops_the_start_and_says_so(monkeypatch):
    """When every halving of the step fails the Armijo test the start stops at once with the
    line-search reason (not left to run into the iteration limit)."""
    from landscape._search import descent, methods

    monkeypatch.setattr(descent, "ARMIJO_MAX_HALVINGS", 0)  # no trial at all: the search fails
    P = ls.random_instance(np.random.default_rng(0), 3, 3, 1).problem
    starts = np.random.default_rng(1).standard_normal((2, 3, 3, 1))
    out = methods.gradient_descent(P, starts, max_iter=20, spectrum=False, polish=False)
    assert [r.stop_reason for r in out] == ["line search failed: no decrease along -grad (round-off level)"] * 2
    assert all(r.iterations == 1 for r in out)


@pytest.mark.parametrize("s", [0.5, 3.0])
def test_pgd_escape_threshold_is_proportional_to_the_scale_squared(s):
    """G scales as s^2, so the drop that counts as an escape is PGD_DECREASE_REL s^2."""
    from landscape._search.descent import PGD_DECREASE_REL, pgd_decrease_threshold

    assert pgd_decrease_threshold(s) == PGD_DECREASE_REL * s * s


def test_pgd_reads_its_escape_threshold_at_the_problem_s_scale(monkeypatch):
    """The escape windows compare the drop of G with pgd_decrease_threshold(s) at the
    problem's own scale s; with the threshold out of reach the first window ends stuck."""
    import landscape._search.descent as D
    from landscape._instances import f1_instance
    from landscape._search.result import problem_scale

    p = f1_instance().problem
    seen = []

    def threshold(s):
        seen.append(s)
        return float("inf")

    monkeypatch.setattr(D, "pgd_decrease_threshold", threshold)
    (r,) = ls.perturbed_gradient_descent(p, np.zeros((1, 2, 2, 1)), rng=np.random.default_rng(0), spectrum=False,
                                         polish=False)
    assert seen == [problem_scale(p)]
    assert "no escape" in r.stop_reason and "perturbation 1:" in r.stop_reason, r.stop_reason


def test_root_finding_that_ends_off_the_finite_numbers_returns_its_start(monkeypatch):
    """When the root finder hands back non-finite coordinates without having evaluated them
    (no divergence raised), the start is returned and the reason says so after the solver's
    own message."""
    from types import SimpleNamespace

    from landscape._search import methods as M

    inst = ls.random_instance(np.random.default_rng(8), 4, 3, 1)
    U0 = np.random.default_rng(3).standard_normal(inst.U_star.shape)
    monkeypatch.setattr(M.optimize, "root", lambda fun, x0, **kw: SimpleNamespace(x=np.full_like(x0, np.nan),
                                                                                  nfev=7, message="done"))
    r = M.gradient_root(inst.problem, U0, mode="dense", spectrum=False, polish=False)
    assert r.stop_reason == "scipy.optimize.root(hybr): done (diverged; start returned)"
    np.testing.assert_array_equal(r.point, U0)
