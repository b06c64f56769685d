"""Argument checks shared by the command lines of the toolkit (run before any work).

Every CLI validates its arguments in the parser (argparse ``type=`` callables below)
or in one validation step before anything is computed, and refuses bad input with
exit status 2 and one line on stderr, leaving the file system untouched (STYLE.md,
"Layout and interface": 0 ok, 1 a check failed, 2 bad input). Output locations are
checked here *without creating anything*; the caller creates them once every check
has passed. It lives in :mod:`landscape.runtime` because every package may import it.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

__all__ = ["UsageError", "nonneg_int", "positive_int", "finite_float", "nonneg_float", "check_output_file",
           "add_out_argument", "add_quiet_arguments", "OneLineParser",
           "check_output_dir", "finish_parser", "OLD_SPELLINGS"]


class UsageError(ValueError):
    """Bad input from the user: reported as one line with exit status 2."""


def _int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def nonneg_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds: ``numpy.random.SeedSequence`` refuses negatives)."""
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (sizes, counts, epochs)."""
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def finite_float(text: str) -> float:
    """argparse type: a finite float (``nan``/``inf`` are refused)."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def nonneg_float(text: str) -> float:
    """argparse type: a finite float >= 0 (noise levels)."""
    v = finite_float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return v


def _writable_ancestor(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable folder."""
    anc = path.parent
    while not anc.exists():
        if anc == anc.parent:
            break
        anc = anc.parent
    if not anc.is_dir():
        raise UsageError(f"{what} {path}: {anc} is not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: folder {anc} is not writable")


def check_output_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """Check that ``path`` can be written as a file, creating nothing.

    Refused: an existing folder, an existing non-regular file, an existing read-only
    file, a path below a regular file, a path below a read-only folder.
    """
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise UsageError(f"{what} needs a file path, got {str(path)!r}")
    if p.is_dir():
        raise UsageError(f"{what} {p} is a folder; give a file path")
    if p.exists() and not p.is_file():
        raise UsageError(f"{what} {p} exists and is not a regular file")
    if p.exists() and not os.access(p, os.W_OK):
        raise UsageError(f"{what} {p} is not writable")
    _writable_ancestor(p, what)
    return p


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Check that ``path`` is (or can become) a writable folder, creating nothing."""
    p = Path(path)
    if str(path) == "":
        raise UsageError(f"{what} needs a folder path")
    if p.exists():
        if not p.is_dir():
            raise UsageError(f"{what} {p} exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise UsageError(f"{what} {p} is not writable")
        return p
    _writable_ancestor(p, what)
    return p


# ---------------------------------------------------------------------------- shared flags

def add_out_argument(parser: argparse.ArgumentParser, help: str, *, required: bool = False,
                     legacy: tuple[str, ...] = ("--json",)) -> None:
    """``--out PATH`` (the one spelling of every output location); ``legacy`` spellings are hidden aliases."""
    parser.add_argument("--out", dest="out", metavar="PATH", default=None, required=required, help=help)
    for flag in legacy:
        parser.add_argument(flag, dest="out", metavar="PATH", help=argparse.SUPPRESS)


def add_quiet_arguments(parser: argparse.ArgumentParser) -> None:
    """Progress bars are on by default; ``--quiet`` turns them off.

    ``--no-progress`` is kept as a hidden alias of ``--quiet``; ``--progress`` (the old
    opt-in) is accepted and does nothing.
    """
    parser.add_argument("--quiet", "-q", dest="quiet", action="store_true", default=False,
                        help="no progress bars on stderr")
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--progress", dest="_progress_noop", action="store_true", help=argparse.SUPPRESS)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr with exit status 2 (no usage dump)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


#: Old spellings that still parse but are not shown by ``--help`` (README, "Command-line
#: conventions"): each is an alias of a current flag on the same argument.
OLD_SPELLINGS = frozenset({"--k", "--json", "--no-progress", "--progress", "--dest"})


def _hiding_formatter(base: type) -> type:
    """``base`` help formatter that leaves :data:`OLD_SPELLINGS` out of the option list."""

    class Hiding(base):
        def _format_action_invocation(self, action):
            shown = [s for s in action.option_strings if s not in OLD_SPELLINGS]
            if action.option_strings and shown and len(shown) < len(action.option_strings):
                action = argparse.Action(shown, action.dest, nargs=action.nargs, const=action.const,
                                         default=action.default, type=action.type, choices=action.choices,
                                         required=action.required, help=action.help, metavar=action.metavar)
            return super()._format_action_invocation(action)

    Hiding.__name__ = f"Hiding{base.__name__}"
    return Hiding


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _parsers(sub)


def finish_parser(parser: argparse.ArgumentParser, version: str | None = None) -> argparse.ArgumentParser:
    """The conventions every command line shares, applied to ``parser`` and all its
    subcommands: ``--version`` on each (``PROG VERSION``), and old spellings of flags
    (:data:`OLD_SPELLINGS`) kept working but out of ``--help`` and usage lines (the
    current name is listed first, so the usage line shows it)."""
    if version is None:
        from .version import __version__ as version
    for p in _parsers(parser):
        if "--version" not in p._option_string_actions:
            p.add_argument("--version", action="version", version=f"%(prog)s {version}",
                           help="print the toolkit's version and exit")
        for action in p._actions:
            if any(s in OLD_SPELLINGS for s in action.option_strings):
                action.option_strings.sort(key=lambda s: s in OLD_SPELLINGS)
        if not getattr(p.formatter_class, "__name__", "").startswith("Hiding"):
            p.formatter_class = _hiding_formatter(p.formatter_class)
    return parser
