"""Atomic writes (``landscape/runtime/atomic.py``): the new file gets the mode ``open``
would give it (0o666 less the umask, not mkstemp's 0o600), an error inside the writer
leaves the old content and no temporary file, and the umask is left as it was."""
from __future__ import annotations

import os
import stat

import pytest

from landscape.runtime import atomic as A


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o000, 0o666)])
def test_new_files_get_the_mode_open_would_give_them(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        assert A.default_file_mode() == mode
        assert os.umask(mask) == mask  # default_file_mode put the umask back
        p = A.atomic_write_text(tmp_path / "r.json", "{}\n")
        assert stat.S_IMODE(os.stat(p).st_mode) == mode
    finally:
        os.umask(old)


def test_content_is_written_as_utf8_and_the_path_returned(tmp_path):
    p = A.atomic_write_text(tmp_path / "r.txt", "G = 0 \u2264 \u03bb\n")
    assert p == tmp_path / "r.txt" and p.read_bytes() == "G = 0 \u2264 \u03bb\n".encode("utf-8")
    assert sorted(os.listdir(tmp_path)) == ["r.txt"]


@pytest.mark.parametrize("exists", [True, False])
def test_an_error_while_writing_leaves_the_old_file_and_no_temporary(tmp_path, exists):
    p = tmp_path / "r.json"
    if exists:
        p.write_text("old")

    def write(fh):
        fh.write(b"half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        A.atomic_write(p, write)
    assert sorted(os.listdir(tmp_path)) == (["r.json"] if exists else [])
    if exists:
        assert p.read_text() == "old"


def test_the_writers_error_propagates_even_when_its_temporary_vanished(tmp_path):
    """The clean-up tolerates a temporary that is already gone: the caller sees the error
    that stopped the write, not the clean-up's."""
    p = tmp_path / "r.json"

    def write(fh):
        for name in os.listdir(tmp_path):
            os.unlink(tmp_path / name)
        raise ValueError("the writer's own error")

    with pytest.raises(ValueError, match="the writer's own error"):
        A.atomic_write(p, write)
    assert os.listdir(tmp_path) == []
