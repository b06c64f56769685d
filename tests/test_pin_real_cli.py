"""empirics.real.cli pinned where a cosmic-ray sample found it loose: the model-folder check, the
language preflight of the user's own files, the batched engine's --group-size check, resume
reaching the cost estimate, the clean-up of a run that failed on its input, and --max-seconds'
type (finite and >= 0)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import re

import pytest

pytest.importorskip("torch")

from empirics.real import cli  # noqa: E402
from empirics.real._config import LANGUAGE_PAPER  # noqa: E402


def _model(folder, *, config=None, weights=True):
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "config.json").write_text(config)
    if weights:
        (folder / "model.safetensors").write_bytes(b"")
    return folder


def test_a_model_folder_needs_a_configuration_naming_its_type_and_weights(tmp_path):
    good = _model(tmp_path / "good", config=json.dumps({"model_type": "bert"}))
    assert cli.check_model_folder(good) == good
    with pytest.raises(FileNotFoundError, match="config.json missing"):
        cli.check_model_folder(_model(tmp_path / "none"))
    with pytest.raises(ValueError, match="not valid JSON"):
        cli.check_model_folder(_model(tmp_path / "bad", config="{"))
    with pytest.raises(ValueError, match="no 'model_type'"):
        cli.check_model_folder(_model(tmp_path / "typeless", config="{}"))
    with pytest.raises(FileNotFoundError, match="no weights"):
        cli.check_model_folder(_model(tmp_path / "empty", config=json.dumps({"model_type": "bert"}), weights=False))


def test_language_preflight_checks_the_users_model_and_files(tmp_path):
    good = _model(tmp_path / "m", config=json.dumps({"model_type": "bert"}))
    cfg = dataclasses.replace(LANGUAGE_PAPER, device="cpu", model=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=f"--model {tmp_path / 'nowhere'}: no HuggingFace model folder"):
        cli.preflight(cfg)
    for name, field in (("--valid-file", "valid_file"), ("--train-file", "train_file")):
        bad = dataclasses.replace(LANGUAGE_PAPER, device="cpu", model=str(good), **{field: str(tmp_path / "x.txt")})
        with pytest.raises(FileNotFoundError, match=f"{name} {tmp_path / 'x.txt'}: no such file"):
            cli.preflight(bad)


def test_the_batched_engine_refuses_a_group_size_below_one(tmp_path, capsys):
    out = tmp_path / "out"
    # the smallest run, so that an engine that did not refuse would end quickly
    code = cli.main(["vision", "--dataset", "random", "--engine", "batched", "--group-size", "0", "--out", str(out),
                     "--seeds", "1", "--epochs", "1", "--finetune-epochs", "1", "--width", "8", "--retrain", "sr",
                     "--quiet"])
    assert code == 2 and "--group-size must be >= 1, got 0" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("no_resume", [False, True])
def test_the_cost_estimate_resumes_unless_told_not_to(monkeypatch, tmp_path, no_resume):
    from empirics.real import _run

    seen = {}
    monkeypatch.setattr(_run, "todo_units", lambda cfg, out, resume: ["u"])
    monkeypatch.setattr(_run, "build_family", lambda cfg, verbose: "family")
    monkeypatch.setattr(_run, "estimate_cost", lambda cfg, out, family, **kw: seen.update(kw))
    args = argparse.Namespace(no_resume=no_resume, max_seconds=None)
    assert cli._estimate(LANGUAGE_PAPER, tmp_path, args, False) == "family"
    assert seen["resume"] is (not no_resume)


def test_a_failed_run_removes_its_nested_empty_folders(tmp_path):
    run = tmp_path / "out"
    (run / "a" / "b" / "c").mkdir(parents=True)
    (run / "lock").write_text("")
    cli._remove_empty(run, force_names=("lock",))
    assert not run.exists()
    (run / "a").mkdir(parents=True)
    (run / "a" / "result.json").write_text("{}")
    cli._remove_empty(run)
    assert (run / "a" / "result.json").is_file()  # a folder holding a file is left as it is


@pytest.mark.parametrize("text", ["-0.5", "-1e-300", "inf", "nan", "x"])
def test_nonneg_float_refuses_negative_and_non_finite(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli._nonneg_float(text)


def test_nonneg_float_admits_zero_and_positive():
    assert cli._nonneg_float("0") == 0.0 and cli._nonneg_float("2.5") == 2.5


def test_vision_preflight_checks_the_users_folder_or_else_the_users_archive(tmp_path):
    """CIFAR-10: a --data-root is checked for its batches (and the archive is then not read);
    without one, the archive given by --archive is the one checked (named in the refusal)."""
    from empirics.real._cifar import BATCHES_DIR
    from empirics.real._config import VISION_PAPER

    base = dataclasses.replace(VISION_PAPER, dataset="cifar10", cache=str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 batches under"):
        cli.preflight(dataclasses.replace(base, data_root=str(tmp_path / "empty")))
    (tmp_path / "good" / BATCHES_DIR).mkdir(parents=True)
    assert cli.preflight(dataclasses.replace(base, data_root=str(tmp_path / "good"),
                                             archive=str(tmp_path / "never-read.tar.xz"))) is None
    with pytest.raises(FileNotFoundError, match="mine.tar.xz"):
        cli.preflight(dataclasses.replace(base, data_root=None, archive=str(tmp_path / "mine.tar.xz")))


@pytest.mark.parametrize("text, message", [("abc", "expected a number > 0, got 'abc'"),
                                           ("0", "expected a finite number > 0, got 0"),
                                           ("inf", "expected a finite number > 0, got inf")])
def test_positive_float_refuses_with_its_own_message(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
        cli._positive_float(text)
    assert cli._positive_float("2.5") == 2.5


def test_the_output_folder_must_be_writable_and_searchable(tmp_path, monkeypatch):
    """--out is refused when its nearest existing folder may not be written into (or entered):
    the check asks for write and search permission together (a stand-in access() that denies
    writing, as for a read-only folder -- root would be let through by the real one)."""
    import os

    asked = []

    def access(path, mode):
        asked.append(mode)
        return not (mode & os.W_OK)

    monkeypatch.setattr(cli.os, "access", access)
    with pytest.raises(ValueError, match="is not a writable folder"):
        cli._check_out(str(tmp_path / "new" / "run"))
    assert asked == [os.W_OK | os.X_OK]
