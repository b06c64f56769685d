"""Every input to ``python -m landscape audit`` gets an answer: exit 2 with one short
line and nothing written, or a correct audit (issue 11, sections 1-3).

Each kind of input is one test case (most are parametrised rows of one table), run
through the command line in-process (``landscape.__main__.main``); a FIFO, an
interrupted audit and the executor check run real processes.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import landscape as ls
from landscape.runtime import safe_load as _safe_load
from landscape.__main__ import MAX_ERROR_CHARS, main

REPO = Path(__file__).resolve().parents[1]

#: Budget for a rejection that must happen before any allocation (a header check, a
#: name check): generous for 2 busy cores, far below what decompressing or allocating
#: the claimed gigabytes would take.
FAST_REJECTION_S = 2.0


def _run(argv, capsys):
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _assert_bad(capsys, argv, fragment, out=None):
    rc, _, err = _run(argv, capsys)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("python -m landscape: error: ") and fragment in lines[0], lines[0]
    assert len(lines[0]) <= MAX_ERROR_CHARS
    assert "Traceback" not in err
    if out is not None:
        assert not Path(out).exists()
    return lines[0]


@pytest.fixture(scope="module")
def tasks3():
    """T = 3, d = 4, k = 1 tasks of model M1."""
    return ls.random_instance(np.random.default_rng(8), 4, 3, 1).problem.tasks


def _npy_header(shape, descr="<f8", fortran=False) -> bytes:
    header = "{'descr': %r, 'fortran_order': %s, 'shape': %r, }" % (descr, fortran, tuple(shape))
    header = header.encode("latin1")
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _zip(path, members: dict, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# ------------------------------------------------------------------ table of bad inputs
def _huge_npy(tmp):
    p = tmp / "huge.npy"
    p.write_bytes(_npy_header((3, 100_000, 100_000)) + b"\0" * 512)  # claims 224 GiB
    return p, "above the limit"


def _huge_npz_header(tmp):
    data = _npy_header((3, 60_000, 60_000)) + b"\0" * 512
    return _zip(tmp / "huge.npz", {"tasks.npy": data}), "above the limit"


def _npz_declared_size(tmp):
    p = _zip(tmp / "declared.npz", {"tasks.npy": _npy_header((3, 3, 3)) + b"\0" * 216})
    raw = bytearray(p.read_bytes())
    # patch the uncompressed size in the local header (offset 22) and the central directory (offset 24)
    raw[22:26] = (2**31).to_bytes(4, "little")
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = (2**31).to_bytes(4, "little")
    p.write_bytes(bytes(raw))
    return p, "uncompressed"


def _zip_bomb_unknown_member(tmp):
    # 64 MiB of zeros deflated to ~64 KiB under a name that is not an allowed key
    p = tmp / "bomb.npz"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("weights.npy", "w") as fh:
            chunk = b"\0" * 2**20
            for _ in range(64):
                fh.write(chunk)
    return p, "unknown key(s) 'weights'"


def _zip_bomb_known_member(tmp):
    # a real bomb under the allowed name: its .npy header claims 9.6 GiB; only the header is read
    p = tmp / "bomb2.npz"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("tasks.npy", "w") as fh:
        fh.write(_npy_header((3, 20_000, 20_000)))
        chunk = b"\0" * 2**20
        for _ in range(32):
            fh.write(chunk)
    return p, "above the limit"


def _json_text(name, text, encoding="utf-8"):
    def make(tmp):
        p = tmp / name
        p.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
        return p
    return make


def _with(maker, fragment):
    def make(tmp):
        return maker(tmp), fragment
    return make


def _save(name, arr):
    def make(tmp):
        p = tmp / name
        with open(p, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
        return p
    return make


class _Payload:
    """Unpickling this would create the marker file: it must never happen."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _pickled_object_npy(tmp):
    p = tmp / "obj.npy"
    arr = np.empty(2, dtype=object)
    arr[0] = _Payload(tmp / "PWNED")
    arr[1] = 1.0
    np.save(p, arr, allow_pickle=True)
    return p, "pickles"


def _raw_pickle(tmp):
    import pickle

    p = tmp / "tasks.npy"
    p.write_bytes(pickle.dumps(_Payload(tmp / "PWNED"), protocol=4))
    return p, "pickle"


def _truncated_npy(tmp):
    p = tmp / "trunc.npy"
    p.write_bytes(_npy_header((3, 4, 4)) + b"\0" * 100)
    return p, "truncated"


def _corrupt_header(tmp):
    p = tmp / "corrupt.npy"
    p.write_bytes(b"\x93NUMPY\x01\x00\x20\x00{'descr': <f8, garbage}     \n" + b"\0" * 64)
    return p, "header"


def _bad_descr(tmp):
    p = tmp / "descr.npy"
    p.write_bytes(_npy_header((3, 3, 3), descr="<q9") + b"\0" * 300)
    return p, "header"


def _empty_zip(tmp):
    return _zip(tmp / "empty.npz", {}), "contains no arrays"


def _npz_member_not_npy(tmp):
    return _zip(tmp / "text.npz", {"tasks.npy": b"hello, these are not numbers"}), "not a .npy array"


def _long_string_json(tmp):
    p = tmp / "long.json"
    p.write_text(json.dumps([[["x" * 1_000_000]]]))
    return p, "is a string"


def _deep_json(tmp):
    p = tmp / "deep.json"
    p.write_text("[" * 200_000 + "]" * 200_000)
    return p, "nested 200000 levels"


def _fifo(tmp):
    p = tmp / "pipe.npy"
    os.mkfifo(p)
    return p, "named pipe"


def _directory(tmp):
    p = tmp / "adir.npz"
    p.mkdir()
    return p, "directory"


def _char_device(tmp):
    return Path(os.devnull), "device"


def _bool_json(tmp):
    p = tmp / "b.json"
    p.write_text(json.dumps([[[True, False], [False, True]], [[1, 0], [0, 1]]]))
    return p, "boolean"


BAD_INPUTS = {
    # sizes claimed by headers, zip bombs
    "npy header claims 224 GiB": _huge_npy,
    "npz member header claims 80 GiB": _huge_npz_header,
    "npz member declares 2 GiB": _npz_declared_size,
    "zip bomb under an unknown name": _zip_bomb_unknown_member,
    "zip bomb under the tasks name": _zip_bomb_known_member,
    # JSON numbers and structure
    "JSON integer 10**400": _with(_json_text("big.json", "[[[1" + "0" * 400 + "]]]"), "outside the float64 range"),
    "JSON integer of 5000 digits": _with(_json_text("huge.json", "[[[" + "9" * 5000 + "]]]"), "5000 digits"),
    "JSON float 1e400": _with(_json_text("f.json", "[[[1e400, 0], [0, 1]]]"), "outside the float64 range"),
    "JSON NaN literal": _with(_json_text("n.json", "[[[NaN, 0], [0, 1]], [[1, 0], [0, 1]]]"), "NaN"),
    "JSON Infinity literal": _with(_json_text("i.json", "[[[Infinity]]]"), "Infinity"),
    "JSON nested 200,000 deep": _deep_json,
    "JSON booleans": _bool_json,
    "JSON null": _with(_json_text("null.json", "[[[null, 1], [1, 1]]]"), "null"),
    "JSON 1 MB string (excerpt only)": _long_string_json,
    "JSON top-level number": _with(_json_text("num.json", "3"), "unsupported file type"),
    "JSON top-level string in a list file": _with(_json_text("s.json", '["abc"]'), "is a string"),
    "JSON object value": _with(_json_text("o.json", '{"tasks": {"a": 1}}'), "is an object"),
    "JSON different d per task": _with(_json_text("r.json", "[[[1, 2], [3, 4]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]"),
                                       "unequal lengths"),
    "JSON latin-1 text": _with(_json_text("l1.json", '{"t\u00e2sks": [[[1]]]}', "latin-1"), "not utf-8 text"),
    "JSON empty list": _with(_json_text("e.json", "[]"), "empty"),
    "JSON unknown key": _with(_json_text("k.json", '{"tasks": [[[1]]], "extra": [1]}'), "unknown key(s) 'extra'"),
    # dtypes
    "complex entries": _with(_save("c.npy", np.ones((3, 4, 4)) * (1 + 1j)), "complex"),
    "boolean entries": _with(_save("b.npy", np.ones((3, 4, 4), dtype=bool)), "boolean"),
    "datetime entries": _with(_save("dt.npy", np.zeros((3, 4, 4), dtype="datetime64[s]")), "date/time"),
    "timedelta entries": _with(_save("td.npy", np.zeros((3, 4, 4), dtype="timedelta64[s]")), "date/time"),
    "structured dtype": _with(_save("st.npy", np.zeros((3, 4, 4), dtype=[("a", "<f8"), ("b", "<i4")])),
                              "structured"),
    "unicode strings": _with(_save("u.npy", np.full((3, 4, 4), "1.0")), "text entries"),
    "byte strings": _with(_save("bs.npy", np.full((3, 4, 4), b"1.0")), "text entries"),
    "object array (pickled)": _pickled_object_npy,
    "a raw pickle named .npy": _raw_pickle,
    # shapes
    "1-D array": _with(_save("v.npy", np.ones(9)), "shape (T, d, d)"),
    "4-D array": _with(_save("q.npy", np.ones((2, 3, 3, 3))), "shape (T, d, d)"),
    "T = 0": _with(_save("t0.npy", np.zeros((0, 3, 3))), "empty"),
    "d = 0": _with(_save("d0.npy", np.zeros((3, 0, 0))), "empty"),
    "one task": _with(_save("one.npy", np.eye(3)[None]), "at least 2 tasks"),
    # damaged files
    "truncated npy": _truncated_npy,
    "corrupt npy header": _corrupt_header,
    "unknown dtype in the header": _bad_descr,
    "empty zip archive": _empty_zip,
    "npz member that is not npy": _npz_member_not_npy,
    "random bytes": _with(_json_text("r.bin", b"\x00\x01\x02binary"), "unsupported file type"),
    "NaN entry": _with(_save("nan.npy", np.where(np.eye(3, dtype=bool)[None], np.nan, 1.0).repeat(3, 0)),
                       "non-finite entry nan"),
    "inf entry": _with(_save("inf.npy", np.full((3, 3, 3), np.inf)), "non-finite entry inf"),
    # special files
    "FIFO": _fifo,
    "directory": _directory,
    "character device": _char_device,
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_kind(kind, tmp_path, capsys):
    path, fragment = BAD_INPUTS[kind](tmp_path)
    out = tmp_path / "out"
    t0 = time.perf_counter()
    line = _assert_bad(capsys, ["audit", str(path), "--rank", "1", "--out", str(out), "-q"], fragment, out)
    assert time.perf_counter() - t0 < FAST_REJECTION_S + 5.0
    assert not (tmp_path / "PWNED").exists()  # no pickle was ever loaded
    assert "x" * 100 not in line  # contents are quoted as a short excerpt only


def test_size_checks_happen_before_allocation(tmp_path, capsys):
    """A header claiming 224 GiB and a 64 MiB zip bomb are refused in well under the time
    it takes to allocate or inflate them."""
    for maker in (_huge_npy, _zip_bomb_unknown_member, _zip_bomb_known_member):
        path, fragment = maker(tmp_path)
        t0 = time.perf_counter()
        _assert_bad(capsys, ["audit", str(path), "--rank", "1", "-q"], fragment)
        assert time.perf_counter() - t0 < FAST_REJECTION_S


def test_json_larger_than_the_limit_is_refused_unread(tmp_path, capsys, tasks3, monkeypatch):
    monkeypatch.setattr(_safe_load, "MAX_JSON_BYTES", 200)
    p = tmp_path / "t.json"
    p.write_text(json.dumps(tasks3.tolist()))
    _assert_bad(capsys, ["audit", str(p), "--rank", "1"], "above the limit")


def test_in_memory_complex_array_is_refused(tasks3):
    with pytest.raises(ls.LandscapeInputError, match="real numeric"):
        ls.audit(tasks3 * (1 + 0.5j), 1, starts=2)


# ------------------------------------------------------------------ inputs that must audit
def _classes(data):
    return [(c["kind"], c["count"]) for c in data["classes"]]


def _audit_json(capsys, tmp_path, path, *extra):
    out = tmp_path / f"out-{Path(path).name}"
    rc, _, err = _run(["audit", str(path), "--rank", "1", "--starts", "3", "--seed", "2", "--method", "lbfgs",
                       "--no-plots", "--out", str(out), "-q", *extra], capsys)
    assert rc == 0, err
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def reference(tasks3, tmp_path_factory):
    return ls.audit(tasks3, 1, starts=3, seed=2, methods="lbfgs", plots=False).data


def _to(path, writer):
    with open(path, "wb") as fh:
        writer(fh)
    return path


GOOD_VARIANTS = {
    "npy renamed npz": lambda t, p: _to(p / "a.npz", lambda fh: np.save(fh, t)),
    "npz renamed npy": lambda t, p: _to(p / "b.npy", lambda fh: np.savez(fh, tasks=t)),
    "compressed npz": lambda t, p: _to(p / "c.npz", lambda fh: np.savez_compressed(fh, tasks=t)),
    "JSON with a UTF-8 BOM": lambda t, p: _to(p / "d.json",
                                              lambda fh: fh.write(b"\xef\xbb\xbf" + json.dumps(t.tolist()).encode())),
    "JSON in UTF-16 with a BOM": lambda t, p: _to(p / "e.json",
                                                  lambda fh: fh.write(json.dumps(t.tolist()).encode("utf-16"))),
    "JSON renamed .txt": lambda t, p: _to(p / "f.txt", lambda fh: fh.write(json.dumps({"tasks": t.tolist()}).encode())),
    "Fortran-order npy": lambda t, p: _to(p / "g.npy", lambda fh: np.save(fh, np.asfortranarray(t))),
    "big-endian npy": lambda t, p: _to(p / "h.npy", lambda fh: np.save(fh, t.astype(">f8"))),
    "float32 npy": lambda t, p: _to(p / "i.npy", lambda fh: np.save(fh, t.astype(np.float32))),
}


@pytest.mark.parametrize("kind", list(GOOD_VARIANTS))
def test_same_tasks_in_another_container_audit_alike(kind, tasks3, reference, tmp_path, capsys):
    path = GOOD_VARIANTS[kind](tasks3, tmp_path)
    data = _audit_json(capsys, tmp_path, path)
    assert data["input"]["format"] in ("npy", "npz", "json")
    if kind == "float32 npy":  # other numbers: only the regime is comparable
        assert data["theory"]["regime"] == reference["theory"]["regime"]
        return
    assert _classes(data) == _classes(reference)


@pytest.mark.parametrize("dtype", ["float16", "int64", "uint8"])
def test_low_precision_and_integer_tasks_are_audited(dtype, tmp_path, capsys):
    """Small integers (exact in every dtype): the M1 tasks I + e_t e_t^T."""
    tasks = np.stack([np.eye(4) + np.outer(e, e) for e in np.eye(4)[:3]]).astype(dtype)
    p = tmp_path / "t.npy"
    np.save(p, tasks)
    data = _audit_json(capsys, tmp_path, p)
    assert data["summary"]["global_minimum_found"]
    assert data["summary"]["A_star_recovered"] is None  # truth not given


# ------------------------------------------------------------------ extreme scales
def _log2_user(loss_normalised, exponent):
    return math.log2(loss_normalised) + 2 * exponent


@pytest.fixture(scope="module")
def f2_reference():
    inst, U0 = ls.f2_spurious_instance()
    rep = ls.audit(inst.problem.tasks, 1, starts=2, seed=0, extra_starts=U0, methods="lbfgs", plots=False)
    return inst, U0, rep.data


@pytest.mark.parametrize("factor", [1e-150, 1e-170, 1e140, 1e160])
def test_scaled_tasks_give_the_same_findings_in_user_units(factor, f2_reference, tmp_path, capsys):
    """G is homogeneous of degree 2 in (A*, A, U U^T): tasks x c and starts x c^(1/2)
    give the same classes, losses x c^2 and A x c (compared in log space where the
    user-unit loss leaves the float64 range).  Which basin a random start falls into
    may change with the last bits, so classes are compared as a set, not by counts."""
    inst, U0, ref = f2_reference
    np.save(tmp_path / "t.npy", inst.problem.tasks * factor)
    np.save(tmp_path / "s.npy", U0[None] * math.sqrt(factor))
    data = _audit_json(capsys, tmp_path, tmp_path / "t.npy", "--start", str(tmp_path / "s.npy"), "--starts", "2",
                       "--seed", "0")
    kinds = {c["kind"] for c in data["classes"]}
    assert kinds == {c["kind"] for c in ref["classes"]} and "spurious_candidate" in kinds
    assert data["input"]["scale_exponent"] != 0
    assert data["input"]["scale"] == pytest.approx(ref["input"]["scale"] * factor, rel=1e-12, abs=0)
    assert data["theory"]["agrees"] == ref["theory"]["agrees"]
    for r in ref["classes"]:
        if r["kind"] == "global_minimum":
            continue
        c = next(c for c in data["classes"] if c["kind"] == r["kind"])
        want = _log2_user(r["loss_normalised"], ref["input"]["scale_exponent"])
        got = _log2_user(c["loss_normalised"], data["input"]["scale_exponent"]) - 2 * math.log2(factor)
        assert got == pytest.approx(want, abs=1e-6)
        np.testing.assert_allclose(np.array(c["A_hat"]) / factor, r["A_hat"], rtol=1e-7, atol=1e-9)
    spur = [c for c in data["classes"] if c["kind"] == "spurious_candidate"]
    assert spur and spur[0]["certificate"]["status"] == "certified"


def test_scale_exponent_is_zero_for_ordinary_inputs(tasks3):
    assert ls._audit.scale_exponent(tasks3) == 0
    assert ls._audit.scale_exponent(tasks3 * 2.0**-300) == -300
    assert ls._audit.scale_exponent(np.zeros((2, 3, 3))) == 0


def test_f2_point_alone_draws_every_plot(tmp_path, capsys):
    """One explicit start and no random ones: a single loss value in the histogram."""
    inst, U0 = ls.f2_spurious_instance()
    np.savez(tmp_path / "f2.npz", A_star=inst.A_star, U_star=inst.U_star)
    np.save(tmp_path / "U0.npy", U0)
    out = tmp_path / "o"
    rc, _, err = _run(["audit", str(tmp_path / "f2.npz"), "--rank", "1", "--starts", "0", "--start",
                       str(tmp_path / "U0.npy"), "--out", str(out), "-q"], capsys)
    assert rc == 0, err
    data = json.loads((out / "report.json").read_text())
    assert "losses.svg" in data["plots"] and (out / "losses.svg").stat().st_size > 0


# ------------------------------------------------------------------ starting points
STARTS_BAD = {
    "complex starts": (lambda p: np.save(p, np.ones((1, 3, 4, 1)) * 1j), "complex"),
    "NaN starts": (lambda p: np.save(p, np.full((1, 3, 4, 1), np.nan)), "non-finite"),
    "starts of the wrong shape": (lambda p: np.save(p, np.ones((1, 3, 5, 1))), "expected shape"),
    "zero starts": (lambda p: np.save(p, np.ones((0, 3, 4, 1))), "m >= 1"),
    "starts npz with another key": (lambda p: np.savez(open(p, "wb"), tasks=np.ones((1, 3, 4, 1))), "unknown key"),
}


@pytest.mark.parametrize("kind", list(STARTS_BAD))
def test_bad_starting_points(kind, tasks3, tmp_path, capsys):
    np.save(tmp_path / "t.npy", tasks3)
    make, fragment = STARTS_BAD[kind]
    make(tmp_path / "s.npy")
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--start", str(tmp_path / "s.npy"),
                         "--out", str(out)], fragment, out)


# ------------------------------------------------------------------ --out
def test_out_on_a_virtual_file_system_is_refused_before_the_search(tasks3, tmp_path, capsys):
    if not Path("/proc/self").exists():
        pytest.skip("no /proc")
    np.save(tmp_path / "t.npy", tasks3)
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--out", "/proc/loraml-audit/o"],
                "--out")


def test_out_below_a_file_is_refused(tasks3, tmp_path, capsys):
    np.save(tmp_path / "t.npy", tasks3)
    (tmp_path / "f").write_text("x")
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--out", str(tmp_path / "f" / "o")],
                "cannot create")


def test_out_on_a_read_only_file_system_is_refused(tasks3, tmp_path, capsys, monkeypatch):
    """A read-only mount answers os.access with yes for root; the probe file says no."""
    import errno

    from landscape.runtime import outdir as _outdir

    def refuse(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    np.save(tmp_path / "t.npy", tasks3)
    monkeypatch.setattr(_outdir.tempfile, "mkstemp", refuse)
    out = tmp_path / "ro"
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--out", str(out)], "not writable", out)


def test_out_that_is_a_symlink_is_refused_and_its_target_untouched(tasks3, tmp_path, capsys):
    np.save(tmp_path / "t.npy", tasks3)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "report.json").write_text("precious")
    link = tmp_path / "link"
    link.symlink_to(target)
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--out", str(link)], "symbolic link")
    assert (target / "report.json").read_text() == "precious"


def test_symlinked_report_file_is_replaced_not_followed(tasks3, tmp_path, capsys):
    np.save(tmp_path / "t.npy", tasks3)
    out = tmp_path / "o"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "report.json").symlink_to(victim)
    argv = ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--starts", "2", "--method", "lbfgs", "--no-plots",
            "--out", str(out), "-q"]
    # a folder holding a file the audit did not write is refused unless --overwrite is given
    _assert_bad(capsys, argv, "did not write")
    assert victim.read_text() == "precious" and (out / "report.json").is_symlink()
    rc, _, err = _run(argv + ["--overwrite"], capsys)
    assert rc == 0, err
    assert victim.read_text() == "precious"
    assert not (out / "report.json").is_symlink() and json.loads((out / "report.json").read_text())["tool"]


# ------------------------------------------------------------------ atomic reports
def _audit_cmd(path, out, *extra):
    return [sys.executable, "-m", "landscape", "audit", str(path), "--rank", "1", "--out", str(out), "-q", *extra]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra)
    return env


def test_killed_audit_leaves_no_complete_looking_report_and_no_stale_files(tmp_path):
    """An older report (F.2 instance: it has a spectrum plot) is in the folder; a new
    audit of another input is killed just before report.json: the folder then holds no
    report.json and nothing of the older run."""
    inst, U0 = ls.f2_spurious_instance()
    out = tmp_path / "o"
    ls.audit(inst, 1, starts=0, extra_starts=U0, methods="trust-region", out=out, certify=False)
    assert (out / "report.json").is_file() and (out / "spectrum_class0.svg").is_file()
    two = ls.random_instance(np.random.default_rng(1), 4, 2, 1).problem.tasks
    np.save(tmp_path / "two.npy", two)
    proc = subprocess.Popen(_audit_cmd(tmp_path / "two.npy", out, "--starts", "4", "--method", "trust-region"),
                            cwd=REPO, env=_env(LANDSCAPE_AUDIT_PAUSE_BEFORE_REPORT="60"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (out / "run.json").exists() or (out / "spectrum_class0.svg").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline
            time.sleep(0.05)
        # the new run is now paused just before report.json
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "report.json").exists()
    assert not (out / "spectrum_class0.svg").exists()  # the older run's plot is gone
    assert "two.npy" in (out / "report.md").read_text()  # what is there is the new run's


def test_audit_killed_during_the_search_leaves_the_old_report_intact(tmp_path):
    inst, U0 = ls.f2_spurious_instance()
    out = tmp_path / "o"
    ls.audit(inst, 1, starts=0, extra_starts=U0, methods="trust-region", out=out, certify=False, plots=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    np.save(tmp_path / "t.npy", inst.problem.tasks)
    proc = subprocess.Popen(_audit_cmd(tmp_path / "t.npy", out, "--starts", "5000", "--method", "gd"), cwd=REPO,
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert after == before
    json.loads(after["report.json"])  # complete and consistent


# ------------------------------------------------------------------ executor: same seed, same bytes
def test_report_bytes_do_not_depend_on_the_executor(tmp_path):
    """Units carry their own seeds, so 1 or 2 local workers give the same bytes.
    (trust-region is left out: scipy's trust-krylov can stop differently on identical
    input within one process, so it is not bitwise reproducible by itself.)"""
    from landscape.runtime.executor import LocalExecutor

    inst, U0 = ls.f2_spurious_instance()
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        ls.audit(inst, 1, starts=12, seed=5, extra_starts=U0, methods=("lbfgs", "gd", "root-hybr"), out=out,
                 executor=LocalExecutor(workers), plots=False)
        outs.append(out)
    a, b = outs
    assert (a / "report.json").read_bytes() == (b / "report.json").read_bytes()
    assert (a / "report.md").read_bytes() == (b / "report.md").read_bytes()
    assert json.loads((b / "run.json").read_text())["workers"] == 2
    # the certificate is embedded without its wall-clock time (that is in run.json)
    data = json.loads((a / "report.json").read_text())
    spur = [c for c in data["classes"] if c["kind"] == "spurious_candidate"]
    assert spur and spur[0]["certificate"]["status"] == "certified"
    assert ls.Certificate.from_dict(spur[0]["certificate"]["certificate"]).verify()


def test_cli_executor_options(tasks3, tmp_path, capsys):
    np.save(tmp_path / "t.npy", tasks3)
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--workers", "0"], "--workers")
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--ray-address", "auto"], "--executor ray")


# ------------------------------------------------------------------ reports that say the right thing
@pytest.mark.parametrize("kind", ["identical", "all-zero"])
def test_theory_not_applicable_when_R31_fails(kind, capsys, tmp_path):
    base = ls.random_instance(np.random.default_rng(3), 6, 3, 1).problem.tasks[0]
    tasks = np.stack([base] * 3) if kind == "identical" else np.zeros((3, 6, 6))
    np.save(tmp_path / "t.npy", tasks)
    out = tmp_path / "o"
    rc, _, err = _run(["audit", str(tmp_path / "t.npy"), "--rank", "1", "--starts", "4", "--method", "lbfgs",
                       "--out", str(out), "-q", "--no-plots"], capsys)
    assert rc == 0, err
    th = json.loads((out / "report.json").read_text())["theory"]
    assert th["applicable"] is False and th["agrees"] is None
    assert "identical" in th["not_applicable_reason"]
    assert "not applicable" in (out / "report.md").read_text()


def test_theory_not_applicable_when_d_below_3k():
    inst = ls.thm33_counterexample_instance()
    rep = ls.audit(inst, 1, starts=4, seed=0, methods="lbfgs", plots=False)
    th = rep.data["theory"]
    assert th["regime"] == "T>=3, d<3k" and th["applicable"] is False and th["agrees"] is None
    assert "3k" in th["not_applicable_reason"]


def test_theory_applies_to_a_planted_three_task_instance():
    """Negative control of the two tests above: R3.1 holds, d >= 3k, so it applies."""
    inst = ls.random_instance(np.random.default_rng(4), 6, 3, 1)
    th = ls.audit(inst, 1, starts=6, seed=1, methods="trust-region", plots=False).data["theory"]
    assert th["applicable"] is True and th["agrees"] is True and th["not_applicable_reason"] is None


def test_two_task_continuum_is_summarised():
    inst = ls.f1_instance(2)
    rep = ls.audit(inst, 1, starts=12, seed=0, methods=("trust-region", "lbfgs"), plots=False)
    cont = rep.data["summary"]["global_minima_continuum"]
    k = 1
    assert cont["dimension"] == k * (2 * k - 1) and cont["dimension_modulo_O(k)"] == k * k
    assert "O(k,k)" in cont["parametrisation"]
    # the sample points are global minima, with different A
    assert all(p["loss"] <= 1e-20 for p in cont["points"])
    A = [np.array(p["A"]) for p in cont["points"]]
    assert np.linalg.norm(A[0] - A[2]) > 1e-3
    # each listed A is the retrained A of its point: A + U_t U_t^T = A*_t for both tasks
    for p, Ap in zip(cont["points"], A):
        U = np.array(p["point"])
        for t in range(2):
            np.testing.assert_allclose(Ap + U[t] @ U[t].T, inst.problem.tasks[t], rtol=0, atol=1e-9)
    table = rep.markdown.split("## Classes")[1]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and "global_minimum" in ln]
    assert len(rows) == 1 and "O(k,k) continuum" in rows[0]


def test_stop_reasons_are_one_line_each():
    inst = ls.random_instance(np.random.default_rng(2), 4, 3, 1)
    rep = ls.audit(inst, 1, starts=6, seed=0, methods="gd", max_iter=3, plots=False)
    runs = rep.data["runs"]
    assert any(r["kind"] == "not_critical" for r in runs)
    assert all("\n" not in r["stop_reason"] and "\n" not in r["reason"] for r in runs)
    listed = [ln for ln in rep.markdown.splitlines() if ln.startswith("* ") and " x " in ln]
    assert listed and all(ln.count(" x ") >= 1 for ln in listed)


def test_diverging_run_is_named():
    """A start far out along the T = 2 O(k,k) orbit: the end point is reported as
    ||U|| -> inf along the orbit, not as a degenerate point."""
    from scipy.linalg import expm

    inst = ls.random_instance(np.random.default_rng(1), 4, 2, 1)
    W = np.concatenate([inst.U_star[0], inst.U_star[1]], axis=1)
    J = np.array([[0.0, 1.0], [1.0, 0.0]])
    Wt = W @ expm(12.0 * J)  # a boost by exp(12): ||U|| ~ 1e5 ||U*||, G = 0
    U = np.stack([Wt[:, :1], Wt[:, 1:]])
    rep = ls.audit(inst, 1, starts=0, extra_starts=U, methods="lbfgs", plots=False, certify=False)
    run = rep.data["runs"][0]
    assert run["diverged"] is True and run["kind"] == "not_critical"
    assert "||U|| -> inf along the O(k,k) orbit" in run["reason"]
    assert rep.data["summary"]["diverged_runs"] == 1
    assert "diverged" in rep.markdown


def test_round_off_negative_eigenvalues_at_global_minima_are_called_zero_modes():
    inst = ls.random_instance(np.random.default_rng(1), 4, 2, 1)
    rep = ls.audit(inst, 1, starts=8, seed=1, plots=False, methods="lbfgs")
    zm = rep.data["summary"]["zero_modes_at_global_minima"]
    assert zm is not None and zm["most_negative"] < 0
    glob = [c for c in rep.data["classes"] if c["kind"] == "global_minimum"]
    assert all(abs(c["lambda_min_quotient"]) <= c["eigenvalue_tolerance"] for c in glob)
    # negative control: real negative curvature (strict saddles) is never explained away
    saddles = [c for c in rep.data["classes"] if c["kind"] == "strict_saddle"]
    assert all(c["note"] is None and c["lambda_min_quotient"] < -c["eigenvalue_tolerance"] for c in saddles)
    assert sum(ln.startswith("* Zero modes:") for ln in rep.markdown.splitlines()) == 1  # one line, not one per class


def test_absurd_number_of_starts_is_refused_before_allocation(tasks3, tmp_path, capsys):
    np.save(tmp_path / "t.npy", tasks3)
    out = tmp_path / "o"
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--starts", str(10**12), "--out", str(out)],
                "GiB", out)


def test_empty_out_is_refused(tasks3, tmp_path, capsys):
    np.save(tmp_path / "t.npy", tasks3)
    _assert_bad(capsys, ["audit", str(tmp_path / "t.npy"), "--rank", "1", "--out", ""], "empty path")


# ------------------------------------------------------------------ damaged files: property
def _valid_files(tasks):
    import io

    out = {}
    b = io.BytesIO()
    np.save(b, tasks)
    out["npy"] = b.getvalue()
    b = io.BytesIO()
    np.savez_compressed(b, tasks=tasks)
    out["npz"] = b.getvalue()
    out["json"] = json.dumps({"tasks": tasks.tolist()}).encode()
    return out


@pytest.mark.parametrize("fmt", ["npy", "npz", "json"])
def test_damaged_files_never_escape(fmt, tasks3, tmp_path):
    """Random byte flips, truncations and insertions in a valid file: loading either
    succeeds with a finite (T, d, d) stack or raises LandscapeInputError with one short
    line, never anything else (zlib.error, tokenize errors, ... included)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from landscape._io import load_tasks

    raw = _valid_files(tasks3)[fmt]
    path = tmp_path / f"x.{fmt}"

    edit = st.tuples(st.sampled_from(["flip", "cut", "insert"]), st.integers(0, len(raw) - 1),
                     st.binary(min_size=1, max_size=8))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(edit, min_size=1, max_size=3))
    def check(edits):
        data = bytearray(raw)
        for op, pos, blob in edits:
            pos = min(pos, len(data) - 1)
            if op == "flip":
                data[pos:pos + len(blob)] = blob
            elif op == "cut":
                data = data[:max(pos, 1)]
            else:
                data[pos:pos] = blob
        path.write_bytes(bytes(data))
        try:
            ti = load_tasks(path)
        except ls.LandscapeInputError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < MAX_ERROR_CHARS
        else:
            assert ti.tasks.ndim == 3 and np.all(np.isfinite(ti.tasks))

    check()
