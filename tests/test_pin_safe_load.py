"""The bounds of the safe loader (``landscape/runtime/safe_load.py``) at their exact
edges: a byte under a limit is read, a byte over it is refused, every pickle protocol
that starts with the PROTO opcode is named a pickle, every .npy format version that
numpy writes is read bit for bit."""
from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest

from landscape import LandscapeInputError
from landscape.runtime import safe_load as SL


def _json_stream(n: int) -> bytes:
    """A valid JSON list of exactly ``n`` >= 3 bytes: ``[1,1,...]`` padded with spaces."""
    body = b"[1]"
    return body + b" " * (n - len(body))


def test_json_size_limit_is_inclusive(monkeypatch):
    monkeypatch.setattr(SL, "MAX_JSON_BYTES", 64)
    raw = _json_stream(64)
    assert SL._read_json(io.BytesIO(raw), 64, "t.json", "") == [1]
    with pytest.raises(LandscapeInputError, match="above the limit"):
        SL._read_json(io.BytesIO(_json_stream(65)), 65, "t.json", "")


def test_json_that_grew_past_the_limit_after_its_size_was_taken_is_refused(monkeypatch):
    """The size comes from stat before the read; a file that holds more than the limit
    when read (it grew meanwhile) is refused, not parsed from a truncated prefix."""
    monkeypatch.setattr(SL, "MAX_JSON_BYTES", 64)
    with pytest.raises(LandscapeInputError, match="changed while"):
        SL._read_json(io.BytesIO(_json_stream(65)), 10, "t.json", "")
    assert SL._read_json(io.BytesIO(_json_stream(64)), 10, "t.json", "") == [1]


def _npz_bytes(*arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{f"a{i}": a for i, a in enumerate(arrays)})
    return buf.getvalue()


def test_npz_member_sizes_are_bounded_by_the_data_limit_plus_one_header_per_member(monkeypatch):
    """The archive's declared member sizes may total MAX_ARRAY_BYTES + one header allowance
    per member, inclusive: exactly that is read, one byte less of limit is refused."""
    import zipfile

    arrays = (np.arange(40.0), np.arange(40.0) / 7)
    raw = _npz_bytes(*arrays)
    total = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(raw)).infolist())
    header = 128  # numpy's version 1.0 header of these arrays, magic included
    assert total == 2 * (header + 40 * 8)
    monkeypatch.setattr(SL, "MAX_NPY_HEADER_BYTES", header)
    monkeypatch.setattr(SL, "MAX_ARRAY_BYTES", total - 2 * header)
    out = SL._read_npz(io.BytesIO(raw), "t.npz", ("a0", "a1"), "")
    assert np.array_equal(out["a0"], arrays[0]) and np.array_equal(out["a1"], arrays[1])
    monkeypatch.setattr(SL, "MAX_ARRAY_BYTES", total - 2 * header - 1)
    with pytest.raises(LandscapeInputError, match="members declare"):
        SL._read_npz(io.BytesIO(raw), "t.npz", ("a0", "a1"), "")


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_every_pickle_protocol_with_a_proto_opcode_is_named_a_pickle(tmp_path, protocol):
    raw = pickle.dumps(np.eye(2), protocol=protocol)
    assert raw[0] == 0x80 and raw[1] == protocol
    assert SL.sniff(raw[:16]) == "pickle"
    path = tmp_path / "tasks.npy"
    path.write_bytes(raw)
    with pytest.raises(LandscapeInputError, match="pickles are never loaded"):
        SL.read_arrays(path, allowed=("tasks",), list_key="tasks")


@pytest.mark.parametrize("second", [0, 1, 6, 0x80])
def test_other_bytes_after_0x80_are_not_a_pickle_header(second):
    assert SL.sniff(bytes([0x80, second]) + b"rest") == "unknown"


@pytest.mark.parametrize("nbytes,text", [
    (0, "0 bytes"), (1023, "1023 bytes"), (1024, "1.0 KiB"), (2**20 - 1, "1024.0 KiB"), (2**20, "1.0 MiB"),
    (3 * 2**19, "1.5 MiB"), (2**30 - 1, "1024.0 MiB"), (2**30, "1.0 GiB"), (5 * 2**30, "5.0 GiB"),
])
def test_sizes_in_messages_use_the_largest_binary_unit_not_above_them(nbytes, text):
    assert SL._human(nbytes) == text


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_every_npy_version_numpy_writes_is_read_exactly(tmp_path, version):
    arr = np.arange(12.0).reshape(3, 4) / 3
    path = tmp_path / "tasks.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, arr, version=version)
    fmt, out = SL.read_arrays(path, allowed=("tasks",), list_key="tasks")
    assert fmt == "npy" and out["tasks"].dtype == arr.dtype and np.array_equal(out["tasks"], arr)


def test_an_npy_version_numpy_does_not_define_is_refused(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.eye(2), version=(2, 0))
    raw = bytearray(buf.getvalue())
    raw[6] = 4  # major version byte
    path = tmp_path / "tasks.npy"
    path.write_bytes(bytes(raw))
    with pytest.raises(LandscapeInputError, match=r"unsupported \.npy format version \(4, 0\)"):
        SL.read_arrays(path, allowed=("tasks",), list_key="tasks")


# ------------------------------------------------------------------ a second cosmic-ray sample's survivors
@pytest.mark.parametrize("n", [SL.MAX_EXCERPT_CHARS - 2, SL.MAX_EXCERPT_CHARS - 1, SL.MAX_EXCERPT_CHARS + 5, 500])
def test_an_excerpt_is_never_longer_than_its_limit(n):
    value = "x" * n  # its repr has n + 2 characters
    text = SL.excerpt(value)
    if n + 2 <= SL.MAX_EXCERPT_CHARS:
        assert text == repr(value)
    else:
        assert len(text) == SL.MAX_EXCERPT_CHARS and text.endswith("...") and text[:-3] == repr(value)[:len(text) - 3]


@pytest.mark.parametrize("head,kind", [(b"\x80\x02", "pickle"), (b"\x80\x05", "pickle"), (b"\x80\x02}q", "pickle"),
                                       (b"\x80", "unknown"), (b"\x80\x01", "unknown"), (b"\x80\x06", "unknown")])
def test_a_pickle_is_sniffed_from_its_two_byte_protocol_header(head, kind):
    assert SL.sniff(head) == kind


def test_an_object_field_is_refused_as_a_pickle_before_as_a_structure():
    """A structured dtype with an object field holds pickles: the refusal says so (the
    object check comes first), as it does for a plain object array."""
    for dt in (np.dtype([("a", "f8"), ("b", "O")]), np.dtype("O")):
        with pytest.raises(LandscapeInputError, match=r"object arrays are refused \(they are pickles"):
            SL._check_dtype(dt, "f.npy")


def test_a_declared_shape_may_take_exactly_one_gib_as_float64():
    """The array limit is 2^30 bytes = 1 GiB, inclusive: 2^27 float64 entries pass, one more
    does not (checked on the header's shape, before any data is read)."""
    assert SL.MAX_ARRAY_BYTES == 2**30
    assert SL._check_shape_size((2**13, 2**14), "x") == 2**27
    with pytest.raises(LandscapeInputError, match=r"x: the header declares shape .*above the limit of 1.0 GiB"):
        SL._check_shape_size((2**27 + 1,), "x")
    # the message states the declared size as float64: 3 x 2^27 entries = 3.0 GiB
    with pytest.raises(LandscapeInputError, match=r"^x: the header declares shape \(3, 134217728\), 3\.0 GiB as float64, "
                                                  r"above the limit of 1\.0 GiB$"):
        SL._check_shape_size((3, 2**27), "x")


# ----------------------------------------------------------------------------- nesting and members
def _nested(tmp_path, depth: int, string: str = ""):
    # a list nested ``depth`` levels deep around a number (and a string holding brackets)
    inner = f'[1, "{string}"]' if string else "[1]"
    p = tmp_path / f"d{depth}.json"
    p.write_text("[" * (depth - 1) + inner + "]" * (depth - 1))
    return p


@pytest.mark.parametrize("depth", [1, 2, SL.MAX_JSON_DEPTH - 1, SL.MAX_JSON_DEPTH])
def test_json_nested_up_to_the_limit_passes_the_depth_check(tmp_path, depth):
    # the depth check lets it through; the array itself is then judged as any other
    try:
        SL.read_arrays(_nested(tmp_path, depth), allowed=("tasks",), list_key="tasks")
    except LandscapeInputError as exc:
        assert "nested" not in str(exc)


@pytest.mark.parametrize("depth", [SL.MAX_JSON_DEPTH + 1, SL.MAX_JSON_DEPTH + 2, 1000])
def test_json_nested_past_the_limit_is_refused_with_its_depth(tmp_path, depth):
    with pytest.raises(LandscapeInputError, match=f"nested {depth} levels deep; at most {SL.MAX_JSON_DEPTH} "):
        SL.read_arrays(_nested(tmp_path, depth), allowed=("tasks",), list_key="tasks")


def test_json_depth_counts_brackets_outside_strings_only():
    assert SL.MAX_JSON_DEPTH == 16
    assert SL._json_depth(b"") == 0 and SL._json_depth(b"1") == 0
    assert SL._json_depth(b"[[1],[2]]") == 2 and SL._json_depth(b'{"a": [[1]]}') == 3
    # brackets inside strings, escaped quotes included, do not count
    assert SL._json_depth(b'["[[[[", "\\"[[[", 1]') == 1
    assert SL._json_depth(b'{"k\\\\": [["]]]]"]]}') == 3


def test_a_string_of_brackets_does_not_make_a_shallow_file_deep(tmp_path):
    p = _nested(tmp_path, 2, string="[" * 40)
    try:
        SL.read_arrays(p, allowed=("tasks",), list_key="tasks")
    except LandscapeInputError as exc:
        assert "nested" not in str(exc)


def _npz_with(tmp_path, n: int):
    p = tmp_path / f"m{n}.npz"
    np.savez(p, tasks=np.zeros((1, 2, 2)), **{f"extra{i}": np.zeros(1) for i in range(n - 1)})
    return p


@pytest.mark.parametrize("n", [SL.MAX_NPZ_MEMBERS - 1, SL.MAX_NPZ_MEMBERS])
def test_an_npz_of_up_to_the_member_limit_gets_its_unknown_keys_named(tmp_path, n):
    with pytest.raises(LandscapeInputError, match="unknown key") as info:
        SL.read_arrays(_npz_with(tmp_path, n), allowed=("tasks",), list_key="tasks")
    assert "members" not in str(info.value)


@pytest.mark.parametrize("n", [SL.MAX_NPZ_MEMBERS + 1, 40])
def test_an_npz_of_more_members_than_the_limit_is_refused_outright(tmp_path, n):
    assert SL.MAX_NPZ_MEMBERS == 16
    with pytest.raises(LandscapeInputError, match=f"the archive has {n} members; an audit input has at most 1$"):
        SL.read_arrays(_npz_with(tmp_path, n), allowed=("tasks",), list_key="tasks")


def test_the_npy_header_limit_is_numpys_own_default_for_untrusted_files():
    import inspect

    from numpy.lib import format as npformat

    for reader in (npformat.read_array_header_1_0, npformat.read_array_header_2_0):
        assert inspect.signature(reader).parameters["max_header_size"].default == SL.MAX_NPY_HEADER_BYTES == 10_000


@pytest.mark.parametrize("n", [1, 20, 100])
def test_json_depth_of_a_list_of_objects_is_two_however_many(n):
    # closing braces close: a long list of objects stays two deep (and is not refused as deep)
    body = b"[" + b", ".join([b'{"a": 1}'] * n) + b"]"
    assert SL._json_depth(body) == 2
    assert SL._json_depth(b"[" + b",".join([b"{}"] * n) + b"]") == 2


@pytest.mark.parametrize("extra, refused", [(2**20, False), (2**20 + 1, True)])
def test_an_npz_file_is_refused_by_its_size_past_the_data_limit_plus_a_mebibyte(tmp_path, monkeypatch, extra, refused):
    """An archive larger than MAX_ARRAY_BYTES + 1 MiB (room for headers and the directory) is
    refused before its directory is read; at exactly that size it goes on to be parsed."""
    monkeypatch.setattr(SL, "MAX_ARRAY_BYTES", 1000)
    p = tmp_path / "big.npz"
    with open(p, "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(1000 + extra)
    with pytest.raises(LandscapeInputError) as info:
        SL.read_arrays(p, allowed=("tasks",), list_key="tasks")
    assert ("archive, above the limit of" in str(info.value)) is refused


def test_a_missing_file_is_named_as_missing(tmp_path):
    with pytest.raises(LandscapeInputError, match=r"^cannot read tasks\.json: no such file$"):
        SL.read_arrays(tmp_path / "tasks.json", allowed=("tasks",), list_key="tasks")


@pytest.mark.parametrize("strerror,shown", [("Input/output error", "Input/output error"), (None, "OSError")])
def test_an_open_that_fails_after_the_checks_says_why(monkeypatch, tmp_path, strerror, shown):
    """A regular, non-empty file whose open() then fails (an I/O error, a file replaced in
    between): the error names the system's reason, or the exception's type without one."""
    import builtins
    import errno

    import landscape.runtime.safe_load as SL
    from landscape import LandscapeInputError

    f = tmp_path / "tasks.npy"
    f.write_bytes(b"x")
    real_open = builtins.open

    def failing(path, *a, **k):
        if str(path) == str(f):
            raise OSError(errno.EIO, strerror) if strerror else OSError()
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", failing)
    with pytest.raises(LandscapeInputError, match=f"cannot read tasks.npy: {shown}$"):
        SL._open_regular(f, "")


@pytest.mark.parametrize("dt", [np.dtype("V8"), np.dtype([("a", "f8"), ("b", "f8")]), np.dtype([("a", "i4")])])
def test_raw_bytes_and_structured_dtypes_are_refused_each_on_its_own(dt, tmp_path):
    """A raw-bytes dtype (kind V, no fields) and a structured one (fields, also kind V) are
    both refused as not real numbers, from the dtype and from a file holding one."""
    with pytest.raises(LandscapeInputError, match=r"structured or raw-bytes dtype"):
        SL._check_dtype(dt, "f.npy")
    p = tmp_path / "x.npy"
    np.save(p, np.zeros(3, dtype=dt))
    with pytest.raises(LandscapeInputError, match=r"structured or raw-bytes dtype"):
        SL.read_arrays(p, allowed=("tasks",), list_key="tasks")


@pytest.mark.parametrize("fmt", ["npz", "json"])
@pytest.mark.parametrize("unknown, ellipsis", [(4, False), (5, True)])
def test_up_to_four_unknown_keys_are_named_then_an_ellipsis(tmp_path, unknown, ellipsis, fmt):
    """The refusal names the first four unknown keys; only a fifth or more adds ' ...'."""
    if fmt == "npz":
        path = _npz_with(tmp_path, unknown + 1)
    else:
        path = tmp_path / "m.json"
        path.write_text(json.dumps({"tasks": [[[1.0]]], **{f"extra{i}": [1.0] for i in range(unknown)}}))
    with pytest.raises(LandscapeInputError) as info:
        SL.read_arrays(path, allowed=("tasks",), list_key="tasks")
    msg = str(info.value)
    assert "unknown key(s) 'extra0', 'extra1', 'extra2', 'extra3'" in msg
    assert ("'extra3' ...;" in msg) is ellipsis and "'extra4'" not in msg


def test_a_long_declared_shape_is_quoted_in_sixty_characters():
    """A shape of many axes is quoted cut to 60 characters (57 of its repr and '...')."""
    shape = (2,) * 40  # 2^40 entries: far above the limit; its repr is 121 characters
    with pytest.raises(LandscapeInputError) as err:
        SL._check_shape_size(shape, "x")
    assert f"x: the header declares shape {repr(shape)[:57]}..., " in str(err.value)
