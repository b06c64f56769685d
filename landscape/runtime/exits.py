"""Exit statuses shared by every command line of the toolkit, and the one wrapper that maps failures to them.

===  ==========================================================================
 0   done (all checks passed / the findings agree with the theory)
 1   the mathematics disagrees: a check failed, a finding contradicts a theorem
 2   bad input or arguments, including a stored result that fails its integrity
     check and an output folder the command may not write into; one line on
     stderr, nothing computed
 3   the environment failed: disk full, a read-only or missing folder the command
     needs (HOME, the cache, the output), a terminal whose encoding cannot show
     the output, out of memory; one line on stderr, never a traceback
130  interrupted (Ctrl-C)
===  ==========================================================================

Every ``__main__`` calls :func:`cli_main` around its own body; the body returns 0, 1
or 2 itself and raises for the rest. An error that is none of the above is a bug of
the toolkit and keeps its traceback.
"""
from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Sequence

__all__ = ["EXIT_OK", "EXIT_DISAGREE", "EXIT_USAGE", "EXIT_ENVIRONMENT", "EXIT_INTERRUPTED",
           "EnvironmentFailure", "cli_main", "input_error_types", "describe_os_error", "harden_stderr"]

EXIT_OK = 0
EXIT_DISAGREE = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130


class EnvironmentFailure(RuntimeError):
    """The machine, not the input or the mathematics, stopped the command (exit status 3)."""


#: errno values that are plainly the machine's state, named in the one-line message.
_ENV_WORDS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a path component is not a folder",
    errno.EIO: "input/output error",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files in the system",
    errno.ENOMEM: "out of memory",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: what happened and on which file."""
    what = _ENV_WORDS.get(exc.errno) or (exc.strerror or type(exc).__name__).lower()
    where = exc.filename if exc.filename is not None else None
    if exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}"
    return f"{what}: {where}" if where is not None else what


def harden_stderr() -> None:
    """Let error messages always reach stderr: characters the terminal's encoding lacks
    are escaped there instead of raising (stdout stays strict, see :func:`cli_main`)."""
    try:
        sys.stderr.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):  # pragma: no cover - a replaced stderr
        pass


def input_error_types() -> tuple[type, ...]:
    """Exception types that mean bad input everywhere (exit status 2)."""
    from .._validation import LandscapeInputError
    from .cli import UsageError
    from .store import ConfigMismatch, StoreIntegrityError

    return (UsageError, LandscapeInputError, ConfigMismatch, StoreIntegrityError)


def cli_main(prog: str, body: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None, *,
             input_errors: tuple[type, ...] = ()) -> int:
    """Run ``body(argv)`` and map what escapes it to the exit statuses of the module docstring.

    ``input_errors`` are further exception types the command treats as bad input.
    ``SystemExit`` (argparse's exit 2, ``--help``) passes through unchanged.
    """
    harden_stderr()
    bad_input = input_error_types() + tuple(input_errors)
    try:
        return int(body(argv))
    except KeyboardInterrupt:
        _say(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    except bad_input as exc:
        _say(f"{prog}: error: {_first_line(exc)}")
        return EXIT_USAGE
    except EnvironmentFailure as exc:
        _say(f"{prog}: environment error: {_first_line(exc)}")
        return EXIT_ENVIRONMENT
    except UnicodeEncodeError as exc:
        enc = getattr(sys.stdout, "encoding", None) or "?"
        _say(f"{prog}: environment error: the output cannot be written in this terminal's encoding ({enc}: "
             f"{exc.reason} for {exc.object[exc.start:exc.end]!a}); use a UTF-8 locale or PYTHONIOENCODING=utf-8")
        return EXIT_ENVIRONMENT
    except BrokenPipeError:
        # the reader of stdout went away (e.g. `| head`): nothing more to say to anyone
        _silence_stdout()
        return EXIT_ENVIRONMENT
    except OSError as exc:
        _say(f"{prog}: environment error: {describe_os_error(exc)}")
        return EXIT_ENVIRONMENT
    except MemoryError:
        _say(f"{prog}: environment error: out of memory")
        return EXIT_ENVIRONMENT


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr itself is gone: the status still tells
        pass


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
