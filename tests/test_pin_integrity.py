"""The content seal of stored results (``landscape/runtime/integrity.py``): the hash is
the sha256 of the documented canonical text (checked against a hand-written canonical
string), and every way a file can fail is refused with a message that names the file,
what is wrong and how to recover."""
from __future__ import annotations

import hashlib
import json

import pytest

from landscape.runtime import integrity as I


def test_the_hash_is_sha256_of_sorted_compact_ascii_json_without_the_field():
    doc = {"b": [1, 2.5], "a": "\u00e9", I.FIELD: "ignored"}
    canonical = '{"a":"\\u00e9","b":[1,2.5]}'  # sorted keys, no whitespace, ASCII escapes
    want = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    assert I.content_digest(doc) == want
    sealed = I.seal({"b": (1, 2.5), "a": "\u00e9"})  # a tuple is hashed as the list a reader gets
    assert sealed[I.FIELD] == want and sealed["b"] == [1, 2.5]
    assert I.FIELD == "content_sha256"


def test_a_sealed_file_round_trips_and_one_edited_character_is_refused(tmp_path):
    p = tmp_path / "unit.json"
    p.write_text(I.sealed_text({"loss": 0.25, "seed": 3}, indent=1))
    assert p.read_text().endswith("}\n")
    assert I.read_sealed(p) == {"loss": 0.25, "seed": 3}
    p.write_text(p.read_text().replace("0.25", "0.26"))
    with pytest.raises(I.StoreIntegrityError) as exc:
        I.read_sealed(p)
    msg = str(exc.value)
    assert str(p) in msg and "does not match its sha256" in msg and f"delete {p}" in msg and "\n" not in msg


@pytest.mark.parametrize("content,what", [(b"", "empty"), (b'{"loss": 0.2', "truncated or not JSON"),
                                          (b"\xff\xfe{}", "truncated or not JSON")])
def test_empty_truncated_or_undecodable_files_are_named_as_such(tmp_path, content, what):
    p = tmp_path / "unit.json"
    p.write_bytes(content)
    with pytest.raises(I.StoreIntegrityError) as exc:
        I.read_sealed(p)
    assert str(exc.value) == f"{p}: {what}; it is not used; delete {p} and rerun the command to recompute it"


@pytest.mark.parametrize("doc,what", [([1, 2], "not a stored result of this toolkit (a JSON list)"),
                                      ("x", "not a stored result of this toolkit (a JSON str)"),
                                      ({"loss": 1}, "has no content hash"),
                                      ({"loss": 1, I.FIELD: 7}, "has no content hash"),
                                      ({"loss": 1, I.FIELD: "0" * 64}, "content does not match its sha256")])
def test_documents_that_are_not_sealed_objects_are_refused(tmp_path, doc, what):
    p = tmp_path / "unit.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(I.StoreIntegrityError) as exc:
        I.read_sealed(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: ") and what in msg
    assert msg.endswith(f"; it is not used; delete {p} and rerun the command to recompute it")


def test_only_objects_are_sealed():
    with pytest.raises(TypeError, match="only JSON objects"):
        I.seal([1, 2])


def test_file_hash_is_the_sha256_of_the_bytes_across_block_boundaries(tmp_path):
    data = bytes(range(256)) * (4096 + 3)  # just over 1 MiB: two blocks
    p = tmp_path / "blob"
    p.write_bytes(data)
    assert I.file_sha256(p) == hashlib.sha256(data).hexdigest()
