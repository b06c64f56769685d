"""The certificate object (``landscape/certificates/data.py``): frozen, its JSON form is
exact for every bound including the infinite (trivial) ones, an entry that holds no
certificate says so, and a certificate that cannot be re-verified reads False, never an
exception."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from landscape.certificates import data as D


def _cert(**kw):
    base = dict(kind="taylor", tasks=np.arange(8.0).reshape(2, 2, 2), rank=1, point=np.ones((2, 2, 1)), radius=0.125,
                verdict=D.VERDICT_NONE, reason="nothing claimed",
                enclosures={"G": (-math.inf, math.inf), "grad_norm": (0.0, 0.5)},
                bounds={"grad_norm_upper": math.inf, "lambda_min_lower": -math.inf, "G_upper": 2.5,
                        "G_lower": -1.5},
                margins={"m": -math.inf, "n": 0.25}, parameters={"precision": 256}, witness=None, diagnostics={})
    base.update(kw)
    return D.Certificate(**base)


def test_json_round_trip_keeps_every_bound_including_the_infinite_ones():
    c = _cert()
    back = D.Certificate.from_json(c.to_json())
    assert dict(back.bounds) == {"grad_norm_upper": math.inf, "lambda_min_lower": -math.inf, "G_upper": 2.5,
                                 "G_lower": -1.5}
    assert dict(back.enclosures) == {"G": (-math.inf, math.inf), "grad_norm": (0.0, 0.5)}
    assert dict(back.margins) == {"m": -math.inf, "n": 0.25}
    assert np.array_equal(back.tasks, c.tasks) and np.array_equal(back.point, c.point) and back.radius == 0.125


def test_an_entry_without_a_certificate_says_so():
    with pytest.raises(ValueError, match="holds no certificate"):
        D.Certificate.from_json({"certificate": None})
    with pytest.raises(ValueError, match="holds no certificate"):
        D.Certificate.from_json('{"id": 3, "certificate": null}')
    nested = {"certificate": {"certificate": _cert().to_dict()}}  # a report class entry
    assert D.Certificate.from_json(nested).reason == "nothing claimed"


def test_a_certificate_is_frozen():
    c = _cert()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.radius = 1.0
    with pytest.raises(ValueError):
        c.point[0, 0, 0] = 2.0  # read-only array
    with pytest.raises(TypeError):
        c.bounds["G_upper"] = 0.0  # read-only mapping


def test_a_kind_without_a_registered_verifier_reads_not_verified(monkeypatch):
    c = _cert()
    monkeypatch.setattr(D, "_VERIFIERS", {})
    assert D.verify_certificate(c) is False


def test_too_large_takes_its_numbers_by_keyword_only():
    err = D.CertificateTooLarge("too big", kind="taylor", estimate=12.0, budget=10.0)
    assert (err.kind, err.estimate, err.budget, str(err)) == ("taylor", 12.0, 10.0, "too big")
    with pytest.raises(TypeError):
        D.CertificateTooLarge("too big", "taylor", 12.0, 10.0)


def test_float_certificates_store_their_arrays_as_exact_float64_bytes():
    """A taylor_fp certificate's arrays travel as base64 float64 (exact and compact) and come
    back bit for bit; another kind's as lists; an array of another dtype is refused."""
    import json

    rng = np.random.default_rng(0)
    tasks, point = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 3, 1))
    fp = _cert(kind="taylor_fp", tasks=tasks, point=point, witness=point[::-1].copy())
    stored = json.loads(fp.to_json())
    arrays = [v for v in stored.values() if isinstance(v, dict) and "dtype" in v]
    assert len(arrays) == 3 and all(a["dtype"] in ("<f8", "float64") for a in arrays)
    back = D.Certificate.from_json(fp.to_json())
    assert np.array_equal(back.tasks, tasks) and np.array_equal(back.point, point)
    assert np.array_equal(back.witness, point[::-1])
    plain = json.loads(_cert(tasks=tasks).to_json())
    assert isinstance(plain["tasks"], list)
    bad = dict(stored)
    key = next(k for k, v in stored.items() if isinstance(v, dict) and "dtype" in v)
    bad[key] = dict(stored[key], dtype="<f4")
    with pytest.raises(ValueError, match="certificate arrays must be float64"):
        D.Certificate.from_json(json.dumps(bad))


@pytest.mark.parametrize("version, ok", [(1, True), (1.0, False), (True, False), ("1", False), (2, False),
                                         (0, False), (None, False)])
def test_only_the_integer_version_is_read(version, ok):
    # JSON's true and 1.0 equal 1 in Python; neither names the format's version
    assert D.JSON_VERSION == 1
    doc = {**_cert().to_dict(), "version": version}
    if ok:
        assert D.Certificate.from_json(doc).radius == 0.125
    else:
        with pytest.raises(ValueError, match=f"unsupported certificate version {version!r}$"):
            D.Certificate.from_json(doc)
    if version is not None:
        text = _cert().to_json().replace('"version": 1', '"version": ' + __import__("json").dumps(version))
        assert ('"version": 1,' in text or '"version": 1}' in text) is ok
        if not ok:
            with pytest.raises(ValueError, match="unsupported certificate version"):
                D.Certificate.from_json(text)


@pytest.mark.parametrize("doc, message", [
    ({}, "not a loraml-certificate document \\(format=None\\)"),
    ({"kind": "taylor"}, "not a loraml-certificate document \\(format=None\\)"),
    ("[]", "not a loraml-certificate document \\(a JSON list, not an object\\)"),
    ("3", "not a loraml-certificate document \\(a JSON int, not an object\\)"),
    ({"format": "other", "version": 1}, "format='other'"),
])
def test_a_document_that_is_no_certificate_says_what_it_is(doc, message):
    with pytest.raises(ValueError, match=message):
        D.Certificate.from_json(doc)


def test_the_summary_lists_every_enclosure_bound_and_margin():
    text = _cert().summary()
    assert text.splitlines()[0] == "taylor certificate (T=2, d=2, k=1): not_certified"
    for line in ("  G in [-inf, inf]", "  grad_norm in [0, 0.5]", "  G_upper = 2.5", "  margin m >= -inf",
                 "  margin n >= 0.25"):
        assert line in text.splitlines(), line


def _with(**changes):
    doc = _cert(witness=np.zeros((2, 2, 1))).to_dict()
    for key, value in changes.items():
        if value is _DROP:
            del doc[key]
        else:
            doc[key] = value
    return doc


_DROP = object()


@pytest.mark.parametrize("changes, message", [
    ({"kind": _DROP}, "lacks 'kind'"),
    ({"tasks": _DROP, "margins": _DROP}, "lacks 'margins', 'tasks'"),
    ({"evil": 1}, "unknown key\\(s\\) 'evil'"),
    ({"kind": 3}, "kind must be a string"),
    ({"verdict": None}, "verdict must be a string"),
    ({"reason": ["x"]}, "reason must be a string"),
    ({"rank": "1"}, "rank must be an integer, got '1'"),
    ({"rank": 1.0}, "rank must be an integer, got 1.0"),
    ({"rank": True}, "rank must be an integer, got True"),
    ({"radius": None}, "radius must be a number, got None"),
    ({"radius": "0.1"}, "radius must be a number"),
    ({"radius": False}, "radius must be a number"),
    ({"enclosures": [1, 2]}, "enclosures must be an object, got list"),
    ({"enclosures": {"G": [0.1]}}, "enclosure 'G' must be a pair"),
    ({"enclosures": {"G": [0.1, "x"]}}, "enclosure 'G' must be a pair"),
    ({"enclosures": {"G": [True, 1.0]}}, "enclosure 'G' must be a pair"),
    ({"bounds": [1]}, "bounds must be an object"),
    ({"bounds": {"m_upper": "x"}}, "bound 'm_upper' must be a number or null"),
    ({"margins": None}, "margins must be an object, got NoneType"),
    ({"margins": {"C1": [0.1]}}, "margin 'C1' must be a number or null"),
    ({"parameters": None}, "parameters must be an object"),
    ({"diagnostics": [1]}, "diagnostics must be an object"),
    ({"point": [[[0.1]], [[0.2], [0.3]]]}, "rectangular nested lists of numbers"),
    ({"witness": [[[0.1]], [[0.2], [0.3]]]}, "rectangular nested lists of numbers"),
    ({"point": "abc"}, "rectangular nested lists of numbers"),
])
def test_a_malformed_certificate_document_is_refused_with_its_reason(changes, message):
    """Every key of the document is there and of its type, or the document is refused with a
    ValueError naming what is wrong (not a KeyError / AttributeError from inside, and not a
    rank read from JSON's true, 1.0 or "1")."""
    assert D.Certificate.from_json(_with()).radius == 0.125
    with pytest.raises(ValueError, match=message):
        D.Certificate.from_json(_with(**changes))


def test_the_optional_keys_may_be_left_out():
    doc = _with(witness=_DROP, diagnostics=_DROP)
    c = D.Certificate.from_json(doc)
    assert c.witness is None and dict(c.diagnostics) == {}


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('"radius": 0.125', '"radius": NaN'), "NaN is not a JSON number"),
    (lambda t: t.replace('"radius": 0.125', '"radius": Infinity'), "Infinity is not a JSON number"),
    (lambda t: t.replace('"verdict": ', '"verdict": "certified_spurious_local_minimum", "verdict": ', 1),
     "the key 'verdict' appears twice"),
    (lambda t: "[" * 100000 + "]" * 100000, "nested too deeply|not a loraml-certificate"),
])
def test_certificate_json_text_is_read_strictly(edit, message):
    """The text form refuses NaN / Infinity tokens and a key given twice (json would keep the
    last, here upgrading the verdict) instead of reading them."""
    text = _cert().to_json()
    assert '"radius": 0.125' in text and D.Certificate.from_json(text).radius == 0.125
    with pytest.raises(ValueError, match=message):
        D.Certificate.from_json(edit(text))


@pytest.mark.parametrize("key", sorted(set(_cert().to_dict()) - {"witness", "diagnostics", "format", "version"}))
def test_every_key_that_to_dict_writes_is_required(key):
    """Each key of the written document but the optional witness and diagnostics must be
    there when it is read back (format and version have their own messages)."""
    with pytest.raises(ValueError, match=f"lacks '{key}'"):
        D.Certificate.from_json(_with(**{key: _DROP}))


def test_diagnostics_become_strict_json_values():
    """A certificate's diagnostics are stored as JSON: numpy scalars become Python numbers,
    non-finite floats their names (strict JSON has no inf or nan), everything else as it is."""
    import math

    from landscape.certificates.data import _jsonable

    got = _jsonable({"a": 0.5, "b": "float64 with a priori error bounds", "c": math.inf, "d": -math.inf,
                     "e": [np.float64(1.5), np.int64(2), (3, None)], 7: True})
    assert got == {"a": 0.5, "b": "float64 with a priori error bounds", "c": "inf", "d": "-inf",
                   "e": [1.5, 2, [3, None]], "7": True}
    assert isinstance(got["e"][0], float) and isinstance(got["e"][1], int) and isinstance(got["a"], float)
    assert _jsonable(math.nan) == "nan"
