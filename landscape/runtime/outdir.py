"""The audit's output folder: validated before the search, written atomically after it.

:func:`prepare_out_dir` runs with the rest of the input validation, *before* any
search: it refuses an ``--out`` that is a symbolic link (writing through it would
overwrite the link's target) or an existing non-directory, creates the folder, and
proves it writable by creating and removing a probe file (this catches read-only
mounts and virtual file systems such as ``/proc``, where ``os.access`` answers yes).

:class:`ReportWriter` then writes a report in a fixed order:

1. ``report.json`` of an older run is removed first (it is the mark of a complete
   report), then every other output of an older run (``report.md``, ``run.json``,
   the known plot names), so a folder never holds files of two runs;
2. every file goes to a temporary name in the same folder, is flushed to disk and
   renamed into place (``os.replace``, atomic on POSIX; a symbolic link at the
   destination is replaced, never followed);
3. ``report.json`` comes last.

An audit killed at any point therefore leaves either no ``report.json`` or a complete,
consistent report.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from .._validation import LandscapeInputError
from .atomic import atomic_write

__all__ = ["OutDir", "prepare_out_dir", "ReportWriter", "REPORT_NAME", "PAUSE_ENV"]

#: The file whose presence means "this folder holds a complete report".
REPORT_NAME = "report.json"

#: Outputs of an audit other than report.json (removed before a new run writes).
#: (The plots were PNG files before they were SVG: a run clears either kind.)
_STALE = re.compile(r"^(report\.md|run\.json|(losses|saddle_direction|orbit|spectrum_class\d+)\.(svg|png))$")

#: Test hook: seconds to sleep after every other output is in place and before
#: report.json is written, so that a test can interrupt an audit at that point.
PAUSE_ENV = "LANDSCAPE_AUDIT_PAUSE_BEFORE_REPORT"


class OutDir:
    """A validated, writable output folder (``created``: this audit made it)."""

    def __init__(self, path: Path, created: list):
        self.path = path
        self.created = created

    lock = None

    def release(self) -> None:
        """Release the folder's lock (the audit is done with it)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def discard_if_unused(self) -> None:
        """Release the folder's lock; remove the folders this audit created if they hold
        nothing but the lock and the command's mark."""
        from .outguard import LOCK, MARK

        self.release()
        if self.created and self.path == self.created[-1] and self.path.is_dir() \
                and set(os.listdir(self.path)) <= {LOCK, MARK}:
            for name in (LOCK, MARK):
                (self.path / name).unlink(missing_ok=True)
        for p in reversed(self.created):
            try:
                p.rmdir()
            except OSError:
                break


def _fail(path: Path, why: str):
    raise LandscapeInputError(f"--out {path}: {why}")


def prepare_out_dir(out) -> OutDir:
    """Check, create and probe the output folder ``out`` (see the module docstring)."""
    if os.fspath(out) == "":
        raise LandscapeInputError("--out: empty path")
    path = Path(os.fspath(out))
    if path.is_symlink():
        _fail(path, "is a symbolic link; give the real directory (writing through a link would overwrite its target)")
    if path.exists() and not path.is_dir():
        _fail(path, "exists and is not a directory")
    created = []
    if not path.exists():
        missing = []
        p = path
        while not p.exists() and not p.is_symlink() and p != p.parent:
            missing.append(p)
            p = p.parent
        try:
            for q in reversed(missing):
                q.mkdir()
                created.append(q)
        except OSError as exc:
            OutDir(path, created).discard_if_unused()
            _fail(path, f"cannot create the directory ({exc.strerror or type(exc).__name__})")
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe.", suffix=".tmp")
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        OutDir(path, created).discard_if_unused()
        _fail(path, f"not writable ({exc.strerror or type(exc).__name__})")
    result = OutDir(path, created)
    # one audit at a time in this folder (a second is refused: exit 2), stale temporaries removed
    from .outguard import OutLock, OutputLocked

    try:
        result.lock = OutLock(path, "landscape audit").acquire()
    except OutputLocked as exc:
        result.discard_if_unused()
        raise LandscapeInputError(str(exc)) from None
    return result


class ReportWriter:
    """Writes the files of one report into an :class:`OutDir` (see the module docstring)."""

    def __init__(self, out: OutDir):
        self.dir = out.path
        self.written: list[str] = []
        self._cleared = False

    def clear_stale(self) -> None:
        """Remove report.json of an older run, then its other outputs."""
        marker = self.dir / REPORT_NAME
        if marker.exists() or marker.is_symlink():
            marker.unlink()
        for entry in sorted(os.listdir(self.dir)):
            if _STALE.match(entry):
                p = self.dir / entry
                if p.is_file() or p.is_symlink():
                    p.unlink()
        self._fsync_dir()
        self._cleared = True

    def _fsync_dir(self) -> None:
        from .outguard import fsync_dir

        fsync_dir(self.dir)

    def _replace(self, name: str, write) -> str:
        if not self._cleared:
            self.clear_stale()
        atomic_write(self.dir / name, write)
        self.written.append(name)
        return str(self.dir / name)

    def write_text(self, name: str, text: str) -> str:
        return self._replace(name, lambda fh: fh.write(text.encode("utf-8")))

    def write_report(self, text: str) -> str:
        """Write report.json: the last file, after an optional test pause."""
        pause = os.environ.get(PAUSE_ENV)
        if pause:
            try:
                time.sleep(float(pause))
            except ValueError:
                pass
        path = self.write_text(REPORT_NAME, text)
        self._fsync_dir()
        return path
