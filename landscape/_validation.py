"""Input validation shared by every entry point of :mod:`landscape`.

Errors are :class:`LandscapeInputError` (a :class:`ValueError`) with a one-line
message naming the problem, so that command-line front ends can print it as is.
"""
from __future__ import annotations

import numpy as np

__all__ = ["LandscapeInputError", "as_task_stack", "check_rank", "as_factor_stack"]


class LandscapeInputError(ValueError):
    """Bad task matrices, factors or ranks given to the landscape toolkit."""


def as_task_stack(tasks, *, min_tasks: int = 1, name: str = "tasks") -> np.ndarray:
    """Return ``tasks`` as a read-only float64 array of shape ``(T, d, d)``.

    Raises
    ------
    LandscapeInputError
        If the array is not three-dimensional, the matrices are not square, there
        are fewer than ``min_tasks`` tasks, or an entry is NaN or infinite.
    """
    try:
        arr = np.asarray(tasks, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LandscapeInputError(f"{name}: not a numeric array ({exc})") from None
    if arr.ndim != 3:
        raise LandscapeInputError(
            f"{name}: expected a stack of shape (T, d, d), got an array of shape {arr.shape}"
        )
    T, d1, d2 = arr.shape
    if d1 != d2:
        raise LandscapeInputError(f"{name}: task matrices must be square, got {d1} x {d2}")
    if d1 == 0:
        raise LandscapeInputError(f"{name}: task matrices are empty (d = 0)")
    if T < min_tasks:
        raise LandscapeInputError(f"{name}: need at least {min_tasks} task(s), got {T}")
    bad = ~np.isfinite(arr)
    if bad.any():
        t, i, j = np.argwhere(bad)[0]
        raise LandscapeInputError(
            f"{name}: non-finite entry {arr[t, i, j]} at task {t}, position ({i}, {j})"
        )
    if arr.flags.writeable or not arr.flags.owndata or not arr.flags.c_contiguous:
        # a private read-only copy; an array that is already one (read-only and owning
        # its memory: what this function returns) is kept, not copied again
        arr = arr.copy()
        arr.flags.writeable = False
    return arr


def check_rank(k, d: int, *, allow_full: bool = True) -> int:
    """Validate an adapter rank ``k`` for ``d x d`` task matrices."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise LandscapeInputError(f"rank must be an integer, got {k!r}")
    k = int(k)
    upper = d if allow_full else d - 1
    if k < 1 or k > upper:
        relation = "<=" if allow_full else "<"
        raise LandscapeInputError(f"rank k={k} out of range: need 1 <= k {relation} d (d={d})")
    return k


def as_factor_stack(U, T: int, d: int, k: int, *, name: str = "U") -> np.ndarray:
    """Return adapter factors as a float64 array of shape ``(T, d, k)``."""
    arr = np.asarray(U, dtype=np.float64)
    if arr.shape != (T, d, k):
        raise LandscapeInputError(f"{name}: expected shape {(T, d, k)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise LandscapeInputError(f"{name}: contains NaN or infinite entries")
    return arr
