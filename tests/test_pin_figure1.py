"""figures._figure1 pinned: the paper's protocol of Figure 1 against THEORY.md 9.1 (defaults of
Table 9, the varied sets, steps, fine-tuning iterations, the k panel's truncation, the paper's
N = 1000 on the k row against the official code's 5000), and the claims' verdicts at their
boundaries -- LoRA-ML << SR only for T >= 3, with a factor strictly above 10 on the means and
every LoRA-ML trial strictly below every SR trial, on the final record; SR worsening strictly
with d.
"""
from __future__ import annotations

import numpy as np
import pytest

from figures import _figure1 as F


def test_the_paper_protocol_is_theory_9_1():
    p = F._LINEAR_PAPER
    assert p["base"] == {"T": 3, "d": 10, "k": 1, "N": 5000, "n": 100, "sigma": 0.1} and p["trials"] == 5
    assert p["values"] == {"T": [2, 3, 5], "d": [5, 10, 20], "N": [100, 1000, 10000], "n": [100, 1000, 10000],
                           "k": [1, 2, 3]}
    assert (p["outer_steps"], p["inner_steps"], p["sr_epochs"]) == (3000, 10, 3000)
    assert p["finetune_iters"] == {"T": 10000, "d": 1400, "N": 1000, "n": 1000, "k": 10000}
    assert p["plot_max_iter"] == {"k": 1000}
    assert p["sweep_overrides"] == {"k": {"N": 1000}}  # the paper's Table 9; the official code: 5000
    assert F._OFFICIAL_OPTIONS == {"noise_std_squared": True, "symmetric_a_star": True, "sr_stray_adapters": True,
                                   "shared_finetune_init": False}


def _data(points):
    """points: list of (sweep, value, T, lora_ml_final[trials], sr_final[trials]); two records
    each, the first one far off so that only the last can decide."""
    data = {"points": []}
    for i, (sweep, value, T, ml, sr) in enumerate(points):
        data["points"].append({"sweep": sweep, "value": value, "config": {"T": T, "n": 100}})
        first = np.full((2, len(ml)), 1e9)
        last = np.array([ml, sr], dtype=float)
        data[f"loss_sum_{i}"] = np.stack([first, last], axis=-1).tolist()
    return data


def _claims(points):
    return {c["claim"]: c for c in F.figure1_claims(_data(points))}


@pytest.mark.parametrize("ml, sr, holds", [
    ([1.0, 1.0], [10.5, 10.5], True),
    ([1.0, 1.0], [10.0, 10.0], False),  # factor exactly 10 on the means: not far below
    ([0.5, 1.5], [10.5, 12.0], True),
    ([0.1, 2.0], [1.9, 40.0], False),  # means 1.05 vs 20.95 (factor 20), but one SR trial below a LoRA-ML one
    ([0.1, 2.0], [2.0, 40.0], False),  # max LoRA-ML = min SR: not strictly below
    ([1.0, 1.0], [5.0, 5.0], False),  # every trial below, but only a factor 5
])
def test_lora_ml_far_below_sr_at_its_boundaries(ml, sr, holds):
    c = _claims([("T", 3, 3, ml, sr)])["LoRA-ML << SR at T=3"]
    assert c["holds"] is holds
    assert c["lora_ml_mean"] == float(np.mean(ml)) and c["sr_mean"] == float(np.mean(sr))


def test_no_lora_ml_claim_at_two_tasks():
    claims = _claims([("T", 2, 2, [1.0], [100.0]), ("T", 5, 5, [1.0], [100.0])])
    assert set(claims) == {"LoRA-ML << SR at T=5"}


@pytest.mark.parametrize("sr_means, holds", [([1.0, 2.0, 3.0], True), ([1.0, 2.0, 2.0], False),
                                             ([1.0, 3.0, 2.0], False)])
def test_sr_worsens_strictly_with_d(sr_means, holds):
    pts = [("d", d, 2, [0.0], [m]) for d, m in zip((20, 5, 10), (sr_means[2], sr_means[0], sr_means[1]))]
    c = _claims(pts)["SR worsens with d"]
    assert c["holds"] is holds and c["d"] == [5, 10, 20] and c["sr_mean"] == sr_means


def test_one_d_value_makes_no_d_claim():
    assert "SR worsens with d" not in _claims([("d", 5, 3, [1.0], [100.0])])


def test_summary_rows_state_sums_per_sample_losses_and_ratio():
    data = _data([("n", 1000, 3, [2.0, 4.0], [60.0, 90.0])])
    data["points"][0]["config"]["n"] = 1000
    text = F.format_figure1_summary(data)
    assert "| n | 1000 | 3 | 75 | 0.003 | 0.075 | 25 |" in text.splitlines()
    assert "- HOLDS: LoRA-ML << SR at n=1000" in text.splitlines()


def _render_data(values: int = 3, trials: int = 2, iters: int = 41):
    """A Figure 1 record small enough to draw: ``values`` points per sweep, T = 3, losses
    falling geometrically (LoRA-ML below SR), every point fine-tuned for ``iters`` - 1
    iterations recorded at each one."""
    points, data = [], {}
    its = np.arange(iters)
    for sweep in F.SWEEPS:
        for v in range(values):
            i = len(points)
            points.append({"sweep": sweep, "value": v + 1,
                           "config": {"T": 3, "n": 100, "finetune_iters": iters - 1}})
            decay = np.exp(-its / (10.0 + v))
            data[f"iterations_{i}"] = its.tolist()
            data[f"loss_sum_{i}"] = np.stack([np.stack([decay * (1 + 0.1 * t) for t in range(trials)]),
                                              np.stack([50 + decay * (1 + 0.1 * t) for t in range(trials)])]).tolist()
    data["points"] = points
    return data


@pytest.mark.parametrize("values", [2, 3])
def test_every_curve_of_a_panel_has_its_own_marker_positions(figures_saved, tmp_path, values):
    """Markers are staggered over all 2 x values curves of a panel, LoRA-ML's first: no
    two curves share a marker position, and the stagger slots are the curves' draw order --
    LoRA-ML's value c in slot c, SR's in slot values + c (a slot counted from either method
    alone would put two curves' markers on the same iterations)."""
    F.render_figure1(_render_data(values), tmp_path, "fig1-test")
    fig = figures_saved[-1]
    for ax in fig.axes[:len(F.SWEEPS)]:
        lines = [ln for ln in ax.get_lines() if ln.get_marker() not in (None, "None", "")]
        assert len(lines) == 2 * values
        firsts = [ln.get_xdata()[ln.get_markevery()[0]] for ln in lines]
        assert len(set(firsts)) == 2 * values, firsts
        # draw order: LoRA-ML's values, then SR's, markers shifted by one slot per curve
        assert firsts == sorted(firsts)
        x = np.asarray(lines[0].get_xdata())
        for slot, ln in enumerate(lines):
            assert list(ln.get_markevery()) == F._marker_positions(x, slot, 2 * values)


def test_the_per_sample_panel_divides_each_sum_by_its_own_n(figures_saved, tmp_path):
    """The "vary n" panel draws the mean over trials of loss_sum / n, with each point's own
    n (the other panels the sums themselves)."""
    data = _render_data(values=2)
    for i, p in enumerate(data["points"]):
        if p["sweep"] == "n":
            p["config"]["n"] = 7 * (i + 1)
    F.render_figure1(data, tmp_path, "fig1-n")
    axes = figures_saved[-1].axes
    for ax, sweep in zip(axes, F.SWEEPS):
        idx = [i for i, p in enumerate(data["points"]) if p["sweep"] == sweep]
        lines = [ln for ln in ax.get_lines() if ln.get_marker() not in (None, "None", "")]
        for method_index in range(2):
            for c, i in enumerate(idx):
                L = np.asarray(data[f"loss_sum_{i}"])[method_index]
                want = L.mean(0) / (data["points"][i]["config"]["n"] if sweep == "n" else 1)
                got = lines[method_index * len(idx) + c].get_ydata()
                np.testing.assert_allclose(got, want[:len(got)], rtol=1e-15, atol=0)


def test_figure1_runs_in_this_process_unless_told_otherwise(monkeypatch, tmp_path):
    """Without ``workers`` in the configuration and without an executor, the groups run in
    one worker (this process): parallel runs are asked for, never assumed."""
    asked = []

    class Stop(Exception):
        pass

    def capture(executor, workers):
        asked.append((executor, workers))
        raise Stop

    monkeypatch.setattr(F, "_executor_or_default", capture)
    with pytest.raises(Stop):
        F.compute_figure1(dict(F._LINEAR_SMOKE), tmp_path, progress=False)
    assert asked == [(None, 1)]


def test_smoke_keeps_the_papers_equal_retraining_budgets():
    """The paper gives SR as many retraining epochs as LoRA-ML outer steps (3000 each); the
    smoke configuration shrinks both alike, so its comparison keeps that balance, and keeps
    the paper's seed, noise level and the k row's override."""
    paper, smoke = F._LINEAR_PAPER, F._LINEAR_SMOKE
    assert paper["sr_epochs"] == paper["outer_steps"] == 3000
    assert smoke["sr_epochs"] == smoke["outer_steps"] == 15
    assert smoke["seed"] == paper["seed"] and smoke["sweep_overrides"] == paper["sweep_overrides"]
    assert smoke["base"]["sigma"] == paper["base"]["sigma"]


def test_the_paper_configuration_is_the_one_the_committed_figure_was_made_with():
    """figures/results/figure1.json records its configuration: the paper configuration in the
    code is that one, value for value (seed 2025, 5 trials, the sweeps, the step counts)."""
    import json
    from pathlib import Path

    from figures import _figure1 as F

    rec = json.loads((Path(__file__).resolve().parents[1] / "figures/results/figure1.json").read_text())
    assert json.loads(json.dumps(F._LINEAR_PAPER)) == rec["meta"]["config"]


def test_each_group_of_sweep_points_asks_one_cpu(units_asked, tmp_path):
    from figures import _figure1 as F

    seen, Stop = units_asked
    with pytest.raises(Stop):
        F.compute_figure1(F._LINEAR_SMOKE, tmp_path, progress=False)
    assert seen and all(u.resources.cpus == 1 for u in seen)


def test_only_the_vary_n_panel_is_labelled_per_input(figures_saved, tmp_path):
    F.render_figure1(_render_data(values=2), tmp_path, "fig1-labels")
    axes = figures_saved[-1].axes
    for ax, sweep in zip(axes, F.SWEEPS):
        label = ax.get_ylabel()
        assert label.startswith("in-sample test error per input") is (sweep == "n"), (sweep, label)


@pytest.mark.parametrize("shown_iters", [None, 20])
def test_the_x_label_says_first_n_shown_only_when_the_curves_stop_early(figures_saved, tmp_path, shown_iters):
    """Curves recorded to the run's last iteration (40) are labelled "(run: 40)"; recorded only
    to iteration 20 of the same 40-iteration run, "(run: 40; first 20 shown)"."""
    data = _render_data(values=2)
    if shown_iters is not None:
        for i in range(len(data["points"])):
            data[f"iterations_{i}"] = data[f"iterations_{i}"][:shown_iters + 1]
            data[f"loss_sum_{i}"] = [[row[:shown_iters + 1] for row in m] for m in data[f"loss_sum_{i}"]]
    F.render_figure1(data, tmp_path, "fig1-xlabel")
    labels = {ax.get_xlabel() for ax in figures_saved[-1].axes if ax.get_xlabel()}
    want = ("fine-tuning iteration (run: 40)" if shown_iters is None
            else "fine-tuning iteration (run: 40; first 20 shown)")
    assert labels == {want}


def test_summary_rows_use_the_last_record_of_three():
    """With records at three iterations the summary reads the last one (not the second)."""
    data = _data([("n", 1000, 3, [2.0, 4.0], [60.0, 90.0])])
    data["points"][0]["config"]["n"] = 1000
    L = np.asarray(data["loss_sum_0"])
    data["loss_sum_0"] = np.concatenate([L[:, :, :1], np.full_like(L[:, :, :1], 7.0), L[:, :, 1:]], axis=-1).tolist()
    assert "| n | 1000 | 3 | 75 | 0.003 | 0.075 | 25 |" in F.format_figure1_summary(data).splitlines()


def test_the_curves_of_a_panel_cycle_through_distinct_markers(figures_saved, tmp_path):
    """Each value of a sweep has its own marker (the same for its two methods), cycling
    through VALUE_MARKERS: three values, three markers."""
    F.render_figure1(_render_data(3), tmp_path, "fig1-markers")
    fig = figures_saved[-1]
    for ax in fig.axes[:len(F.SWEEPS)]:
        markers = [ln.get_marker() for ln in ax.get_lines() if ln.get_marker() not in (None, "None", "")]
        assert markers == [F.VALUE_MARKERS[c % len(F.VALUE_MARKERS)] for c in range(3)] * 2
        assert len(set(markers)) == 3
