"""landscape.runtime.exits pinned: the six exit statuses, which failure maps to which, the one
line each prints (first line of the message, the program named), that argparse's exits pass
through and that a bug of the toolkit keeps its traceback; the one-line wording of every
errno the machine's state can raise.
"""
from __future__ import annotations

import errno
import io
import sys

import pytest

from landscape._validation import LandscapeInputError
from landscape.runtime import exits
from landscape.runtime.cli import UsageError
from landscape.runtime.exits import EnvironmentFailure, cli_main, describe_os_error
from landscape.runtime.integrity import StoreIntegrityError
from landscape.runtime.store import ConfigMismatch


def test_the_statuses():
    assert (exits.EXIT_OK, exits.EXIT_DISAGREE, exits.EXIT_USAGE, exits.EXIT_ENVIRONMENT, exits.EXIT_INCOMPLETE,
            exits.EXIT_INTERRUPTED) == (0, 1, 2, 3, 4, 130)
    assert issubclass(EnvironmentFailure, RuntimeError)


def test_input_error_types_are_exactly_the_four():
    assert set(exits.input_error_types()) == {UsageError, LandscapeInputError, ConfigMismatch, StoreIntegrityError}


def _raise(exc):
    def body(argv):
        raise exc
    return body


@pytest.mark.parametrize("returned", [0, 1, 2, True])
def test_the_body_s_own_status_is_returned(returned):
    assert cli_main("p", lambda argv: returned) == int(returned)
    assert type(cli_main("p", lambda argv: returned)) is int


def test_the_body_gets_argv():
    seen = []
    cli_main("p", lambda argv: seen.append(argv) or 0, ["a", "b"])
    assert seen == [["a", "b"]]


@pytest.mark.parametrize("exc, status, line", [
    (UsageError("bad --rank\nmore"), 2, "p: error: bad --rank"),
    (LandscapeInputError("tasks: NaN"), 2, "p: error: tasks: NaN"),
    (ConfigMismatch("other config"), 2, "p: error: other config"),
    (StoreIntegrityError("  edited  \n"), 2, "p: error: edited"),
    (UsageError(""), 2, "p: error: UsageError"),
    (EnvironmentFailure("no HOME\nx"), 3, "p: environment error: no HOME"),
    (OSError(errno.ENOSPC, "No space", "/o/f"), 3, "p: environment error: no space left on the device: /o/f"),
    (PermissionError(errno.EACCES, "Permission denied", "/o"), 3, "p: environment error: permission denied: /o"),
    (MemoryError(), 3, "p: environment error: out of memory"),
    (KeyboardInterrupt(), 130, "p: interrupted"),
])
def test_each_failure_is_its_status_and_one_line(exc, status, line, capsys):
    assert cli_main("p", _raise(exc)) == status
    err = capsys.readouterr().err
    assert err == line + "\n"


def test_extra_input_error_types_are_bad_input(capsys):
    class MyError(Exception):
        pass

    assert cli_main("q", _raise(MyError("x\ny")), input_errors=(MyError,)) == 2
    assert capsys.readouterr().err == "q: error: x\n"
    with pytest.raises(MyError):
        cli_main("q", _raise(MyError("x")))


@pytest.mark.parametrize("exc", [ZeroDivisionError("bug"), ValueError("a plain ValueError is a bug"),
                                 RuntimeError("bug"), KeyError("k")])
def test_a_bug_keeps_its_traceback(exc):
    with pytest.raises(type(exc)):
        cli_main("p", _raise(exc))


def test_system_exit_passes_through():
    with pytest.raises(SystemExit) as info:
        cli_main("p", _raise(SystemExit(2)))
    assert info.value.code == 2


def test_a_terminal_that_cannot_show_the_output_is_the_environment(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="ascii"))

    def body(argv):
        print("G = 1 \u00b1 2")
        sys.stdout.flush()
        return 0

    assert cli_main("p", body) == 3
    err = capsys.readouterr().err
    assert err.startswith("p: environment error: the output cannot be written in this terminal's encoding (ascii: ")
    assert "'\\xb1'" in err and err.endswith("use a UTF-8 locale or PYTHONIOENCODING=utf-8\n")


def test_a_closed_pipe_is_silent_status_3(capsys, monkeypatch):
    silenced = []
    monkeypatch.setattr(exits, "_silence_stdout", lambda: silenced.append(True))
    assert cli_main("p", _raise(BrokenPipeError(errno.EPIPE, "Broken pipe"))) == 3
    assert silenced == [True] and capsys.readouterr().err == ""


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "no space left on the device"), (errno.EDQUOT, "disk quota exceeded"),
    (errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied"),
    (errno.EPERM, "operation not permitted"), (errno.ENOENT, "no such file or folder"),
    (errno.ENOTDIR, "a path component is not a folder"), (errno.EIO, "input/output error"),
    (errno.EMFILE, "too many open files"), (errno.ENFILE, "too many open files in the system"),
    (errno.ENOMEM, "out of memory")])
def test_each_machine_state_errno_is_named(code, words):
    assert describe_os_error(OSError(code, "strerror text")) == words
    assert describe_os_error(OSError(code, "s", "/a")) == f"{words}: /a"
    assert describe_os_error(OSError(code, "s", "/a", None, "/b")) == f"{words}: /a -> /b"
    assert len(exits._ENV_WORDS) == 11


def test_other_errnos_use_their_own_text():
    assert describe_os_error(OSError(errno.EBUSY, "Device Or Resource Busy", "/x")) == "device or resource busy: /x"
    assert describe_os_error(OSError("plain")) == "oserror"
    assert describe_os_error(FileExistsError("exists")) == "fileexistserror"


def test_say_survives_a_closed_stderr(monkeypatch):
    class Gone:
        def write(self, *a):
            raise OSError(errno.EBADF, "closed")

        def flush(self):
            raise OSError(errno.EBADF, "closed")

    monkeypatch.setattr(sys, "stderr", Gone())
    exits._say("line")  # no exception
    assert cli_main("p", _raise(UsageError("x"))) == 2


class _Stdout:
    def __init__(self, exc):
        self.exc = exc

    def fileno(self):
        raise self.exc


@pytest.mark.parametrize("stdout", [_Stdout(OSError("closed")), _Stdout(ValueError("detached")), object()])
def test_silencing_a_stdout_that_is_gone_is_no_error(monkeypatch, stdout):
    # a pipe closed by the reader (OSError), a detached or closed stream (ValueError), or a
    # replacement without a file descriptor (no fileno): the exit status still tells
    monkeypatch.setattr(exits.sys, "stdout", stdout)
    exits._silence_stdout()
