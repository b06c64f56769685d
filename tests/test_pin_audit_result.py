"""landscape._audit.result pinned: the audit report's accessors say exactly what report.json
says (agrees is None whenever no theorem applies, whatever the stored flag), only certified
certificates of spurious-candidate classes count as certified spurious minima, and the
one-line repr names the verdict (CONTRADICTS in capitals) within 300 characters.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from landscape._audit.result import AuditReport
from landscape._classify import GLOBAL_MINIMUM, SPURIOUS_CANDIDATE, STRICT_SADDLE


def _report(*, applicable=True, agrees=True, counts=None, classes=None, certificates=None, source="x"):
    counts = {GLOBAL_MINIMUM: 3, STRICT_SADDLE: 0, SPURIOUS_CANDIDATE: 1} if counts is None else counts
    data = {"input": {"d": 4, "T": 3, "k": 1, "source": source},
            "summary": {"counts": counts, "global_minimum_found": bool(counts.get(GLOBAL_MINIMUM)), "n_runs": 4,
                        "n_classes": 2, "certified_spurious": 1},
            "theory": {"applicable": applicable, "agrees": agrees, "not_applicable_reason": "why"},
            "classes": classes if classes is not None else [{"id": 0, "kind": GLOBAL_MINIMUM}, {"id": 1, "kind": SPURIOUS_CANDIDATE}]}
    return AuditReport(data, "md", (), None, (), (), (), certificates or {})


@pytest.mark.parametrize("applicable, stored, agrees", [(True, True, True), (True, False, False),
                                                         (False, True, None), (False, False, None), (False, None, None)])
def test_agrees_is_the_stored_verdict_only_where_a_theorem_applies(applicable, stored, agrees):
    assert _report(applicable=applicable, agrees=stored).agrees is agrees


def test_accessors_read_report_json():
    r = _report()
    assert r.counts == {GLOBAL_MINIMUM: 3, STRICT_SADDLE: 0, SPURIOUS_CANDIDATE: 1}
    r.counts[GLOBAL_MINIMUM] = 0  # a copy: the report is not changed through it
    assert r.data["summary"]["counts"][GLOBAL_MINIMUM] == 3
    assert r.global_minimum_found is True and r.summary is r.data["summary"] and r.theory is r.data["theory"]
    assert _report(counts={GLOBAL_MINIMUM: 0}).global_minimum_found is False
    assert [c["id"] for c in r.class_entries()] == [0, 1]
    assert [c["id"] for c in r.class_entries(SPURIOUS_CANDIDATE)] == [1]
    assert [c["id"] for c in r.class_entries(GLOBAL_MINIMUM)] == [0]  # its kind only, not those sorting after
    assert r.class_entries(STRICT_SADDLE) == []


def test_only_certified_certificates_of_spurious_candidates_count():
    yes, no = SimpleNamespace(certified=True), SimpleNamespace(certified=False)
    classes = [{"id": 0, "kind": GLOBAL_MINIMUM}, {"id": 1, "kind": SPURIOUS_CANDIDATE},
               {"id": 2, "kind": SPURIOUS_CANDIDATE}, {"id": 3, "kind": SPURIOUS_CANDIDATE}]
    r = _report(classes=classes, certificates={0: yes, 1: yes, 2: no, 3: None})
    assert [(c["id"], cert) for c, cert in r.certified_spurious()] == [(1, yes)]
    assert r.certificate(2) is no and r.certificate("1") is yes and r.certificate(9) is None
    assert _report(classes=classes, certificates={1: SimpleNamespace()}).certified_spurious() == []


@pytest.mark.parametrize("applicable, agrees, words", [(True, True, "agrees with theory"),
                                                       (True, False, "CONTRADICTS theory"),
                                                       (False, True, "no theorem applies")])
def test_repr_names_the_verdict(applicable, agrees, words):
    text = repr(_report(applicable=applicable, agrees=agrees))
    assert text == (f"AuditReport(d=4, T=3, k=1: 4 runs -> 2 classes; 3 global minimum, 1 spurious candidate; "
                    f"certified spurious: 1; {words})")
    assert str(_report(applicable=applicable, agrees=agrees)) == text


def test_repr_of_nothing_found_and_its_length_limit():
    assert "; nothing found; " in repr(_report(counts={GLOBAL_MINIMUM: 0}))
    many = {f"kind_{i:03d}_with_a_long_name": i + 1 for i in range(40)}
    text = repr(_report(counts=many))
    assert len(text) == 300 and text.endswith("...)")
    short = repr(_report())
    assert len(short) < 300 and not short.endswith("...)")


def test_repr_of_exactly_300_characters_is_kept_and_301_is_cut():
    def text_with(n: int):
        return repr(_report(counts={"x" * n: 1}))

    base = len(text_with(0))
    exact = text_with(300 - base)
    assert len(exact) == 300 and not exact.endswith("...)")
    over = text_with(301 - base)
    full = exact.replace("x" * (300 - base), "x" * (301 - base))  # the 301 characters it would have been
    assert len(full) == 301 and over == full[:296] + "...)"


def test_reports_compare_by_identity_and_are_hashable():
    """A report holds arrays and search results: it is one object, compared by identity
    (a generated field-by-field __eq__ would compare arrays ambiguously) and usable as a key."""
    a, b = _report(), _report()
    assert a == a and a != b and len({a, b}) == 2 and hash(a) == hash(a)
