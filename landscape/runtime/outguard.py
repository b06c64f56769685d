"""Output folders that hold only what a command wrote, one run at a time, and file sets replaced whole.

Three rules shared by every command that writes a folder (``figures make``,
``landscape audit``, ``theory atlas``, ``empirics vision|language``, the bundle's
``run``):

* **Only ours** (:func:`claim_out_dir`). A folder is used when it is empty, or holds the
  mark :data:`MARK` of the same command (written when a run first claims the folder),
  or the user passes ``--overwrite``. A non-empty folder without that mark (a user's
  ``report.md``, another command's output) is refused with exit status 2 and one line,
  before anything is computed.
* **One run at a time** (:class:`OutLock`). The claiming run holds an exclusive
  ``fcntl.flock`` on ``<folder>/`` :data:`LOCK` until it exits; a second run on the
  same folder is refused at once (exit 2) instead of interleaving its files. The kernel
  drops the lock when the process dies, so a killed run never leaves the folder locked.
  Once the lock is held, temporaries left by a killed run (``.<name>.<random>.tmp`` of
  :func:`landscape.runtime.atomic.atomic_write`, the audit's write probes) are removed.
* **Sets replaced whole** (:class:`FileSet`). Files that belong together (a figure's
  data, image, PDF and table) are written as one set: the set's manifest is removed
  first, then every old member, then the new members are written (each atomically) and
  the manifest, listing every member's sha256, comes last. A reader trusts a set only
  when :func:`read_set` finds the manifest and every member matching it, so a kill at
  any point leaves either the complete old set, or an incomplete set that no reader
  takes for a figure (and the next run replaces).
"""
from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from .cli import UsageError
from .integrity import file_sha256

__all__ = ["MARK", "LOCK", "OutLock", "claim_out_dir", "clean_stale_temporaries", "FileSet", "read_set",
           "OutputLocked"]

#: The mark of the command that owns a folder (JSON: {"command": ...}).
MARK = ".loraml-out.json"

#: The lock file of a folder (empty; locked with flock while a run writes).
LOCK = ".loraml.lock"

#: Temporaries of atomic_write (".<name>.<random>.tmp") and of the audit's write probe.
_TEMPORARY = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9]+)?$")


class OutputLocked(UsageError):
    """Another run holds the output folder (exit status 2)."""


def _mark_command(folder: Path) -> str | None:
    try:
        doc = json.loads((folder / MARK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc.get("command") if isinstance(doc, dict) and isinstance(doc.get("command"), str) else None


def claim_out_dir(folder: str | os.PathLike, command: str, *, overwrite: bool = False,
                  what: str = "--out") -> Path:
    """Refuse (:class:`UsageError`) a non-empty ``folder`` that ``command`` did not write.

    Accepted: a folder that does not exist yet, an empty one, one whose :data:`MARK`
    names ``command``, or any folder with ``overwrite=True`` (the user's explicit
    choice; only the command's own file names are ever replaced). Creates nothing.
    """
    if os.fspath(folder) == "":
        return Path(folder)  # the command's own check refuses an empty path
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir() or overwrite:
        return folder  # a link or a non-folder is the command's own check to refuse
    entries = [e for e in os.listdir(folder) if e not in (LOCK, MARK) and not _TEMPORARY.match(e)]
    owner = _mark_command(folder)
    if owner == command or not entries:
        return folder
    if owner is not None:
        raise UsageError(f"{what} {folder} holds the output of '{owner}', not of '{command}'; "
                         "use another folder, or pass --overwrite")
    shown = sorted(entries)[0]
    raise UsageError(f"{what} {folder} holds files this command did not write (e.g. {shown!r}); "
                     "use an empty or new folder, or pass --overwrite to write into it anyway")


def write_mark(folder: Path, command: str) -> None:
    """Mark ``folder`` as written by ``command`` (before any output, so a killed run's folder stays ours)."""
    from .atomic import atomic_write_text

    if _mark_command(folder) != command:
        atomic_write_text(folder / MARK, json.dumps({"command": command}) + "\n")


def clean_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries a killed run left under ``folder`` (call only while holding its lock)."""
    removed = []
    for root, dirs, files in os.walk(folder):
        for name in files:
            if _TEMPORARY.match(name):
                p = Path(root) / name
                try:
                    p.unlink()
                    removed.append(p)
                except FileNotFoundError:
                    pass
    return removed


class OutLock:
    """An exclusive lock on an output folder for the lifetime of this object (or the process).

    ``acquire`` creates the folder if needed, takes ``flock(LOCK_EX | LOCK_NB)`` on
    ``<folder>/.loraml.lock`` and raises :class:`OutputLocked` when another process
    holds it; then it writes the command's mark and removes stale temporaries. Within
    one process the lock is re-entrant (a command line holding it may call the API that
    takes it again); it is dropped when every holder has released it.
    """

    _held: dict = {}  # realpath -> [fd, holders]

    def __init__(self, folder: str | os.PathLike, command: str):
        self.folder = Path(folder)
        self.command = command
        self._key = None

    def acquire(self) -> "OutLock":
        import fcntl

        if self._key is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(self.folder)
        if key in OutLock._held:
            OutLock._held[key][1] += 1
            self._key = key
            return self
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputLocked(f"{self.folder} is being written by another run (lock {self.folder / LOCK}); "
                                   "wait for it to finish or use another output folder") from None
            raise
        OutLock._held[key] = [fd, 1]
        self._key = key
        try:
            write_mark(self.folder, self.command)
            clean_stale_temporaries(self.folder)
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        if self._key is None:
            return
        entry = OutLock._held.get(self._key)
        self._key = None
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        import fcntl

        fd = OutLock._held.pop(next(k for k, v in OutLock._held.items() if v is entry))[0]
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()




class FileSet:
    """Files of ``folder`` that are one whole: written by :meth:`begin`, the writes, :meth:`commit`.

    ``manifest`` is the set's manifest file name; ``members`` the names an older set may
    have (removed by :meth:`begin`, after the manifest). ``key`` (JSON-able) is stored in
    the manifest: the configuration the set was made with.
    """

    def __init__(self, folder: str | os.PathLike, manifest: str, members: Iterable[str], key=None):
        self.folder = Path(folder)
        self.manifest = manifest
        self.members = sorted(set(members))
        self.key = key
        self.written: list[str] = []

    def begin(self) -> None:
        """Invalidate the old set: its manifest first, then each old member."""
        for name in [self.manifest, *self.members]:
            p = self.folder / name
            if p.is_file() or p.is_symlink():
                p.unlink()
        fsync_dir(self.folder)

    def add(self, path: str | os.PathLike) -> None:
        """Record a member written (atomically) into the folder."""
        p = Path(path)
        if p.parent.resolve() != self.folder.resolve():
            raise ValueError(f"{p} is not in {self.folder}")
        self.written.append(p.name)

    def commit(self) -> Path:
        """Write the manifest (sealed JSON listing every member's sha256): the set is complete."""
        from .atomic import atomic_write_text
        from .integrity import sealed_text

        files = {name: file_sha256(self.folder / name) for name in sorted(set(self.written))}
        path = atomic_write_text(self.folder / self.manifest,
                                 sealed_text({"kind": "loraml.fileset", "key": self.key, "files": files}, indent=1))
        fsync_dir(self.folder)
        return path


def read_set(folder: str | os.PathLike, manifest: str) -> dict | None:
    """The manifest of a complete set (every member present and matching its sha256), else None."""
    from .integrity import StoreIntegrityError, read_sealed

    folder = Path(folder)
    p = folder / manifest
    if not p.is_file():
        return None
    try:
        doc = read_sealed(p)
    except StoreIntegrityError:
        return None
    files = doc.get("files")
    if not isinstance(files, dict):
        return None
    for name, digest in files.items():
        q = folder / name
        if "/" in name or not q.is_file() or file_sha256(q) != digest:
            return None
    return doc


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames, unlinks) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
