"""One Python API convention (issue 19, section 1): the rank keyword is ``k``, sizes come
in the order (d, T, k), randomness is a seed or a Generator, results have accessors and a
short repr; the old forms keep working with a DeprecationWarning."""
import dataclasses
import inspect
import warnings

import numpy as np
import pytest

import landscape as ls
import theory
from landscape._random import accepts_seed, renamed_keyword


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------- seeds and Generators
def test_as_generator_uses_a_generator_as_it_is_and_seeds_reproducibly():
    rng = np.random.default_rng(3)
    assert ls.as_generator(rng) is rng
    a, b = ls.as_generator(11).standard_normal(4), np.random.default_rng(11).standard_normal(4)
    assert np.array_equal(a, b)
    ss = np.random.SeedSequence(5)
    assert np.array_equal(ls.as_generator(ss).random(3), np.random.default_rng(np.random.SeedSequence(5)).random(3))
    assert ls.as_generator(np.int64(4)).random() == np.random.default_rng(4).random()


@pytest.mark.parametrize("bad", [None, 1.5, True, "3", np.random.RandomState(0)])
def test_as_generator_refuses_what_is_not_a_seed(bad):
    with pytest.raises(TypeError, match="integer >= 0 or a numpy.random.Generator"):
        ls.as_generator(bad)


def test_negative_seed_is_bad_input():
    with pytest.raises(ls.LandscapeInputError, match="-1"):
        ls.as_generator(-1)
    with pytest.raises(ls.LandscapeInputError):
        ls.seed_from(-1)


def test_seed_from_draws_from_the_generator_stream():
    assert ls.seed_from(42) == 42
    x, y = ls.seed_from(np.random.default_rng(9)), ls.seed_from(np.random.default_rng(9))
    assert x == y and 0 <= x < 2**63 - 1
    rng = np.random.default_rng(9)
    ls.seed_from(rng)
    assert ls.seed_from(rng) != x  # the stream advanced


def test_random_instance_same_from_seed_and_generator(no_warnings):
    a = ls.random_instance(7, 6, 3, 2)
    b = ls.random_instance(np.random.default_rng(7), 6, 3, 2)
    assert np.array_equal(a.A_star, b.A_star) and np.array_equal(a.U_star, b.U_star)
    assert a.size == ls.Size(d=6, T=3, k=2) == (6, 3, 2)


def _public_functions_with_rng():
    """``(module, name, function)`` of every function in the ``__all__`` of a public package
    or subpackage of ``landscape`` and ``theory`` (``landscape.certificates``, ...) and of
    every registered check, whose signature has an ``rng`` parameter."""
    return [(mod, name, f) for mod, name, f in _public_functions()
            if "rng" in inspect.signature(inspect.unwrap(f)).parameters]


def _public_functions():
    """``(module, name, function)`` of every function in the ``__all__`` of a public package
    or subpackage of ``landscape`` and ``theory`` and of every registered check."""
    import importlib
    import pkgutil

    from theory._registry import REGISTRY

    mods = [ls, theory]
    with warnings.catch_warnings():  # the deprecated import paths re-export what they name
        warnings.simplefilter("ignore", DeprecationWarning)
        for pkg in (ls, theory):
            mods += [importlib.import_module(m.name) for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")
                     if not any(part.startswith("_") for part in m.name.split("."))]
    found = {(mod.__name__, name): getattr(mod, name) for mod in mods for name in getattr(mod, "__all__", [])}
    found.update({("theory registry", c.id): c.func for c in REGISTRY})
    return [(mod, name, f) for (mod, name), f in sorted(found.items()) if inspect.isfunction(f)]


#: Functions that convert their ``rng`` themselves (checked by behaviour above).
CONVERT_INTERNALLY = {"random_instance"}


def test_every_public_function_that_draws_random_numbers_takes_a_seed():
    """Wrapped by accepts_seed itself (its wrapper's code object, not any functools.wraps
    decorator), or converting internally; subpackages (certificates: find_witness,
    fp_taylor_certificate) and registered checks (the enumeration check) included."""
    wrapper = accepts_seed()(lambda rng: None).__code__
    found = _public_functions_with_rng()
    assert len(found) >= 40 and any(m == "theory registry" for m, _, _ in found)
    missing = [f"{m}.{n}" for m, n, f in found if n not in CONVERT_INTERNALLY and f.__code__ is not wrapper]
    assert not missing, missing


def test_tolerances_of_public_functions_are_keyword_only():
    """A tolerance (``tol``, ``rtol``, ``atol``, ``*_tol``, ``*_rtol``, ``tolerance``) is never
    taken by position: a number slipped into the wrong slot would pass silently as a threshold
    (symmetry_tangent_basis(U, 1e-3) is a TypeError, not a rank cut at 1e-3)."""
    import re

    found = [(m, n, p.name, p.kind) for m, n, f in _public_functions()
             for p in inspect.signature(inspect.unwrap(f)).parameters.values()
             if re.fullmatch(r"(?:[a-z_]*_)?(?:r|a)?tol|tolerance", p.name)]
    assert ("landscape", "symmetry_tangent_basis", "rtol", inspect.Parameter.KEYWORD_ONLY) in found
    assert len(found) >= 3
    positional = [f"{m}.{n}({p})" for m, n, p, kind in found if kind is not inspect.Parameter.KEYWORD_ONLY]
    assert not positional, positional
    U = np.random.default_rng(0).standard_normal((3, 4, 2))
    with pytest.raises(TypeError):
        ls.symmetry_tangent_basis(U, 1e-3)


#: Public functions whose first defaulted parameters may be given by position (their
#: documented call forms, e.g. ``audit(tasks, k)``, ``f1_point(s1, s2, d)``); every other
#: option of a public function is keyword-only.
POSITIONAL_OPTIONS = {
    "audit": {"k"}, "curvature_mode": {"requested"}, "epsilon_net_certificate": {"r", "eps"},
    "f1_instance": {"d"}, "f1_point": {"s1", "s2", "d"}, "quotient_hessian": {"A"}, "smallest_eigenpairs": {"n"},
    "thm33_counterexample_minimiser": {"U_star"}, "algebra_available": {"route"}, "get_executor": {"name"},
    "check_output_dir": {"what"}, "check_output_file": {"what"}, "finish_parser": {"version"}, "cli_main": {"argv"},
    "excerpt": {"limit"}, "random_okk": {"scale"}, "reps_for_power": {"rel_bias"}, "run": {"ids"}}


def test_public_functions_take_their_options_by_keyword():
    """No public function has positional-only parameters, and a parameter with a default is
    keyword-only except the listed call forms: an option cannot be filled by a stray positional
    argument (enumerate_critical_points(tasks, k, ("phc",)) is a TypeError)."""
    found = _public_functions()
    assert len(found) >= 150
    for mod, name, f in found:
        params = inspect.signature(inspect.unwrap(f)).parameters.values()
        assert not [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_ONLY], f"{mod}.{name}"
        positional = {p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
                      and p.default is not inspect.Parameter.empty}
        assert positional <= POSITIONAL_OPTIONS.get(name, set()), f"{mod}.{name}: {sorted(positional)}"
    import landscape.enumeration as E

    with pytest.raises(TypeError):
        E.enumerate_critical_points(np.zeros((2, 2, 2)), 1, ("phc",))


def test_accepts_seed_converts_positional_and_keyword_and_keeps_none_defaults():
    @accepts_seed()
    def f(x, rng=None):
        return rng

    assert f(1) is None
    assert isinstance(f(1, 5), np.random.Generator) and isinstance(f(1, rng=5), np.random.Generator)
    assert f(1, 5).random() == np.random.default_rng(5).random()
    g = np.random.default_rng(0)
    assert f(1, g) is g

    @accepts_seed()
    def h(rng):
        return rng

    with pytest.raises(TypeError):
        h(None)  # no default None: None is not a seed


def test_theory_checks_take_a_seed(no_warnings):
    a = theory.check_thm31(4, sizes=[(5, 2, 1)], draws=500)
    b = theory.check_thm31(np.random.default_rng(4), sizes=[(5, 2, 1)], draws=500)
    assert a.cases[0].measured == b.cases[0].measured


# ---------------------------------------------------------------- one size order
def test_old_size_order_warns_and_means_the_same(no_warnings):
    new = theory.check_thm31(1, sizes=[(6, 4, 2)], draws=500)
    with pytest.warns(DeprecationWarning, match=r"\(d, T, k\)"):
        old = theory.check_thm31(1, configs=[(6, 2, 4)], draws=500)   # (d, k, T)
    assert old.cases[0].measured == new.cases[0].measured
    assert old.cases[0].predicted == new.cases[0].predicted == 126.0
    with pytest.raises(TypeError, match="both"):
        theory.check_thm31(1, sizes=[(6, 4, 2)], configs=[(6, 2, 4)])


@pytest.mark.parametrize("formula, d, T, k", [
    (theory.thm31_expected_sr_loss, 6, 4, 2), (theory.prop1_needed_rank, 12, 4, 2),
    (theory.lora_ml_needed_rank, 12, 2, 3),
])
def test_closed_forms_by_keyword_and_old_positional_order(formula, d, T, k):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = formula(d=d, T=T, k=k)
    with pytest.warns(DeprecationWarning, match="d=..., T=..., k="):
        old = formula(d, k, T)
    assert old == new
    # the order matters for these formulas: a swapped keyword call differs
    assert formula(d=d, T=k, k=T) != new


def test_checks_call_injected_formulas_by_keyword():
    seen = []

    def expected(*, d, T, k):
        seen.append((d, T, k))
        return (T - 1) * k * d * (d + 1) / 2

    assert theory.check_thm31(0, sizes=[(5, 2, 1)], draws=500, expected=expected).passed
    assert seen == [(5, 2, 1)]


def test_sizes_tuples_in_landscape_use_d_T_k():
    inst = ls.random_instance(0, 9, 4, 2)
    assert inst.U_star.shape == (4, 9, 2) and inst.size == (9, 4, 2)
    assert list(inspect.signature(ls.estimate_audit_cost).parameters)[:3] == ["d", "T", "k"]


# ---------------------------------------------------------------- the rank keyword
def test_audit_rank_keyword_warns_and_gives_the_same_report():
    inst = ls.random_instance(0, 5, 3, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = ls.audit(inst, k=1, starts=3, seed=0, plots=False, certify=False)
    with pytest.warns(DeprecationWarning, match=r"audit\(rank=...\) is deprecated, use k="):
        old = ls.audit(inst, rank=1, starts=3, seed=0, plots=False, certify=False)
    assert old.data["summary"] == new.data["summary"]
    with pytest.raises(TypeError, match="only k="):
        ls.audit(inst, 1, rank=1)
    with pytest.raises(TypeError, match="rank k"):
        ls.audit(inst)
    assert renamed_keyword("f", "rank", "k", None, 3) == 3


def test_audit_takes_a_generator_and_records_the_integer_it_drew(no_warnings):
    inst = ls.random_instance(0, 5, 3, 1)
    a = ls.audit(inst, 1, starts=3, seed=np.random.default_rng(2), plots=False, certify=False)
    s = int(np.random.default_rng(2).integers(2**63 - 1))
    assert a.data["settings"]["seed"] == s
    b = ls.audit(inst, 1, starts=3, seed=s, plots=False, certify=False)
    assert a.data["runs"] == b.data["runs"]
    with pytest.raises(ls.LandscapeInputError, match="^seed must be") as info:
        ls.audit(inst, 1, starts=3, seed=-2)
    assert "--" not in str(info.value)  # no command-line flag in a Python error


# ---------------------------------------------------------------- F.2 and result objects
def test_f2_instance_unpacks_and_is_accepted_as_tasks():
    f2 = ls.f2_spurious_instance()
    inst, U0 = f2
    assert isinstance(inst, ls.PlantedInstance) and U0.shape == (3, 3, 1)
    assert np.array_equal(f2.tasks, inst.tasks) and f2.problem.k == 1
    rep = ls.audit(f2, 1, starts=2, seed=0, extra_starts=U0[None], plots=False)
    assert rep.data["input"]["truth_known"]
    cert_pairs = rep.certified_spurious()
    assert cert_pairs and all(c["kind"] == "spurious_candidate" for c, _ in cert_pairs)
    with pytest.raises(ls.LandscapeInputError, match="pair"):
        ls.audit((inst, U0), 1)
    with pytest.raises(ls.LandscapeInputError, match="tasks"):
        ls.audit([[1.0, 2.0], [3.0]], 1)


def test_audit_report_accessors_agree_with_its_data_and_repr_is_short(tmp_path):
    f2 = ls.f2_spurious_instance()
    rep = ls.audit(f2, 1, starts=6, seed=0, extra_starts=f2.U0[None], out=tmp_path / "a", plots=False)
    text = repr(rep)
    assert len(text) < 300 and "\n" not in text and text.startswith("AuditReport(d=3, T=3, k=1")
    assert rep.counts == rep.data["summary"]["counts"]
    assert rep.global_minimum_found is rep.data["summary"]["global_minimum_found"]
    assert rep.agrees is rep.data["theory"]["agrees"]
    assert len(rep.class_entries()) == len(rep.data["classes"]) == len(rep.classes)
    assert {c["kind"] for c in rep.class_entries("strict_saddle")} <= {"strict_saddle"}
    # a kind built at run time (not the interned literal) and a report read back from its
    # JSON select the same entries: kinds are compared by value
    import json

    built = "".join(["spurious", "_candidate"])
    want = [c for c in rep.data["classes"] if c["kind"] == "spurious_candidate"]
    assert want and rep.class_entries(built) == want
    loaded = dataclasses.replace(rep, data=json.loads((tmp_path / "a" / "report.json").read_text()))
    assert [c["id"] for c in loaded.class_entries("spurious_candidate")] == [c["id"] for c in want]
    certified = rep.certified_spurious()
    assert len(certified) == rep.data["summary"]["certified_spurious"]
    for entry, cert in certified:
        assert rep.certificate(entry["id"]) is cert and cert.verify()
    # Certificate.from_json reads report.json's class entry, its certificate entry or the text
    import json

    data = json.loads((tmp_path / "a" / "report.json").read_text())
    entry = next(c for c in data["classes"] if c["certificate"])
    inner = entry["certificate"]["certificate"]
    for form in (entry, entry["certificate"], json.dumps(entry), inner, json.dumps(inner)):
        cert = ls.Certificate.from_json(form)
        assert cert.verify() and np.array_equal(cert.point, ls.Certificate.from_dict(inner).point)
    with pytest.raises(ValueError):
        ls.Certificate.from_json({"certificate": None, "status": "uncertified"})


def test_loss_relative_is_the_same_for_scaled_tasks():
    f2 = ls.f2_spurious_instance()
    a = ls.audit(f2.tasks, 1, starts=4, seed=0, extra_starts=f2.U0[None], plots=False, certify=False)
    b = ls.audit(f2.tasks * 1e150, 1, starts=4, seed=0, extra_starts=f2.U0[None] * 1e75, plots=False,
                 certify=False)
    ra = sorted(c["loss_relative"] for c in a.data["classes"] if c["kind"] != "global_minimum")
    rb = sorted(c["loss_relative"] for c in b.data["classes"] if c["kind"] != "global_minimum")
    assert ra and np.allclose(ra, rb, rtol=1e-6, atol=0)
    # G / G(0) is G divided by T s^2 / 2 in the user's units
    s = a.data["input"]["scale"]
    for c in a.data["classes"]:
        assert c["loss_relative"] == pytest.approx(c["loss"] / (0.5 * 3 * s**2), rel=1e-12, abs=1e-300)


def test_short_reprs_of_results():
    inst = ls.random_instance(0, 5, 3, 1)
    U = inst.U_star + 0.1
    spec = ls.reduced_spectrum(inst.problem, U)
    for obj in (spec, ls.taylor_check(inst.problem.reduced_loss_flat, inst.problem.reduced_grad_flat,
                                      ls.vec_factors(U), rng=0),
                inst, ls.f2_spurious_instance(), theory.check_thm31(0, sizes=[(5, 2, 1)], draws=200),
                *ls.search(inst.problem, rng=0, n_starts=1, methods=["lbfgs"]),
                ls.taylor_certificate(ls.f2_spurious_instance().problem, ls.f2_spurious_instance().U0)):
        text = repr(obj)
        assert len(text) < 300 and "\n" not in text and "array(" not in text, text
