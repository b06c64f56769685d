"""landscape._io pinned at its boundaries: the keys an input may hold, the consistency of
``tasks`` with ``A_star + U_star U_star^T`` at exactly its relative tolerance (1e-8 of
``1 + ||implied||_F``), every shape condition on the truth, the audit's own conditions
(T >= 2, 1 <= k < d, k equal to the truth's rank), and explicit starting points (real dtype
kinds only, one point promoted to a stack, m >= 1, finite, the first bad entry named).
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from landscape import _io
from landscape._io import (ALLOWED_KEYS, CONSISTENCY_RTOL, TaskInput, _from_mapping, audit_problem,
                           check_starts, load_starts, load_tasks)
from landscape._objective import LoraMLProblem
from landscape._validation import LandscapeInputError


def _truth(T=3, d=4, k=1, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d))
    A = A + A.T
    U = rng.standard_normal((T, d, k))
    return A, U, A[None] + U @ np.swapaxes(U, 1, 2)


def _input(tasks, A=None, U=None):
    return TaskInput(np.asarray(tasks, float), A, U, "mem", "array", ())


# ------------------------------------------------------------------ keys
def test_allowed_keys_are_exactly_three():
    assert ALLOWED_KEYS == ("tasks", "A_star", "U_star")


def test_unknown_keys_are_named_and_refused():
    A, U, tasks = _truth()
    with pytest.raises(LandscapeInputError, match=r"^src: unknown key\(s\) 'B', 'x'; allowed keys are 'tasks', "
                                                  r"or 'A_star' and 'U_star'$"):
        _from_mapping({"tasks": tasks, "B": 1, "x": 2}, "src", "npz")


def test_no_keys_is_refused():
    with pytest.raises(LandscapeInputError, match=r"^src: contains no arrays"):
        _from_mapping({}, "src", "npz")


@pytest.mark.parametrize("present, missing", [("A_star", "U_star"), ("U_star", "A_star")])
def test_the_truth_comes_in_pairs(present, missing):
    A, U, tasks = _truth()
    for extra in ({}, {"tasks": tasks}):
        with pytest.raises(LandscapeInputError, match=rf"^src: '{missing}' is missing"):
            _from_mapping({present: {"A_star": A, "U_star": U}[present], **extra}, "src", "npz")


def test_truth_alone_gives_its_tasks_and_keeps_the_truth():
    A, U, tasks = _truth()
    got = _from_mapping({"A_star": A, "U_star": U}, "s", "json")
    np.testing.assert_array_equal(got.tasks, tasks)
    assert got.truth_known and got.T == 3 and got.d == 4 and got.keys == ("A_star", "U_star")
    assert got.source == "s" and got.format == "json"
    plain = _from_mapping({"tasks": tasks}, "s", "npy")
    assert not plain.truth_known and plain.A_star is None and plain.U_star is None


# ------------------------------------------------------------------ consistency with the truth
def test_consistency_tolerance_is_1e_8():
    assert CONSISTENCY_RTOL == 1e-8


@pytest.mark.parametrize("scale", [0.0, 1.0, 1e6])
def test_tasks_within_the_relative_tolerance_pass_and_beyond_it_fail(scale):
    A, U, implied = _truth()
    A, U, implied = A * scale, U * np.sqrt(scale), implied * scale
    bound = CONSISTENCY_RTOL * (1.0 + np.linalg.norm(implied))
    E = np.zeros_like(implied)
    E[1, 2, 3] = 1.0  # a unit perturbation in one entry: its Frobenius norm is its size
    _from_mapping({"tasks": implied + 0.9 * bound * E, "A_star": A, "U_star": U}, "s", "npz")
    with pytest.raises(LandscapeInputError, match=r"^tasks: inconsistent with A_star \+ U_star U_star\^T "
                                                  rf"\(difference {re.escape(f'{1.1 * bound:.3g}')} in Frobenius norm\)$"):
        _from_mapping({"tasks": implied + 1.1 * bound * E, "A_star": A, "U_star": U}, "s", "npz")


def test_the_difference_is_measured_in_the_frobenius_norm_of_the_whole_stack():
    A, U, implied = _truth()
    bound = CONSISTENCY_RTOL * (1.0 + np.linalg.norm(implied))
    # four entries of 0.6 * bound each: every one below the bound, their Frobenius norm 1.2 * bound
    E = np.zeros_like(implied)
    E[0, 0, 0] = E[1, 1, 1] = E[2, 2, 2] = E[2, 3, 0] = 0.6 * bound
    with pytest.raises(LandscapeInputError, match="inconsistent"):
        _from_mapping({"tasks": implied + E, "A_star": A, "U_star": U}, "s", "npz")


def test_tasks_of_another_shape_than_the_truth_are_refused():
    A, U, implied = _truth()
    with pytest.raises(LandscapeInputError, match=r"^tasks: shape \(2, 4, 4\) does not match A_star and U_star "
                                                  r"\(implied \(3, 4, 4\)\)$"):
        _from_mapping({"tasks": implied[:2], "A_star": A, "U_star": U}, "s", "npz")


# ------------------------------------------------------------------ shapes of the truth
@pytest.mark.parametrize("A_shape", [(4,), (4, 3), (3, 4), (4, 5), (0, 0), (1, 4, 4)])
def test_A_star_must_be_a_non_empty_square_matrix(A_shape):
    _, U, _ = _truth()
    with pytest.raises(LandscapeInputError, match=r"^A_star: expected a non-empty square matrix"):
        _from_mapping({"A_star": np.zeros(A_shape), "U_star": U}, "s", "npz")


@pytest.mark.parametrize("U_shape, message", [
    ((3, 4), r"^U_star: expected shape \(T, d, k\) with d = 4"),
    ((3, 5, 1), r"^U_star: expected shape \(T, d, k\) with d = 4 \(from A_star\), got \(3, 5, 1\)$"),
    ((3, 4, 0), r"^U_star: expected shape"),
    ((0, 4, 1), r"^U_star: contains no tasks \(T = 0\)$")])
def test_U_star_must_be_T_d_k_with_T_and_k_positive(U_shape, message):
    A, _, _ = _truth()
    with pytest.raises(LandscapeInputError, match=message):
        _from_mapping({"A_star": A, "U_star": np.zeros(U_shape)}, "s", "npz")


def test_one_task_and_rank_one_truth_is_read():
    A, U, implied = _truth(T=1, d=1, k=1)
    got = _from_mapping({"A_star": A, "U_star": U}, "s", "npz")
    assert got.tasks.shape == (1, 1, 1)


@pytest.mark.parametrize("which", ["A_star", "U_star"])
def test_non_finite_truth_names_its_first_bad_entry(which):
    A, U, _ = _truth()
    arrays = {"A_star": A.copy(), "U_star": U.copy()}
    idx = (1, 2) if which == "A_star" else (2, 3, 0)
    arrays[which][idx] = np.nan
    later = (3, 3) if which == "A_star" else (2, 3, 0)
    arrays[which][later] = np.inf if later != idx else np.nan
    with pytest.raises(LandscapeInputError, match=rf"^{which}: non-finite entry nan at index \({', '.join(map(str, idx))}\)$"):
        _from_mapping(arrays, "s", "npz")


def test_a_truth_whose_tasks_overflow_is_refused():
    A, U, _ = _truth()
    with pytest.raises(LandscapeInputError, match="overflows the float64 range"):
        _from_mapping({"A_star": A, "U_star": U * 1e160}, "s", "npz")
    # large but representable: read
    _from_mapping({"A_star": A, "U_star": U * 1e150}, "s", "npz")


@pytest.mark.parametrize("value", [[["a", "b"]], {"x": 1}])
def test_non_numeric_arrays_are_named(value):
    A, U, _ = _truth()
    with pytest.raises(LandscapeInputError, match=r"^A_star: not a numeric array \("):
        _from_mapping({"A_star": value, "U_star": U}, "s", "json")
    with pytest.raises(LandscapeInputError, match=r"^tasks: not a numeric array \("):
        _from_mapping({"tasks": value}, "s", "json")


def test_empty_tasks_are_refused():
    with pytest.raises(LandscapeInputError, match=r"^tasks: the array is empty$"):
        _from_mapping({"tasks": np.zeros((0, 3, 3))}, "s", "npz")
    with pytest.raises(LandscapeInputError, match=r"^tasks: the array is empty$"):
        _from_mapping({"tasks": []}, "s", "json")


# ------------------------------------------------------------------ the audit's conditions
def test_an_audit_needs_two_tasks():
    _, _, tasks = _truth(T=2)
    assert audit_problem(_input(tasks), 1).T == 2
    with pytest.raises(LandscapeInputError, match=r"^need at least 2 tasks, got T = 1 "):
        audit_problem(_input(tasks[:1]), 1)


def test_an_audit_needs_a_rank_below_d():
    _, _, tasks = _truth(d=4)
    assert audit_problem(_input(tasks), 3).k == 3
    for k in (0, 4, 5, -1):
        with pytest.raises(LandscapeInputError, match=rf"^rank k={k} out of range: need 1 <= k < d \(d=4\)$"):
            audit_problem(_input(tasks), k)


def test_the_rank_must_be_the_truth_s_rank():
    A, U, tasks = _truth(d=4, k=2)
    ti = _from_mapping({"A_star": A, "U_star": U}, "s", "npz")
    assert audit_problem(ti, 2).k == 2
    with pytest.raises(LandscapeInputError, match=r"^--rank 1 does not match U_star, whose adapters have rank k = 2$"):
        audit_problem(ti, 1)
    # a rank above the truth's is refused too (not only one below it)
    with pytest.raises(LandscapeInputError, match=r"^--rank 3 does not match U_star, whose adapters have rank k = 2$"):
        audit_problem(ti, 3)


def test_the_problem_holds_the_tasks_as_given():
    _, _, tasks = _truth()
    p = audit_problem(_input(tasks), 2)
    assert isinstance(p, LoraMLProblem) and p.k == 2
    np.testing.assert_array_equal(p.tasks, tasks)


# ------------------------------------------------------------------ starting points
@pytest.fixture
def problem():
    return LoraMLProblem(_truth()[2], 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint16, np.int64])
def test_real_starting_points_are_read_as_float64(dtype, problem):
    pts = np.arange(2 * 3 * 4).reshape(2, 3, 4, 1).astype(dtype)
    got = check_starts(pts, problem)
    assert got.dtype == np.float64 and got.shape == (2, 3, 4, 1)
    np.testing.assert_array_equal(got, pts.astype(np.float64))


@pytest.mark.parametrize("value", [np.ones((3, 4, 1), bool), np.ones((3, 4, 1), complex), np.array([["a"]])])
def test_starting_points_of_other_dtypes_are_refused(value, problem):
    with pytest.raises(LandscapeInputError, match=rf"^starting points s: expected real numbers, got dtype {value.dtype}$"):
        check_starts(value, problem, "s")


def test_one_point_becomes_a_stack_of_one(problem):
    got = check_starts(np.ones((3, 4, 1)), problem)
    assert got.shape == (1, 3, 4, 1)


@pytest.mark.parametrize("shape", [(0, 3, 4, 1), (2, 3, 4, 2), (2, 2, 4, 1), (3, 4), (1, 1, 3, 4, 1)])
def test_starting_points_of_another_shape_are_refused(shape, problem):
    with pytest.raises(LandscapeInputError, match=r"^starting points s: expected shape \(m, 3, 4, 1\) with m >= 1, "
                                                  rf"got \({', '.join(map(str, shape))},?\)$"):
        check_starts(np.zeros(shape), problem, "s")


def test_non_finite_starting_points_name_the_first_bad_entry(problem):
    pts = np.zeros((2, 3, 4, 1))
    pts[1, 2, 0, 0] = np.inf
    pts[1, 2, 3, 0] = np.nan
    with pytest.raises(LandscapeInputError, match=r"^starting points: non-finite entry inf at index \(1, 2, 0, 0\)$"):
        check_starts(pts, problem)


def test_starting_points_from_files(tmp_path, problem):
    pts = np.random.default_rng(1).standard_normal((2, 3, 4, 1))
    np.save(tmp_path / "s.npy", pts)
    np.testing.assert_array_equal(load_starts(tmp_path / "s.npy", problem), pts)
    np.savez(tmp_path / "s.npz", starts=pts)
    np.testing.assert_array_equal(load_starts(tmp_path / "s.npz", problem), pts)
    (tmp_path / "s.json").write_text(json.dumps(pts.tolist()))
    np.testing.assert_array_equal(load_starts(tmp_path / "s.json", problem), pts)
    np.savez(tmp_path / "t.npz", tasks=pts)
    with pytest.raises(LandscapeInputError, match="starting points"):
        load_starts(tmp_path / "t.npz", problem)


def test_task_files_name_the_file(tmp_path):
    A, U, tasks = _truth()
    np.savez(tmp_path / "in.npz", A_star=A, U_star=U, tasks=tasks)
    got = load_tasks(tmp_path / "in.npz")
    assert got.source == "in.npz" and got.format == "npz" and set(got.keys) == set(ALLOWED_KEYS)
    np.savez(tmp_path / "bad.npz", tasks=tasks, zz=tasks)
    with pytest.raises(LandscapeInputError, match=r"zz"):
        load_tasks(tmp_path / "bad.npz")
    assert _io.__all__ == ["TaskInput", "load_tasks", "load_starts", "check_starts", "audit_problem", "ALLOWED_KEYS"]


def test_the_task_input_is_frozen():
    """The audit's view of the user's tasks cannot be changed after it is read."""
    import dataclasses

    from landscape._io import TaskInput

    ti = TaskInput(np.zeros((2, 2, 2)), None, None, "mem", "array", ("tasks",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ti.tasks = np.ones((2, 2, 2))


def test_a_starting_point_file_is_named_by_its_file_name_in_errors(tmp_path):
    """load_starts names the file itself (not its folder) in a refusal; one (T, d, k) point
    is read as m = 1 and a stack of them as is."""
    import landscape as ls
    from landscape._io import load_starts

    prob = ls.random_instance(np.random.default_rng(0), 3, 2, 1).problem
    bad = tmp_path / "deep" / "starts.npy"
    bad.parent.mkdir()
    np.save(bad, np.zeros((2, 3, 3, 1)))
    with pytest.raises(ls.LandscapeInputError) as info:
        load_starts(bad, prob)
    assert str(info.value).startswith("starting points starts.npy: expected shape (m, 2, 3, 1)")
    assert str(tmp_path) not in str(info.value)
    one = tmp_path / "one.npy"
    np.save(one, np.ones((2, 3, 1)))
    assert load_starts(one, prob).shape == (1, 2, 3, 1)


def test_a_conversion_error_over_several_lines_shows_its_first_line():
    """The refusal quotes one line of the conversion's error: its first (the headline)."""

    class Stubborn:
        def __float__(self):
            raise ValueError("no number here\nsecond line of detail")

    with pytest.raises(LandscapeInputError, match=r"^tasks: not a numeric array \(no number here\)$"):
        _from_mapping({"tasks": [[[Stubborn()]]]}, "s", "json")
