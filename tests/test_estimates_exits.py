"""Issue 17's loose ends: the ``gpu_prepare`` alias exits like every other command, and
figure sets written before file-set manifests existed are told apart from broken ones."""
from __future__ import annotations

import errno

import pytest

from landscape.runtime.exits import EXIT_ENVIRONMENT, EXIT_INTERRUPTED, EXIT_USAGE

GP = "python -m empirics.real.gpu_prepare"


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_gpu_prepare_bad_input_is_exit_2_one_line(tmp_path, capsys):
    from empirics.real.gpu_prepare import main

    dest = tmp_path / "a-file"
    dest.write_text("not a folder")
    rc = main(["--dest", str(dest), "--no-language", "--archive", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE
    line = _one_line(err)
    assert line.startswith("python -m empirics.real.") and ": error: " in line and "not a folder" in line, line
    assert dest.read_text() == "not a folder"


@pytest.mark.parametrize("exc, status, word", [
    (OSError(errno.ENOSPC, "No space left on device", "/some/bundle/cifar.tar"), EXIT_ENVIRONMENT,
     "no space left on the device"),
    (MemoryError(), EXIT_ENVIRONMENT, "out of memory"),
    (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted"),
])
def test_gpu_prepare_maps_machine_failures_and_ctrl_c(monkeypatch, tmp_path, capsys, exc, status, word):
    import empirics.real.bundle as bundle
    from empirics.real.gpu_prepare import main

    def failing_pack(*args, **kwargs):
        raise exc

    monkeypatch.setattr(bundle, "pack", failing_pack)
    rc = main(["--out", str(tmp_path / "b"), "--no-language"])
    line = _one_line(capsys.readouterr().err)
    assert rc == status
    assert line.startswith(f"{GP}: ") and word in line, line
    assert "Traceback" not in line


# ------------------------------------------------------------- figure sets before manifests
# (tiny_figure: tests/conftest.py)
def test_a_set_written_before_manifests_is_unsealed_and_make_reseals_it(tmp_path, tiny_figure, capsys):
    import figures

    assert figures.set_status(tmp_path, "tinyfig") == "absent"
    figures.make("tinyfig", out=tmp_path, progress=False)
    assert figures.set_status(tmp_path, "tinyfig") == "complete"
    # as written before issue 17: the same members, no manifest
    (tmp_path / "tinyfig.set.json").unlink()
    assert figures.complete_set(tmp_path, "tinyfig") is None
    assert figures.set_status(tmp_path, "tinyfig") == "unsealed"
    capsys.readouterr()
    res = figures.make("tinyfig", out=tmp_path, progress=False)
    line = _one_line(capsys.readouterr().err)
    assert "written before file-set manifests" in line and "no tinyfig.set.json" in line
    assert res["source"] == "reused" and tiny_figure["compute"] == 1  # the data was kept, not recomputed
    assert figures.set_status(tmp_path, "tinyfig") == "complete"
    figures.make("tinyfig", out=tmp_path, progress=False)  # a sealed set: nothing more to say
    assert capsys.readouterr().err == ""


def test_a_broken_set_is_incomplete_not_unsealed(tmp_path, tiny_figure):
    import figures

    figures.make("tinyfig", out=tmp_path, progress=False)
    (tmp_path / "tinyfig.md").write_text("edited by hand\n")
    assert figures.set_status(tmp_path, "tinyfig") == "incomplete"
    figures.make("tinyfig", out=tmp_path, progress=False)
    (tmp_path / "tinyfig.set.json").unlink()
    (tmp_path / "tinyfig.md").unlink()  # data left without any rendering
    assert figures.set_status(tmp_path, "tinyfig") == "incomplete"
    (tmp_path / "tinyfig.md").write_text("sum 3.0\n")
    (tmp_path / "tinyfig.json").unlink()  # a rendering left without its data
    assert figures.set_status(tmp_path, "tinyfig") == "incomplete"
