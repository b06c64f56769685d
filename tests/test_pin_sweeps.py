"""figures._sweeps pinned: the central band of the trials (THEORY.md 9.4: round(20 %) of the
trials dropped on each side, never all of them), the words every figure states it in, and the
thinning of long curves (at most PLOT_MAX_POINTS points, the first and last always kept).
"""
from __future__ import annotations

import numpy as np
import pytest

from figures import _sweeps as S


@pytest.mark.parametrize("n, clip", [(1, 0), (2, 0), (3, 1), (4, 1), (5, 1), (7, 1), (8, 2), (10, 2), (12, 2),
                                     (13, 3), (20, 4), (100, 20)])
def test_central_clip_is_round_a_fifth_on_each_side(n, clip):
    assert S._central_clip(n) == clip
    assert n > 2 * clip or n == 0


@pytest.mark.parametrize("n, frac, clip", [(4, 0.5, 1), (6, 0.5, 2), (2, 0.5, 0), (10, 0.1, 1), (10, 0.0, 0)])
def test_central_clip_never_drops_every_value(n, frac, clip):
    assert S._central_clip(n, frac) == clip


def test_central_is_the_median_and_the_clipped_order_statistics():
    v = np.array([9.0, 1, 7, 3, 5, 2, 8, 4, 6, 10])
    med, lo, hi = S._central(v, 0.2)
    assert (med, lo, hi) == (5.5, 3.0, 8.0)  # 10 trials: the 3rd smallest and the 3rd largest
    assert S._central(v.reshape(2, 5), 0.2) == (5.5, 3.0, 8.0)
    assert S._central(np.array([4.0, 1.0, 2.0]), 0.2) == (2.0, 2.0, 2.0)  # 3 trials: one dropped each side


@pytest.mark.parametrize("n, words", [
    (10, "central range = 3rd smallest to 3rd largest of 10 trials (2 dropped on each side)"),
    (5, "central range = 2nd smallest to 2nd largest of 5 trials (1 dropped on each side)"),
    (13, "central range = 4th smallest to 4th largest of 13 trials (3 dropped on each side)"),
    (2, "central range = min to max of the 2 trials")])
def test_central_range_words(n, words):
    assert S._central_range_words(n) == words


@pytest.mark.parametrize("n", [1, 2, 100, 160, 161, 1000, 40000])
def test_thinning_keeps_the_ends_and_at_most_the_limit(n):
    assert S.PLOT_MAX_POINTS == 160
    idx = S._thin(n)
    assert idx[0] == 0 and idx[-1] == n - 1
    assert np.all(np.diff(idx) > 0) and len(idx) <= S.PLOT_MAX_POINTS
    if n <= S.PLOT_MAX_POINTS:
        assert idx.tolist() == list(range(n))


def test_markers_are_staggered_between_curves():
    x = np.linspace(0.0, 10.0, 101)
    a = S._marker_positions(x, 0, 2)
    b = S._marker_positions(x, 1, 2)
    assert a == [5, 25, 45, 65, 85] and b == [15, 35, 55, 75, 95]
    assert S._marker_positions(np.array([]), 0, 1) == []


@pytest.mark.parametrize("method", ["lora-ml", "sr"])
@pytest.mark.parametrize("count", [1, 2, 5])
def test_method_colours_are_shades_light_to_dark_of_its_family(method, count):
    import matplotlib

    cmap = matplotlib.colormaps[S.METHOD_CMAP[method]]
    want = [cmap(x) for x in np.linspace(0.45, 1.0, count)] if count > 1 else [cmap(0.8)]
    assert S._method_colors(method, count) == want
    if count > 1:  # darker along the sweep: the sum of RGB falls
        sums = [sum(c[:3]) for c in S._method_colors(method, count)]
        assert all(a > b for a, b in zip(sums, sums[1:]))


def test_claim_lines_say_fails_unless_a_smoke_run():
    claims = [{"claim": "slope -1", "holds": True}, {"claim": "ratio 2", "holds": False}]
    assert S.claim_lines(claims) == ["- HOLDS: slope -1", "- FAILS: ratio 2"]
    smoke = S.claim_lines(claims, smoke=True)
    assert smoke[0].startswith("SMOKE configuration") and smoke[1] == ""
    assert smoke[2:] == ["- HOLDS: slope -1", "- does not hold at smoke size: ratio 2"]


def test_default_executor_is_local_with_at_least_one_worker():
    from landscape.runtime.executor import LocalExecutor

    for workers, want in ((3, 3), (0, 1), (-2, 1)):
        ex = S._executor_or_default(None, workers)
        assert isinstance(ex, LocalExecutor) and ex.workers == want
    given = object()
    assert S._executor_or_default(given, 5) is given


@pytest.mark.parametrize("text", ["a table\n", "a table", "two\nlines"])
def test_a_figure_s_markdown_ends_with_exactly_one_newline(tmp_path, text):
    from figures._sweeps import _write_md

    path = _write_md(tmp_path, "t", text)
    written = path.read_text()
    assert written.endswith("\n") and not written.endswith("\n\n") and written.rstrip("\n") == text.rstrip("\n")
