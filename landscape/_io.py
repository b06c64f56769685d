r"""Reading and validating task matrices for audits (``python -m landscape audit``).

Accepted inputs
---------------
``.npz``
    Either ``tasks`` (shape ``(T, d, d)``), or ``A_star`` (``(d, d)``) and ``U_star``
    (``(T, d, k)``) when the truth of model M1 is known (THEORY.md section 2), or all
    three (then ``tasks`` must equal :math:`A^\star+U^\star_tU^{\star\top}_t`).
``.npy``
    A stack of task matrices, shape ``(T, d, d)``.
``.json``
    Nested lists (the stack), or an object with the same keys as ``.npz``.

The format is recognised from the file's content, not its name
(:mod:`landscape.runtime.safe_load`); sizes are checked before allocation and pickles are
never loaded.  Every problem is reported as a :class:`LandscapeInputError` whose message is one line
naming the problem, so the command line can print it and exit with status 2.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._objective import LoraMLProblem
from .runtime.safe_load import read_arrays
from ._validation import LandscapeInputError, as_task_stack, check_rank

__all__ = ["TaskInput", "load_tasks", "load_starts", "check_starts", "audit_problem", "ALLOWED_KEYS"]

#: Keys an ``.npz`` file or a JSON object may contain.
ALLOWED_KEYS = ("tasks", "A_star", "U_star")

#: ``tasks`` given together with ``A_star`` and ``U_star`` must match
#: ``A_star + U_star U_star^T`` to this relative accuracy (float64 round-off of a
#: product of O(1) factors is ~1e-15; text formats keep ~1e-12 with 12 digits).
CONSISTENCY_RTOL = 1e-8


@dataclass(frozen=True, eq=False)
class TaskInput:
    """Validated contents of an audit input.

    Attributes
    ----------
    tasks : ndarray, shape (T, d, d)
    A_star : ndarray or None
        Shared matrix, when the truth is known.
    U_star : ndarray or None
        Ground-truth adapters ``(T, d, k)``, when known.
    source : str
        File name (or a description for in-memory inputs).
    format : str
        ``"npz"``, ``"npy"``, ``"json"`` or ``"array"``.
    keys : tuple of str
        Keys found in the input.
    """

    tasks: np.ndarray
    A_star: np.ndarray | None
    U_star: np.ndarray | None
    source: str
    format: str
    keys: tuple

    @property
    def T(self) -> int:
        return self.tasks.shape[0]

    @property
    def d(self) -> int:
        return self.tasks.shape[1]

    @property
    def truth_known(self) -> bool:
        return self.A_star is not None and self.U_star is not None


def _finite(name, arr):
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise LandscapeInputError(f"{name}: non-finite entry {arr[pos]} at index {pos}")


def _numeric(name, value) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LandscapeInputError(f"{name}: not a numeric array ({msg})") from None
    return arr


def _from_mapping(mapping: dict, source: str, fmt: str) -> TaskInput:
    keys = tuple(mapping.keys())
    unknown = [k for k in keys if k not in ALLOWED_KEYS]
    if unknown:
        raise LandscapeInputError(
            f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys are "
            f"'tasks', or 'A_star' and 'U_star'"
        )
    if not keys:
        raise LandscapeInputError(f"{source}: contains no arrays (expected 'tasks' or 'A_star' and 'U_star')")
    has_truth = "A_star" in mapping or "U_star" in mapping
    if has_truth and not ("A_star" in mapping and "U_star" in mapping):
        missing = "U_star" if "A_star" in mapping else "A_star"
        raise LandscapeInputError(f"{source}: '{missing}' is missing ('A_star' and 'U_star' go together)")
    A_star = U_star = None
    if has_truth:
        A_star = _numeric("A_star", mapping["A_star"])
        U_star = _numeric("U_star", mapping["U_star"])
        if A_star.ndim != 2 or A_star.shape[0] != A_star.shape[1] or A_star.shape[0] == 0:
            raise LandscapeInputError(f"A_star: expected a non-empty square matrix, got shape {A_star.shape}")
        if U_star.ndim != 3 or U_star.shape[1] != A_star.shape[0] or U_star.shape[2] == 0:
            raise LandscapeInputError(
                f"U_star: expected shape (T, d, k) with d = {A_star.shape[0]} (from A_star), got {U_star.shape}"
            )
        if U_star.shape[0] == 0:
            raise LandscapeInputError("U_star: contains no tasks (T = 0)")
        _finite("A_star", A_star)
        _finite("U_star", U_star)
        with np.errstate(over="ignore", invalid="ignore"):
            implied = A_star[None] + U_star @ np.swapaxes(U_star, 1, 2)
        if not np.all(np.isfinite(implied)):
            raise LandscapeInputError("A_star + U_star U_star^T overflows the float64 range; rescale the input")
    if "tasks" in mapping:
        raw = _numeric("tasks", mapping["tasks"])
        if raw.size == 0:
            raise LandscapeInputError("tasks: the array is empty")
        tasks = as_task_stack(raw)
        if has_truth:
            if tasks.shape != implied.shape:
                raise LandscapeInputError(
                    f"tasks: shape {tasks.shape} does not match A_star and U_star (implied {implied.shape})"
                )
            err = float(np.linalg.norm(tasks - implied))
            if err > CONSISTENCY_RTOL * (1.0 + float(np.linalg.norm(implied))):
                raise LandscapeInputError(
                    f"tasks: inconsistent with A_star + U_star U_star^T (difference {err:.3g} in Frobenius norm)"
                )
    else:
        tasks = as_task_stack(implied)
    return TaskInput(tasks, A_star, U_star, source, fmt, keys)


def load_tasks(path) -> TaskInput:
    """Read an audit input file (``.npz``, ``.npy`` or ``.json``, recognised by content)
    and validate it.

    The file is read by :func:`landscape.runtime.safe_load.read_arrays`: headers and declared
    sizes are checked before anything is allocated, pickles are never loaded.

    Raises
    ------
    LandscapeInputError
        One-line message: unreadable, special or empty file, unsupported content,
        unknown keys, non-real or non-numeric dtype, oversized, non-square, mismatched
        or non-finite arrays.
    """
    p = Path(path)
    fmt, mapping = read_arrays(p, allowed=ALLOWED_KEYS, list_key="tasks")
    return _from_mapping(mapping, p.name or str(p), fmt)


def audit_problem(task_input: TaskInput, rank) -> LoraMLProblem:
    """The problem to audit, after the audit-specific checks.

    An audit needs :math:`T\\ge2` tasks (with one task :math:`G\\equiv0`) and
    :math:`1\\le k<d` (with :math:`k=d` every adapter is full rank and the problem is
    trivial); a known ``U_star`` must have rank ``k``.
    """
    if task_input.T < 2:
        raise LandscapeInputError(
            f"need at least 2 tasks, got T = {task_input.T} (with one task every point is a global minimum)"
        )
    k = check_rank(rank, task_input.d, allow_full=False)
    if task_input.U_star is not None and task_input.U_star.shape[2] != k:
        raise LandscapeInputError(
            f"--rank {k} does not match U_star, whose adapters have rank k = {task_input.U_star.shape[2]}"
        )
    return LoraMLProblem(task_input.tasks, k)


def load_starts(path, problem: LoraMLProblem) -> np.ndarray:
    """Explicit starting points from a file (a ``.npy``/JSON array or the ``.npz`` key
    ``starts``, recognised by content), shape ``(m, T, d, k)`` or ``(T, d, k)``."""
    p = Path(path)
    name = p.name or str(p)
    fmt, mapping = read_arrays(p, allowed=("starts",), list_key="starts", label="starting points ")
    if "starts" not in mapping:
        raise LandscapeInputError(f"starting points {name}: expected the single key 'starts'")
    return check_starts(mapping["starts"], problem, name)


def check_starts(value, problem: LoraMLProblem, name: str = "array") -> np.ndarray:
    """Validate explicit starting points: real, finite, shape ``(m, T, d, k)`` (or one
    ``(T, d, k)`` point); returns a float64 array of shape ``(m, T, d, k)``."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise LandscapeInputError(f"starting points {name}: expected real numbers, got dtype {arr.dtype}")
    arr = _numeric("starting points", arr)
    if arr.ndim == 3:
        arr = arr[None]
    shape = (problem.T, problem.d, problem.k)
    if arr.ndim != 4 or arr.shape[1:] != shape or arr.shape[0] == 0:
        raise LandscapeInputError(f"starting points {name}: expected shape (m, {shape[0]}, {shape[1]}, {shape[2]}) "
                                  f"with m >= 1, got {arr.shape}")
    _finite("starting points", arr)
    return arr
