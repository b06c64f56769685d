"""``python -m empirics`` synthetic subcommands at tiny sizes; exit codes."""
import json

import pytest

from empirics.__main__ import main


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_synthetic_linear_cli_writes_record(tmp_path, capsys):
    out = tmp_path / "lin.json"
    rc = main(["synthetic-linear", "--d", "4", "--N", "50", "--n", "20", "--outer-steps", "5", "--sr-epochs", "5",
               "--finetune-iters", "5", "--record-every", "1", "--trials", "2", "--official", "--out", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())
    assert rec["config"]["options"]["noise_std_squared"] is True and len(rec["seeds"]) == 2
    assert len(rec["metrics"]["iteration"]) == 6
    assert "lora-ml" in capsys.readouterr().out


def test_synthetic_shallow_cli_writes_record(tmp_path):
    out = tmp_path / "sh.json"
    rc = main(["synthetic-shallow", "--d", "3", "--N", "10", "--n", "5", "--retrain-epochs", "5",
               "--finetune-epochs", "4", "--record-every", "2", "--trials", "3", "--out", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())
    assert rec["metrics"]["epoch"] == [2, 4] and set(rec["final"]) == {"lora-ml", "sr"}


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["synthetic-linear", "--T", "0"])
    assert e.value.code == 2
    assert "--T: must be >= 1" in capsys.readouterr().err
    assert main(["synthetic-linear", "--d", "3", "--rank", "4"]) == 2
    assert "adapter rank" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["synthetic-linear", "--T", "three"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2


@pytest.mark.parametrize("command", ["synthetic-linear", "synthetic-shallow"])
def test_noise_energy_is_refused_exactly_when_sigma2_n_d_overflows(command):
    """The check before any work refuses --sigma when sigma^2 N d is not a float64 number:
    at N = 20, d = 4 the limit is sigma = sqrt(max / 80); 0.999 of it passes, 1.001 of it and
    sigma = 1e200 (whose square alone overflows) are refused, with the flag named."""
    import math
    import sys

    from empirics.__main__ import _validate, build_parser
    from landscape.runtime.cli import UsageError

    limit = math.sqrt(sys.float_info.max / 80)

    def validate(sigma):
        args = build_parser().parse_args([command, "--N", "20", "--d", "4", "--rank", "1", "--sigma", repr(sigma)])
        return _validate(args)

    assert validate(0.999 * limit)["reuse"] is None
    for sigma in (1.001 * limit, 1e200):
        with pytest.raises(UsageError, match=r"--sigma .*sigma\^2 N d overflows float64"):
            validate(sigma)


@pytest.mark.parametrize("quiet, progress", [(False, True), (True, False)])
def test_synthetic_linear_shows_progress_unless_quiet(tmp_path, monkeypatch, capsys, quiet, progress):
    """Progress bars are on by default and off with -q."""
    import empirics._runs as R

    seen = []

    def record(cfg, options, *, trials, seed, out, progress, executor):
        seen.append(progress)
        return {"stand-in": True}

    monkeypatch.setattr(R, "linear_record", record)
    monkeypatch.setattr(R, "summarize", lambda rec: "summary")
    args = ["synthetic-linear", "--d", "4", "--N", "50", "--n", "20", "--trials", "1"] + (["-q"] if quiet else [])
    assert main(args) == 0
    assert seen == [progress]
