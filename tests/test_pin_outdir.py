"""landscape.runtime.outdir pinned: the audit's output folder is refused when empty, a link or a
file, created with every missing parent (and removed again, parents too, when unused), probed for
writing, locked; a report replaces exactly the outputs an older audit wrote (report.json first,
never the user's files) and writes report.json last.
"""
from __future__ import annotations

import os

import pytest

from landscape._validation import LandscapeInputError
from landscape.runtime import outdir as O
from landscape.runtime.outguard import LOCK, MARK


def test_names():
    assert O.REPORT_NAME == "report.json" and O.PAUSE_ENV == "LANDSCAPE_AUDIT_PAUSE_BEFORE_REPORT"


@pytest.mark.parametrize("name, stale", [
    ("report.md", True), ("run.json", True), ("losses.svg", True), ("losses.png", True), ("orbit.svg", True),
    ("saddle_direction.png", True), ("spectrum_class0.svg", True), ("spectrum_class12.png", True),
    ("report.json", False), ("spectrum_class.svg", False), ("losses.pdf", False), ("notes.md", False),
    ("my_report.md", False), ("report.md.bak", False), ("orbit.svgz", False)])
def test_which_files_an_older_audit_wrote(name, stale):
    assert bool(O._STALE.match(name)) is stale


def test_refused_folders(tmp_path):
    with pytest.raises(LandscapeInputError, match="^--out: empty path$"):
        O.prepare_out_dir("")
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(LandscapeInputError, match=rf"^--out {f}: exists and is not a directory$"):
        O.prepare_out_dir(f)
    (tmp_path / "d").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "d")
    with pytest.raises(LandscapeInputError, match="is a symbolic link"):
        O.prepare_out_dir(tmp_path / "link")
    with pytest.raises(LandscapeInputError, match=r"cannot create the directory"):
        O.prepare_out_dir(f / "below")


def test_missing_parents_are_created_and_removed_again_when_unused(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    out = O.prepare_out_dir(target)
    assert out.path == target and out.created == [tmp_path / "a", tmp_path / "a" / "b", target]
    assert sorted(os.listdir(target)) == sorted([LOCK, MARK])  # locked and marked, the probe gone
    out.discard_if_unused()
    assert not (tmp_path / "a").exists() and out.lock is None


def test_a_used_folder_is_kept_and_an_existing_one_never_removed(tmp_path):
    out = O.prepare_out_dir(tmp_path / "new")
    (tmp_path / "new" / "report.json").write_text("{}")
    out.discard_if_unused()
    assert (tmp_path / "new" / "report.json").exists()
    (tmp_path / "old").mkdir()
    out2 = O.prepare_out_dir(tmp_path / "old")
    assert out2.created == []
    out2.discard_if_unused()
    assert (tmp_path / "old").is_dir()


def test_a_report_replaces_only_the_older_audit_s_outputs_and_writes_report_json_last(tmp_path):
    out = O.prepare_out_dir(tmp_path)
    for name in ("report.json", "report.md", "losses.svg", "spectrum_class3.png", "notes.md", "data.npy"):
        (tmp_path / name).write_text("old")
    w = O.ReportWriter(out)
    w.write_text("report.md", "new")
    left = sorted(os.listdir(tmp_path))
    assert left == sorted(["report.md", "notes.md", "data.npy", LOCK, MARK])
    assert (tmp_path / "report.md").read_text() == "new"
    w.write_text("losses.svg", "<svg/>")
    assert (tmp_path / "losses.svg").read_text() == "<svg/>"  # not cleared again by a second write
    path = w.write_report('{"a": 1}')
    assert path == str(tmp_path / "report.json") and (tmp_path / "report.json").read_text() == '{"a": 1}'
    assert w.written == ["report.md", "losses.svg", "report.json"]
    out.release()
    assert out.lock is None


def test_a_bad_pause_value_is_ignored(tmp_path, monkeypatch):
    out = O.prepare_out_dir(tmp_path)
    monkeypatch.setenv(O.PAUSE_ENV, "soon")
    assert O.ReportWriter(out).write_report("{}").endswith("report.json")
    out.release()


def test_an_unwritable_folder_is_named_with_the_system_s_reason(tmp_path, monkeypatch):
    import errno
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(LandscapeInputError, match=rf"^--out {tmp_path / 'x'}: not writable \(Permission denied\)$"):
        O.prepare_out_dir(tmp_path / "x")
    assert not (tmp_path / "x").exists()  # the folder this attempt created is removed again

    def bare(*a, **k):
        raise OSError()

    monkeypatch.setattr(tempfile, "mkstemp", bare)
    with pytest.raises(LandscapeInputError, match=r"not writable \(OSError\)$"):
        O.prepare_out_dir(tmp_path)


def test_a_folder_another_run_holds_is_refused_as_bad_input(tmp_path):
    """While another process holds the folder, preparing it raises LandscapeInputError (what the
    library's callers catch; exit 2 on the command line), saying so."""
    from ._pin_tools import lock_holder

    out = tmp_path / "audit"
    out.mkdir()
    holder = lock_holder(out)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LandscapeInputError) as err:
            O.prepare_out_dir(out)
        assert type(err.value) is LandscapeInputError and "being written by another run" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
