"""Pins of the command line ``python -m landscape`` (:mod:`landscape.__main__`).

* Error lines: the README promises one line of at most 300 characters.  A line of exactly
  the limit is printed whole; one character more is cut to exactly the limit, ending in
  ``...``; non-printable characters become ``?`` and runs of white space one space.
* ``enumerate`` refuses fewer than one thread and a time limit <= 0 (exit 2, one line,
  nothing written) and runs with one thread.
"""
import re
from types import SimpleNamespace
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


# ----------------------------------------------------------------------------- enumerate's bounds
def _tasks_file(tmp_path):
    import json

    import numpy as np

    import landscape as ls

    f = tmp_path / "tasks.json"
    tasks = np.round(ls.random_instance(np.random.default_rng(0), 2, 3, 1).problem.tasks, 2)
    f.write_text(json.dumps({"tasks": tasks.tolist()}))
    return f


@pytest.mark.parametrize("opt,value,name", [("--threads", "0", "--threads"), ("--threads", "-3", "--threads"),
                                            ("--timeout", "0", "--timeout"), ("--timeout", "-1e-9", "--timeout")])
def test_enumerate_refuses_no_threads_and_no_time(tmp_path, capsys, opt, value, name):
    from landscape.__main__ import main

    out = tmp_path / "out"
    # OPT=VALUE: argparse would take a separate "-1e-9" for an option and refuse it itself
    assert main(["enumerate", str(_tasks_file(tmp_path)), "--rank", "1", f"{opt}={value}", "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0] and "must be" in err[0] and not out.exists()


@pytest.mark.skipif(not __import__("landscape.enumeration", fromlist=["algebra_available"]).algebra_available("msolve"),
                    reason="msolve not installed (extra 'algebra')")
def test_enumerate_accepts_one_thread(tmp_path):
    # one thread is the boundary: fewer are refused (above)
    from landscape.__main__ import main

    assert main(["enumerate", str(_tasks_file(tmp_path)), "--rank", "1", "--threads", "1", "-q"]) == 0


# ----------------------------------------------------------------------------- out of memory
def test_audit_out_of_memory_is_an_environment_failure(tmp_path, capsys, monkeypatch):
    # the help's exit statuses (and README's table): out of memory is 3, not bad input
    import landscape._audit as audit_mod
    from landscape.__main__ import EXIT_STATUS_HELP, main
    from landscape.runtime.exits import EXIT_ENVIRONMENT

    assert "3 environment failure (disk full, unwritable folder, out of memory)" in EXIT_STATUS_HELP

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(audit_mod, "audit", no_memory)
    out = tmp_path / "out"
    assert main(["audit", str(_tasks_file(tmp_path)), "--rank", "1", "--out", str(out), "-q"]) == EXIT_ENVIRONMENT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == ("python -m landscape: environment error: out of memory: the problem or the number of starts is "
                    "too large for this machine")


# ----------------------------------------------------------------------------- a long input error
@pytest.mark.parametrize("message, line", [
    ("tasks.json: 3 tasks of different shapes\n  task 0: (4, 4)\n  task 2: (4, 5)",
     "tasks.json: 3 tasks of different shapes"),
    ("one line only", "one line only"),
    ("", "bad input"),
])
def test_audit_input_error_prints_its_first_line_only(tmp_path, capsys, monkeypatch, message, line):
    # an input error of several lines (a headline, then details) is reported by its headline:
    # the one line the README promises, not the last detail
    import landscape._audit as audit_mod
    from landscape.__main__ import EXIT_BAD_INPUT, main
    from landscape._validation import LandscapeInputError

    def refuse(*args, **kwargs):
        raise LandscapeInputError(message)

    monkeypatch.setattr(audit_mod, "audit", refuse)
    assert main(["audit", str(_tasks_file(tmp_path)), "--rank", "1", "-q"]) == EXIT_BAD_INPUT
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err == f"{PROG}: error: {line}"


# ----------------------------------------------------------------------------- enumerate's timeout, exit 1
@pytest.mark.parametrize("given, want", [(None, 600.0), ("0.5", 0.5), ("1e-3", 1e-3)])
def test_enumerate_passes_its_timeout_default_600_and_any_positive_one(tmp_path, monkeypatch, given, want):
    """--timeout defaults to 600 s (as its help says) and any positive value, below one second
    included, reaches the solvers."""
    import landscape.enumeration as E
    from landscape.__main__ import _parser, main

    class Asked(Exception):
        pass

    def stop(tasks, k, *, routes, seed, timeout, threads):
        raise Asked(timeout)

    monkeypatch.setattr(E, "enumerate_critical_points", stop)
    extra = [] if given is None else ["--timeout", given]
    with pytest.raises(Asked) as info:
        main(["enumerate", str(_tasks_file(tmp_path)), "--rank", "1", "-q", *extra])
    assert info.value.args == (want,)
    help_text = " ".join(_parser()._subparsers._group_actions[0].choices["enumerate"].format_help().split())
    assert "seconds allowed to each solver call (default 600)" in help_text


def test_findings_that_contradict_the_theory_exit_1(tmp_path, monkeypatch, capsys):
    # the help's "1 the findings contradict": an audit whose theory assessment disagrees
    import landscape._audit as audit_mod
    from landscape.__main__ import EXIT_STATUS_HELP, main
    from landscape.runtime.exits import EXIT_DISAGREE

    assert EXIT_DISAGREE == 1 and "1 the findings contradict" in " ".join(EXIT_STATUS_HELP.split())
    for agrees, status in ((False, 1), (True, 0), (None, 0)):
        report = SimpleNamespace(data={"theory": {"agrees": agrees}}, markdown="# report")
        monkeypatch.setattr(audit_mod, "audit", lambda *a, **k: report)
        assert main(["audit", str(_tasks_file(tmp_path)), "--rank", "1", "-q"]) == status


def test_every_default_the_audit_help_states_is_the_parsers_default():
    """Where an option's help says "(default X)" with X a number, the parsed default is X
    (the audit's --seed 0; --starts leaves its 100 to the audit itself, None here)."""
    import argparse

    from landscape.__main__ import _parser

    p = _parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for name, parser in sub.choices.items():
        for action in parser._actions:
            m = re.search(r"\(default (-?\d+(?:\.\d+)?)\)", action.help or "")
            if m and action.dest != "starts":
                assert action.default == type(action.default)(m.group(1)), (name, action.dest)
                checked += 1
    assert checked >= 1
    args = p.parse_args(["audit", "tasks.npy", "--rank", "1"])
    assert args.seed == 0 and args.starts is None


def test_enumerate_requires_the_rank(tmp_path, capsys):
    """enumerate has no default rank: without --rank it exits 2 before reading anything, naming
    the missing option."""
    from landscape.__main__ import main

    out = tmp_path / "out"
    assert main(["enumerate", str(_tasks_file(tmp_path)), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "--rank" in err and "required" in err and not out.exists()
