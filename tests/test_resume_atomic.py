"""Result files survive a run killed mid-write (SIGKILL in a subprocess), and resume is honest:
the old valid files stay byte-identical, ``figures make``/``redraw`` still work, finished
synthetic units are reused and never recomputed."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import figures
from figures import FigureSpec
from figures.__main__ import main as figures_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Seconds a killed child may take (imports included) on a loaded 2-core machine.
CHILD_TIMEOUT_S = 120

#: Code run first in every child: ``kill_at(module, name)`` replaces a function by one
#: that writes half of what it would write (where it writes into a file) and then
#: SIGKILLs the process, which is what a kill at that instant leaves behind.
_PRELUDE = textwrap.dedent("""
    import os, signal, sys, importlib
    def kill_now(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    def kill_at(module, name):
        setattr(importlib.import_module(module), name, kill_now)
    def kill_mid_savez():
        import numpy as np
        real = np.savez_compressed
        def half(fh, **arrays):
            import io
            buf = io.BytesIO()
            real(buf, **arrays)
            fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            fh.flush()
            kill_now()
        np.savez_compressed = half
""")


def _killed(code: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", _PRELUDE + textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=CHILD_TIMEOUT_S)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])
    return proc


def _snapshot(folder: Path, stem: str) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name.startswith(stem + ".")}


def _no_recompute(monkeypatch, name):
    spec = figures.get(name)

    def boom(*a, **k):
        raise AssertionError("recomputed although valid saved data exists")

    monkeypatch.setitem(figures.REGISTRY, name, FigureSpec(spec.name, spec.description, boom, spec.render,
                                                           spec.paper, spec.smoke, spec.kind))


@pytest.fixture(scope="module")
def fig_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    figures.make("figure1", smoke=True, out=out, progress=False)
    return out


def test_kill_while_writing_the_npz_leaves_the_old_figure_data_usable(fig_out, monkeypatch, capsys):
    before = _snapshot(fig_out, "figure1-smoke")
    assert {"figure1-smoke.json", "figure1-smoke.npz", "figure1-smoke.png", "figure1-smoke.pdf"} <= set(before)
    _killed(f"""
        import figures
        data, meta = figures.load_data({str(fig_out)!r}, "figure1-smoke")
        data["loss_sum_0"] = data["loss_sum_0"] * 2          # new numbers, never to be seen half-written
        kill_mid_savez()
        figures.save_data({str(fig_out)!r}, "figure1-smoke", data, meta)
    """, fig_out)
    assert _snapshot(fig_out, "figure1-smoke") == before  # old files byte-identical
    _no_recompute(monkeypatch, "figure1")
    assert figures_main(["redraw", "figure1", "--smoke", "--out", str(fig_out)]) == 0
    res = figures.make("figure1", smoke=True, out=fig_out, progress=False)  # reuses the saved data
    assert any(f.suffix == ".png" for f in res["files"])


def test_kill_between_npz_and_json_is_detected_and_make_recomputes(tmp_path, monkeypatch, capsys):
    out = tmp_path
    figures.make("figure1", smoke=True, out=out, progress=False)
    good, _ = figures.load_data(out, "figure1-smoke")
    _killed(f"""
        import figures
        data, meta = figures.load_data({str(out)!r}, "figure1-smoke")
        data["loss_sum_0"] = data["loss_sum_0"] * 2
        kill_at("empirics._records", "write_json")            # after the new NPZ is in place
        figures.save_data({str(out)!r}, "figure1-smoke", data, meta)
    """, out)
    # the new NPZ beside the old JSON: recognised, never rendered as if it matched
    with pytest.raises(figures.SavedDataError, match="not the array file"):
        figures.load_data(out, "figure1-smoke")
    capsys.readouterr()
    assert figures_main(["redraw", "figure1", "--smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "recompute" in err
    res = figures.make("figure1", smoke=True, out=out, progress=False)  # recomputes the same numbers
    np.testing.assert_array_equal(res["data"]["loss_sum_0"], good["loss_sum_0"])
    figures.load_data(out, "figure1-smoke")


def test_kill_while_rendering_leaves_the_old_image(fig_out):
    before = _snapshot(fig_out, "figure1-smoke")
    _killed(f"""
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure
        real = Figure.savefig
        def half(self, fh, **kw):
            real(self, fh, **kw)
            fh.truncate(fh.tell() // 2)
            kill_now()
        Figure.savefig = half
        import figures
        figures.redraw("figure1", {str(fig_out)!r}, smoke=True)
    """, fig_out)
    after = _snapshot(fig_out, "figure1-smoke")
    assert after["figure1-smoke.png"] == before["figure1-smoke.png"]
    assert after["figure1-smoke.pdf"] == before["figure1-smoke.pdf"]


def test_kill_while_writing_the_theory_json_keeps_the_old_one(tmp_path):
    out = tmp_path / "theory.json"
    old = json.dumps({"passed": True, "results": []})
    out.write_text(old)
    _killed(f"""
        kill_at("os", "fsync")                                # the temporary file is written, not renamed
        from theory.__main__ import main
        main(["--only", "Thm 3.1", "--scale", "quick", "--quiet", "--out", {str(out)!r}])
    """, tmp_path)
    assert out.read_text() == old


def test_killed_synthetic_run_resumes_from_its_units_without_recomputing(tmp_path, monkeypatch, capsys):
    args = ["synthetic-shallow", "--d", "3", "--N", "10", "--n", "5", "--retrain-epochs", "3",
            "--finetune-epochs", "2", "--record-every", "1", "--trials", "2", "--quiet", "--out", "sh.json"]
    _killed(f"""
        kill_at("empirics._runs", "write_json")               # every unit finished, the record not yet written
        from empirics.__main__ import main
        main({args!r})
    """, tmp_path)
    assert not (tmp_path / "sh.json").exists()
    assert len(list((tmp_path / "sh.json.units").glob("shallow-*.json"))) == 1
    monkeypatch.chdir(tmp_path)

    def boom(*a, **k):
        raise AssertionError("a finished unit was trained again")

    monkeypatch.setattr("empirics._runs.shallow_trials_unit", boom)
    from empirics.__main__ import main

    assert main(args) == 0
    rec = json.loads((tmp_path / "sh.json").read_text())
    assert len(rec["seeds"]) == 2 and np.asarray(rec["metrics"]["test_mse"]).shape == (2, 2, 2)
    # the same numbers as an uninterrupted run
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main([*args[:-1], "fresh.json"]) == 0
    fresh = json.loads((tmp_path / "fresh.json").read_text())
    assert fresh["metrics"] == rec["metrics"]


def test_record_json_is_replaced_atomically(tmp_path):
    from empirics._records import read_json, write_json

    path = tmp_path / "rec.json"
    write_json(path, {"a": 1})
    _killed(f"""
        kill_at("os", "replace")
        from empirics._records import write_json
        write_json({str(path)!r}, {{"a": 2}})
    """, tmp_path)
    assert read_json(path) == {"a": 1}
    from landscape.runtime.atomic import default_file_mode

    assert os.stat(path).st_mode & 0o777 == default_file_mode()  # as readable as any new file
