"""The command lines' shared conventions: bad input is refused before any work with exit
status 2, one line on stderr and nothing written; one set of flags with the old
spellings as aliases; progress on by default; ``__version__`` in every package."""
import json
import os
import subprocess
import sys

import pytest

import empirics
import figures
import landscape
import theory
from empirics.__main__ import build_parser as empirics_parser
from empirics.__main__ import main as empirics_main
from figures.__main__ import _parser as figures_parser
from figures.__main__ import main as figures_main
from theory.__main__ import build_parser as theory_parser
from theory.__main__ import main as theory_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Tiny synthetic sizes, so a case that is wrongly accepted finishes in well under a second.
TINY_LINEAR = ["--d", "4", "--N", "20", "--n", "10", "--outer-steps", "2", "--sr-epochs", "2",
               "--finetune-iters", "2", "--record-every", "1", "--trials", "2", "--quiet"]
TINY_SHALLOW = ["--d", "3", "--N", "10", "--n", "5", "--retrain-epochs", "2", "--finetune-epochs", "2",
                "--record-every", "1", "--trials", "2", "--quiet"]


def _tree(root):
    """Every path under ``root`` with its size (what 'nothing written' compares)."""
    return sorted((os.path.relpath(os.path.join(d, f), root), os.path.getsize(os.path.join(d, f)))
                  for d, dirs, files in os.walk(root) for f in files + dirs)


def _call(main, argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse errors
        return exc.code


def assert_refused(main, argv, root, capsys, match):
    """Exit status 2, one line on stderr naming the problem, no file created or changed under ``root``."""
    before = _tree(root)
    capsys.readouterr()
    rc = _call(main, argv)
    err = capsys.readouterr().err
    assert rc == 2, (argv, rc, err)
    assert len(err.strip().splitlines()) == 1, err
    assert match in err, err
    assert _tree(root) == before


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("not a folder\n")
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "list.json").write_text("[1, 2, 3]\n")
    (tmp_path / "text.json").write_text("not json\n")
    return tmp_path


# --------------------------------------------------------------------------- theory

@pytest.mark.parametrize("argv, match", [
    (["--seed", "-1"], "--seed"),
    (["--seed", "1.5"], "--seed"),
    (["--out", "a_folder"], "is a folder"),
    (["--json", "a_folder"], "is a folder"),                 # the old spelling is checked the same way
    (["--out", "a_file/report.json"], "is not a folder"),
    (["--only", "Thm 9.9"], "Thm 9.9"),
])
def test_theory_bad_input_refused_before_work(argv, match, workdir, capsys, monkeypatch):
    def no_work(*a, **k):
        raise AssertionError("the checks ran before the arguments were validated")

    monkeypatch.setattr("theory.__main__.run", no_work)
    assert_refused(theory_main, argv + ["--quiet"], workdir, capsys, match)


def test_theory_seed_minus_one_is_not_reported_as_a_failed_paper(workdir):
    proc = subprocess.run([sys.executable, "-m", "theory", "--seed", "-1"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "FAILED" not in proc.stdout and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_out_folder_is_refused(workdir, capsys):
    ro = workdir / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert_refused(theory_main, ["--out", "ro/x.json", "--quiet"], workdir, capsys, "not writable")
        assert_refused(empirics_main, ["synthetic-linear", *TINY_LINEAR, "--out", "ro/x.json"], workdir, capsys,
                       "not writable")
        assert_refused(figures_main, ["make", "figure1", "--smoke", "--out", "ro", "--quiet"], workdir, capsys,
                       "not writable")
    finally:
        ro.chmod(0o700)


# --------------------------------------------------------------------------- empirics synthetic-*

@pytest.mark.parametrize("command, tiny", [("synthetic-linear", TINY_LINEAR), ("synthetic-shallow", TINY_SHALLOW)])
@pytest.mark.parametrize("argv, match", [
    (["--sigma", "nan"], "finite"),
    (["--sigma", "inf"], "finite"),
    (["--sigma", "-0.1"], ">= 0"),
    (["--rank", "5"], "k (the adapter rank) must be <= d"),   # d = 3 or 4 in the tiny sizes
    (["--k", "5"], "k (the adapter rank) must be <= d"),      # old spelling
    (["--finetune-rank", "9"], "finetune_rank"),
    (["--seed", "-1"], "--seed"),
    (["--trials", "0"], "--trials"),
    (["--T", "0"], "--T"),
    (["--workers", "0"], "--workers"),
    (["--ray-address", "auto"], "--ray-address needs --executor ray"),
    (["--out", "a_folder"], "is a folder"),
    (["--json", "a_folder"], "is a folder"),
    (["--out", "a_file/rec.json"], "is not a folder"),
    (["--out", "list.json"], "not a run record"),
    (["--out", "text.json"], "not a readable JSON record"),
])
def test_synthetic_bad_input_refused_before_work(command, tiny, argv, match, workdir, capsys, monkeypatch):
    def no_work(*a, **k):
        raise AssertionError("training started before the arguments were validated")

    monkeypatch.setattr("landscape.runtime.executor.run_units", no_work)
    assert_refused(empirics_main, [command, *tiny, *argv], workdir, capsys, match)


def test_synthetic_out_of_another_configuration_is_refused_not_overwritten(workdir, capsys):
    assert empirics_main(["synthetic-linear", *TINY_LINEAR, "--out", "rec.json"]) == 0
    first = (workdir / "rec.json").read_bytes()
    assert_refused(empirics_main, ["synthetic-linear", *TINY_LINEAR, "--sigma", "0.2", "--out", "rec.json"],
                   workdir, capsys, "another configuration")
    assert (workdir / "rec.json").read_bytes() == first
    # the same configuration is reused as it is (no new work, the same bytes)
    assert empirics_main(["synthetic-linear", *TINY_LINEAR, "--out", "rec.json"]) == 0
    assert "reused" in capsys.readouterr().out
    assert (workdir / "rec.json").read_bytes() == first


# --------------------------------------------------------------------------- figures

@pytest.mark.parametrize("argv, match", [
    (["make", "figure1", "--smoke", "--out", "a_file"], "not a folder"),
    (["make", "figure1", "--smoke", "--out", "a_file/figs"], "is not a folder"),
    (["make", "figure1", "shallow-T", "--smoke", "--set", "no_such_key=1"], "unknown configuration keys"),
    (["redraw", "figure1", "--out", "a_folder"], "no saved data for figure1"),
    (["redraw", "figure1", "--out", "missing"], "not a folder holding saved figure data"),
    (["redraw", "figure1", "--out", "a_file"], "not a folder holding saved figure data"),
])
def test_figures_bad_input_refused_before_work(argv, match, workdir, capsys, monkeypatch):
    def no_work(*a, **k):
        raise AssertionError("a figure was computed or drawn before the arguments were validated")

    monkeypatch.setattr(figures, "make", no_work)
    monkeypatch.setattr(figures, "redraw", no_work)
    assert_refused(figures_main, argv, workdir, capsys, match)


def test_figures_redraw_with_unreadable_saved_data_is_bad_input(workdir, capsys):
    (workdir / "figs").mkdir()
    (workdir / "figs" / "figure1.json").write_text('{"meta": {}, "data"')  # truncated
    assert_refused(figures_main, ["redraw", "figure1", "--out", "figs"], workdir, capsys, "unreadable")


# --------------------------------------------------------------------------- one convention

def test_old_spellings_are_aliases_of_the_new_ones():
    t_new = theory_parser().parse_args(["--out", "x.json", "--quiet"])
    t_old = theory_parser().parse_args(["--json", "x.json", "--no-progress"])
    assert vars(t_new) == vars(t_old) and t_new.out == "x.json" and t_new.quiet is True
    e = empirics_parser()
    e_new = e.parse_args(["synthetic-linear", "--rank", "2", "--out", "r.json", "--quiet", "--seed", "3"])
    e_old = e.parse_args(["synthetic-linear", "--k", "2", "--json", "r.json", "--no-progress", "--seed", "3"])
    assert vars(e_new) == vars(e_old) and e_new.k == 2 and e_new.out == "r.json"
    f_new = figures_parser().parse_args(["make", "figure1", "--quiet"])
    f_old = figures_parser().parse_args(["make", "figure1", "--no-progress"])
    assert vars(f_new) == vars(f_old) and f_new.quiet is True


def test_progress_is_on_by_default_and_old_opt_in_is_accepted():
    assert theory_parser().parse_args([]).quiet is False
    e = empirics_parser()
    for cmd in ("synthetic-linear", "synthetic-shallow"):
        assert e.parse_args([cmd]).quiet is False
        assert e.parse_args([cmd, "--progress"]).quiet is False
        ns = e.parse_args([cmd])
        assert ns.executor == "local" and ns.workers == 1  # the shared executor flags
    assert figures_parser().parse_args(["make", "figure1"]).quiet is False


def test_every_package_has_the_project_version():
    from importlib import metadata

    versions = {m.__version__ for m in (theory, landscape, empirics, figures)}
    assert len(versions) == 1
    try:
        expected = metadata.version("loraml")
    except metadata.PackageNotFoundError:
        from landscape.runtime.version import _from_pyproject

        expected = _from_pyproject()
    assert versions == {expected}


def test_version_fallback_reads_pyproject():
    import re
    from pathlib import Path

    from landscape.runtime.version import _from_pyproject

    text = (Path(landscape.__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert _from_pyproject() == re.search(r'^version = "([^"]+)"', text, flags=re.M).group(1)


def test_synthetic_record_is_json_with_units_beside_it(workdir):
    assert empirics_main(["synthetic-shallow", *TINY_SHALLOW, "--out", "sh.json"]) == 0
    rec = json.loads((workdir / "sh.json").read_text())
    assert rec["config"]["init_stream"] and rec["units"] == 1
    units = list((workdir / "sh.json.units").glob("shallow-*.json"))
    assert len(units) == 1 and not list((workdir / "sh.json.units").glob("*.ckpt.pt"))


def test_every_check_id_split_at_its_spaces_is_joined_again():
    """--only takes ids unquoted: each registry id split at its spaces (up to the eight tokens
    of 'Remark 3.2 / Cor 2 / Cor 4') resolves to itself, and all of them in a row resolve to the
    whole list in order; an unknown token is refused."""
    from theory.__main__ import resolve_ids
    from theory._registry import REGISTRY, UnknownCheckError

    ids = [c.id for c in REGISTRY]
    assert max(len(i.split()) for i in ids) == 8
    for i in ids:
        assert resolve_ids(i.split()) == [i]
    assert resolve_ids([t for i in ids for t in i.split()]) == ids
    with pytest.raises(UnknownCheckError):
        resolve_ids(["Remark", "3.2", "/", "Cor", "9"])
