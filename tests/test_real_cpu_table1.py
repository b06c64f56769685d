"""The CPU Table 1 protocol (empirics.real.cpu_table1): the paper's number of retraining
optimizer steps, a scale rule read on the retraining tasks only, and a record that states
the steps, the rule's outcome and the learning curves."""
import json
import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from empirics.real import cpu_table1  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_reduced_protocol_keeps_the_papers_retraining_steps():
    c = cpu_table1.CPU_TABLE1
    steps = c["epochs"] * math.ceil(c["max_per_task"] / c["batch_size"])
    assert cpu_table1.PAPER_RETRAIN_STEPS == 100 * 40  # 100 epochs x ceil(10,000 / 256)
    assert steps == cpu_table1.PAPER_RETRAIN_STEPS
    cfg = cpu_table1.cpu_config(retrain=["sr"])
    assert cfg.retrain == ("sr",) and cfg.width == c["width"] and cfg.lr == c["lr"]
    assert cfg.finetune_lr == 5e-4 and cfg.reptile_inner_steps == 20  # the paper's other settings


def _unit(method, seed, val, best, test_acc=0.5):
    return {"retrain": method, "seed": seed, "best_epoch": best,
            "retrain_history": {"epoch": list(range(1, len(val) + 1)), "val_accuracy": val},
            "finetune": {"lora": [{"accuracy": test_acc, "accuracy_per_epoch": [test_acc]}]}}


def test_scale_check_reads_srs_selected_retraining_epoch_only():
    units = [_unit("sr", 1, [0.6, 0.8, 0.7], 2), _unit("sr", 2, [0.7, 0.72, 0.76], 3),
             _unit("lora-ml", 1, [0.9, 0.9, 0.9], 1)]
    sc = cpu_table1.scale_check(units)
    assert sc["per_seed"] == {1: 0.8, 2: 0.76} and sc["mean"] == pytest.approx(0.78) and sc["passed"]
    # the fine-tuned test accuracy plays no part: the same histories with other test results agree
    assert cpu_table1.scale_check([_unit("sr", 1, [0.6, 0.8, 0.7], 2, test_acc=0.99)])["mean"] == 0.8
    # below the threshold it fails; the last epoch counts when no epoch was selected
    low = cpu_table1.scale_check([_unit("sr", 1, [0.8, 0.7], None)])
    assert low["mean"] == 0.7 and not low["passed"]
    assert not cpu_table1.scale_check([])["passed"]


def test_run_and_render_a_tiny_table(tmp_path):
    from empirics.real import _batched

    cfg = cpu_table1.cpu_config(dataset="random", width=8, batch_size=32, max_per_task=64, max_eval_per_task=32,
                                epochs=2, finetune_epochs=2, reptile_outer_epochs=1, reptile_inner_steps=2,
                                seeds=(1, 2))
    _batched.run(cfg, tmp_path / "out", verbose=False)
    rec = cpu_table1.render(tmp_path / "out", tmp_path / "dest", cfg=cfg)
    assert {m: v["retrain_steps"] for m, v in rec["per_method"].items()} == {
        "lora-ml": [4], "sr": [4], "reptile": [8], "last-layer-ml": [4]}  # 2 epochs x ceil(64/32); 4 x 2 inner
    assert all(r["retrain_steps"] == rec["per_method"][r["retrain"]]["retrain_steps"] * 2 for r in rec["rows"])
    assert len(rec["rows"]) == 6 and len(rec["comparisons"]) == 6
    assert set(rec["scale_check"]["per_seed"]) == {1, 2}
    stored = json.loads((tmp_path / "dest" / "vision_record.json").read_text())
    assert stored["paper_retrain_steps"] == 4000
    text = (tmp_path / "dest" / "table1_cpu.md").read_text()
    assert "retrain_steps" in text and "Scale rule" in text and "86.09" in text  # the paper's LoRA-ML beside ours
    assert (tmp_path / "dest" / "learning_curves.png").stat().st_size > 1000
    assert len(list((tmp_path / "dest" / "units").glob("*.json"))) == 8  # 4 methods x 2 seeds


def test_render_refuses_an_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no unit"):
        cpu_table1.render(tmp_path, tmp_path / "dest", cfg=cpu_table1.cpu_config(dataset="random"))


def test_elapsed_spans_first_start_to_last_end_of_the_logged_processes(tmp_path):
    assert cpu_table1.elapsed(tmp_path) is None  # no log: no elapsed time is claimed
    cpu_table1.log_process(tmp_path, retrain=["sr"], seeds=[1, 2], group_size=2, threads=1,
                           started=1000.0, finished=1900.0)
    cpu_table1.log_process(tmp_path, retrain=["lora-ml"], seeds=[1, 2], group_size=2, threads=1,
                           started=1010.5, finished=2000.25)
    run = cpu_table1.elapsed(tmp_path)
    assert run["elapsed_s"] == 1000.25  # 2000.25 - 1000.0, not the sum of the processes
    assert len(run["processes"]) == 2 and run["processes"][0]["retrain"] == ["sr"]
    assert run["started_utc"] == "1970-01-01T00:16:40Z"


@pytest.mark.parametrize("line", ['{"started_utc": 5, "finished_utc": 4}', '{"started_utc": 5}', "not json",
                                  '{"started_utc": "nan", "finished_utc": 9}'])
def test_elapsed_refuses_a_log_line_that_is_not_a_finished_process(tmp_path, line):
    (tmp_path / cpu_table1.RUN_LOG).write_text(line + "\n")
    with pytest.raises(ValueError, match="line 1"):
        cpu_table1.elapsed(tmp_path)


def test_run_writes_its_process_line_and_render_reports_the_elapsed_time(tmp_path):
    # the real protocol is far too long for a test: a tiny configuration is trained, its
    # process line written as `run` writes it, and rendered from the same folder
    from empirics.real import _batched

    cfg = cpu_table1.cpu_config(dataset="random", width=8, batch_size=32, max_per_task=64, max_eval_per_task=32,
                                epochs=1, finetune_epochs=1, reptile_outer_epochs=1, reptile_inner_steps=2,
                                seeds=(1,), retrain=("sr",))
    _batched.run(cfg, tmp_path / "out", verbose=False)
    cpu_table1.log_process(tmp_path / "out", retrain=["sr"], seeds=[1], group_size=1, threads=1,
                           started=100.0, finished=160.0)
    rec = cpu_table1.render(tmp_path / "out", tmp_path / "dest", cfg=cfg)
    assert rec["elapsed_s"] == rec["total_wall_s"] == 60.0 and "--retrain sr --seeds 1 --group-size 1" in rec["command"]
    assert "Elapsed, first process start to last process end: 1.0 min" in (tmp_path / "dest" / "table1_cpu.md").read_text()


def test_the_command_line_renders_and_runs_what_it_is_asked(tmp_path, monkeypatch, capsys):
    """``render`` only renders (it prints the scale check in percent); ``run`` trains each
    group of seeds and reports when it is done, then logs its process line."""
    import re

    from empirics.real import _batched

    cfg = cpu_table1.cpu_config(dataset="random", width=8, batch_size=32, max_per_task=64, max_eval_per_task=32,
                                epochs=1, finetune_epochs=1, reptile_outer_epochs=1, reptile_inner_steps=2,
                                seeds=(1,), retrain=("sr",))
    _batched.run(cfg, tmp_path / "out", verbose=False)
    trained, groups = [], []
    monkeypatch.setattr(_batched, "run", lambda c, out, verbose=True: trained.append(tuple(c.seeds)))
    monkeypatch.setattr(cpu_table1, "cpu_config", lambda **kw: groups.append(tuple(kw.get("seeds", ()))) or cfg)
    assert cpu_table1.main(["render", "--out", str(tmp_path / "out"), "--dest", str(tmp_path / "dest")]) == 0
    rec = json.loads((tmp_path / "dest" / "vision_record.json").read_text())
    out = capsys.readouterr().out
    assert trained == [] and f"scale check: SR retraining validation {100 * rec['scale_check']['mean']:.2f} %" in out
    md = (tmp_path / "dest" / "table1_cpu.md").read_text()
    assert f"mean {100 * rec['scale_check']['mean']:.2f} % over seeds" in md
    assert cpu_table1.main(["run", "--out", str(tmp_path / "out2"), "--retrain", "sr", "--seeds", "1", "2",
                            "--group-size", "1"]) == 0
    err = capsys.readouterr().err
    assert trained == [(1,), (1,)]  # the stand-in configuration has seed 1; one call per group
    assert len(re.findall(r"seeds \[1\] done at \d+ s", err)) == 2
    # consecutive groups of --group-size seeds, the last one shorter
    groups.clear()
    assert cpu_table1.main(["run", "--out", str(tmp_path / "out3"), "--retrain", "sr", "--seeds", "1", "2", "3", "4",
                            "5", "--group-size", "2"]) == 0
    assert groups == [(1, 2), (3, 4), (5,)]


def test_units_of_the_sequential_runner_count_their_own_wall_times(tmp_path):
    """Units written by ``python -m empirics vision`` (no batched group) render with their own
    retraining and unit wall times, not with zero seconds."""
    from empirics.real import _run
    from empirics.real._batched import stored_results

    cfg = cpu_table1.cpu_config(dataset="random", width=8, batch_size=32, max_per_task=64, max_eval_per_task=32,
                                epochs=1, finetune_epochs=1, reptile_outer_epochs=1, reptile_inner_steps=2,
                                seeds=(1, 2), retrain=("sr",))
    _run.run(cfg, tmp_path / "out", verbose=False)
    units = stored_results(cfg, tmp_path / "out")
    units = units if isinstance(units, list) else list(units.values())
    rec = cpu_table1.render(tmp_path / "out", tmp_path / "dest", cfg=cfg)
    sr = rec["per_method"]["sr"]
    assert sr["wall_s"] == pytest.approx(sum(u["wall_s"] for u in units), rel=1e-12) and sr["wall_s"] > 0
    assert sr["retrain_wall_s"] == pytest.approx(sum(u["retrain_wall_s"] for u in units), rel=1e-12)


def test_render_copies_the_units_beside_the_record_unless_they_are_there(tmp_path):
    """Units are copied next to the record whenever the record goes to another folder --
    whichever way the two folder names sort -- and left alone when it is the same folder."""
    from empirics.real import _batched

    cfg = cpu_table1.cpu_config(dataset="random", width=8, batch_size=32, max_per_task=64, max_eval_per_task=32,
                                epochs=1, finetune_epochs=1, reptile_outer_epochs=1, reptile_inner_steps=2,
                                seeds=(1,), retrain=("sr",))
    _batched.run(cfg, tmp_path / "m_out", verbose=False)
    units = sorted(f.name for f in (tmp_path / "m_out" / "units").glob("*.json"))
    assert units
    for dest in ("a_dest", "z_dest"):
        cpu_table1.render(tmp_path / "m_out", tmp_path / dest, cfg=cfg)
        assert sorted(f.name for f in (tmp_path / dest / "units").glob("*.json")) == units, dest
    cpu_table1.render(tmp_path / "m_out", tmp_path / "m_out", cfg=cfg)
    assert sorted(f.name for f in (tmp_path / "m_out" / "units").glob("*.json")) == units


def test_the_command_line_reports_elapsed_seconds_errors_and_a_missing_dest(tmp_path, monkeypatch, capsys):
    """``run`` reports each group at the seconds elapsed since it started; a bad value is
    one ``error:`` line and exit 2; ``render`` without ``--dest`` is refused by the parser."""
    import time as real_time
    from types import SimpleNamespace

    from empirics.real import _batched

    clock = iter([1000.0, 1012.4, 1030.6])
    monkeypatch.setattr(cpu_table1, "time", SimpleNamespace(perf_counter=lambda: next(clock), time=real_time.time))
    monkeypatch.setattr(_batched, "run", lambda c, out, verbose=True: None)
    assert cpu_table1.main(["run", "--out", str(tmp_path / "o"), "--retrain", "sr", "--seeds", "1", "2"]) == 0
    err = capsys.readouterr().err
    assert "seeds [1] done at 12 s" in err and "seeds [2] done at 31 s" in err
    assert cpu_table1.main(["run", "--out", str(tmp_path / "o"), "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --threads must be >= 1, got 0"
    with pytest.raises(SystemExit) as info:
        cpu_table1.main(["render", "--out", str(tmp_path / "o")])
    assert info.value.code == 2 and "--dest" in capsys.readouterr().err
