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
