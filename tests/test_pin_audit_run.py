"""landscape._audit.run pinned where the audit's orchestration decides something: the size of
the invariant system and the automatic enumeration's limit at its boundary (12 unknowns run,
13 do not), which tasks the enumeration receives when the audit rescales the input (the
user's, exactly, never the rescaled copy or the zeros kept in place of a large input), and the
certificate's statement of its units (a point of the tasks divided by 2^e is 2^(e/2) times a
point in the user's units).  The enumeration is a stand-in here: msolve is optional.
"""
from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

import landscape as ls
from landscape import enumeration as E
from landscape._audit import enumeration as A
from landscape._audit import run as R


def _symmetric_entries(d: int) -> int:
    return len(np.triu_indices(d)[0])


@pytest.mark.parametrize("T", range(1, 15))
@pytest.mark.parametrize("d", range(1, 6))
def test_invariant_unknowns_count_one_symmetric_matrix_per_task(T, d):
    assert A.invariant_unknowns(T, d) == T * _symmetric_entries(d)
    assert A.small_enough_for_auto(T, d) is (T * _symmetric_entries(d) <= 12)


@pytest.mark.parametrize("T, d, small", [(12, 1, True), (13, 1, False), (4, 2, True), (5, 2, False), (2, 3, True),
                                         (3, 3, False), (1, 4, True), (2, 4, False), (1, 5, False)])
def test_the_automatic_limit_at_its_boundary(T, d, small):
    assert A.small_enough_for_auto(T, d) is small
    assert (A.invariant_unknowns(T, d) == 12) is ((T, d) in {(12, 1), (4, 2), (2, 3)})


@pytest.mark.parametrize("available", [True, False])
@pytest.mark.parametrize("T, d", [(12, 1), (13, 1), (4, 2), (5, 2), (2, 3), (3, 3)])
def test_enumeration_runs(monkeypatch, T, d, available):
    monkeypatch.setattr(E, "algebra_available", lambda route="msolve": available)
    assert R.enumeration_runs("on", T, d) is True
    assert R.enumeration_runs("off", T, d) is False
    assert R.enumeration_runs("auto", T, d) is (available and A.small_enough_for_auto(T, d))


def _capture(monkeypatch):
    """A stand-in enumeration that records the tasks it is given (and finds no orbit)."""
    seen = []

    def enumerate_critical_points(tasks, k, timeout):
        seen.append(np.array(tasks, copy=True))
        data = {"orbit_list": [], "lowest_critical_value": 1.0, "non_isolated": False, "real_critical_points": 0,
                "copies_counted": False, "counts_by_class": {}, "degree": 0, "wall_time_s": 0.0}
        return SimpleNamespace(points=[], data=data, complete=True)

    monkeypatch.setattr(E, "algebra_available", lambda route="msolve": True)
    monkeypatch.setattr(E, "enumerate_critical_points", enumerate_critical_points)
    return seen


@pytest.mark.parametrize("T, d, mode", [(2, 2, "auto"), (4, 2, "auto"), (2, 3, "auto"),
                                        (3, 3, "on")])
@pytest.mark.parametrize("power", [-300, 0, 200])
def test_a_rescaled_audit_enumerates_the_users_tasks(monkeypatch, T, d, mode, power):
    """The audit searches the tasks divided by 2^e, but the enumeration is exact and runs on
    the tasks as given -- at the automatic limit too (12 unknowns), with "on" beyond it, and
    without a rescaling (e = 0)."""
    seen = _capture(monkeypatch)
    rng = np.random.default_rng(T * 10 + d)
    tasks = rng.standard_normal((T, d, d))
    tasks = tasks + np.swapaxes(tasks, 1, 2)
    tasks = np.ldexp(tasks, power - R.scale_exponent(tasks))
    assert R.scale_exponent(tasks) == power
    rep = ls.audit(tasks, 1, starts=1, seed=0, certify=False, plots=False, enumeration=mode, progress=False)
    assert rep.data["enumeration"]["ran"] is True
    assert len(seen) == 1 and np.array_equal(seen[0], tasks)


def test_a_rescaled_audit_beyond_the_limit_skips_the_automatic_enumeration(monkeypatch):
    seen = _capture(monkeypatch)
    tasks = np.ldexp(np.random.default_rng(1).standard_normal((5, 2, 2)), 300)
    rep = ls.audit(tasks + np.swapaxes(tasks, 1, 2), 1, starts=1, seed=0, certify=False, plots=False,
                   enumeration="auto", progress=False)
    assert seen == [] and rep.data["enumeration"]["ran"] is False
    assert "15 > 12 unknowns" in rep.data["enumeration"]["reason"]


@pytest.mark.parametrize("factor", [2.0**-501, 2.0**502])
def test_the_certificate_states_its_units(factor):
    """A certificate of a rescaled audit is for the tasks divided by 2^e; its points are the
    user's divided by 2^(e/2): G is homogeneous of degree 2 in (tasks, U U^T)."""
    inst, U0 = ls.f2_spurious_instance()
    tasks = inst.problem.tasks * factor
    rep = ls.audit(tasks, 1, starts=0, seed=0, extra_starts=U0[None] * math.sqrt(factor), methods="lbfgs",
                   plots=False, enumeration="off", progress=False)
    e = rep.data["input"]["scale_exponent"]
    assert e % 2 == 0 and abs(e - math.log2(factor)) <= 2
    spur = [c for c in rep.data["classes"] if c["kind"] == "spurious_candidate"]
    assert spur and spur[0]["certificate"]["status"] == "certified"
    text = spur[0]["certificate"]["certificate_scale"]
    m = re.fullmatch(r"certificate for the tasks divided by 2\^(-?\d+) \(exact\); "
                     r"a point U of it is 2\^(-?\d+) U in your units", text)
    assert m, text
    assert int(m.group(1)) == e and 2 * int(m.group(2)) == e


def test_an_unscaled_certificate_says_nothing_of_units():
    inst, U0 = ls.f2_spurious_instance()
    e0 = R.scale_exponent(inst.problem.tasks)  # F.2's tasks are of scale about 4: e0 = 2
    rep = ls.audit(np.ldexp(inst.problem.tasks, -e0), 1, starts=0, seed=0, extra_starts=np.ldexp(U0[None], -e0 // 2),
                   methods="lbfgs", plots=False, enumeration="off", progress=False)
    assert rep.data["input"]["scale_exponent"] == 0
    spur = [c for c in rep.data["classes"] if c["kind"] == "spurious_candidate"]
    assert spur and spur[0]["certificate"]["status"] == "certified"
    assert "certificate_scale" not in spur[0]["certificate"]


# ------------------------------------------------------------------ divergence
def _problem(T, d, seed=0):
    from landscape._objective import LoraMLProblem

    tasks = np.random.default_rng(seed).standard_normal((T, d, d))
    return LoraMLProblem(tasks + np.swapaxes(tasks, 1, 2), 1)


def _run(U, iterations=7):
    return SimpleNamespace(point=U, iterations=iterations, stop_reason="stopped")


@pytest.mark.parametrize("T", [2, 3])
def test_divergence_threshold_is_a_thousand_natural_sizes(T):
    """||U||_F <= 1e3 sqrt(T s) is a finite end point; just above it, a divergence."""
    from landscape._search import problem_scale

    problem = _problem(T, 3)
    s = problem_scale(problem)
    limit = R.DIVERGENCE_FACTOR * math.sqrt(T * s)
    assert R.DIVERGENCE_FACTOR == 1e3 and R.BOOST_RATIO == 1e-3
    U = np.zeros((T, 3, 1))
    U[0, 0, 0] = 1.0
    U[-1, 1, 0] = 1.0  # X_1 - X_T = diag(1, -1): ||D|| / ||U||^2 = 1/sqrt(2), never a boost
    inside = U * (limit / np.linalg.norm(U)) * (1 - 1e-12)
    assert R._divergence(problem, _run(inside)) is None
    outside = U * (limit / np.linalg.norm(U)) * (1 + 1e-9)
    msg = R._divergence(problem, _run(outside))
    assert msg.startswith("||U|| -> inf along U/||U|| (||U||_F = ")
    assert f"{np.linalg.norm(outside) / math.sqrt(T * s):.1e} times the natural size" in msg  # = 1.0e+03
    assert "1.0e+03 times the natural size, after 7 iteration(s))" in msg


def test_divergence_of_an_overflowed_iterate():
    problem = _problem(3, 2)
    U = np.zeros((3, 2, 1))
    U[1, 0, 0] = np.inf
    msg = R._divergence(problem, _run(U, iterations=12))
    assert msg.startswith("||U|| -> inf: the iterate overflowed after 12 iteration(s)")


@pytest.mark.parametrize("ratio", [0.9e-3, 1.1e-3])
def test_two_tasks_slide_along_the_boost_orbit_below_the_boost_ratio(ratio):
    """T = 2: ||D|| / ||U||^2 < 1e-3 is a slide along the O(1,1) orbit (D = U_1U_1^T - U_2U_2^T
    bounded while ||U|| grows); at a large norm, ||D|| / ||U|| would say otherwise."""
    problem = _problem(2, 2)
    norm = 1e9  # far beyond the divergence threshold
    # U_1 = a e_1, U_2 = b e_1 with a^2 + b^2 = norm^2 and a^2 - b^2 = ratio * norm^2
    a, b = norm * math.sqrt((1 + ratio) / 2), norm * math.sqrt((1 - ratio) / 2)
    U = np.zeros((2, 2, 1))
    U[0, 0, 0], U[1, 0, 0] = a, b
    msg = R._divergence(problem, _run(U))
    boost = msg.startswith("||U|| -> inf along the O(k,k) orbit")
    assert boost is (ratio < 1e-3)
    if boost:
        assert f"||D_U|| / ||U||^2 = {ratio:.1e}" in msg


# ------------------------------------------------------------------ report numbers and refusals
def _g0(tasks):
    dev = tasks - tasks.mean(axis=0)
    return 0.5 * float(np.sum(dev * dev))


@pytest.mark.parametrize("power", [0, 300])
def test_relative_losses_are_over_g_at_zero_of_the_normalised_tasks(power):
    """loss_relative = G(class) / G(0), G(0) = 1/2 sum_t ||A*_t - mean||^2 (the best A at U = 0)."""
    inst, U0 = ls.f2_spurious_instance()
    tasks = np.ldexp(inst.problem.tasks, power - R.scale_exponent(inst.problem.tasks))
    rep = ls.audit(tasks, 1, starts=2, seed=0, extra_starts=np.ldexp(U0[None], (power - 2) // 2), methods="lbfgs",
                   certify=False, plots=False, enumeration="off", progress=False)
    e = rep.data["input"]["scale_exponent"]
    assert e == power
    g0 = _g0(np.ldexp(tasks, -e))
    classes = [c for c in rep.data["classes"] if c["kind"] != "not_critical"]
    assert classes
    for c in classes:
        assert c["loss_relative"] == pytest.approx(c["loss_normalised"] / g0, rel=1e-12, abs=0)
    assert any(c["loss_relative"] > 1e-5 for c in classes)  # the spurious class is not at 0 (1.6e-4)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "10"])
def test_max_seconds_must_be_a_positive_number(bad):
    inst, _ = ls.f2_spurious_instance()
    with pytest.raises(ls.LandscapeInputError, match="--max-seconds must be a positive number"):
        ls.audit(inst.problem.tasks, 1, starts=1, max_seconds=bad, plots=False, progress=False)


@pytest.mark.parametrize("ok", [1e6, 10**6])
def test_positive_max_seconds_are_accepted(ok):
    inst, _ = ls.f2_spurious_instance()
    rep = ls.audit(inst.problem.tasks, 1, starts=1, max_seconds=ok, certify=False, plots=False, progress=False,
                   enumeration="off")
    assert rep.data["summary"]["n_runs"] == 1


@pytest.mark.parametrize("planted", [True, False])
def test_the_cost_estimate_knows_whether_the_truth_is_given(monkeypatch, planted):
    seen = {}
    real = R.estimate_audit_cost

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(R, "estimate_audit_cost", spy)
    inst, _ = ls.f2_spurious_instance()
    src = inst if planted else inst.problem.tasks
    ls.audit(src, 1, starts=1, certify=False, plots=False, progress=False, enumeration="off")
    assert seen["truth_known"] is planted


def test_random_starts_up_to_the_array_limit_exactly(monkeypatch):
    """The starting points may take MAX_ARRAY_BYTES (8 bytes per entry) and no more."""
    inst, _ = ls.f2_spurious_instance()
    limit = 8 * 2 * inst.problem.dim_U
    monkeypatch.setattr(R, "MAX_ARRAY_BYTES", limit)
    rep = ls.audit(inst.problem.tasks, 1, starts=2, seed=0, certify=False, plots=False, enumeration="off",
                   progress=False)
    assert rep.data["summary"]["n_runs"] == 2
    with pytest.raises(ls.LandscapeInputError, match="--starts 3: the starting points alone would take"):
        ls.audit(inst.problem.tasks, 1, starts=3, seed=0, certify=False, plots=False, enumeration="off",
                 progress=False)


def test_identical_tasks_take_their_scale_from_the_common_task():
    """No deviation between tasks: the scale is ||mean task||_F (here 2^41 x 1), so e = 40,
    even where every row of the task sums to 0."""
    A = np.array([[1.0, -1.0], [1.0, -1.0]]) * 2.0**40
    assert R.scale_exponent(np.stack([A, A, A])) == 40
    assert R.scale_exponent(np.stack([A, A, A]) * 2.0**-100) == -60


def test_tasks_ordered_entrywise_are_not_called_identical():
    """Tasks c^2 u u^T (c = 1, 2, 3; u > 0) each exceed the first entry by entry but differ:
    R3.1 fails for lack of diversity, not because the tasks are identical."""
    u = np.array([1.0, 2.0, 0.5])[:, None]
    tasks = np.stack([c * c * (u @ u.T) for c in (1.0, 2.0, 3.0)])
    rep = ls.audit(tasks, 1, starts=2, seed=0, certify=False, plots=False, enumeration="off", progress=False)
    assert rep.data["theory"]["not_applicable_reason"].startswith("R3.1 (task diversity) fails")
    same = ls.audit(np.stack([tasks[0]] * 3), 1, starts=2, seed=0, certify=False, plots=False, enumeration="off",
                    progress=False)
    assert same.data["theory"]["not_applicable_reason"] == ("R3.1 fails: the tasks are identical "
                                                            "(every difference A*_s - A*_t is zero)")


# ------------------------------------------------------- survivors of an end-of-session sample
@pytest.mark.parametrize("T", [1, 2, 3, 5])
@pytest.mark.parametrize("dims", [(0,), (0, 0), (1,), (0, 2)])
@pytest.mark.parametrize("varies", [False, True])
@pytest.mark.parametrize("distinct", [1, 2])
def test_continuum_rule_over_its_whole_truth_table(T, dims, varies, distinct):
    """A positive zero-set dimension is a continuum away from T = 2; at T = 2 only with A
    varying along it, or with two distinct values of A found."""
    positive = max(dims) > 0
    expected = (positive and T != 2) or (T == 2 and ((positive and varies) or distinct > 1))
    assert R.continuum_of_global_minima(T, list(dims), varies, distinct) is expected


def test_no_global_minimum_is_no_continuum():
    assert R.continuum_of_global_minima(2, [], True, 3) is False
    assert R.continuum_of_global_minima(3, (), True, 3) is False


def _tiny_audit(**kw):
    inst = ls.random_instance(np.random.default_rng(4), 3, 3, 1)
    return ls.audit(inst, 1, seed=0, certify=False, enumeration="off", progress=False,
                    **{"plots": False, "starts": 3, **kw})


def test_critical_runs_are_the_runs_less_the_non_critical_ones():
    """n_critical counts every run classified as anything but not_critical (global minima
    and degenerate points included). The instance has global minima (one from the planted
    start given), strict saddles and runs stopped short, in numbers where counting the kinds
    ordered after "not_critical" instead would give another total."""
    inst = ls.random_instance(np.random.default_rng(4), 3, 3, 1)
    rep = _tiny_audit(methods="gd", max_iter=2, starts=6, extra_starts=inst.U_star[None])
    sm = rep.data["summary"]
    assert sm["counts"]["global_minimum"] >= 1 and sm["counts"]["not_critical"] >= 1, sm["counts"]
    assert sm["n_critical"] != sum(v for k_, v in sm["counts"].items() if k_ >= "not_critical")
    assert sm["n_critical"] == sm["n_runs"] - sm["counts"]["not_critical"]
    assert sm["n_critical"] == sum(v for k_, v in sm["counts"].items() if k_ != "not_critical")


@pytest.mark.parametrize("write", [False, True])
def test_total_time_spans_the_audit(tmp_path, write):
    import time

    t0 = time.perf_counter()
    rep = _tiny_audit(out=(tmp_path / "a") if write else None)
    wall = time.perf_counter() - t0
    timing = rep.data["timing"]
    parts = [v for k_, v in timing.items() if k_ != "total_s" and isinstance(v, float)]
    assert parts and all(v >= 0 for v in parts)
    assert max(parts) <= timing["total_s"] <= wall


@pytest.mark.parametrize("message, shown", [("first line\nsecond line", "first line"),
                                            ("", "ValueError('')"),
                                            ("\n  \nafter blank lines\nmore", "after blank lines")])
def test_an_executor_refusal_shows_its_first_line(monkeypatch, message, shown):
    import landscape.runtime.executor as X

    def refuse(name):
        raise ValueError(message)

    monkeypatch.setattr(X, "get_executor", refuse)
    with pytest.raises(ls.LandscapeInputError) as err:
        _tiny_audit(executor="local")
    assert str(err.value) == f"--executor: {shown}"


def test_an_unknown_executor_is_named_in_the_refusal():
    with pytest.raises(ls.LandscapeInputError) as err:
        _tiny_audit(executor="slurm")
    assert str(err.value) == "--executor: unknown executor 'slurm'; choose one of local, ray"


@pytest.mark.parametrize("log2_s", [-23, -22, -21, -20.5, -1, -0.5, 0, 1, 1.5, 2, 3, 41])
def test_rescaled_tasks_have_a_scale_in_the_half_open_interval(log2_s):
    """s / 2^e in (1/2, 2] with e even, at odd and even powers of two included (their
    boundary), for tasks whose largest entry is exactly 1 or far above it."""
    from landscape._search import problem_scale

    s = 2.0 ** log2_s
    tasks = np.zeros((2, 2, 2))
    tasks[:, 0, 0] = 1.0
    tasks[1, 1, 1] = 2 * s  # the deviations from the mean are +-s: scale s
    e = R.scale_exponent(tasks)
    scaled = problem_scale(ls.LoraMLProblem(np.ldexp(tasks, -e), 1))
    assert e % 2 == 0 and 0.5 < scaled <= 2.0, (e, scaled)
    assert (e == 0) is (0.5 < s <= 2.0)


def test_minus_one_starts_are_refused():
    with pytest.raises(ls.LandscapeInputError, match=r"--starts must be a non-negative integer, got -1"):
        _tiny_audit(starts=-1)


def test_strict_saddle_classes_count_the_classes_of_that_kind():
    from landscape._classify import STRICT_SADDLE

    inst = ls.random_instance(np.random.default_rng(4), 3, 3, 1)
    rep = _tiny_audit(methods="gd", max_iter=2, starts=6, extra_starts=inst.U_star[None])
    n = sum(c.kind == STRICT_SADDLE for c in rep.classes)
    assert n >= 1
    assert rep.data["summary"]["strict_saddle_classes"] == n


# -- which class the orbit plot shows ----------------------------------------------------------

def _classes(*kinds):
    return [SimpleNamespace(id=i, kind=k) for i, k in enumerate(kinds)]


@pytest.mark.parametrize("kinds, shown", [
    ((), None),
    # a global minimum wins wherever it stands, and the first of several
    (("strict_saddle", "spurious_candidate", "global_minimum", "global_minimum"), 2),
    (("global_minimum", "spurious_candidate"), 0),
    # none found: the first spurious candidate, not a saddle or degenerate class before it
    (("strict_saddle", "degenerate", "not_critical", "spurious_candidate", "spurious_candidate"), 3),
    (("degenerate", "spurious_candidate"), 1),
    # neither: the first class, whatever its kind
    (("strict_saddle", "degenerate"), 0),
    (("degenerate", "strict_saddle"), 0),
    (("not_critical",), 0),
])
def test_the_orbit_plot_shows_a_global_minimum_then_a_spurious_candidate_then_the_first_class(kinds, shown):
    from landscape._classify import KINDS

    assert set(kinds) <= set(KINDS)
    got = R.orbit_class(_classes(*kinds))
    assert (got.id if got is not None else None) == shown


# -- the audit's input checks and its cost estimate's number of runs ------------------------------

class _Stop(Exception):
    pass


@pytest.mark.parametrize("starts, n_explicit, methods, total", [
    (3, 2, ("gd", "lbfgs", "pgd"), 3 + 2 * 3), (0, 4, ("gd", "lbfgs"), 0 + 4 * 2), (5, None, ("gd",), 5)])
def test_the_cost_estimate_counts_every_run_random_and_explicit(monkeypatch, starts, n_explicit, methods, total):
    # each explicit start is run by every method: the estimate sees starts + explicit x methods runs
    seen = []

    def estimate(d, T, k, n_runs, **kw):
        seen.append(n_runs)
        raise _Stop

    monkeypatch.setattr(R, "estimate_audit_cost", estimate)
    inst = ls.random_instance(np.random.default_rng(0), 3, 3, 1)
    extra = None if n_explicit is None else np.random.default_rng(1).standard_normal((n_explicit, 3, 3, 1))
    with pytest.raises(_Stop):
        ls.audit(inst, 1, starts=starts, extra_starts=extra, methods=methods, progress=False, plots=False)
    assert seen == [total]


@pytest.mark.parametrize("starts", [True, False, 2.5, "3", -1, None])
def test_a_number_of_starts_that_is_no_count_is_refused(starts):
    inst = ls.random_instance(np.random.default_rng(0), 3, 3, 1)
    with pytest.raises(ls.LandscapeInputError, match=r"--starts must be a non-negative integer, got "):
        ls.audit(inst, 1, starts=starts, progress=False, plots=False)


def test_an_object_with_a_star_but_no_u_star_is_no_planted_instance():
    # a planted instance needs both A_star and U_star; half of one is not read as one
    half = SimpleNamespace(A_star=np.eye(3))
    with pytest.raises(ls.LandscapeInputError):
        ls.audit(half, 1, starts=1, progress=False, plots=False)


def test_too_many_starts_are_refused_with_their_size_in_gib(monkeypatch):
    # 8 bytes x starts x dim U: 2^27 starts of a (3, 3, 1) problem (dim 9) take 9 GiB
    monkeypatch.setattr(R, "MAX_ARRAY_BYTES", 2**30)
    inst = ls.random_instance(np.random.default_rng(0), 3, 3, 1)
    with pytest.raises(ls.LandscapeInputError,
                       match=r"^--starts 134217728: the starting points alone would take 9\.0 GiB \(limit 1 GiB\)$"):
        ls.audit(inst, 1, starts=2**27, progress=False, plots=False)


def test_the_loss_plot_shows_every_critical_run_and_no_other(monkeypatch, tmp_path):
    """losses.svg is drawn from the classifications of the runs that ended at a critical
    point -- global minima included -- and not from those that did not (planted: every other
    run not critical)."""
    from dataclasses import replace

    from landscape._classify import GLOBAL_MINIMUM, NOT_CRITICAL

    seen = []
    real_classify = R.classify_result
    calls = []

    def classify(problem, r, **kw):
        calls.append(None)
        c = real_classify(problem, r, **kw)
        return c if len(calls) % 2 else replace(c, kind=NOT_CRITICAL)

    monkeypatch.setattr(R, "classify_result", classify)
    monkeypatch.setattr(R, "_plot_losses", lambda save, crit, e: seen.append([c.kind for c in crit]))
    inst = ls.random_instance(np.random.default_rng(0), 4, 3, 1)
    ls.audit(inst, 1, starts=4, seed=0, methods="lbfgs", plots=True, certify=False, enumeration="off",
             out=tmp_path / "a", progress=False)
    (kinds,) = seen
    assert len(kinds) == 2 and all(k == GLOBAL_MINIMUM for k in kinds)


@pytest.mark.parametrize("spare", [-1, 0, 1])
def test_an_audit_estimated_above_the_available_memory_is_refused_before_any_work(monkeypatch, tmp_path, spare):
    """The up-front estimate of the audit's peak memory is compared with what the machine has:
    one byte more than available is refused (bad input, naming the GiB available), exactly
    the available amount or more is run."""
    inst = ls.random_instance(np.random.default_rng(0), 3, 3, 1)
    seen = {}
    real = R.estimate_audit_cost
    monkeypatch.setattr(R, "estimate_audit_cost", lambda *a, **k: seen.setdefault("cost", real(*a, **k)))
    monkeypatch.setattr(R, "available_memory_bytes", lambda: seen["cost"].bytes + spare)
    run = lambda: ls.audit(inst.problem.tasks, 1, starts=2, seed=0, plots=False, certify=False,  # noqa: E731
                           enumeration="off", out=tmp_path / "o")
    if spare < 0:
        with pytest.raises(ls.LandscapeInputError, match=r"above the (\d+\.\d\d) GiB of memory available") as info:
            run()
        got = float(re.search(r"above the (\d+\.\d\d) GiB", str(info.value)).group(1))
        assert got == round((seen["cost"].bytes - 1) / 2**30, 2)
        assert not (tmp_path / "o").exists()
    else:
        assert run().data["summary"]["n_runs"] >= 2


def test_without_the_certificates_package_candidates_stay_uncertified(monkeypatch):
    """The audit runs where landscape.certificates cannot be imported: _certify says so."""
    import sys

    import landscape

    monkeypatch.delattr(landscape, "certificates", raising=False)
    monkeypatch.setitem(sys.modules, "landscape.certificates", None)
    cert, summary = R._certify(None, None, None, None)
    assert cert is None and summary == {"status": "uncertified", "reason": "certificate module not available"}


@pytest.mark.parametrize("bad", [0, -3, True, 2.0])
def test_max_iter_must_be_a_positive_integer(bad):
    with pytest.raises(ls.LandscapeInputError, match="--max-iter must be a positive integer"):
        _tiny_audit(methods="gd", max_iter=bad, starts=1)


def test_one_iteration_per_run_is_accepted():
    rep = _tiny_audit(methods="gd", max_iter=1, starts=2)
    assert rep.data["summary"]["n_runs"] == 2


def test_the_default_number_of_starts_is_the_one_the_cli_and_readme_state():
    """``audit`` and ``python -m landscape audit`` without --starts run DEFAULT_STARTS random
    starts, the number the command's help and the README give (the README's enumeration
    example compares the default audit's count with the exact one)."""
    import argparse
    import inspect
    from pathlib import Path

    from landscape.__main__ import _parser

    readme = Path(__file__).resolve().parents[1] / "README.md"
    stated = {int(m) for m in re.findall(r"default audit \((\d+) starts\)", readme.read_text())}
    subs = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    (starts,) = [a for a in subs.choices["audit"]._actions if "--starts" in a.option_strings]
    assert starts.default is None  # main() substitutes DEFAULT_STARTS
    assert stated == {R.DEFAULT_STARTS} == {int(re.search(r"default (\d+)", starts.help).group(1))}
    assert inspect.signature(R.audit).parameters["starts"].default == R.DEFAULT_STARTS


def test_each_run_names_the_class_that_lists_it_and_the_timing_adds_up():
    """A run's class_id is the id of the class whose members include the run (None for a run
    in no class), and the certificates' seconds are a part of the audit's total."""
    inst = ls.random_instance(np.random.default_rng(2), 3, 3, 1)
    rep = ls.audit(inst, 1, starts=6, seed=0, plots=False)
    d = rep.data
    owner = {i: c["id"] for c in d["classes"] for i in c["members"]}
    assert owner and len(owner) == sum(len(c["members"]) for c in d["classes"])
    assert [r["class_id"] for r in d["runs"]] == [owner.get(i) for i in range(len(d["runs"]))]
    t = d["timing"]
    assert 0.0 <= t["certificates_s"] <= t["total_s"] and 0.0 <= t["search_s"] <= t["total_s"]
    assert sum(t["certificate_s_by_class"].values()) <= t["certificates_s"] + 1e-9
