"""Command-line conventions a user meets first (issue 19, section 1): ``--version`` on every
command and subcommand, one error prefix (``PROG: error: ...``), ``--out`` everywhere
(``bundle pack --dest`` a hidden, deprecated alias), exit statuses in ``landscape audit
--help``, old spellings that parse but are not shown, and Ctrl-C as one line with 130."""
import re

import pytest

import landscape.__main__ as landscape_cli
import theory.__main__ as theory_cli
import empirics.__main__ as empirics_cli
import figures.__main__ as figures_cli
from empirics.real import bundle
from landscape import __version__
from landscape.runtime.cli import OLD_SPELLINGS

MAINS = {"python -m landscape": landscape_cli.main, "python -m theory": theory_cli.main,
         "python -m empirics": empirics_cli.main, "python -m figures": figures_cli.main,
         "python -m empirics.real.bundle": bundle.main}

COMMANDS = [
    ("python -m landscape", []), ("python -m landscape", ["audit"]),
    ("python -m theory", []), ("python -m theory", ["atlas"]),
    ("python -m empirics", []), ("python -m empirics", ["synthetic-linear"]),
    ("python -m empirics", ["synthetic-shallow"]), ("python -m empirics", ["vision"]),
    ("python -m empirics", ["language"]),
    ("python -m figures", []), ("python -m figures", ["make"]), ("python -m figures", ["redraw"]),
    ("python -m empirics.real.bundle", []), ("python -m empirics.real.bundle", ["pack"]),
    ("python -m empirics.real.bundle", ["run"]), ("python -m empirics.real.bundle", ["render"]),
]


@pytest.mark.parametrize("prog, sub", COMMANDS)
def test_every_command_and_subcommand_has_version(prog, sub, capsys):
    with pytest.raises(SystemExit) as info:
        MAINS[prog](sub + ["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == " ".join([prog, *sub, __version__])


@pytest.mark.parametrize("prog, sub", COMMANDS)
def test_help_shows_no_old_spelling(prog, sub, capsys):
    with pytest.raises(SystemExit):
        MAINS[prog](sub + ["--help"])
    text = capsys.readouterr().out
    shown = set(re.findall(r"--[a-z][a-z-]*", text))
    assert not shown & OLD_SPELLINGS, shown & OLD_SPELLINGS


def test_old_spellings_still_parse():
    a = landscape_cli._parser().parse_args(["audit", "t.npz", "--k", "2", "--json", "o", "--no-progress"])
    assert (a.rank, a.out, a.quiet) == (2, "o", True)
    b = bundle._parser().parse_args(["pack", "--dest", "B"])
    c = bundle._parser().parse_args(["pack", "--out", "B"])
    assert b.dest == c.dest == "B"


def test_bundle_pack_dest_warns_that_it_is_deprecated(tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr(bundle, "pack", lambda dest, **kw: seen.append(dest))
    assert bundle.main(["pack", "--dest", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "--dest is deprecated, use --out" in err and seen == [str(tmp_path / "b")]
    assert bundle.main(["pack", "--out", str(tmp_path / "c")]) == 0
    assert "deprecated" not in capsys.readouterr().err


def test_landscape_audit_help_lists_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        landscape_cli.main(["audit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for status in ("0 audit done", "1 the findings contradict", "2 bad input", "3 environment failure",
                   "130 interrupted"):
        assert status in text


@pytest.mark.parametrize("prog, argv", [
    ("python -m landscape", ["audit", "missing.npz", "--rank", "1"]),
    ("python -m landscape", ["audit", "missing.npz", "--rank", "1", "--seed", "-3"]),
    ("python -m theory", ["--seed", "-1"]),
    ("python -m theory", ["--only", "Thm 9.9"]),
    ("python -m figures", ["make", "no-such-figure"]),
    ("python -m figures", ["make", "figure1", "--set", "nokey"]),
    ("python -m empirics", ["synthetic-linear", "--trials", "0", "--out", "x.json"]),
    ("python -m empirics.real.bundle", ["render", "--out", "does-not-exist"]),
])
def test_one_error_prefix(prog, argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        status = MAINS[prog](argv)
    except SystemExit as exc:  # argparse's own errors leave through SystemExit(2)
        status = exc.code
    assert status == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert re.match(re.escape(prog) + r"( [a-z-]+)?: error: \S", lines[0]), lines[0]


@pytest.mark.parametrize("prog", sorted(MAINS))
def test_ctrl_c_is_one_line_and_exit_130(prog, capsys, monkeypatch):
    module = {"python -m landscape": landscape_cli, "python -m theory": theory_cli, "python -m empirics": empirics_cli,
              "python -m figures": figures_cli, "python -m empirics.real.bundle": bundle}[prog]

    def interrupted(argv=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_main", interrupted)
    assert MAINS[prog]([]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{prog}: interrupted"]


@pytest.mark.parametrize("flags", [("--k", "--rank"), ("--rank", "--k")])
def test_the_usage_line_names_the_current_spelling_whichever_was_declared_first(flags):
    # the usage line shows an option's first spelling: finish_parser puts the current one first
    # (the old one still parses), and an option without an old spelling keeps its order
    import argparse

    from landscape.runtime.cli import finish_parser

    p = argparse.ArgumentParser(prog="demo")
    p.add_argument(*flags, dest="rank", type=int, required=True)
    p.add_argument("-o", "--out", required=True)
    finish_parser(p, version="0")
    usage = " ".join(p.format_usage().split())
    assert "--rank RANK" in usage and "--k" not in usage and "-o OUT" in usage
    assert p.parse_args(["--k", "3", "-o", "x"]).rank == 3
