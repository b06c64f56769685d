"""landscape._validation at its boundaries: ranks (1..d, or 1..d-1 where a full rank is not
allowed), square task matrices either way round, the minimum number of tasks, the first
non-finite entry named, and keyword-only options."""
from __future__ import annotations

import numpy as np
import pytest

from landscape._validation import LandscapeInputError, as_factor_stack, as_task_stack, check_rank


@pytest.mark.parametrize("d", [1, 2, 5, 8])
def test_rank_range_with_and_without_full_rank(d):
    assert [check_rank(k, d) for k in range(1, d + 1)] == list(range(1, d + 1))
    for k in (0, d + 1, -1):
        with pytest.raises(LandscapeInputError, match=f"need 1 <= k <= d \\(d={d}\\)"):
            check_rank(k, d)
    assert [check_rank(k, d, allow_full=False) for k in range(1, d)] == list(range(1, d))
    with pytest.raises(LandscapeInputError, match=f"need 1 <= k < d \\(d={d}\\)"):
        check_rank(d, d, allow_full=False)


def test_rank_types():
    assert check_rank(np.int64(2), 3) == 2 and type(check_rank(np.int32(2), 3)) is int
    for bad in (True, 2.0, "2", None):
        with pytest.raises(LandscapeInputError, match="rank must be an integer"):
            check_rank(bad, 3)


@pytest.mark.parametrize("shape", [(2, 3, 2), (2, 2, 3), (1, 1, 4)])
def test_task_matrices_must_be_square_either_way_round(shape):
    with pytest.raises(LandscapeInputError, match="must be square"):
        as_task_stack(np.zeros(shape))


def test_task_stack_boundaries():
    assert as_task_stack(np.zeros((2, 3, 3)), min_tasks=2).shape == (2, 3, 3)
    with pytest.raises(LandscapeInputError, match="need at least 3 task"):
        as_task_stack(np.zeros((2, 3, 3)), min_tasks=3)
    with pytest.raises(LandscapeInputError, match="empty"):
        as_task_stack(np.zeros((2, 0, 0)))
    x = np.zeros((2, 3, 3))
    x[1, 2, 0], x[1, 2, 1] = np.inf, np.nan
    with pytest.raises(LandscapeInputError, match=r"non-finite entry inf at task 1, position \(2, 0\)"):
        as_task_stack(x)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        as_task_stack(np.zeros((2, 3, 3)), 2)
    with pytest.raises(TypeError):
        as_factor_stack(np.zeros((2, 3, 1)), 2, 3, 1, "V")


def test_factor_stack_shape_and_finiteness():
    assert as_factor_stack(np.zeros((2, 3, 1)), 2, 3, 1).shape == (2, 3, 1)
    with pytest.raises(LandscapeInputError, match=r"V: expected shape \(2, 3, 1\), got \(2, 1, 3\)"):
        as_factor_stack(np.zeros((2, 1, 3)), 2, 3, 1, name="V")
    with pytest.raises(LandscapeInputError, match="NaN or infinite"):
        as_factor_stack(np.full((2, 3, 1), np.nan), 2, 3, 1)


@pytest.mark.parametrize("d", [1, 256, 257, 300])
def test_square_tasks_of_any_size_are_square(d):
    """Square is compared by value: d = 257 and above (no longer one shared int object) too."""
    arr = as_task_stack(np.zeros((1, d, int(str(d)))))
    assert arr.shape == (1, d, d)
    with pytest.raises(LandscapeInputError, match=f"must be square, got {d} x {d + 1}"):
        as_task_stack(np.zeros((1, d, d + 1)))


def test_a_read_only_view_of_a_writable_array_is_copied():
    """The task stack is a private read-only array: a read-only *view* whose base the caller
    can still write is copied (it does not own its data), so writing the base later cannot
    change the tasks; an array that is read-only and owns its data is kept as it is."""
    from landscape._validation import as_task_stack

    base = np.arange(2 * 3 * 3, dtype=float).reshape(2, 3, 3)
    view = base.view()
    view.flags.writeable = False
    assert not view.flags.owndata and view.flags.c_contiguous
    got = as_task_stack(view)
    assert not np.shares_memory(got, base) and not got.flags.writeable
    base[0, 0, 0] = -1.0
    assert got[0, 0, 0] == 0.0
    again = as_task_stack(got)
    assert again is got
