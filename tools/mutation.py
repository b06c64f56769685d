r"""A small AST mutation-testing runner for the rigorous core of loraml.

Why not mutmut: mutmut 3.x rewrites every function into a trampoline inside a
``mutants/`` copy and drives pytest itself, which does not fit a kill command that is a
*command line* (``python -m theory --scale quick``) next to selected test files, and
cannot bound the work of one module by a sample.  This runner is deliberately simple:

* **Mutation operators** (one change per mutant, on the parsed module):
  arithmetic ``+ <-> -``, ``* <-> /``, ``** -> *``; comparisons ``< <-> <=``,
  ``> <-> >=``, ``== <-> !=``, ``< <-> >``; ``and <-> or``; removal of a unary minus
  and of ``not``; integer constants ``n -> n + 1``; float constants ``x -> 2 x``
  (``0.0 -> 1.0``); ``True <-> False``; augmented ``+= <-> -=``.  Docstrings, other
  strings and f-strings are never mutated.
* **Kill commands** per module (``TARGETS`` below): a mutant is *killed* when any command
  exits non-zero or runs past the per-mutant timeout; commands run in order and stop at
  the first failure (the fastest, most targeted command first).
* **Isolation**: the project is copied once into a temporary folder; each mutant is
  written there (``ast.unparse`` of the mutated tree), run with
  ``PYTHONDONTWRITEBYTECODE=1`` and a fresh ``PYTHONPYCACHEPREFIX`` so no stale byte code
  is imported, and the original text restored.  The unmutated ``ast.unparse`` form is run
  first (baseline): a module whose baseline fails is reported and skipped.
* **Sampling**: ``--fraction F`` keeps a uniformly random fraction of each module's mutants
  (explicit ``--seed``), ``--max-per-module N`` caps them; the sample runs in random order,
  so a run stopped early still leaves a uniform sample.

Output: one JSON line per mutant on stdout or in ``--out`` (module, line, operator,
status ``killed | survived | timeout``, seconds, the source line before and after), then a
summary per module.  Usage (from the project root)::

    python tools/mutation.py --modules landscape/_interval.py --fraction 1.0 --out mut.jsonl
    python tools/mutation.py --summary mut.jsonl      # kill rates of a finished run

Equivalent mutants (a change that cannot alter behaviour, e.g. in an error message's
arithmetic or a ``<`` vs ``<=`` on values that are never equal) are judged by hand from
the ``survived`` lines; the kill rate reported is killed / (mutants - judged equivalent).
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Seconds one kill command may run before the mutant counts as killed (a mutant that
#: makes a search loop forever is caught by this).  The slowest kill command takes
#: ~12 s unmutated on an idle core and ~60 s on the loaded development machine, so
#: 240 s leaves room; timeouts are reported separately from failures.
MUTANT_TIMEOUT_S = 240

_PY = sys.executable
#: ``python -m theory --scale quick``, stopping at the first failed check.
_THEORY_QUICK = [_PY, "tools/theory_failfast.py"]


def _pytest(*files: str) -> list[str]:
    return [_PY, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *files]


#: Kill commands per module: the most targeted (fastest) first.
TARGETS: dict[str, list[list[str]]] = {
    "landscape/_interval.py": [
        _pytest("tests/test_certificate_soundness.py", "-k", "interval or rounding or arb"),
        _pytest("tests/test_certificate_soundness.py", "tests/test_landscape_certificates.py"),
    ],
    "landscape/_objective.py": [
        _THEORY_QUICK,
        _pytest("tests/test_landscape_core.py"),
        _pytest("tests/test_certificate_soundness.py"),
    ],
    "landscape/_curvature.py": [
        _THEORY_QUICK,
        _pytest("tests/test_landscape_core.py", "tests/test_landscape_certificates.py"),
        _pytest("tests/test_certificate_soundness.py"),
    ],
}
# the former landscape/_certificates.py, now one module per room of landscape/certificates/
for _module in ("data", "common", "enclosures", "polish", "taylor_arb", "net"):
    TARGETS[f"landscape/certificates/{_module}.py"] = [
        _pytest("tests/test_certificate_soundness.py"),
        _pytest("tests/test_landscape_certificates.py"),
        _THEORY_QUICK,
    ]
TARGETS["theory/_independent.py"] = [
    _pytest("tests/test_certificate_soundness.py", "-k", "exact or independent or f2 or c2 or gradient"),
    _THEORY_QUICK,
    _pytest("tests/test_theory_negative_controls.py"),
]
for _m in ("_checks_sr", "_checks_minima", "_checks_saddles", "_registry", "_result", "_linalg"):
    TARGETS[f"theory/{_m}.py"] = [
        _THEORY_QUICK,
        _pytest("tests/test_theory.py", "tests/test_theory_negative_controls.py"),
    ]

_BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult}
_CMP_SWAP = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
}


def _docstring_ids(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _skipped_ids(tree: ast.AST) -> set[int]:
    """Nodes never mutated: docstrings, f-strings, ``__all__`` and their descendants."""
    skip = _docstring_ids(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def enumerate_mutants(tree: ast.AST) -> list[tuple[int, str, int]]:
    """``(node index in ast.walk order, operator name, variant)`` for every mutation site."""
    skip = _skipped_ids(tree)
    sites = []
    for idx, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAP:
            sites.append((idx, f"binop {type(node.op).__name__}->{_BINOP_SWAP[type(node.op)].__name__}", 0))
        elif isinstance(node, ast.AugAssign) and type(node.op) in (ast.Add, ast.Sub):
            sites.append((idx, f"augassign {type(node.op).__name__}", 0))
        elif isinstance(node, ast.Compare):
            for j, op in enumerate(node.ops):
                if type(op) in _CMP_SWAP:
                    sites.append((idx, f"compare {type(op).__name__}->{_CMP_SWAP[type(op)].__name__}", j))
                if type(op) in (ast.Lt, ast.Gt):
                    sites.append((idx, f"compare {type(op).__name__} flipped", 100 + j))
        elif isinstance(node, ast.BoolOp):
            sites.append((idx, f"boolop {type(node.op).__name__} swapped", 0))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
            sites.append((idx, f"unary {type(node.op).__name__} removed", 0))
        elif isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                sites.append((idx, f"constant {v}->{not v}", 0))
            elif isinstance(v, int):
                sites.append((idx, f"constant {v}->{v + 1}", 0))
            elif isinstance(v, float):
                sites.append((idx, f"constant {v!r}->{(2 * v if v else 1.0)!r}", 0))
    return sites


def apply_mutant(tree: ast.AST, site: tuple[int, str, int]) -> ast.AST:
    """A mutated deep copy of ``tree``."""
    new = copy.deepcopy(tree)
    idx, _, variant = site
    node = list(ast.walk(new))[idx]
    if isinstance(node, ast.BinOp):
        node.op = _BINOP_SWAP[type(node.op)]()
    elif isinstance(node, ast.AugAssign):
        node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
    elif isinstance(node, ast.Compare):
        j = variant % 100
        op = node.ops[j]
        if variant >= 100:
            node.ops[j] = ast.Gt() if isinstance(op, ast.Lt) else ast.Lt()
        else:
            node.ops[j] = _CMP_SWAP[type(op)]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.UnaryOp):
        # replace the UnaryOp by its operand: find it in its parent
        for parent in ast.walk(new):
            for field, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, field, node.operand)
                elif isinstance(value, list):
                    for i, item in enumerate(value):
                        if item is node:
                            value[i] = node.operand
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            node.value = not v
        elif isinstance(v, int):
            node.value = v + 1
        else:
            node.value = 2 * v if v else 1.0
    return ast.fix_missing_locations(new)


def _run_commands(commands, cwd: Path, timeout: float) -> tuple[str, float, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(cwd),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix="mutpyc-"),
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
    )
    t0 = time.perf_counter()
    try:
        for cmd in commands:
            try:
                proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, timeout=timeout)
            except subprocess.TimeoutExpired:
                return "timeout", time.perf_counter() - t0, " ".join(cmd[1:4])
            if proc.returncode != 0:
                return "killed", time.perf_counter() - t0, " ".join(cmd[1:4])
        return "survived", time.perf_counter() - t0, ""
    finally:
        shutil.rmtree(env["PYTHONPYCACHEPREFIX"], ignore_errors=True)


def _line_of(tree: ast.AST, idx: int) -> int:
    node = list(ast.walk(tree))[idx]
    return int(getattr(node, "lineno", 0))


def run_module(module: str, work: Path, *, fraction: float, max_per_module: int | None,
               rng: random.Random, timeout: float, emit, only=None) -> dict:
    src_path = work / module
    original = src_path.read_text()
    tree = ast.parse(original)
    lines = original.split("\n")  # not splitlines(): form feeds etc. are not line breaks for ast
    sites = enumerate_mutants(tree)
    total = len(sites)
    chosen = [s for s in sites if rng.random() < fraction]
    if only is not None:  # re-run: exactly the recorded survivors
        chosen = [s for s in sites if (_line_of(tree, s[0]), s[1], s[2]) in only]
    if max_per_module is not None and len(chosen) > max_per_module:
        chosen = rng.sample(chosen, max_per_module)
    # random order: a run stopped early still leaves a uniform sample of the module
    rng.shuffle(chosen)
    commands = TARGETS[module]
    summary = {"module": module, "mutants_total": total, "sampled": len(chosen),
               "fraction": fraction, "killed": 0, "timeout": 0, "survived": 0}
    try:
        src_path.write_text(ast.unparse(tree) + "\n")
        status, secs, _ = _run_commands(commands, work, timeout * 2)
        summary["baseline"] = status
        summary["baseline_seconds"] = round(secs, 1)
        if status != "survived":
            emit({"module": module, "baseline": status})
            return summary
        from tqdm.auto import tqdm

        bar = tqdm(chosen, desc=module, unit="mutant", leave=True, disable=None)  # off outside a terminal
        for site in bar:
            mutated = ast.unparse(apply_mutant(tree, site)) + "\n"
            src_path.write_text(mutated)
            status, secs, by = _run_commands(commands, work, timeout)
            summary[status] += 1
            bar.set_postfix(killed=summary["killed"], survived=summary["survived"], refresh=False)
            lineno = _line_of(tree, site[0])
            emit({
                "module": module, "line": lineno, "operator": site[1], "variant": site[2], "status": status,
                "killed_by": by, "seconds": round(secs, 2),
                "source": lines[lineno - 1].strip() if 0 < lineno <= len(lines) else "",
            })
    finally:
        src_path.write_text(original)
    return summary


def summarize(path: Path) -> str:
    rows: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if "status" not in rec:
            continue
        r = rows.setdefault(rec["module"], {"killed": 0, "timeout": 0, "survived": 0})
        r[rec["status"]] += 1
    out = []
    for mod, r in rows.items():
        n = sum(r.values())
        dead = r["killed"] + r["timeout"]
        out.append(f"{mod}: {dead}/{n} killed ({100 * dead / max(n, 1):.1f}%), {r['survived']} survived")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tools/mutation.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--modules", nargs="+", default=sorted(TARGETS), help="module paths (default: all targets)")
    p.add_argument("--fraction", type=float, default=1.0, help="sampled fraction of each module's mutants")
    p.add_argument("--max-per-module", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=MUTANT_TIMEOUT_S, help="seconds per kill command")
    p.add_argument("--out", type=Path, help="JSON-lines output (default stdout)")
    p.add_argument("--summary", type=Path, help="only summarise a finished JSON-lines file")
    p.add_argument("--list", action="store_true", help="only count the mutants per module")
    p.add_argument("--rerun", type=Path, help="re-run only the survivors recorded in this JSON-lines file")
    args = p.parse_args(argv)
    if args.summary is not None:
        if not args.summary.is_file():
            p.exit(2, f"tools/mutation.py: error: no such file {args.summary}\n")
        print(summarize(args.summary))
        return 0
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown or not (0.0 < args.fraction <= 1.0):
        p.exit(2, f"tools/mutation.py: error: unknown module(s) {unknown} or fraction not in (0, 1]\n")
    if args.list:
        for m in args.modules:
            print(m, len(enumerate_mutants(ast.parse((ROOT / m).read_text()))))
        return 0
    only = None
    if args.rerun is not None:
        if not args.rerun.is_file():
            p.exit(2, f"tools/mutation.py: error: no such file {args.rerun}\n")
        only = {}
        for line in args.rerun.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("status") == "survived":
                only.setdefault(rec["module"], set()).add((rec["line"], rec["operator"], rec.get("variant", 0)))
        args.modules = [m for m in args.modules if m in only]
    rng = random.Random(args.seed)
    out = open(args.out, "a") if args.out else sys.stdout

    def emit(rec):
        out.write(json.dumps(rec) + "\n")
        out.flush()

    with tempfile.TemporaryDirectory(prefix="loraml-mut-") as tmp:
        work = Path(tmp) / "project"
        shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".venv",
                                                                   "figures", "results", "*.pt", "*.npz"))
        summaries = [run_module(m, work, fraction=1.0 if only else args.fraction,
                                max_per_module=args.max_per_module, rng=rng, timeout=args.timeout, emit=emit,
                                only=None if only is None else only[m]) for m in args.modules]
    for s in summaries:
        emit({"summary": s})
    if out is not sys.stdout:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
