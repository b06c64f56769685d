"""Reading pickled data files without running code from them.

The CIFAR-10 python batches and the PAML persona maps are pickles by definition, and
they come from locations the user names (``--data-root``, ``--map-dir``). A pickle
can name any importable callable (``os.system``, ``builtins.eval``, ...) and have it
called while loading, so :func:`load_data_pickle` uses an unpickler that resolves only
the few globals these formats reference, and checks what it built:

* builtin values and containers: ``dict``, ``list``, ``tuple``, ``set``,
  ``frozenset``, ``str``, ``bytes``, ``bytearray``, ``int``, ``float``, ``bool``,
  ``None`` (they need no global at all, except ``set``/``frozenset``/``bytearray``
  under protocol 2);
* ``_codecs.encode`` with the ``latin1`` codec: how protocol 2 writes ``bytes``;
* numpy arrays and scalars of plain dtypes (bool, integers, floats, complex, fixed
  width ``bytes``/``str``), through exactly the globals numpy's pickles reference:
  ``numpy.ndarray``, ``numpy.dtype``, ``numpy.core.multiarray._reconstruct`` /
  ``numpy._core.multiarray._reconstruct`` (arrays, protocol < 5),
  ``numpy._core.numeric._frombuffer`` (arrays, protocol 5), ``...multiarray.scalar``
  (numpy scalars, e.g. the ``numpy.int32`` keys of the persona maps).

Every other global is refused before it is imported or called, and so are object or
structured dtypes and ndarray subclasses (their construction could reach arbitrary
code through ``__reduce__`` of the elements). After loading, the whole object is
walked once more and anything that is not one of the types above is refused.
Errors are :class:`UnsafePickleError` (a ``ValueError``: the command lines report it
as bad input, exit status 2, one line).
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

__all__ = ["UnsafePickleError", "load_data_pickle", "loads_data_pickle", "ALLOWED_GLOBALS"]


class UnsafePickleError(ValueError):
    """A data pickle references something other than plain data, or is not a readable pickle."""


#: dtype kinds admitted: bool, signed/unsigned integers, floats, complex, bytes, str.
_PLAIN_KINDS = frozenset("biufcSU")


def _check_dtype(dt: np.dtype) -> np.dtype:
    if dt.hasobject or dt.kind not in _PLAIN_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise UnsafePickleError(f"numpy dtype {dt.str!r} is not a plain data type")
    return dt


def _dtype(*args, **kwargs):
    # numpy pickles a dtype as dtype(str, align, copy) followed by BUILD (__setstate__);
    # the state is applied to the object returned here and re-checked after loading
    if args and not isinstance(args[0], str):
        raise UnsafePickleError(f"numpy dtype built from {type(args[0]).__name__}, not from a type string")
    return _check_dtype(np.dtype(*args, **kwargs))


def _reconstruct(subtype, shape, dtype_code):
    if subtype is not np.ndarray:
        raise UnsafePickleError("a numpy array of a subclass (only numpy.ndarray is admitted)")
    if not isinstance(dtype_code, (bytes, str)):
        raise UnsafePickleError("a numpy array with a non-string dtype code")
    return np.ndarray.__new__(np.ndarray, shape, np.dtype(dtype_code))


def _frombuffer(buf, dtype, shape, order):
    if not isinstance(dtype, np.dtype):
        raise UnsafePickleError("a numpy array whose dtype is not a numpy dtype")
    _check_dtype(dtype)
    if not isinstance(buf, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        raise UnsafePickleError("a numpy array whose buffer is not bytes")
    if order not in ("C", "F"):
        raise UnsafePickleError(f"a numpy array with memory order {order!r}")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy()


def _scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype):
        raise UnsafePickleError("a numpy scalar whose dtype is not a numpy dtype")
    _check_dtype(dtype)
    if not isinstance(data, bytes):
        raise UnsafePickleError("a numpy scalar whose value is not raw bytes")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _encode(text, encoding="utf-8", errors="strict"):
    if not isinstance(text, str) or encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "utf8"):
        raise UnsafePickleError(f"_codecs.encode with {encoding!r}")
    return text.encode(encoding, errors)


#: (module, name) -> the callable the unpickler hands out instead of the real global.
ALLOWED_GLOBALS = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("__builtin__", "set"): set,  # Python 2 pickles (the original CIFAR-10 files are Python 2)
    ("__builtin__", "frozenset"): frozenset,
    ("__builtin__", "bytearray"): bytearray,
    ("_codecs", "encode"): _encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"it references {module}.{name}, which is not plain data "
                                    "(refused without importing or calling it)") from None

    def persistent_load(self, pid):
        raise UnsafePickleError("it uses persistent ids, which plain data never needs")


_SCALARS = (str, bytes, bytearray, int, float, complex, bool, type(None))


def _check_tree(obj, depth: int = 0) -> None:
    if depth > 100:
        raise UnsafePickleError("it is nested more than 100 levels deep")
    if isinstance(obj, np.ndarray):
        if type(obj) is not np.ndarray:
            raise UnsafePickleError("a numpy array of a subclass")
        _check_dtype(obj.dtype)
        return
    if isinstance(obj, np.generic):
        _check_dtype(obj.dtype)
        return
    if isinstance(obj, np.dtype):
        _check_dtype(obj)
        return
    t = type(obj)
    if t in _SCALARS:
        return
    if t is dict:
        for k, v in obj.items():
            _check_tree(k, depth + 1)
            _check_tree(v, depth + 1)
        return
    if t in (list, tuple, set, frozenset):
        for v in obj:
            _check_tree(v, depth + 1)
        return
    raise UnsafePickleError(f"it holds an object of type {t.__module__}.{t.__qualname__}, which is not plain data")


def loads_data_pickle(data: bytes, *, what: str = "pickle", encoding: str = "latin1"):
    """Unpickle ``data`` admitting plain data only (see the module docstring)."""
    try:
        obj = _DataUnpickler(io.BytesIO(data), encoding=encoding).load()
        _check_tree(obj)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{what}: refused: {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- whatever else a damaged or hostile file makes the
        # stand-ins or the unpickler raise (EOFError, a negative shape's ValueError, an unknown
        # error handler's LookupError, RecursionError, ...) is one kind of bad input
        raise UnsafePickleError(f"{what}: not a readable data pickle (truncated or corrupted? "
                                f"{type(exc).__name__}: {str(exc)[:80]})") from None
    return obj


def load_data_pickle(path: str | os.PathLike, *, encoding: str = "latin1"):
    """Read the pickle file ``path`` admitting plain data only; :class:`UnsafePickleError` otherwise."""
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read()
    return loads_data_pickle(data, what=str(path), encoding=encoding)
