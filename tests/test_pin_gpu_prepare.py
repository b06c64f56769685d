"""empirics.real.gpu_prepare pinned: the former preparation command is the bundle's pack, its
documented --dest (and --dest=DIR) passed on as --out, the process's own arguments read when
none are given, and ``python -m`` runs it."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")

from empirics.real import bundle, gpu_prepare  # noqa: E402


@pytest.fixture
def packed_to(monkeypatch):
    seen = {}
    monkeypatch.setattr(bundle, "pack", lambda dest, **kw: seen.update(dest=dest, **kw))
    return seen


@pytest.mark.parametrize("argv", [["--dest", "D1"], ["--dest=D1"], ["--out", "D1"]])
def test_dest_is_passed_on_as_out(packed_to, argv):
    assert gpu_prepare.main([*argv, "--no-language"]) == 0
    assert packed_to["dest"] == "D1" and packed_to["language"] is False and packed_to["vision"] is True


def test_without_arguments_it_reads_the_command_line(packed_to, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gpu_prepare", "--dest=D2", "--no-vision"])
    assert gpu_prepare.main() == 0
    assert packed_to["dest"] == "D2" and packed_to["vision"] is False


def test_python_dash_m_runs_it():
    out = subprocess.run([sys.executable, "-m", "empirics.real.gpu_prepare", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "usage:" in out.stdout and "pack" in out.stdout
