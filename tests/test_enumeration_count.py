"""Route 2 alone (issue 20, item 4): complete by counting certified complex solutions.

The pieces of the argument (:mod:`landscape.enumeration._complete`): the complex Krawczyk
test proves a box holds exactly one simple zero, the disjointness sweep proves boxes
distinct, and the count equals the degree only for a complete list.  Each is checked on
instances that satisfy its hypotheses and on instances that violate them.  The live
checks need PHCpack and msolve and skip cleanly without them; ``LORAML_SLOW=1`` adds the
(4, 3, 1) run (minutes).
"""
import json
import os

import numpy as np
import pytest
from sympy.polys.domains import QQ
from sympy.polys.rings import ring

import landscape as ls
from landscape.enumeration import algebra_available, enumerate_critical_points
from landscape.enumeration._complete import certify_solution, count_argument
from landscape.enumeration._krawczyk import CompiledSystem, boxes_overlap, krawczyk_complex

needs_both = pytest.mark.skipif(not (algebra_available("phc") and algebra_available("msolve")),
                                reason="needs phc (apt-get install phcpack) and msolve (extra 'algebra')")

R, x, y = ring("x,y", QQ)
# x^2 + 1 = 0, y = 2x - 1: two simple non-real roots (+-i, -1 +- 2i)
CIRCLE = CompiledSystem([x**2 + 1, y - 2 * x + 1], [x, y])
ROOTS = np.array([[1j, -1 + 2j], [-1j, -1 - 2j]])


def rounded_tasks(seed, d, T, k=1):
    return np.round(ls.random_instance(np.random.default_rng(seed), d, T, k).problem.tasks, 2)


# ----------------------------------------------------------------------------- complex Krawczyk
def test_complex_krawczyk_proves_a_simple_non_real_root():
    for root in ROOTS:
        kr = krawczyk_complex(CIRCLE, CIRCLE.newton(root + np.array([0.05 - 0.03j, 0.02j])))
        assert kr.certified and 0 < kr.radius < 1e-10
        # the exact root lies in the rectangle box
        assert np.all(np.abs((kr.center - root).real) <= kr.radius)
        assert np.all(np.abs((kr.center - root).imag) <= kr.radius)


def test_complex_krawczyk_rejects_a_box_without_a_root():
    near = ROOTS[0] + np.array([1e-3, 1e-3j])
    for r in (1e-6, 1e-4):  # boxes around near that miss the root
        assert not krawczyk_complex(CIRCLE, near, radii=[r]).certified
    # from a point far from every root no box up to the size cap passes
    assert not krawczyk_complex(CIRCLE, np.array([0.5 + 0.5j, 0.0])).certified


def test_complex_krawczyk_rejects_a_double_root():
    double = CompiledSystem([(x**2 + 1) ** 2, y - x], [x, y])  # +-i, each of multiplicity 2
    for start in (np.array([1j, 1j]), np.array([1e-9 + 1j, 1e-9 + 1j])):
        kr = krawczyk_complex(double, start)
        assert not kr.certified and kr.radius == 0.0
    for r in (1e-8, 1e-5, 1e-3):
        assert not krawczyk_complex(double, np.array([1j, 1j]), radii=[r]).certified


def test_real_centre_proves_a_real_root_and_non_real_boxes_exclude_the_reals():
    # x^2 - 2 = 0, y^2 + 1 = 0 has no real solution; x^2 - 2, y - x has two real ones
    mixed = CompiledSystem([x**2 - 2, y**2 + 1], [x, y])
    kr, kind, _ = certify_solution(mixed, np.array([1.4 + 0j, 0.9j]), 1, 2)
    assert kind == "complex" and abs(kr.center[1].imag) > kr.radius
    real = CompiledSystem([x**2 - 2, y - x], [x, y])
    kr, kind, _ = certify_solution(real, np.array([1.4 + 1e-12j, 1.4 - 1e-12j]), 1, 2)
    assert kind == "real" and np.all(kr.center.imag == 0) and abs(kr.center[0] - np.sqrt(2)) <= kr.radius


# ----------------------------------------------------------------------------- precise Newton
# (x - 3)^2 = delta^2, y = x with delta = 1e-9: two simple real roots 3 +- delta.  In floats the
# constant 9 - delta^2 is 9, so float Newton sees a double root and cannot place either one
# (it stops where it started); 256-bit Newton on the exact system can.
DELTA = QQ(1, 10**9)
CLOSE = CompiledSystem([(x - 3) ** 2 - DELTA**2, y - x], [x, y])


def _holds(kr, root):
    return abs(kr.center[0].real - root) <= kr.radius * (1 + 1e-9) + 1e-15 and np.all(kr.center.imag == 0)


def test_precise_newton_certifies_simple_roots_that_float_newton_cannot_place():
    from landscape.enumeration._complete import newton_precise

    boxes = []
    for start, root in ((3 + 1.3e-9, 3 + 1e-9), (3 - 1.7e-9, 3 - 1e-9)):
        p = np.array([start, start], dtype=complex)
        assert not krawczyk_complex(CLOSE, CLOSE.newton(p)).certified
        assert certify_solution(CLOSE, p, 1, 2, precise=False) == (None, None, [])
        q = newton_precise(CLOSE, CLOSE.newton(p))
        assert q is not None and abs(q[0].real - root) < 1e-15
        stats = {}
        kr, kind, _ = certify_solution(CLOSE, p, 1, 2, stats=stats)
        assert kind == "real" and stats == {"precise_newton": 1} and _holds(kr, root) and kr.radius < 1e-12
        boxes.append(kr)
    C, r = np.array([b.center for b in boxes]), np.array([b.radius for b in boxes])
    # the two boxes are disjoint: both simple roots listed, the degree-2 count is complete
    assert count_argument(C, r, 2)["complete"]


def test_precise_newton_gives_up_without_a_root():
    from landscape.enumeration._complete import newton_precise

    # x^2 + 1 = 0, y = x from a real start: Newton stays real and never settles; an exactly
    # singular Jacobian (x^2 = y^2 = 0 at the origin) and a non-finite start also yield None
    none_real = CompiledSystem([x**2 + 1, y - x], [x, y])
    assert newton_precise(none_real, np.array([0.3 + 0j, 0.3 + 0j])) is None
    assert newton_precise(CompiledSystem([x**2, y**2], [x, y]), np.array([0j, 0j])) is None
    assert newton_precise(CLOSE, np.array([np.nan, 3.0])) is None


def test_precise_inverse_certifies_where_a_float_inverse_cannot():
    # x + K y = 1 + K, x + (K + e) y + e (x - 1)^2 = 1 + K + e with K = 1e8, e = 1e-8: the
    # simple roots (1, 1) and (1 + 1/K, 1 - 1/K^2) have Jacobians of condition ~1e24, whose
    # float rounding is singular
    K, e = QQ(10**8), QQ(1, 10**8)
    ill = CompiledSystem([x + K * y - (1 + K), x + (K + e) * y + e * (x - 1) ** 2 - (1 + K + e)], [x, y])
    root = np.array([1.0 + 0j, 1.0 + 0j])
    assert not krawczyk_complex(ill, root).certified
    kr = krawczyk_complex(ill, root, inverse_bits=256)
    assert kr.certified and 0 < kr.radius < 1e-12
    # the same Y does not certify a box that misses the root
    assert not krawczyk_complex(ill, root + 1e-6, radii=[1e-9], inverse_bits=256).certified
    # the real test (route 1's per-point certificate) likewise
    from landscape.enumeration._krawczyk import krawczyk

    assert not krawczyk(ill, root.real).certified
    kr = krawczyk(ill, root.real, inverse_bits=256)
    assert kr.certified and 0 < kr.radius < 1e-12
    assert not krawczyk(ill, root.real + 1e-6, radii=[1e-9], inverse_bits=256).certified
    kr, kind, _ = certify_solution(ill, np.array([1.001 + 0j, 0.999 + 0j]), 1, 2)
    assert kind == "real"
    from fractions import Fraction

    # the box holds one of the two roots (checked exactly: the centre is a float)
    roots = [(Fraction(1), Fraction(1)), (1 + Fraction(1, 10**8), 1 - Fraction(1, 10**16))]
    c = [Fraction(float(v.real)) for v in kr.center]
    assert any(all(abs(ci - ri) <= Fraction(kr.radius) for ci, ri in zip(c, r)) for r in roots)
    assert certify_solution(ill, np.array([1.001 + 0j, 0.999 + 0j]), 1, 2, precise=False)[0] is None


# ----------------------------------------------------------------------------- projective chart, exact target
def test_projective_chart_maps_solutions_to_zeros_of_the_homogenized_system_and_back():
    from landscape.enumeration._param import ParamFamily, from_chart, homogenize, to_chart

    rng = np.random.default_rng(3)
    fam = ParamFamily(3, 2, (0, 1, 2))
    u = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    S = fam.fit_params(u, rng)  # u solves E(.; S)
    chart = rng.standard_normal(fam.n + 1) + 1j * rng.standard_normal(fam.n + 1)
    hom = homogenize(fam.polys(S), chart)

    def ev(point):
        return np.array([sum(c * np.prod(point ** np.array(m)) for m, c in eq.items()) for eq in hom])

    for scale in (1.0, 1e3):  # a solution of any norm is an O(1) point of the chart
        # u solves E(.; S) iff (u, 1) solves the homogeneous form; scaling u by s is S by s^2
        Ss = S * scale**2
        hs = homogenize(fam.polys(Ss), chart)
        xs = to_chart((u * scale).reshape(1, -1), chart)
        vals = np.array([sum(c * np.prod(xs[0] ** np.array(m)) for m, c in eq.items()) for eq in hs])
        assert np.max(np.abs(vals)) < 1e-9 * scale and np.max(np.abs(xs)) < 100
        assert np.allclose(from_chart(xs)[0], (u * scale).ravel(), rtol=1e-12, atol=0)
    x0 = to_chart(u.reshape(1, -1), chart)[0]
    assert np.max(np.abs(ev(x0))) < 1e-10
    # a point that does not solve the system is not a zero of its projective form
    assert np.max(np.abs(ev(to_chart((u + 0.1).reshape(1, -1), chart)[0]))) > 1e-6
    # a point at infinity (h = 0) does not map back
    assert np.all(np.isnan(from_chart(np.array([[1.0, 2.0, 0.0]]))))


def test_exact_target_scale_makes_every_coefficient_an_integer():
    from fractions import Fraction

    from landscape.enumeration._param import ParamFamily, integer_scale
    from landscape.enumeration._systems import exact_tasks

    S = exact_tasks(rounded_tasks(0, 3, 3))
    fam = ParamFamily(3, 3, (0, 1, 2))
    polys = fam.polys(S)
    lam = integer_scale(polys)
    coefs = [c for eq in polys for c in eq.values()]
    assert all(isinstance(c, Fraction) for c in coefs)
    assert all((c * lam).denominator == 1 and abs(c * lam) < 2**53 for c in coefs)
    for p in (2, 3, 5):  # the least such factor
        if lam % p == 0:
            assert any((c * (lam // p)).denominator != 1 for c in coefs)
    # the exact equations agree with the float ones, which carry a rounding error
    fl = fam.polys(np.array([[[float(v) for v in row] for row in M] for M in S]))
    assert all(abs(float(c) - fe[m]) <= 1e-15 * (1 + abs(float(c))) for eq, fe in zip(polys, fl) for m, c in eq.items())


needs_phc = pytest.mark.skipif(not algebra_available("phc"), reason="needs phc (apt-get install phcpack)")


@needs_phc
def test_projective_track_follows_the_same_paths():
    from landscape.enumeration._param import ParamFamily, load_starts, track
    from landscape.enumeration._systems import exact_tasks

    S0, reps = load_starts(3, 2)[0][(0, 1, 2)]
    fam = ParamFamily(3, 2, (0, 1, 2))
    S = exact_tasks(rounded_tasks(4, 2, 3))
    rng = np.random.default_rng(1)
    chart = rng.standard_normal(fam.n + 1) + 1j * rng.standard_normal(fam.n + 1)
    gamma = np.exp(0.7j)
    affine, _ = track(fam, S0, S, reps, gamma)
    proj, _ = track(fam, S0, S, reps, gamma, chart=chart)
    # one homotopy seen in two coordinate systems: the same end for every start
    assert np.all(np.isfinite(affine)) and np.max(np.abs(proj - affine)) < 1e-8 * (1 + np.max(np.abs(affine)))
    # a different gamma pairs the starts differently (so the comparison above is not vacuous)
    other, _ = track(fam, S0, S, reps, np.exp(2.1j), chart=chart)
    assert np.max(np.abs(other - affine)) > 1e-3


def test_certified_orbits_know_a_repeated_end_without_a_new_proof():
    from landscape.enumeration._complete import CertifiedOrbits

    sols = CertifiedOrbits(CIRCLE, 1, 2)
    assert sols.add(ROOTS[0] + 1e-3) == ("new", 0)
    # another end of the same root: the known orbit, no second box
    assert sols.add(ROOTS[0] - 2e-3j) == ("duplicate", 0)
    assert len(sols.reps) == 1
    # an end of the other root is a new orbit with its own proof
    assert sols.add(ROOTS[1] + 1e-3) == ("new", 1)
    assert sols.add(ROOTS[1] - 1e-3j) == ("duplicate", 1) and len(sols.reps) == 2


# ----------------------------------------------------------------------------- disjointness and count
def _boxes(system, starts):
    out = [krawczyk_complex(system, system.newton(s)) for s in starts]
    assert all(k.certified for k in out)
    return np.array([k.center for k in out]), np.array([k.radius for k in out])


def test_count_argument_complete_only_at_the_degree():
    C, r = _boxes(CIRCLE, ROOTS + 1e-3)
    assert boxes_overlap(C, r) == []
    ok = count_argument(C, r, 2)
    assert ok["complete"] and ok["missing"] == 0
    # one certified solution dropped (tampered list): one missing, not complete
    short = count_argument(C[:1], r[:1], 2)
    assert not short["complete"] and short["missing"] == 1
    # a degree larger by one (a solution the list lacks, or a double one): not complete
    more = count_argument(C, r, 3)
    assert not more["complete"] and more["missing"] == 1
    # more boxes than the degree: an inconsistent degree, nothing concluded
    assert not count_argument(C, r, 1)["complete"]
    assert not count_argument(C, r, None)["complete"]


def test_two_boxes_for_one_root_are_not_counted_twice():
    C, r = _boxes(CIRCLE, [ROOTS[0] + 1e-3, ROOTS[0] - 2e-3j, ROOTS[1]])
    # both boxes of the first root hold it: they overlap, and the count refuses them
    assert (0, 1) in boxes_overlap(C, r)
    out = count_argument(C, r, 3)
    assert not out["complete"] and out["overlapping_pairs"] >= 1
    # shifted off the root by more than the radii, they are disjoint (and no longer both certified)
    C2 = C.copy()
    C2[1] = C2[0] + 3 * (r[0] + r[1]) * 1j
    assert boxes_overlap(C2, r) == []


def test_disjointness_sweep_matches_the_pairwise_definition():
    rng = np.random.default_rng(5)
    for _ in range(20):
        n = int(rng.integers(2, 40))
        C = np.round(rng.standard_normal((n, 3)) + 1j * rng.standard_normal((n, 3)), 1)
        r = rng.uniform(0.01, 0.2, n)
        brute = sorted((i, j) for i in range(n) for j in range(i + 1, n)
                       if not np.any(np.abs(np.concatenate([(C[i] - C[j]).real, (C[i] - C[j]).imag]))
                                     > (r[i] + r[j]) * (1 + 1e-12)))
        # the sweep may only add pairs within its float margin, never miss one
        got = boxes_overlap(C, r)
        assert set(brute) <= set(got)
        extra = set(got) - set(brute)
        for i, j in extra:
            gap = np.max(np.abs(np.concatenate([(C[i] - C[j]).real, (C[i] - C[j]).imag])))
            assert gap <= (r[i] + r[j]) * (1 + 1e-11) + 1e-11


def test_sign_copy_with_a_zero_block_inside_its_box_overlaps():
    c = np.array([1.0, 2.0, 1e-12, -1e-12], dtype=complex)  # the second block is ~0
    flipped = c.copy()
    flipped[2:] *= -1
    assert boxes_overlap(np.array([c, flipped]), np.array([1e-10, 1e-10])) == [(0, 1)]


# ----------------------------------------------------------------------------- live
@pytest.fixture(scope="module")
def both231():
    if not (algebra_available("phc") and algebra_available("msolve")):
        pytest.skip("needs phc and msolve")
    tasks = rounded_tasks(0, 2, 3)
    return tasks, enumerate_critical_points(tasks, 1, routes=("phc",)), enumerate_critical_points(tasks, 1)


@needs_both
def test_phc_alone_is_complete_and_lists_route_1s_points(both231):
    _tasks, r2, r1 = both231
    ph = r2.data["routes"]["phc"]
    assert r2.complete and r1.complete
    assert ph["certified_complex_solutions"] == ph["u_system_degree"] == r2.data["degree"]
    assert ph["overlapping_pairs"] == 0 and ph["missing"] == 0
    assert r2.data["real_critical_points"] == r1.data["real_critical_points"]
    assert r2.data["orbits"] == r1.data["orbits"]
    assert r2.data["counts_by_class"] == r1.data["counts_by_class"]
    # the same orbits: sign-invariant X_t = u_t u_t^T agree one to one
    key = lambda U: np.einsum("til,tjl->tij", U, U).ravel()  # noqa: E731
    k1 = [key(np.asarray(U)) for U in r1.points]
    for U in r2.points:
        assert min(np.max(np.abs(key(np.asarray(U)) - q)) for q in k1) < 1e-9
    assert all(o["certified"] and o["matches_msolve_box"] is None for o in r2.data["orbit_list"])


@needs_both
def test_phc_alone_count_fails_when_a_certified_end_is_dropped(both231):
    from landscape.enumeration._complete import homotopy_enumeration
    from landscape.enumeration._core import _Square
    from landscape.enumeration._systems import exact_tasks

    tasks, r2, _ = both231
    S = exact_tasks(tasks)
    deg = r2.data["degree"]
    route, sols = homotopy_enumeration(_Square(S, 3, 2, 1), S, 3, 2, seed=0, timeout=120, degree=deg)
    assert route["complete"]
    C, r = sols.boxes()
    j = int(np.argmax(np.abs(C).max(axis=1)))
    tampered = count_argument(np.delete(C, j, axis=0), np.delete(r, j), deg)
    assert not tampered["complete"] and tampered["missing"] == 1
    assert not count_argument(C, r, deg + 1)["complete"]


@needs_both
def test_phc_alone_refuses_sizes_without_a_start_file_and_the_cli_runs_it(tmp_path):
    from landscape.__main__ import main
    from landscape._validation import LandscapeInputError

    with pytest.raises(LandscapeInputError, match="start file"):
        enumerate_critical_points(rounded_tasks(0, 2, 2), 1, routes=("phc",))  # T = 2
    with pytest.raises(LandscapeInputError, match="start file"):
        enumerate_critical_points(rounded_tasks(0, 3, 3, 2), 2, routes=("phc",))  # k = 2
    f = tmp_path / "tasks.json"
    f.write_text(json.dumps({"tasks": rounded_tasks(0, 2, 3).tolist()}))
    out = tmp_path / "out"
    assert main(["enumerate", str(f), "--rank", "1", "--route", "phc", "--out", str(out), "-q"]) == 0
    data = json.loads((out / "enumeration.json").read_text())
    assert data["complete"] and set(data["routes"]) == {"phc"}
    assert data["complex_solutions_certified"] == data["degree"]
    f2 = tmp_path / "two.json"
    f2.write_text(json.dumps({"tasks": rounded_tasks(0, 2, 2).tolist()}))
    assert main(["enumerate", str(f2), "--rank", "1", "--route", "phc", "-q"]) == 2


@pytest.mark.skipif(os.environ.get("LORAML_SLOW") != "1", reason="live (4, 3, 1) run (minutes): set LORAML_SLOW=1")
@needs_both
def test_live_431_count_is_consistent_with_the_record():
    """The seed-0 (4, 3, 1) run (minutes): the verdict follows the count, no two boxes
    overlap, and at least the certified points of the committed record are found again."""
    from pathlib import Path

    rows = json.loads((Path(__file__).resolve().parents[1] / "landscape" / "results" / "enumeration_sizes.json")
                      .read_text())["rows"]
    rec = next(r for r in rows if r["size"] == [4, 3, 1] and r.get("route") == "phc alone" and r["seed"] == 0
               and r.get("instance") == "m1")
    r = enumerate_critical_points(rounded_tasks(0, 4, 3), 1, routes=("phc",), threads=2)
    ph = r.data["routes"]["phc"]
    assert ph["overlapping_pairs"] == 0
    assert ph["missing"] == ph["u_system_degree"] - ph["certified_complex_solutions"]
    assert r.complete == (ph["missing"] == 0)
    assert ph["certified_complex_solutions"] >= rec["certified_complex_solutions"]
    assert r.data["real_critical_points"] >= rec["real_critical_points"]
    if rec["complete"]:  # a record proved complete must be proved again, with the same list
        assert r.complete and r.data["real_critical_points"] == rec["real_critical_points"]
        assert r.data["counts_by_class"] == rec["counts_by_class"]


def _effort_is_what_the_loop_did(ph):
    """The phc route's effort fields against the loop that made them: per support one attempt
    per try, every start orbit tracked once per try, the last attempt's count the support's,
    a projective re-track of exactly the paths its attempt sent back (the lost, failed,
    duplicate and off-support ends, plus at most one earlier owner per duplicate), and a
    double-double re-track of what that one sent back in turn; the new orbits of the
    re-tracks add up to the route's counts of them."""
    lost, proj_new, dd_new = 0, 0, 0

    def sent(o):
        return o["lost"] + o["failed"] + o["duplicate"] + o["other_support"]

    for s in ph["per_support"]:
        assert len(s["attempts"]) == s["tries"] >= 1
        assert s["paths_tracked"] == s["tries"] * s["start_orbits"]
        assert s["attempts"][-1]["certified_orbits"] == s["certified_orbits"] == s["start_orbits"]
        assert s["double_double_paths"] == sum(a.get("double_double", {}).get("paths", 0) for a in s["attempts"])
        assert s["projective_paths"] == sum(a.get("projective", {}).get("paths", 0) for a in s["attempts"])
        for a in s["attempts"]:
            o = a["double"]
            lost += o["lost"]
            if "projective" in a:
                assert sent(o) <= a["projective"]["paths"] <= sent(o) + o["duplicate"]
                proj_new += a["projective"]["new_orbits"]
                o = a["projective"]
            if "double_double" in a:
                assert sent(o) <= a["double_double"]["paths"] <= sent(o) + o["duplicate"]
                dd_new += a["double_double"]["new_orbits"]
    assert ph["paths"] == sum(s["paths_tracked"] + s["double_double_paths"] + s["projective_paths"]
                              for s in ph["per_support"])
    assert ph["lost_paths"] == lost
    assert ph["new_orbits_by_mechanism"]["projective_retrack"] == proj_new
    assert ph["new_orbits_by_mechanism"]["projective_double_double"] == dd_new


@needs_both
def test_phc_alone_reports_its_tracking_effort_exactly(both231):
    _effort_is_what_the_loop_did(both231[1].data["routes"]["phc"])


@needs_both
def test_phc_alone_is_complete_at_331_with_the_committed_points():
    # the (3, 3, 1) instance of the two-route agreement record: route 2 alone must prove the
    # list complete by counting (1095 = the U-system's degree) and list the very points that
    # msolve's route certified there, every sign copy matched
    from pathlib import Path

    rec = json.loads((Path(__file__).resolve().parents[1] / "landscape/results/enumeration_agreement.json")
                     .read_text())["instances"][0]
    assert rec["instance"] == {"T": 3, "d": 3, "k": 1}
    res = enumerate_critical_points(np.array(rec["tasks"]), 1, routes=("phc",))
    ph = res.data["routes"]["phc"]
    assert res.complete and ph["certified_complex_solutions"] == ph["u_system_degree"] == 1095
    assert ph["overlapping_pairs"] == 0 and ph["missing"] == 0
    ref = rec["msolve"]
    assert res.data["real_critical_points"] == ref["real_critical_points"] == 83
    assert res.data["orbits"] == ref["orbits"] == 18 and res.data["counts_by_class"] == ref["counts_by_class"]
    centers = np.array([p["center"] for p in ref["points"]])
    assert len(centers) == 83
    for U in res.points:
        assert np.min(np.max(np.abs(centers - np.asarray(U).ravel()[None]), axis=1)) < 1e-8
    _effort_is_what_the_loop_did(ph)
