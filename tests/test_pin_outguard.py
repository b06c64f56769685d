"""landscape.runtime.outguard pinned: which folders a command may claim (new, empty, its own
mark, or --overwrite; the first foreign entry named), which names count as a killed run's
temporaries, the lock (re-entrant within a process, exclusive across processes, released with
the last holder), and a file set that a reader trusts only when its sealed manifest and every
member agree.
"""
from __future__ import annotations

import json
import os

import pytest

from landscape.runtime import outguard
from landscape.runtime.cli import UsageError
from landscape.runtime.outguard import LOCK, MARK, FileSet, OutLock, OutputLocked, claim_out_dir, read_set
from ._pin_tools import lock_holder


def test_the_mark_and_lock_names():
    assert MARK == ".loraml-out.json" and LOCK == ".loraml.lock"
    assert issubclass(OutputLocked, UsageError)


# ------------------------------------------------------------------ claiming a folder
def test_new_empty_and_own_folders_are_claimed(tmp_path):
    assert claim_out_dir(tmp_path / "new", "cmd") == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # claiming creates nothing
    (tmp_path / "empty").mkdir()
    assert claim_out_dir(tmp_path / "empty", "cmd") == tmp_path / "empty"
    own = tmp_path / "own"
    own.mkdir()
    (own / "report.md").write_text("x")
    outguard.write_mark(own, "cmd")
    assert json.loads((own / MARK).read_text()) == {"command": "cmd"}
    assert claim_out_dir(own, "cmd") == own
    assert claim_out_dir("", "cmd") == outguard.Path("")


def test_lock_mark_and_temporaries_alone_leave_a_folder_empty(tmp_path):
    for name in (LOCK, ".r.json.ab12cd.tmp", ".x.tmp"):
        (tmp_path / name).write_text("")
    outguard.write_mark(tmp_path, "other")  # another command's mark, but nothing else: still empty
    assert claim_out_dir(tmp_path, "cmd") == tmp_path


def test_a_folder_with_foreign_files_is_refused_naming_the_first(tmp_path):
    (tmp_path / "b.txt").write_text("")
    (tmp_path / "a.txt").write_text("")
    with pytest.raises(UsageError, match=rf"^--out {tmp_path} holds files this command did not write "
                                         r"\(e\.g\. 'a\.txt'\); use an empty or new folder, or pass --overwrite"):
        claim_out_dir(tmp_path, "cmd")
    assert claim_out_dir(tmp_path, "cmd", overwrite=True) == tmp_path
    with pytest.raises(UsageError, match=rf"^--data {tmp_path} "):
        claim_out_dir(tmp_path, "cmd", what="--data")


def test_another_command_s_folder_is_refused_naming_both(tmp_path):
    (tmp_path / "fig.png").write_text("")
    outguard.write_mark(tmp_path, "figures make")
    with pytest.raises(UsageError, match=r"holds the output of 'figures make', not of 'landscape audit'"):
        claim_out_dir(tmp_path, "landscape audit")
    assert claim_out_dir(tmp_path, "landscape audit", overwrite=True) == tmp_path


@pytest.mark.parametrize("content", ["not json", "[1]", '{"command": 3}', '{"cmd": "cmd"}'])
def test_an_unreadable_mark_is_no_owner(content, tmp_path):
    (tmp_path / MARK).write_text(content)
    assert outguard._mark_command(tmp_path) is None
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="did not write"):
        claim_out_dir(tmp_path, "cmd")


def test_links_and_files_are_left_to_the_command(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    assert claim_out_dir(f, "cmd") == f
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "d")
    assert claim_out_dir(tmp_path / "link", "cmd") == tmp_path / "link"


@pytest.mark.parametrize("name, temporary", [
    (".report.json.k3j2.tmp", True), (".a.tmp", True), (".a.tmp.npz", True), (".probe.tmp.X9", True),
    ("a.tmp", False), (".tmp", False), ("..tmp", False), (".a.tmp.", False), (".a.tmp.n-z", False),
    (".a.tmpx", False), (".a.tmp.npz.bak", False), ("report.json", False), (".hidden", False)])
def test_which_names_are_a_killed_run_s_temporaries(name, temporary, tmp_path):
    assert bool(outguard._TEMPORARY.match(name)) is temporary
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / name).write_text("")
    removed = outguard.clean_stale_temporaries(tmp_path)
    assert removed == ([sub / name] if temporary else [])
    assert (sub / name).exists() is not temporary


# ------------------------------------------------------------------ the lock
def test_the_lock_is_exclusive_across_processes_and_reentrant_within_one(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "out").mkdir()
    (out / ".old.json.abc.tmp").write_text("")
    with OutLock(out, "cmd") as first:
        assert first.folder == out and (out / LOCK).is_file()
        assert json.loads((out / MARK).read_text()) == {"command": "cmd"}
        assert not (out / ".old.json.abc.tmp").exists()  # a killed run's temporary, removed under the lock
        key = os.path.realpath(out)
        assert OutLock._held[key][1] == 1
        with OutLock(out, "cmd"):
            assert OutLock._held[key][1] == 2
        assert OutLock._held[key][1] == 1
        assert first.acquire() is first and OutLock._held[key][1] == 1  # acquiring twice is one hold
        p = lock_holder(out)
        try:
            out_text, _ = p.communicate(timeout=60)
        finally:
            p.kill()
        assert "locked" not in out_text and p.returncode != 0
    assert os.path.realpath(out) not in OutLock._held
    # released: another process takes it now
    p = lock_holder(out, seconds=0)
    assert p.communicate(timeout=60)[0].strip() == "locked" and p.returncode == 0


def test_a_folder_locked_by_another_process_is_refused_with_one_line(tmp_path):
    p = lock_holder(tmp_path)
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLocked, match=rf"^{tmp_path} is being written by another run \(lock "):
            OutLock(tmp_path, "cmd").acquire()
        assert os.path.realpath(tmp_path) not in OutLock._held
    finally:
        p.kill()
        p.wait()
    OutLock(tmp_path, "cmd").acquire().release()  # the kernel dropped the killed holder's lock


def test_release_without_acquire_and_twice_is_harmless(tmp_path):
    lock = OutLock(tmp_path, "cmd")
    lock.release()
    lock.acquire()
    lock.release()
    lock.release()
    assert os.path.realpath(tmp_path) not in OutLock._held


# ------------------------------------------------------------------ file sets
def _write_set(folder, contents, key=None):
    fs = FileSet(folder, "set.json", ["a.txt", "b.txt", "a.txt"], key=key)
    assert fs.members == ["a.txt", "b.txt"]
    fs.begin()
    for name, text in contents.items():
        (folder / name).write_text(text)
        fs.add(folder / name)
    return fs.commit()


def test_a_committed_set_is_read_with_its_key_and_hashes(tmp_path):
    _write_set(tmp_path, {"a.txt": "1", "b.txt": "2"}, key={"seed": 3})
    doc = read_set(tmp_path, "set.json")
    assert doc["kind"] == "loraml.fileset" and doc["key"] == {"seed": 3}
    assert set(doc["files"]) == {"a.txt", "b.txt"}
    assert doc["files"]["a.txt"] == outguard.file_sha256(tmp_path / "a.txt")


def test_begin_removes_the_manifest_and_old_members_only(tmp_path):
    _write_set(tmp_path, {"a.txt": "1", "b.txt": "2"})
    (tmp_path / "c.txt").write_text("not a member")
    fs = FileSet(tmp_path, "set.json", ["a.txt", "b.txt"])
    fs.begin()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]
    assert read_set(tmp_path, "set.json") is None


@pytest.mark.parametrize("damage", ["edit member", "remove member", "edit manifest", "no files", "subfolder name"])
def test_a_set_that_does_not_match_its_manifest_is_not_trusted(damage, tmp_path):
    m = _write_set(tmp_path, {"a.txt": "1", "b.txt": "2"})
    if damage == "edit member":
        (tmp_path / "a.txt").write_text("changed")
    elif damage == "remove member":
        (tmp_path / "b.txt").unlink()
    elif damage == "edit manifest":
        m.write_text(m.read_text().replace("loraml.fileset", "loraml.filesex"))
    else:
        from landscape.runtime.integrity import sealed_text

        files = None if damage == "no files" else {"sub/a.txt": outguard.file_sha256(tmp_path / "a.txt")}
        if damage == "subfolder name":
            (tmp_path / "sub").mkdir()
            (tmp_path / "sub" / "a.txt").write_text("1")
        m.write_text(sealed_text({"kind": "loraml.fileset", "key": None, "files": files}))
    assert read_set(tmp_path, "set.json") is None


def test_a_missing_manifest_is_no_set(tmp_path):
    assert read_set(tmp_path, "set.json") is None
    (tmp_path / "set.json").mkdir()
    assert read_set(tmp_path, "set.json") is None


def test_members_must_be_written_into_the_set_s_folder(tmp_path):
    fs = FileSet(tmp_path / "f", "m.json", [])
    (tmp_path / "f").mkdir()
    with pytest.raises(ValueError, match="is not in"):
        fs.add(tmp_path / "elsewhere.txt")
    fs.add(tmp_path / "f" / "x.txt")
    assert fs.written == ["x.txt"]


def test_a_failure_while_marking_releases_the_lock(tmp_path, monkeypatch):
    """When writing the mark or cleaning temporaries fails (an interrupt included), the lock
    just taken is released before the failure propagates: nothing stays held."""
    def interrupted(folder, command):
        raise KeyboardInterrupt

    monkeypatch.setattr(outguard, "write_mark", interrupted)
    with pytest.raises(KeyboardInterrupt):
        OutLock(tmp_path, "cmd").acquire()
    assert os.path.realpath(tmp_path) not in OutLock._held
    monkeypatch.undo()
    OutLock(tmp_path, "cmd").acquire().release()


def test_the_mark_is_rewritten_only_for_another_command(tmp_path, monkeypatch):
    """A folder marked by the same command (a name built at run time included) keeps its
    mark file untouched; another command's mark is replaced."""
    from landscape.runtime import atomic

    outguard.write_mark(tmp_path, "cmd")
    writes = []
    real = atomic.atomic_write_text
    monkeypatch.setattr(atomic, "atomic_write_text", lambda p, t, **kw: (writes.append(t), real(p, t, **kw))[1])
    outguard.write_mark(tmp_path, "".join(["c", "md"]))
    assert writes == []
    outguard.write_mark(tmp_path, "other")
    assert len(writes) == 1 and json.loads((tmp_path / MARK).read_text()) == {"command": "other"}


def test_releasing_one_of_several_held_locks_drops_exactly_that_one(tmp_path):
    """Within one process several folders may be held; releasing one drops its own entry even
    when an older entry's descriptor number is larger (a freed descriptor is reused by the
    next lock), so the others stay held."""
    a, b, c = (tmp_path / n for n in "abc")
    la = OutLock(a, "cmd").acquire()
    lb = OutLock(b, "cmd").acquire()
    la.release()  # frees the lowest descriptor
    lc = OutLock(c, "cmd").acquire()  # takes it again: c's descriptor < b's
    key = {p: os.path.realpath(p) for p in (a, b, c)}
    assert OutLock._held[key[c]][0] < OutLock._held[key[b]][0]
    lc.release()
    assert key[c] not in OutLock._held and key[b] in OutLock._held
    lb.release()
    assert key[b] not in OutLock._held
