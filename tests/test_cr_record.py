"""tools/cr_record.py: the committed record of a cosmic-ray session, and a second session of
an unchanged module joined to it (``--merge``, ``--new-against``) -- the counts the mutation
summary and the README's claim are computed from."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from ._pin_tools import constant_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cr_record():
    spec = importlib.util.spec_from_file_location("cr_record", ROOT / "tools/cr_record.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(job, op, pos, outcome, diff=None, worker="normal"):
    item = {"job_id": job, "mutations": [{"module_path": "m.py", "operator_name": op, "occurrence": 0,
                                          "start_pos": list(pos), "end_pos": [pos[0], pos[1] + 1]}]}
    if outcome == "skipped":
        return [item, {"worker_outcome": "skipped"}]
    return [item, {"worker_outcome": worker, "test_outcome": outcome, "diff": diff or f"-{op}{pos}\n+x"}]


def _dump(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _read(path):
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    return lines[0], lines[1:]


def _session(tmp_path, name, drawn, total=10):
    """A dump of ``total`` mutants: ``drawn`` is ``{(op, pos): outcome}``, the rest skipped."""
    rows = [_row(f"{name}{i}", op, pos, out) for i, ((op, pos), out) in enumerate(drawn.items())]
    rows += [_row(f"{name}s{i}", "skip", (100 + i, 0), "skipped") for i in range(total - len(drawn))]
    return _dump(tmp_path / f"{name}.jsonl", rows)


def test_record_keeps_the_drawn_mutants_and_counts_the_rest(cr_record, tmp_path):
    d = _session(tmp_path, "a", {("A", (1, 0)): "killed", ("B", (2, 0)): "survived"})
    assert cr_record.main([str(d), str(tmp_path / "r.jsonl")]) == 0
    head, rows = _read(tmp_path / "r.jsonl")
    assert head == {"module_path": "m.py", "mutants": 10, "skipped": 8}
    assert [r[0]["mutations"][0]["operator_name"] for r in rows] == ["A", "B"]


def test_a_mutant_that_was_not_built_is_left_out_and_counted(cr_record, tmp_path):
    rows = [_row("a0", "A", (1, 0), "killed"), _row("a1", "B", (2, 0), "survived", worker="exception"),
            _row("a2", "C", (3, 0), "skipped")]
    assert cr_record.main([str(_dump(tmp_path / "d.jsonl", rows)), str(tmp_path / "r.jsonl")]) == 0
    head, kept = _read(tmp_path / "r.jsonl")
    assert head == {"module_path": "m.py", "mutants": 3, "skipped": 2, "not_built": 1} and len(kept) == 1


def test_merge_is_the_union_with_the_new_outcome_of_a_mutant_drawn_twice(cr_record, tmp_path):
    first = _session(tmp_path, "a", {("A", (1, 0)): "killed", ("B", (2, 0)): "survived"})
    cr_record.main([str(first), str(tmp_path / "rec.jsonl")])
    second = _session(tmp_path, "b", {("B", (2, 0)): "killed", ("C", (3, 0)): "survived"})
    assert cr_record.main([str(second), str(tmp_path / "m.jsonl"), "--merge", str(tmp_path / "rec.jsonl")]) == 0
    head, rows = _read(tmp_path / "m.jsonl")
    assert head == {"module_path": "m.py", "mutants": 10, "skipped": 7}
    got = {r[0]["mutations"][0]["operator_name"]: r[1]["test_outcome"] for r in rows}
    assert got == {"A": "killed", "B": "killed", "C": "survived"}
    # the first pass of the second session: only the mutants the record did not hold
    assert cr_record.main([str(second), str(tmp_path / "f.jsonl"), "--new-against", str(tmp_path / "rec.jsonl")]) == 0
    head, rows = _read(tmp_path / "f.jsonl")
    assert head == {"module_path": "m.py", "mutants": 10, "skipped": 9}
    assert [r[0]["mutations"][0]["operator_name"] for r in rows] == ["C"]


@pytest.mark.parametrize("flag", ["--merge", "--new-against"])
def test_a_changed_module_is_refused(cr_record, tmp_path, capsys, flag):
    cr_record.main([str(_session(tmp_path, "a", {("A", (1, 0)): "killed"})), str(tmp_path / "rec.jsonl")])
    # another number of mutants: another source
    other = _session(tmp_path, "b", {("A", (1, 0)): "killed"}, total=11)
    assert cr_record.main([str(other), str(tmp_path / "x.jsonl"), flag, str(tmp_path / "rec.jsonl")]) == 2
    assert "not the same source" in capsys.readouterr().err
    # the same position with another diff: the lines moved
    moved = _dump(tmp_path / "c.jsonl", [_row("c0", "A", (1, 0), "killed", diff="-y\n+z")]
                  + [_row(f"cs{i}", "skip", (100 + i, 0), "skipped") for i in range(9)])
    assert cr_record.main([str(moved), str(tmp_path / "x.jsonl"), flag, str(tmp_path / "rec.jsonl")]) == 2
    assert "the module changed" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_bad_usage_exits_2(cr_record, tmp_path, capsys):
    d = _session(tmp_path, "a", {("A", (1, 0)): "killed"})
    for argv in ([str(d)], [str(d), str(tmp_path / "o"), "--merge"], [str(d), str(tmp_path / "o"), "--merge",
                                                                        str(tmp_path / "missing.jsonl")]):
        assert cr_record.main(argv) == 2
    assert capsys.readouterr().err.count("usage") == 3


def test_survivors_of_keeps_the_rerun_mutants_that_match_a_survivor(cr_record, tmp_path):
    """A re-run of the named positions runs every mutant made there; only those whose
    changed lines (indentation aside) are a survivor's are kept."""
    rows = [_row("a0", "A", (1, 0), "killed", diff="-x = 1\n+x = 2"),
            _row("a1", "B", (2, 0), "survived", diff="-        y = 1\n+        y = 0")]
    rec = _dump(tmp_path / "rec.jsonl", [{"module_path": "m.py", "mutants": 2, "skipped": 0}, *rows])
    rerun = [_row("b0", "B", (5, 0), "killed", diff="-    y = 1\n+    y = 0"),
             _row("b1", "B", (5, 0), "killed", diff="-    y = 1\n+    y = 2")]
    out = tmp_path / "rerun.jsonl"
    assert cr_record.main([str(_dump(tmp_path / "d.jsonl", rerun)), str(out), "--survivors-of", str(rec)]) == 0
    head, kept = _read(out)
    assert [r[0]["job_id"] for r in kept] == ["b0"] and head["mutants"] == 2


def test_constant_sweep_refuses_a_list_naming_no_constant_before_any_work(tmp_path, capsys):
    cs = constant_sweep()
    assert cs.main([]) == 2
    out = tmp_path / "out.jsonl"
    for line in ("theory/_checks_sr.py NO_SUCH_CONSTANT 1.0", "theory/no_such_module.py PIN_FACTOR 5.0",
                 "theory/__init__.py PIN_FACTOR 5.0"):
        (tmp_path / "list.txt").write_text("# a comment\n" + line + "\n")
        assert cs.main([str(tmp_path / "list.txt"), str(out)]) == 2
        assert "no such module constant" in capsys.readouterr().err
    assert not out.exists()  # refused before the tree was copied or anything run
    m = cs._constant(ROOT / "theory/_checks_sr.py", "PIN_FACTOR")
    assert m is not None and m[2] == "10.0"


def test_constant_sweep_refuses_an_empty_list(tmp_path, capsys):
    cs = constant_sweep()
    (tmp_path / "list.txt").write_text("# only a comment\n\n")
    assert cs.main([str(tmp_path / "list.txt"), str(tmp_path / "out.jsonl")]) == 2
    assert "no constants listed" in capsys.readouterr().err


def test_constant_sweep_addresses_an_inline_literal_by_function_and_occurrence(tmp_path):
    """``FUNCTION:LITERAL[:N]`` names the N-th numeric literal spelled LITERAL inside
    FUNCTION (nested functions included, source order); without N it must be the only one;
    an out-of-range N, a literal of another spelling or another function's literal is no match."""
    cs = constant_sweep()
    src = ("X = 1e-6\n"
           "def f(a, tol=1e-6):\n"
           "    b = 'ü' + str(1e-6 * a)  # a non-ASCII character before the literal on its line\n"
           "    def g():\n"
           "        return 2.5\n"
           "    return b, 7\n"
           "def h():\n"
           "    return 2.5\n")
    path = tmp_path / "m.py"
    path.write_text(src)
    first, second = cs._constant(path, "f:1e-6:1"), cs._constant(path, "f:1e-6:2")
    assert src[first[0]:first[1]] == "1e-6" and src.index("tol=1e-6") + 4 == first[0]
    assert src[second[0]:second[1]] == "1e-6" and src.index("(1e-6 *") + 1 == second[0]
    assert cs._constant(path, "f:1e-6") is None  # two of them: N is needed
    assert cs._constant(path, "f:1e-6:3") is None and cs._constant(path, "f:1e-6:0") is None
    inner = cs._constant(path, "f:2.5")  # g's literal, inside f
    assert src[:inner[0]].count("\n") == 4 and inner[2] == "2.5"
    assert cs._constant(path, "f:7")[2] == "7"
    assert cs._constant(path, "f:0.000001") is None  # the spelling, not the value
    assert cs._constant(path, "X")[2] == "1e-6"  # a module constant as before


def test_constant_sweep_addresses_comparison_operators_and_lists_every_one(tmp_path, monkeypatch):
    """``FUNCTION:OP:N`` names the N-th ordering operator OP (``<``, ``<=``, ``>``, ``>=``) in
    FUNCTION, counted in source order over chained comparisons and nested functions alike; the
    twin-only spellings (``<`` inside ``<=``, ``<<``, ``>=`` of another comparison) are never
    taken for it; ``--comparisons`` lists each ordering comparison once with its strict or
    non-strict twin, under the innermost function, and every listed name resolves to its operator."""
    cs = constant_sweep()
    src = ("LIMIT = 3 if 1 < 2 else 4\n"            # module level: not in a function
           "def f(a, b):\n"
           "    if a <= b < (1 << 3) and b != a:\n"   # a chain, a shift, an inequality
           "        return 'ü' < 'v'\n"               # a non-ASCII character before the operator
           "    def g(x):\n"
           "        return (x\n"
           "                >= 0) or x > -1\n"
           "    return a >= b\n")
    path = tmp_path / "m.py"
    path.write_text(src)
    lt1, lt2 = cs._constant(path, "f:<:1"), cs._constant(path, "f:<:2")
    assert src[lt1[0]:lt1[1]] == "<" and lt1[0] == src.index("b < (") + 2
    assert src[lt2[0]:lt2[1]] == "<" and lt2[0] == src.index("' < 'v") + 2
    assert cs._constant(path, "f:<:3") is None and cs._constant(path, "f:<") is None
    le = cs._constant(path, "f:<=")
    assert (le[0], le[2]) == (src.index("a <= b") + 2, "<=") and le[1] - le[0] == 2
    ge1, ge2 = cs._constant(path, "f:>=:1"), cs._constant(path, "f:>=:2")
    assert ge1[0] == src.index(">= 0") and ge2[0] == src.index("a >= b") + 2  # g's, inside f, first
    assert cs._constant(path, "g:>=")[0] == ge1[0] and cs._constant(path, "g:>")[0] == src.index("x > -1") + 2
    monkeypatch.setattr(cs, "ROOT", tmp_path)
    entries = cs.comparison_entries("m.py")
    assert entries == ["m.py f:<=:1 <", "m.py f:<:1 <=", "m.py f:<:2 <=", "m.py g:>=:1 >", "m.py g:>:1 >=",
                       "m.py f:>=:2 >"]
    for e in entries:
        _, name, twin = e.split()
        start, end, op = cs._constant(path, name)
        assert src[start:end] == op == name.split(":")[1] and cs._ORDERINGS[op] == twin


def test_constant_sweep_kill_command_that_hangs_counts_as_killed_and_leaves_no_process(tmp_path, monkeypatch):
    """A kill command outliving the timeout (a mutated loop that no longer stops) is killed
    with its children and counts as killed; one that ends reports its exit status."""
    import time

    cs = constant_sweep()
    monkeypatch.setattr(cs, "KILL_TIMEOUT", 0.3)
    marker = tmp_path / "alive"
    t0 = time.perf_counter()
    killed, tail = cs._run_kill(f"sh -c 'sleep 1.5; touch {marker}' & wait", tmp_path, dict(os.environ))
    assert killed and tail == ["timed out after 0.3 s"] and time.perf_counter() - t0 < 1.4
    assert cs._run_kill("echo one; echo two; exit 0", tmp_path, dict(os.environ)) == (False, ["one", "two"])
    assert cs._run_kill("exit 3", tmp_path, dict(os.environ))[0] is True
    time.sleep(2.0)  # a child left running would have touched the marker by now
    assert not marker.exists()
