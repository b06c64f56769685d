"""figures._shallow pinned: the paper's shallow-network tables against THEORY.md 9.4 as printed,
the configurations' sweeps around their base point, the units' CPU request, and what the
rendered figures show -- the paper's ranges as error bars from low to high, the sweep legend
beside the axes, the tables' key text inside its panel."""
from __future__ import annotations

import re

import numpy as np
import pytest

from figures import _shallow as S

#: THEORY.md 9.4's table as printed there (LoRA-ML and SR columns: median (low, high) per value).
THEORY_9_4 = """
| A | $T=2,3,5$ | 0.047 (0.042, 0.127) / 0.018 (0.017, 0.028) / 0.005 (0.004, 0.024) | 0.119 (0.104, 0.161) / 0.092 (0.086, 0.225) / 0.076 (0.046, 0.107) |
| B | $N=100,1000,10000$ | 0.006 (0.005, 0.034) / 0.003 (0.002, 0.061) / 0.004 (0.004, 0.017) | 0.132 (0.114, 0.171) / 0.147 (0.109, 0.221) / 0.115 (0.112, 0.165) |
| C | $k=1,3,5$ | 0.138 (0.100, 0.262) / 0.010 (0.006, 0.055) / 0.023 (0.009, 0.048) | 0.354 (0.319, 0.646) / 0.075 (0.073, 0.092) / 0.085 (0.074, 0.108) |
| D | $n=100,1000,10000$ | 0.138 (0.100, 0.262) / 0.093 (0.077, 0.117) / 0.044 (0.043, 0.067) | 0.354 (0.319, 0.646) / 0.283 (0.261, 0.359) / 0.151 (0.140, 0.299) |
| E | $d=5,10,20$ | 0.002 (0.001, 0.003) / 0.005 (0.004, 0.010) / 0.069 (0.050, 0.121) | 0.004 (0.003, 0.021) / 0.082 (0.082, 0.125) / 0.483 (0.438, 0.690) |
"""


def _parse_9_4():
    out = {}
    for line in THEORY_9_4.strip().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        sweep, values = re.fullmatch(r"\$(\w)=([\d,]+)\$", cells[1]).groups()
        triples = [[tuple(float(x) for x in re.findall(r"[\d.]+", part)) for part in col.split(" / ")]
                   for col in cells[2:4]]
        out[sweep] = {"values": [int(v) for v in values.split(",")], "lora-ml": triples[0], "sr": triples[1]}
    return out


def test_paper_tables_are_theory_9_4_as_printed():
    assert S.PAPER_SHALLOW_TABLES == _parse_9_4()
    for table in S.PAPER_SHALLOW_TABLES.values():
        for method in ("lora-ml", "sr"):
            assert len(table[method]) == len(table["values"])
            assert all(0 < lo <= med <= hi for med, lo, hi in table[method])


@pytest.mark.parametrize("config", [S._SHALLOW_PAPER, S._SHALLOW_SMOKE], ids=["paper", "smoke"])
def test_every_sweep_passes_through_the_base_point(config):
    """Each sweep varies one parameter around the base configuration, so the base value is
    one of its values (the sweeps share that point)."""
    for sweep, values in config["values"].items():
        assert config["base"][sweep] in values, (sweep, values)


@pytest.mark.parametrize("threads,cpus", [(4, 4), (1, 1), (None, 1), (0, 1)])
def test_each_unit_asks_for_its_threads_as_cpus(units_asked, tmp_path, threads, cpus):
    from empirics._shallow import ShallowConfig

    seen, Stop = units_asked
    cfg = ShallowConfig(**{k: v for k, v in S._SHALLOW_SMOKE["base"].items()})
    with pytest.raises(Stop):
        S._run_shallow_units([("T", cfg)], [1, 2], tmp_path, False, threads, 1)
    assert seen and all(u.resources.cpus == cpus for u in seen)


def _table_data(trials: int = 5, sweeps=("T", "d")):
    rng = np.random.default_rng(0)
    data = {"sweeps": list(sweeps), "paper": {s: S.PAPER_SHALLOW_TABLES[s] for s in sweeps}}
    for s in data["sweeps"]:
        data[f"values_{s}"] = list(S.PAPER_SHALLOW_TABLES[s]["values"])
        for i in range(len(data[f"values_{s}"])):
            data[f"final_mse_{s}_{i}"] = (0.01 + rng.random((2, trials))).tolist()
    return data


def test_paper_ranges_are_drawn_from_low_to_high(figures_saved, tmp_path):
    """Each paper point (square marker) is its median with a bar from its low to its high."""
    from matplotlib.container import ErrorbarContainer

    data = _table_data()
    S.render_shallow_tables(data, tmp_path, "tables")
    fig = figures_saved[-1]
    seen = 0
    for ax, s in zip(fig.axes, ("T", "d")):
        for c in ax.containers:
            if not isinstance(c, ErrorbarContainer) or c.lines[0].get_marker() != "s":
                continue
            meds = c.lines[0].get_ydata()
            segs = c.lines[2][0].get_segments()
            method = "lora-ml" if seen % 2 == 0 else "sr"
            for (med, lo, hi), y, seg in zip(S.PAPER_SHALLOW_TABLES[s][method], meds, segs):
                assert y == med
                assert sorted(p[1] for p in seg) == pytest.approx([lo, hi], rel=1e-12, abs=0)
            seen += 1
    assert seen == 4


def test_the_tables_key_text_lies_inside_its_panel(figures_saved, tmp_path):
    S.render_shallow_tables(_table_data(), tmp_path, "tables")
    fig = figures_saved[-1]
    key = [ax for ax in fig.axes if not ax.axison][0]
    texts = [t for t in key.texts if t.get_text().startswith("ours:")]
    assert len(texts) == 1
    x, y = texts[0].get_position()
    assert 0 <= x <= 1 and 0 <= y <= 1 and texts[0].get_transform() == key.transAxes


def _curve_data(seed: int, trials: int) -> dict:
    """A T sweep of two values, both methods, 10 recorded epochs, random positive MSEs."""
    rng = np.random.default_rng(seed)
    data = {"sweep": "T", "values": [2, 3]}
    for i in range(2):
        data[f"curve_epochs_{i}"] = list(range(0, 50, 5))
        data[f"curve_{i}"] = (0.01 + rng.random((2, trials, 10))).tolist()
        data[f"final_mse_{i}"] = (0.01 + rng.random((2, trials))).tolist()
    return data


def test_the_sweep_legend_sits_beside_the_axes(figures_saved, tmp_path):
    """No curve is covered: the legend's left edge is right of the axes' right edge."""
    S.render_shallow_sweep(_curve_data(1, 4), tmp_path, "sweep")
    fig = figures_saved[-1]
    fig.draw_without_rendering()
    ax = fig.axes[0]
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1


def test_claims_compare_the_methods_at_t_of_3_and_more_only(monkeypatch):
    """LoRA-ML below SR is claimed where Thm 3.3's regime holds (T >= 3), at every value of
    the other sweeps; T = 2 is left out."""
    rows = [{"sweep": s, "value": v, "method": m, "median": med}
            for s, v in (("T", 2), ("T", 3), ("T", 5), ("d", 5))
            for m, med in (("lora-ml", 1.0), ("sr", 2.0))]
    monkeypatch.setattr(S, "shallow_table_rows", lambda data: rows)
    claims = S.shallow_claims({"sweeps": {}})
    assert [c["claim"] for c in claims if "median < SR" in c["claim"]] == [
        "LoRA-ML median < SR median at T=3", "LoRA-ML median < SR median at T=5", "LoRA-ML median < SR median at d=5"]


def test_the_paper_protocol_is_theory_9_4_table_9_as_printed():
    """THEORY.md 9.4, "Defaults (Table 9)": T = 3, n = 100, N = 1000, k = 1, d = 10, sigma = 0.1;
    varied T in {2, 3, 5}, n, N in {100, 1000, 10000}, k in {1, 3, 5}, d in {5, 10, 20};
    10 trials, torch.manual_seed(613)."""
    paper = S._SHALLOW_PAPER
    assert paper["base"] == {"T": 3, "d": 10, "k": 1, "N": 1000, "n": 100, "sigma": 0.1}
    assert paper["values"] == {"T": [2, 3, 5], "d": [5, 10, 20], "N": [100, 1000, 10000], "n": [100, 1000, 10000],
                               "k": [1, 3, 5]}
    assert (paper["trials"], paper["seed"]) == (10, 613)


def test_our_ranges_are_drawn_from_low_to_high_left_of_the_paper_points(figures_saved, tmp_path):
    """Each of our points (round marker) is its median with a bar from its low to its high,
    0.07 to the left of its slot (the paper's square 0.07 to the right)."""
    from matplotlib.container import ErrorbarContainer

    data = _table_data()
    rows = S.shallow_table_rows(data)
    S.render_shallow_tables(data, tmp_path, "tables")
    fig = figures_saved[-1]
    seen = 0
    for ax, s in zip(fig.axes, ("T", "d")):
        ours = [c for c in ax.containers if isinstance(c, ErrorbarContainer) and c.lines[0].get_marker() == "o"]
        assert len(ours) == 2
        for j, (c, method) in enumerate(zip(ours, ("lora-ml", "sr"))):
            rs = [r for r in rows if r["sweep"] == s and r["method"] == method]
            xs = c.lines[0].get_xdata()
            np.testing.assert_allclose(xs, np.arange(len(rs)) + (j - 0.5) * 0.36 - 0.07, rtol=0, atol=1e-12)
            for r, y, seg in zip(rs, c.lines[0].get_ydata(), c.lines[2][0].get_segments()):
                assert y == r["median"]
                assert sorted(p[1] for p in seg) == pytest.approx([r["low"], r["high"]], rel=1e-12, abs=0)
            seen += 1
    assert seen == 4


def _sweep_data(Ts, trials=10):
    """Stand-in tables data: sweep T over ``Ts``, LoRA-ML trials k + 0.01 i (medians falling
    with T), SR trials twice as large."""
    data = {"sweeps": ["T"], "values_T": list(Ts), "paper": {}}
    for i, t in enumerate(Ts):
        ml = 1.0 / t + 0.01 * np.arange(trials)
        data[f"final_mse_T_{i}"] = np.stack([ml, 2 * ml])
    return data


@pytest.mark.parametrize("Ts, claimed", [((3, 4, 5), True), ((3, 5), True), ((3,), False)])
def test_the_improves_with_t_claim_needs_two_values_of_t(Ts, claimed):
    claims = [c for c in S.shallow_claims(_sweep_data(Ts)) if "improves with T" in c["claim"]]
    assert len(claims) == int(claimed) and all(c["holds"] for c in claims)


def test_the_table_s_range_is_the_central_six_of_ten_trials():
    """Ten trials: the median and the range clipping round(0.2 x 10) = 2 trials each side."""
    rows = S.shallow_table_rows(_sweep_data((3,)))
    ml = 1.0 / 3 + 0.01 * np.arange(10)
    r = next(r for r in rows if r["method"] == "lora-ml")
    assert (r["median"], r["low"], r["high"]) == pytest.approx((float(np.median(ml)), ml[2], ml[7]), rel=1e-12)


def test_a_chunk_without_a_checkpoint_or_with_its_folder_missing_runs_without_one(tmp_path):
    from empirics._shallow import ShallowConfig

    cfg = {**vars(ShallowConfig(T=2, d=3, k=1, N=6, n=4, retrain_epochs=2, finetune_epochs=2, record_every=1))}
    a = S._shallow_chunk_unit(cfg, [1], checkpoint=None)
    b = S._shallow_chunk_unit(cfg, [1], checkpoint=str(tmp_path / "missing" / "ck.pt"))
    assert np.array_equal(a["final_mse"], b["final_mse"]) and not (tmp_path / "missing").exists()


def test_a_sweep_table_cell_is_the_median_and_the_central_six_of_ten():
    ml = 0.5 + 0.01 * np.arange(10)
    assert S.median_range_cell(ml[::-1]) == f"{np.median(ml):.4f} ({ml[2]:.4f}, {ml[7]:.4f})"


def test_each_sweep_curve_is_the_median_over_trials_with_its_central_band(figures_saved, tmp_path):
    """Every method and sweep value draws one line: the median over trials at each kept epoch
    (not an end of the band), labelled with its method and value, over a band of the central
    range; both methods appear."""
    from figures._sweeps import _central, _thin

    data = _curve_data(2, 5)
    S.render_shallow_sweep(data, tmp_path, "sweep")
    ax = figures_saved[-1].axes[0]
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert len(lines) == 4
    for m, method in enumerate(("lora-ml", "sr")):
        for i, v in enumerate(data["values"]):
            (line,) = [ln for ln in lines if ln.get_label() == f"{S.METHOD_LABELS[method]}, T={v}"]
            C = np.asarray(data[f"curve_{i}"])
            keep = _thin(10)
            want = [_central(C[m][:, j], 0.2)[0] for j in keep]
            np.testing.assert_allclose(line.get_ydata(), want)
            np.testing.assert_allclose(line.get_ydata(), np.median(C[m][:, keep], axis=0))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_the_tables_figure_has_a_panel_per_sweep_and_one_for_the_key_in_two_columns(figures_saved, tmp_path, n):
    """ceil((n + 1) / 2) rows of two: n panels with axes, the key's panel, and at most one
    unused slot (switched off) -- no empty row."""
    sweeps = [s for s in ("T", "d", "N", "n", "k") if s in S.PAPER_SHALLOW_TABLES][:n]
    assert len(sweeps) == n
    S.render_shallow_tables(_table_data(sweeps=sweeps), tmp_path, "tables")
    axes = figures_saved[-1].axes
    assert len(axes) == 2 * ((n + 2) // 2)
    assert sum(ax.axison for ax in axes) == n


def test_tables_from_a_record_read_back_as_json_list_every_row():
    """Sweep names read from a JSON record are compared by value: each sweep's table lists one
    row per value and method."""
    import json

    data = json.loads(json.dumps(_table_data()))
    data["sweeps"] = ["".join(s) for s in data["sweeps"]]
    text = S.format_shallow_tables(data)
    for s in data["sweeps"]:
        section = text.split(f"## vary {s}")[1].split("## vary")[0]
        rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith(f"| {s} |")]
        assert len(rows) == 2 * len(data[f"values_{s}"])
