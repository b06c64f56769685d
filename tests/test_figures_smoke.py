"""Every registered figure renders from its smoke config; CLI exit codes; redraw from data."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import figures
from figures import FigureSpec
from figures.__main__ import main as figures_main

SYNTHETIC = ["figure1", "figure1-official", "shallow-T", "shallow-d", "shallow-N", "shallow-n", "shallow-k", "shallow-tables"]


@pytest.fixture(scope="module")
def smoke_out(tmp_path_factory):
    return tmp_path_factory.mktemp("figs")


@pytest.mark.parametrize("name", SYNTHETIC)
def test_smoke_config_renders_png(name, smoke_out):
    res = figures.make(name, smoke=True, out=smoke_out, progress=False)
    pngs = [f for f in res["files"] if f.suffix == ".png"]
    assert pngs
    for f in pngs:
        # a vector version beside every PNG, and print resolution
        assert f.with_suffix(".pdf") in res["files"] and f.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
        with Image.open(f) as im:
            assert min(im.info["dpi"]) >= 149.5  # pHYs stores dots per metre: 150 dpi reads back as 149.99
            w, h = im.size
            # a real plot, not a blank canvas
            assert w > 300 and h > 200
            assert np.asarray(im.convert("L")).std() > 5
    meta = res["meta"]
    assert meta["smoke"] is True and meta["config"] and meta["provenance"]["git"]
    assert (smoke_out / f"{name}-smoke.json").exists()


def test_every_registered_synthetic_figure_is_smoke_tested():
    synthetic = {n for n in figures.names() if n.startswith("figure1") or n.startswith("shallow")}
    assert synthetic == set(SYNTHETIC)


def test_figure1_smoke_data_has_all_sweeps_and_both_methods(smoke_out):
    data, meta = figures.load_data(smoke_out, "figure1-smoke") if (smoke_out / "figure1-smoke.json").exists() \
        else (figures.make("figure1", smoke=True, out=smoke_out, progress=False)["data"], None)
    sweeps = {p["sweep"] for p in data["points"]}
    assert sweeps == {"T", "d", "N", "n", "k"}
    for i, _ in enumerate(data["points"]):
        L = np.asarray(data[f"loss_sum_{i}"])
        assert L.shape[0] == 2 and np.all(np.isfinite(L)) and np.all(L >= 0)


def test_redraw_uses_saved_data_without_recomputing(smoke_out, monkeypatch):
    tmp_path = smoke_out
    if not (tmp_path / "figure1-smoke.json").exists():
        figures.make("figure1", smoke=True, out=tmp_path, progress=False)
    spec = figures.get("figure1")

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setitem(figures.REGISTRY, "figure1", FigureSpec(spec.name, spec.description, boom, spec.render,
                                                                spec.paper, spec.smoke))
    files = figures.redraw("figure1", tmp_path, smoke=True)
    assert any(f.suffix == ".png" for f in files)
    # make() also reuses saved data when the config matches, and says so
    assert figures.make("figure1", smoke=True, out=tmp_path, progress=False)["source"] == "reused"


def test_one_line_registration_from_another_module(tmp_path):
    def compute(config, workdir, progress):
        return {"x": np.arange(config["n"], dtype=float)}

    def render(data, out_dir, stem):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(data["x"])
        p = out_dir / f"{stem}.png"
        fig.savefig(p)
        plt.close(fig)
        return [p]

    spec = figures.register(FigureSpec("dummy-test-table", "dummy", compute, render, {"n": 5}, {"n": 3}, kind="table"))
    try:
        res = figures.make("dummy-test-table", smoke=True, out=tmp_path, progress=False)
        assert res["data"]["x"].shape == (3,)
        with pytest.raises(ValueError, match="already registered"):
            figures.register(FigureSpec("dummy-test-table", "other", compute, render, {}, {}))
        with pytest.raises(ValueError, match="unknown configuration keys"):
            figures.make("dummy-test-table", smoke=True, out=tmp_path, overrides={"m": 1})
    finally:
        figures.REGISTRY.pop(spec.name)


def test_cli_list_and_bad_arguments(capsys):
    assert figures_main(["list"]) == 0
    assert "figure1" in capsys.readouterr().out
    assert figures_main(["make", "no-such-figure", "--smoke"]) == 2
    with pytest.raises(SystemExit) as e:
        figures_main(["make"])
    assert e.value.code == 2
    assert figures_main(["make", "figure1", "--smoke", "--set", "trials"]) == 2
    assert figures_main(["make", "figure1", "--smoke", "--set", "no_such_key=1"]) == 2
    with pytest.raises(SystemExit) as e:
        figures_main(["frobnicate"])
    assert e.value.code == 2


def test_import_figures_and_list_do_not_import_torch():
    code = "import sys, figures; from figures.__main__ import main; main(['list']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def _one_point_table(lora_value, sr_value):
    from figures._synthetic import PAPER_SHALLOW_TABLES

    paper = {"T": {k: (v[1:2] if k != "values" else [3]) for k, v in PAPER_SHALLOW_TABLES["T"].items()}}
    return {"sweeps": ["T"], "paper": paper, "values_T": [3],
            "final_mse_T_0": np.stack([np.full(10, lora_value), np.full(10, sr_value)])}


def test_shallow_tables_judge_inside_at_the_printed_precision():
    from figures._synthetic import format_shallow_tables, shallow_table_rows

    # paper T=3: LoRA-ML 0.018 (0.017, 0.028), SR 0.092 (0.086, 0.225)
    rows = shallow_table_rows(_one_point_table(0.01651, 0.08561))  # print as 0.017 and 0.086: ties
    assert [r["inside"] for r in rows] == [True, True]
    text = format_shallow_tables(_one_point_table(0.01651, 0.08561))
    assert "| 3 | LoRA-ML | 0.017 (0.017, 0.017) | 0.018 (0.017, 0.028) | yes |" in text
    # negative control: printed below the paper's low end
    assert [r["inside"] for r in shallow_table_rows(_one_point_table(0.0164, 0.0854))] == [False, False]


def test_shallow_tables_follow_the_figures_panel_order(smoke_out):
    from figures._synthetic import SWEEPS, format_shallow_tables

    data, _ = figures.load_data(smoke_out, "shallow-tables-smoke") \
        if (smoke_out / "shallow-tables-smoke.json").exists() \
        else (figures.make("shallow-tables", smoke=True, out=smoke_out, progress=False)["data"], None)
    assert list(data["sweeps"]) != list(SWEEPS)  # the paper's table order differs from the figures'
    text = format_shallow_tables(data)
    heads = [line.split()[2] for line in text.splitlines() if line.startswith("## vary ")]
    assert heads == [s for s in SWEEPS if s in data["sweeps"]]


def _rc(argv):
    try:
        return figures_main(argv)
    except SystemExit as exc:  # argparse's own exits
        return exc.code


def test_the_command_line_needs_a_command(capsys):
    """No subcommand is bad input: exit 2 and one line naming what is missing."""
    assert _rc([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "command" in err[0]


def test_a_bad_execution_flag_is_reported_by_its_own_message(tmp_path, capsys):
    """--workers 0: exit 2 with the executor's message itself (not the exception's type),
    and no output folder is made."""
    assert _rc(["make", "figure1", "--smoke", "--workers", "0", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "--workers must be >= 1, got 0" in err
    assert not (tmp_path / "o").exists()


def test_make_says_when_it_computed_and_when_it_reused_saved_data(tmp_path, capsys):
    out = str(tmp_path / "o")
    assert _rc(["make", "figure1", "--smoke", "--quiet", "--out", out]) == 0
    first = capsys.readouterr().out
    assert "figure1: computed," in first and "reused" not in first
    assert _rc(["make", "figure1", "--smoke", "--quiet", "--out", out]) == 0
    assert "figure1: reused saved data (--recompute computes it again)," in capsys.readouterr().out
