"""empirics.real._safe_pickle pinned at its boundaries: exactly which globals resolve (and to
what), exactly which numpy dtype kinds pass, the codec names ``_codecs.encode`` admits, the
nesting limit at 100 levels, the post-load walk of every container (dict keys included), and
the one error type with the file named in it.

The reader stands between a user's data directory and the process, so each admitted name and
each refusal is written out here: widening any of them (one more global, one more dtype kind,
one level deeper, one container left unwalked) fails a test.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from empirics.real import _safe_pickle as sp
from empirics.real._safe_pickle import UnsafePickleError, load_data_pickle, loads_data_pickle


class _Custom:
    pass


def _global(module: str, name: str, proto: int = 2) -> bytes:
    """A pickle whose whole content is the global ``module.name`` (opcode GLOBAL)."""
    return b"\x80" + bytes([proto]) + b"c" + module.encode() + b"\n" + name.encode() + b"\n."


# ------------------------------------------------------------------ the globals
def test_the_admitted_globals_are_exactly_these():
    want = {("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"),
            ("__builtin__", "set"), ("__builtin__", "frozenset"), ("__builtin__", "bytearray"),
            ("_codecs", "encode"), ("numpy", "ndarray"), ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
            ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}
    assert set(sp.ALLOWED_GLOBALS) == want
    g = sp.ALLOWED_GLOBALS
    assert g[("builtins", "set")] is set and g[("__builtin__", "set")] is set
    assert g[("builtins", "frozenset")] is frozenset and g[("__builtin__", "frozenset")] is frozenset
    assert g[("builtins", "bytearray")] is bytearray and g[("__builtin__", "bytearray")] is bytearray
    assert g[("numpy", "ndarray")] is np.ndarray
    # the numpy constructors are the checked stand-ins, never numpy's own functions
    assert g[("numpy", "dtype")] is sp._dtype and g[("_codecs", "encode")] is sp._encode
    assert {g[("numpy.core.multiarray", "_reconstruct")], g[("numpy._core.multiarray", "_reconstruct")]} == {sp._reconstruct}
    assert {g[("numpy.core.multiarray", "scalar")], g[("numpy._core.multiarray", "scalar")]} == {sp._scalar}
    assert {g[("numpy.core.numeric", "_frombuffer")], g[("numpy._core.numeric", "_frombuffer")]} == {sp._frombuffer}


@pytest.mark.parametrize("module, name", [("builtins", "set"), ("__builtin__", "frozenset"), ("numpy", "ndarray")])
def test_an_admitted_global_resolves_to_its_stand_in_but_is_not_data_itself(module, name):
    import io

    unpickler = sp._DataUnpickler(io.BytesIO(b""))
    assert unpickler.find_class(module, name) is sp.ALLOWED_GLOBALS[(module, name)]
    # a bare global (a type or function object) is what the walk then refuses
    with pytest.raises(UnsafePickleError, match="of type builtins.type, which is not plain data"):
        loads_data_pickle(_global(module, name))


@pytest.mark.parametrize("module, name", [
    ("os", "system"), ("builtins", "eval"), ("builtins", "getattr"), ("numpy", "load"),
    ("numpy.core.multiarray", "ndarray"), ("builtins", "list"), ("no_such_module_xyz", "anything")])
def test_every_other_global_is_refused_by_name_without_importing_it(module, name):
    with pytest.raises(UnsafePickleError, match=rf"refused: it references {module}\.{name}, which is not plain data"):
        loads_data_pickle(_global(module, name))


def test_persistent_ids_are_refused():
    with pytest.raises(UnsafePickleError, match="persistent ids"):
        loads_data_pickle(b"\x80\x02X\x01\x00\x00\x00aQ.")  # BINUNICODE 'a', BINPERSID


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("dt", ["?", "i1", "<i8", "u2", ">u4", "f2", "<f8", "c8", "c16", "S3", "U5"])
def test_plain_dtypes_pass(dt):
    d = np.dtype(dt)
    assert d.kind in "biufcSU"
    assert sp._check_dtype(d) is d
    a = np.arange(3).astype(d)
    for protocol in (2, 4, 5):
        back = loads_data_pickle(pickle.dumps(a, protocol=protocol))
        # values, kind and width as pickle itself gives them (it may return the native byte order)
        assert back.tolist() == a.tolist() and back.dtype.kind == d.kind and back.dtype.itemsize == d.itemsize


@pytest.mark.parametrize("dt", ["O", "M8[s]", "m8[D]", "V4", [("a", "f8")], ("f8", (2,))])
def test_every_other_dtype_is_refused(dt):
    d = np.dtype(dt)
    with pytest.raises(UnsafePickleError, match="is not a plain data type"):
        sp._check_dtype(d)


def test_the_admitted_kinds_are_exactly_seven():
    assert sp._PLAIN_KINDS == frozenset("biufcSU")


@pytest.mark.parametrize("value", [np.datetime64("2020-01-01"), np.timedelta64(3, "s")])
def test_numpy_scalars_of_a_refused_kind_are_refused(value):
    with pytest.raises(UnsafePickleError):
        loads_data_pickle(pickle.dumps({"v": value}, protocol=4))


def test_a_dtype_is_built_from_a_type_string_only():
    assert sp._dtype("f4") == np.dtype("f4")
    with pytest.raises(UnsafePickleError, match="not from a type string"):
        sp._dtype(np.float32)
    with pytest.raises(UnsafePickleError):
        sp._dtype("O")


def test_reconstruct_admits_the_base_class_and_string_codes_only():
    a = sp._reconstruct(np.ndarray, (0,), b"b")
    assert type(a) is np.ndarray and a.shape == (0,)
    assert sp._reconstruct(np.ndarray, (2,), "f8").dtype == np.dtype("f8")
    with pytest.raises(UnsafePickleError, match="subclass"):
        sp._reconstruct(np.ma.MaskedArray, (0,), b"b")
    with pytest.raises(UnsafePickleError, match="non-string dtype code"):
        sp._reconstruct(np.ndarray, (0,), 5)


def test_frombuffer_checks_each_argument_and_returns_an_owned_copy():
    buf = np.arange(6, dtype="<i4").tobytes()
    c = sp._frombuffer(buf, np.dtype("<i4"), (2, 3), "C")
    assert c.flags.writeable and c.flags.owndata and c.tolist() == [[0, 1, 2], [3, 4, 5]]
    f = sp._frombuffer(bytearray(buf), np.dtype("<i4"), (2, 3), "F")
    assert f.tolist() == [[0, 2, 4], [1, 3, 5]] and f.flags.owndata
    assert sp._frombuffer(memoryview(buf), np.dtype("<i4"), (6,), "C").sum() == 15
    assert sp._frombuffer(pickle.PickleBuffer(buf), np.dtype("<i4"), (6,), "C").sum() == 15
    with pytest.raises(UnsafePickleError, match="dtype is not a numpy dtype"):
        sp._frombuffer(buf, "<i4", (6,), "C")
    with pytest.raises(UnsafePickleError, match="not a plain data type"):
        sp._frombuffer(buf, np.dtype("O"), (3,), "C")
    with pytest.raises(UnsafePickleError, match="buffer is not bytes"):
        sp._frombuffer(list(buf), np.dtype("<i4"), (6,), "C")
    with pytest.raises(UnsafePickleError, match="memory order 'K'"):
        sp._frombuffer(buf, np.dtype("<i4"), (6,), "K")


def test_scalar_checks_dtype_and_raw_bytes():
    v = sp._scalar(np.dtype("<i4"), (7).to_bytes(4, "little"))
    assert v == 7 and isinstance(v, np.int32)
    with pytest.raises(UnsafePickleError, match="dtype is not a numpy dtype"):
        sp._scalar("<i4", b"\0\0\0\0")
    with pytest.raises(UnsafePickleError, match="not a plain data type"):
        sp._scalar(np.dtype("M8[s]"), b"\0" * 8)
    with pytest.raises(UnsafePickleError, match="not raw bytes"):
        sp._scalar(np.dtype("<i4"))
    with pytest.raises(UnsafePickleError, match="not raw bytes"):
        sp._scalar(np.dtype("<i4"), bytearray(4))


@pytest.mark.parametrize("enc", ["latin1", "latin-1", "LATIN_1", "Latin1", "utf-8", "utf8", "UTF_8"])
def test_encode_admits_the_latin1_and_utf8_spellings(enc):
    assert sp._encode("\xff", enc) == "\xff".encode(enc)
    assert sp._encode("abc") == b"abc"  # utf-8 by default, as _codecs.encode


@pytest.mark.parametrize("enc", ["rot13", "cp1252", "latin2", "utf16", "hex", "base64"])
def test_encode_refuses_every_other_codec(enc):
    with pytest.raises(UnsafePickleError, match="_codecs.encode with"):
        sp._encode("abc", enc)


def test_encode_refuses_non_text():
    with pytest.raises(UnsafePickleError):
        sp._encode(b"abc", "latin1")


def test_protocol_2_bytes_round_trip_through_encode():
    data = {b"\x00\xff": bytearray(b"\x01\x02"), "fs": frozenset({1})}
    assert loads_data_pickle(pickle.dumps(data, protocol=2)) == data


# ------------------------------------------------------------------ the walk of what was built
def _nested(levels: int):
    x = 0
    for _ in range(levels):
        x = [x]
    return x


def test_nesting_is_admitted_up_to_100_levels_and_refused_at_101():
    assert loads_data_pickle(pickle.dumps(_nested(100))) == _nested(100)
    sp._check_tree(_nested(100))
    with pytest.raises(UnsafePickleError, match="more than 100 levels"):
        sp._check_tree(_nested(101))
    with pytest.raises(UnsafePickleError, match="more than 100 levels"):
        loads_data_pickle(pickle.dumps(_nested(101)))


@pytest.mark.parametrize("obj", [
    "s", b"b", bytearray(b"x"), 3, 2.5, 1 + 2j, True, None, {1: [2, (3,)]}, {frozenset({1}), 2},
    np.zeros(2), np.float32(1.5), np.dtype("i2")])
def test_plain_values_pass_the_walk(obj):
    assert sp._check_tree(obj) is None


@pytest.mark.parametrize("obj", [
    _Custom(), [1, _Custom()], (_Custom(),), {_Custom()}, frozenset({_Custom()}), {"k": _Custom()},
    {_Custom(): 1}, np.ma.array([1.0]), np.zeros(1, dtype=object), np.datetime64(0, "s"),
    np.dtype("O"), {1: [{2: (3, _Custom())}]}])
def test_anything_else_anywhere_is_refused_by_the_walk(obj):
    with pytest.raises(UnsafePickleError):
        sp._check_tree(obj)


def test_a_subclass_of_a_plain_type_is_refused():
    class MyDict(dict):
        pass

    class MyInt(int):
        pass

    for obj in (MyDict(), MyInt(3), [MyInt(1)]):
        with pytest.raises(UnsafePickleError, match="not plain data"):
            sp._check_tree(obj)


# ------------------------------------------------------------------ errors and the file
@pytest.mark.parametrize("data", [b"", b"\x80\x04\x95", pickle.dumps({"a": 1})[:-3], b"not a pickle"])
def test_unreadable_bytes_are_one_error_type_naming_the_source(data):
    with pytest.raises(UnsafePickleError, match=r"^batch 7: not a readable data pickle \(truncated or corrupted\?"):
        loads_data_pickle(data, what="batch 7")


def test_refusals_name_the_source():
    with pytest.raises(UnsafePickleError, match=r"^src: refused: "):
        loads_data_pickle(_global("os", "system"), what="src")
    with pytest.raises(UnsafePickleError, match=r"^pickle: refused: "):
        loads_data_pickle(_global("os", "system"))


def test_unsafe_pickle_error_is_a_value_error():
    assert issubclass(UnsafePickleError, ValueError)


def test_python2_strings_decode_as_latin1_by_default(tmp_path):
    py2 = b"S'\\xff\\xe9'\np0\n."  # protocol 0 STRING, as Python 2 wrote CIFAR-10's batches
    assert loads_data_pickle(py2) == "\xff\xe9"
    assert loads_data_pickle(py2, encoding="bytes") == b"\xff\xe9"
    f = tmp_path / "data_batch_1"
    f.write_bytes(py2)
    assert load_data_pickle(f) == "\xff\xe9"
    assert load_data_pickle(str(f), encoding="bytes") == b"\xff\xe9"
    f.write_bytes(_global("os", "system"))
    with pytest.raises(UnsafePickleError, match=rf"^{f}: refused"):
        load_data_pickle(f)


def test_nesting_through_dict_keys_and_values_counts_every_level():
    def nested_values(levels: int):
        x = 0
        for _ in range(levels):
            x = {"k": x}
        return x

    def nested_tuple(levels: int):
        x = 0
        for _ in range(levels):
            x = (x,)
        return x

    # the innermost value 100 levels deep passes, 101 is refused, through values and through keys
    sp._check_tree(nested_values(100))
    with pytest.raises(UnsafePickleError, match="more than 100 levels"):
        sp._check_tree(nested_values(101))
    sp._check_tree({nested_tuple(99): 0})
    with pytest.raises(UnsafePickleError, match="more than 100 levels"):
        sp._check_tree({nested_tuple(100): 0})


def test_a_dtype_from_a_type_object_is_named_in_the_refusal():
    with pytest.raises(UnsafePickleError, match=r"^numpy dtype built from type, not from a type string$"):
        sp._dtype(np.float32)
    with pytest.raises(UnsafePickleError, match=r"^numpy dtype built from int, not from a type string$"):
        sp._dtype(4)
    assert sp._dtype("u1", False, True) == np.dtype("u1")  # numpy's own pickles: (str, align, copy)


# hand-written pickles (protocol 3): a stand-in called with arguments that make it raise
_NEGATIVE_SHAPE = b"\x80\x03cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\xff\xff\xff\xff\x85C\x01b\x87R."
_UNKNOWN_HANDLER = (b"\x80\x03c_codecs\nencode\nX\x03\x00\x00\x00\xe1\x88\xb4X\x06\x00\x00\x00latin1"
                    b"X\x05\x00\x00\x00bogus\x87R.")
_UNENCODABLE = b"\x80\x03c_codecs\nencode\nX\x03\x00\x00\x00\xe1\x88\xb4X\x06\x00\x00\x00latin1\x86R."


@pytest.mark.parametrize("data, cause", [(_NEGATIVE_SHAPE, "ValueError: negative dimensions"),
                                         (_UNKNOWN_HANDLER, "LookupError: unknown error handler"),
                                         (_UNENCODABLE, "UnicodeEncodeError")])
def test_whatever_a_stand_in_raises_is_reported_as_an_unreadable_pickle(data, cause):
    with pytest.raises(UnsafePickleError, match=rf"^f: not a readable data pickle \(truncated or corrupted\? {cause}"):
        loads_data_pickle(data, what="f")


# ------------------------------------------------------------------ the full run's survivors
def _nested_tuple(levels: int):
    x = 0
    for _ in range(levels):
        x = (x,)
    return x


@pytest.mark.parametrize("outer", [1, 2, 3])
def test_a_dict_key_is_one_level_below_its_dict_at_every_depth(outer):
    """The key of a dict at depth ``outer`` (odd and even) is at depth outer + 1: a tuple
    key reaching depth 100 passes and one reaching 101 is refused, through the whole
    reader too."""
    def wrap(obj):
        for _ in range(outer):
            obj = [obj]
        return obj

    inner = 100 - (outer + 1)  # the key's own levels below it
    ok, deep = wrap({_nested_tuple(inner): 0}), wrap({_nested_tuple(inner + 1): 0})
    sp._check_tree(ok)
    assert loads_data_pickle(pickle.dumps(ok, protocol=4)) == ok
    with pytest.raises(UnsafePickleError, match="more than 100 levels"):
        sp._check_tree(deep)
    with pytest.raises(UnsafePickleError, match="more than 100 levels"):
        loads_data_pickle(pickle.dumps(deep, protocol=4))


def test_a_union_dtype_of_a_plain_kind_is_refused():
    """An integer dtype with named fields (kind "i", fields set, no subarray) is a
    structured dtype all the same: refused, on its own and as an array's dtype."""
    dt = np.dtype(("i4", [("lo", "i2"), ("hi", "i2")]))
    assert dt.kind == "i" and dt.fields is not None and dt.subdtype is None
    with pytest.raises(UnsafePickleError, match="not a plain data type"):
        sp._check_dtype(dt)
    with pytest.raises(UnsafePickleError, match="not a plain data type"):
        loads_data_pickle(pickle.dumps(np.zeros(3, dtype=dt), protocol=4))
    sub = np.dtype(("f8", (2,)))
    assert sub.subdtype is not None and sub.fields is None
    with pytest.raises(UnsafePickleError, match="not a plain data type"):
        sp._check_dtype(sub)


class _DtypeFrom:
    """Pickles as numpy.dtype(*args): what a crafted file can ask of the stand-in."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return np.dtype, self.args


@pytest.mark.parametrize("args,name", [((5, False, True), "int"), ((b"f8", 0), "bytes"), ((None, "x"), "NoneType")])
def test_a_dtype_refusal_names_the_type_of_its_first_argument(args, name):
    with pytest.raises(UnsafePickleError, match=rf"refused: numpy dtype built from {name}, not from a type string$"):
        loads_data_pickle(pickle.dumps(_DtypeFrom(*args), protocol=2))


def test_the_cause_of_an_unreadable_pickle_is_quoted_to_80_characters():
    handler = "h" * 120
    with pytest.raises(LookupError) as real:
        "\u1234".encode("latin1", handler)
    cause = str(real.value)
    assert len(cause) > 80
    data = (b"\x80\x03c_codecs\nencode\nX\x03\x00\x00\x00\xe1\x88\xb4X\x06\x00\x00\x00latin1X"
            + len(handler).to_bytes(4, "little") + handler.encode() + b"\x87R.")
    with pytest.raises(UnsafePickleError) as err:
        loads_data_pickle(data, what="f")
    assert str(err.value) == f"f: not a readable data pickle (truncated or corrupted? LookupError: {cause[:80]})"


def test_the_readers_options_are_keyword_only():
    import inspect

    for fn, first in ((loads_data_pickle, "data"), (load_data_pickle, "path")):
        params = list(inspect.signature(fn).parameters.values())
        assert params[0].name == first and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert params[1:] and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
