"""Pins of the command line ``python -m landscape`` (:mod:`landscape.__main__`).

* Error lines: the README promises one line of at most 300 characters.  A line of exactly
  the limit is printed whole; one character more is cut to exactly the limit, ending in
  ``...``; non-printable characters become ``?`` and runs of white space one space.
"""
import re
from pathlib import Path

import pytest

from landscape.__main__ import MAX_ERROR_CHARS, PROG, _error_line

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_limit_is_the_one_the_readme_states():
    text = " ".join(README.read_text().split())
    m = re.search(r"one line naming the problem, at most (\d+) characters", text)
    assert m and int(m.group(1)) == MAX_ERROR_CHARS


@pytest.mark.parametrize("extra", [-1, 0, 1, 2, 50])
def test_error_line_at_the_limit(extra):
    prefix = f"{PROG}: error: "
    msg = "x" * (MAX_ERROR_CHARS - len(prefix) + extra)
    line = _error_line(msg)
    if extra <= 0:
        assert line == prefix + msg and len(line) == MAX_ERROR_CHARS + extra
    else:
        assert len(line) == MAX_ERROR_CHARS and line == (prefix + msg)[: MAX_ERROR_CHARS - 3] + "..."


def test_error_line_is_one_printable_line():
    assert _error_line("a\n\tb\x00c  d") == f"{PROG}: error: a b?c d"
    assert _error_line("  \n ") == f"{PROG}: error: bad input"
