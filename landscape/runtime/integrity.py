"""Stored results that cannot be silently corrupted: a content hash written with every stored JSON document.

Every result the toolkit stores and reads back later (executor units, atlas cells,
real-data units, run records, figure data, bundle plans) is a JSON object written
through :func:`seal`: the object gets one more top-level field, ``content_sha256``, the
sha256 of its *canonical* form (the object without that field, serialised with sorted
keys, no whitespace, ASCII only). Each document holds its own configuration (or
configuration digest), so the hash covers the content and its configuration key together.

:func:`read_sealed` recomputes the hash on every read. A file that is truncated, not
JSON, not an object, without the field or with another hash raises
:class:`StoreIntegrityError`, whose one-line message names the file and how to recover
(delete it and rerun: the command recomputes it); the content is never used. The
command lines report it as bad input (exit status 2, :mod:`landscape.runtime.exits`).

This protects against accidental corruption and hand edits, not against an adversary:
the hash is not keyed, so someone who edits a file and recomputes the hash on purpose
is not stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["FIELD", "file_sha256", "StoreIntegrityError", "content_digest", "seal", "check_sealed", "read_sealed",
           "sealed_text"]

#: The top-level field holding the hash.
FIELD = "content_sha256"


class StoreIntegrityError(ValueError):
    """A stored result failed its integrity check (truncated, edited or not ours); it is not used."""


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def content_digest(doc: dict) -> str:
    """sha256 of the canonical JSON of ``doc`` without its :data:`FIELD`."""
    return hashlib.sha256(_canonical({k: v for k, v in doc.items() if k != FIELD})).hexdigest()


def seal(doc: dict) -> dict:
    """``doc`` (a JSON-able dict whose JSON round trip is itself) with its content hash added."""
    if not isinstance(doc, dict):
        raise TypeError(f"only JSON objects are sealed, got {type(doc).__name__}")
    # hash what a reader will parse: the JSON round trip (tuples become lists, ...)
    plain = json.loads(json.dumps({k: v for k, v in doc.items() if k != FIELD}))
    return {**plain, FIELD: content_digest(plain)}


def sealed_text(doc: dict, *, indent: int | None = None) -> str:
    """The JSON text of :func:`seal` ``(doc)``, newline-terminated."""
    return json.dumps(seal(doc), indent=indent) + "\n"


def _recover(path) -> str:
    return f"it is not used; delete {path} and rerun the command to recompute it"


def check_sealed(doc: Any, path: str | os.PathLike) -> dict:
    """``doc`` without its hash field, after checking the hash (:class:`StoreIntegrityError` otherwise)."""
    if not isinstance(doc, dict):
        raise StoreIntegrityError(f"{path}: not a stored result of this toolkit (a JSON {type(doc).__name__}); "
                                  + _recover(path))
    stored = doc.get(FIELD)
    if not isinstance(stored, str):
        raise StoreIntegrityError(f"{path}: has no content hash (written by an older version, or edited); "
                                  + _recover(path))
    if stored != content_digest(doc):
        raise StoreIntegrityError(f"{path}: content does not match its sha256 (edited or corrupted); "
                                  + _recover(path))
    return {k: v for k, v in doc.items() if k != FIELD}


def read_sealed(path: str | os.PathLike) -> dict:
    """Read and check a file written with :func:`sealed_text` (see the module docstring)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        what = "empty" if not raw else "truncated or not JSON"
        raise StoreIntegrityError(f"{path}: {what}; " + _recover(path)) from None
    return check_sealed(doc, path)


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 (hex) of a file's bytes, read in 1 MiB blocks (archives, bundle members, file sets)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
