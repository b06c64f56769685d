r"""Reading untrusted array files without letting any input escape as a traceback.

Every audit input (task matrices, explicit starting points) goes through
:func:`read_arrays`.  The format is detected from the first bytes of the file, never
from its name (a ``.npy`` renamed ``.npz`` is read as what it is), and nothing is
allocated before the size it claims has been checked:

* ``.npy``: the header is parsed on its own (:mod:`numpy.lib.format`, a literal
  parser that never unpickles); its dtype must be real numeric and its shape must fit
  in :data:`MAX_ARRAY_BYTES` as float64 before a single data byte is read.
* ``.npz`` (a zip archive): member names are checked against the allowed keys first
  (an unknown member is never decompressed), then each member's *declared*
  uncompressed size, then its ``.npy`` header; reading is bounded by the declared size
  (:mod:`zipfile` stops there and checks the CRC), so a zip bomb costs nothing.
* JSON: at most :data:`MAX_JSON_BYTES`, UTF-8 (a byte-order mark is accepted; UTF-16
  and UTF-32 with a BOM are decoded), nesting depth measured on the raw text before
  parsing, integers and floats outside the float64 range refused by name, and every
  leaf checked to be a number (``true``/``null``/strings are refused, not silently
  converted to 1.0 or NaN).
* Pickles are recognised and refused; they are never loaded.

Errors are :class:`~landscape._validation.LandscapeInputError` with one line; file
contents are quoted only as a short excerpt (:func:`excerpt`).
"""
from __future__ import annotations

import codecs
import json
import math
import os
import re
import stat
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from .._validation import LandscapeInputError

__all__ = ["read_arrays", "excerpt", "MAX_ARRAY_BYTES", "MAX_JSON_BYTES", "MAX_JSON_DEPTH",
           "MAX_NPZ_MEMBERS", "MAX_EXCERPT_CHARS"]

#: Largest array accepted, counted as float64 after conversion (1 GiB: 134 million
#: entries, far above what an audit can search; above it the audit would exhaust the
#: memory of a workstation long before finishing).
MAX_ARRAY_BYTES = 2**30

#: Largest JSON file read (64 MiB of text is about 3 million numbers, ~100 MiB once
#: parsed into Python objects).
MAX_JSON_BYTES = 64 * 2**20

#: Deepest JSON nesting accepted: a stack of starting points (m, T, d, k) inside an
#: object is 5 levels; 16 leaves room and stops 200,000-deep inputs before parsing.
MAX_JSON_DEPTH = 16

#: An audit input has at most three arrays; a few more names are tolerated so that the
#: "unknown key" message can list them, beyond that the archive is refused outright.
MAX_NPZ_MEMBERS = 16

#: Longest quotation of user-supplied content in an error message.
MAX_EXCERPT_CHARS = 40

#: Largest ``.npy`` header parsed (numpy's own default limit for untrusted files).
MAX_NPY_HEADER_BYTES = 10_000

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def excerpt(value, limit: int = MAX_EXCERPT_CHARS) -> str:
    """A short printable quotation of ``value`` (repr, cut to ``limit`` characters)."""
    text = repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _why(exc: BaseException) -> str:
    """First line of an exception's message (or its type), as a short excerpt."""
    msg = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    return "".join(ch if ch.isprintable() else "?" for ch in msg)[:80]


def _human(nbytes: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{int(nbytes)} bytes"


# ----------------------------------------------------------------------------- files
def _open_regular(path: Path, label: str):
    """Open ``path`` for reading after checking it is a readable, non-empty regular file.

    Special files are refused *before* opening (opening a FIFO would block).
    """
    name = path.name or str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise LandscapeInputError(f"cannot read {label}{name}: no such file") from None
    except OSError as exc:
        raise LandscapeInputError(f"cannot read {label}{name}: {exc.strerror or type(exc).__name__}") from None
    if stat.S_ISDIR(st.st_mode):
        raise LandscapeInputError(f"cannot read {label}{name}: it is a directory")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise LandscapeInputError(f"cannot read {label}{name}: it is {kind}, not a regular file")
    if st.st_size == 0:
        raise LandscapeInputError(f"{label}{name}: the file is empty")
    try:
        fh = open(path, "rb")
    except PermissionError:
        raise LandscapeInputError(f"cannot read {label}{name}: permission denied") from None
    except OSError as exc:
        raise LandscapeInputError(f"cannot read {label}{name}: {exc.strerror or type(exc).__name__}") from None
    return fh, st.st_size


def sniff(head: bytes) -> str:
    """Format of a file from its first bytes: ``npy``, ``npz``, ``pickle``, ``json`` or ``unknown``."""
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_ZIP_MAGICS):
        return "npz"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    for bom, _ in _BOMS:
        if head.startswith(bom):
            return "json"
    stripped = head.lstrip(b" \t\r\n")
    if stripped[:1] in (b"[", b"{"):
        return "json"
    return "unknown"


# ----------------------------------------------------------------------------- npy
def _check_dtype(dtype: np.dtype, where: str) -> None:
    kind = dtype.kind
    if dtype.hasobject or kind == "O":
        raise LandscapeInputError(f"{where}: object arrays are refused (they are pickles, which are never loaded)")
    if dtype.names is not None or kind == "V":
        raise LandscapeInputError(f"{where}: structured or raw-bytes dtype {excerpt(str(dtype))}; "
                                  "expected real numbers")
    if kind == "c":
        raise LandscapeInputError(f"{where}: complex entries ({dtype}); the task matrices must be real")
    if kind == "b":
        raise LandscapeInputError(f"{where}: boolean entries; expected real numbers")
    if kind in "mM":
        raise LandscapeInputError(f"{where}: date/time entries ({dtype}); expected real numbers")
    if kind in "SUa":
        raise LandscapeInputError(f"{where}: text entries ({dtype}); expected real numbers")
    if kind not in "fiu":
        raise LandscapeInputError(f"{where}: unsupported dtype {excerpt(str(dtype))}; expected real numbers")


def _check_shape_size(shape, where: str) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    if n * 8 > MAX_ARRAY_BYTES:
        raise LandscapeInputError(
            f"{where}: the header declares shape {excerpt(tuple(shape), 60)}, {_human(n * 8)} as float64, "
            f"above the limit of {_human(MAX_ARRAY_BYTES)}")
    return n


def _read_npy_stream(fp, where: str, total: int) -> np.ndarray:
    """Read one ``.npy`` array from a binary stream of ``total`` bytes: header first,
    then the declared data, bounded by the header's (checked) size."""
    try:
        version = npformat.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fp, max_header_size=MAX_NPY_HEADER_BYTES)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npformat.read_array_header_2_0(fp, max_header_size=MAX_NPY_HEADER_BYTES)
        else:
            raise LandscapeInputError(f"{where}: unsupported .npy format version {version}")
    except LandscapeInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: any parser failure (ValueError,
        # tokenize.TokenError, SyntaxError, zlib.error, ...) means "unreadable", never a traceback
        raise LandscapeInputError(f"{where}: unreadable .npy header ({_why(exc)})") from None
    _check_dtype(dtype, where)
    n = _check_shape_size(shape, where)
    nbytes = n * dtype.itemsize
    available = total - fp.tell()
    if nbytes > available:
        raise LandscapeInputError(f"{where}: truncated: the header declares {nbytes} data bytes, "
                                  f"the file holds {available}")
    try:
        raw = fp.read(nbytes)
    except Exception as exc:  # noqa: BLE001 - damaged archive member (zlib.error, bad CRC, ...)
        raise LandscapeInputError(f"{where}: cannot read the data ({_why(exc)})") from None
    if len(raw) != nbytes:
        raise LandscapeInputError(f"{where}: truncated: {len(raw)} of {nbytes} data bytes present")
    arr = np.frombuffer(raw, dtype=dtype, count=n)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_npy_file(fh, size: int, where: str) -> np.ndarray:
    fh.seek(0)
    return _read_npy_stream(fh, where, size)


# ----------------------------------------------------------------------------- npz
def _read_npz(fh, name: str, allowed: tuple, label: str) -> dict:
    try:
        zf = zipfile.ZipFile(fh)
    except Exception as exc:  # noqa: BLE001 - any failure to parse the archive directory
        raise LandscapeInputError(f"cannot read {label}{name}: not a valid .npz archive ({_why(exc)})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_NPZ_MEMBERS:
            raise LandscapeInputError(f"{label}{name}: the archive has {len(infos)} members; "
                                      f"an audit input has at most {len(allowed)}")
        keys = []
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            keys.append(key)
        if len(set(keys)) != len(keys):
            raise LandscapeInputError(f"{label}{name}: the archive contains duplicate members")
        unknown = [k for k in keys if k not in allowed]
        if unknown:
            raise LandscapeInputError(
                f"{label}{name}: unknown key(s) {', '.join(excerpt(k) for k in unknown[:4])}"
                f"{' ...' if len(unknown) > 4 else ''}; allowed keys are {', '.join(map(repr, allowed))}")
        total = sum(info.file_size for info in infos)
        if total > MAX_ARRAY_BYTES + MAX_NPY_HEADER_BYTES * len(infos):
            raise LandscapeInputError(f"{label}{name}: members declare {_human(total)} uncompressed, above the "
                                      f"limit of {_human(MAX_ARRAY_BYTES)}")
        out = {}
        for info, key in zip(infos, keys):
            if info.flag_bits & 0x1:
                raise LandscapeInputError(f"{label}{name}: member {excerpt(key)} is encrypted")
            where = f"{label}{name}[{key}]"
            try:
                with zf.open(info) as member:
                    if member.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
                        raise LandscapeInputError(f"{where}: the member is not a .npy array")
                with zf.open(info) as member:
                    arr = _read_npy_stream(member, where, info.file_size)
            except LandscapeInputError:
                raise
            except Exception as exc:  # noqa: BLE001 - unsupported compression, bad CRC, zlib.error, ...
                raise LandscapeInputError(f"cannot read {where}: {_why(exc)}") from None
            out[key] = arr
        return out


# ----------------------------------------------------------------------------- json
class _JSONRangeError(Exception):
    pass


def _parse_int(text: str):
    if len(text.lstrip("-")) <= 300:
        return int(text)
    raise _JSONRangeError(f"integer with {len(text.lstrip('-'))} digits is outside the float64 range")


def _parse_float(text: str):
    value = float(text)
    if not math.isfinite(value):
        raise _JSONRangeError(f"number {excerpt(text)} is outside the float64 range")
    return value


def _parse_constant(text: str):
    raise _JSONRangeError(f"{text} is not a JSON number (non-finite entries are refused)")


def _json_depth(raw: bytes) -> int:
    """Maximum bracket nesting of a JSON text, strings removed (no parsing, no recursion)."""
    body = _JSON_STRING.sub(b'""', raw)
    buf = np.frombuffer(body, dtype=np.uint8)
    step = ((buf == ord("[")) | (buf == ord("{"))).astype(np.int64) - ((buf == ord("]")) | (buf == ord("}")))
    return int(np.max(np.cumsum(step), initial=0))


def _check_leaves(value, where: str) -> None:
    """Every leaf a number (int or float, not bool), iteratively."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, bool) or v is None or not isinstance(v, (int, float)):
            kind = ("a boolean" if isinstance(v, bool) else "null" if v is None else
                    "a string" if isinstance(v, str) else "an object" if isinstance(v, dict) else type(v).__name__)
            raise LandscapeInputError(f"{where}: entry {excerpt(v)} is {kind}; expected numbers only")


def _json_array(value, where: str) -> np.ndarray:
    _check_leaves(value, where)
    try:
        arr = np.array(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise LandscapeInputError(f"{where}: not a numeric array (nested lists of unequal lengths)") from None
    return arr


def _no_duplicate_keys(pairs):
    """JSON object hook: a key given twice is refused (json would silently keep the last value)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise _JSONRangeError(f"the key {excerpt(key)} appears twice in one object; which value is meant "
                                  "is ambiguous")
        out[key] = value
    return out


def _read_json(fh, size: int, name: str, label: str):
    if size > MAX_JSON_BYTES:
        raise LandscapeInputError(f"{label}{name}: {_human(size)} of JSON, above the limit of {_human(MAX_JSON_BYTES)}"
                                  "; use .npy or .npz for large arrays")
    fh.seek(0)
    raw = fh.read(MAX_JSON_BYTES + 1)  # one byte more than allowed: a file that grew since its size was taken
    if len(raw) > MAX_JSON_BYTES:
        raise LandscapeInputError(f"{label}{name}: the file changed while being read (now above the limit of "
                                  f"{_human(MAX_JSON_BYTES)} of JSON)")
    encoding = "utf-8"
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            encoding = enc
            break
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise LandscapeInputError(f"cannot read {label}{name}: not {encoding.replace('-sig', '')} text "
                                  f"(byte 0x{raw[exc.start]:02x} at offset {exc.start}; JSON must be UTF-8)") from None
    if encoding != "utf-8":
        text = text.lstrip("\ufeff")
    depth = _json_depth(text.encode("utf-8") if encoding != "utf-8" else raw)
    if depth > MAX_JSON_DEPTH:
        raise LandscapeInputError(f"{label}{name}: JSON nested {depth} levels deep; at most {MAX_JSON_DEPTH} are "
                                  "accepted")
    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant,
                          object_pairs_hook=_no_duplicate_keys)
    except _JSONRangeError as exc:
        raise LandscapeInputError(f"{label}{name}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LandscapeInputError(f"cannot read {label}{name}: invalid JSON ({exc.msg} at line {exc.lineno}, "
                                  f"column {exc.colno})") from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise LandscapeInputError(f"{label}{name}: JSON nested too deeply") from None
    return data


# ----------------------------------------------------------------------------- entry point
def read_arrays(path, *, allowed: tuple, list_key: str, label: str = "") -> tuple[str, dict]:
    """Read an array file of any supported format, detected by content.

    Parameters
    ----------
    allowed : tuple of str
        Keys an ``.npz`` archive or a JSON object may hold.
    list_key : str
        Key under which a bare array (``.npy``, a JSON list) is returned.
    label : str
        Prefix for messages (e.g. ``"starting points "``).

    Returns
    -------
    (format, mapping)
        ``format`` is ``"npy"``, ``"npz"`` or ``"json"``; ``mapping`` maps keys to
        float64-convertible numpy arrays (real dtype, size already checked).
    """
    p = Path(os.fspath(path))
    name = p.name or str(p)
    fh, size = _open_regular(p, label)
    with fh:
        try:
            head = fh.read(16)
        except OSError as exc:
            raise LandscapeInputError(f"cannot read {label}{name}: {exc.strerror or type(exc).__name__}") from None
        fmt = sniff(head)
        if fmt == "pickle":
            raise LandscapeInputError(f"{label}{name}: is a Python pickle; pickles are never loaded "
                                      "(use .npy, .npz or JSON)")
        if fmt == "npy":
            return "npy", {list_key: _read_npy_file(fh, size, f"{label}{name}")}
        if fmt == "npz":
            if size > MAX_ARRAY_BYTES + 2**20:
                raise LandscapeInputError(f"{label}{name}: {_human(size)} archive, above the limit of "
                                          f"{_human(MAX_ARRAY_BYTES)}")
            fh.seek(0)
            return "npz", _read_npz(fh, name, allowed, label)
        if fmt == "json":
            data = _read_json(fh, size, name, label)
            if isinstance(data, list):
                if len(data) == 0:
                    raise LandscapeInputError(f"{label}{name}: the list is empty")
                return "json", {list_key: _json_array(data, f"{label}{name}")}
            if isinstance(data, dict):
                unknown = [k for k in data if k not in allowed]
                if unknown:
                    raise LandscapeInputError(
                        f"{label}{name}: unknown key(s) {', '.join(excerpt(k) for k in unknown[:4])}"
                        f"{' ...' if len(unknown) > 4 else ''}; allowed keys are {', '.join(map(repr, allowed))}")
                return "json", {k: _json_array(v, f"{label}{name}[{k}]") for k, v in data.items()}
            raise LandscapeInputError(f"{label}{name}: expected a list of matrices or an object, "
                                      f"got {type(data).__name__}")
        ext = p.suffix.lower()
        raise LandscapeInputError(f"cannot read {label}{name}: unsupported file type: the content is not .npy, "
                                  f".npz or JSON (name ends in {ext or '(nothing)'!r}; formats are recognised by "
                                  "content)")
