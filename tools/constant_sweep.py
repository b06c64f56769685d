r"""Loosen (or tighten) one module constant at a time and see whether the module's tests notice.

``python tools/constant_sweep.py LIST OUT.jsonl``: LIST holds lines ``MODULE NAME VALUE [why]``
(``#`` starts a comment); for each, a copy of the tracked tree gets ``NAME = VALUE`` in MODULE in
place of the constant's literal -- or, with NAME written ``FUNCTION:LITERAL[:N]``, the N-th
(default: the only) numeric literal spelled LITERAL inside the function or method FUNCTION (a
threshold written inline) -- and the module's cosmic-ray kill command
(``tools/cosmic-ray/*.toml``, the same targeted tests and ``python -m theory --scale quick``)
runs on it.  One JSON line per constant goes to OUT: the change, ``killed`` (the command
failed) and the command's last lines.  A constant whose change is not killed is either pinned
by a new test at its boundary or named in LIST's ``why`` as a free parameter.

LITERAL may also be a comparison operator (``<``, ``<=``, ``>``, ``>=``): ``FUNCTION:<=:N``
names the N-th such operator of FUNCTION, and VALUE replaces it (its strict or non-strict
twin), so that a threshold's boundary -- is the value at the threshold in or out? -- is swept
like its size. ``python tools/constant_sweep.py --comparisons MODULE...`` prints one such
entry for every ordering comparison inside the functions of the modules.

cosmic-ray's NumberReplacer moves a literal by one (1e-9 -> 1.000000001 or -0.999999999),
which any test of the sign or the order of magnitude kills; the verdicts of a check depend on
its tolerances to a factor, so this sweep moves each one by 2x to 10x in the direction that
would let a wrong result through.
"""
from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: seconds a kill command may run before the mutant counts as killed (cosmic-ray's timeout)
KILL_TIMEOUT = 600.0


def _tree(dest: Path) -> None:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    for f in filter(None, out.split(b"\0")):
        rel = f.decode()
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)


def _kill_commands() -> dict:
    out = {}
    for t in (ROOT / "tools" / "cosmic-ray").glob("*.toml"):
        c = tomllib.loads(t.read_text())["cosmic-ray"]
        out[c["module-path"]] = c["test-command"]
    return out


def _locator(src: str):
    """``at(line, col)``: the character offset in ``src`` of an ``ast`` position (``col``
    counts UTF-8 bytes)."""
    lines = src.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(line: int, col: int) -> int:
        return offsets[line - 1] + len(lines[line - 1].encode()[:col].decode())

    return at


def _hits(src: str, tree, at, func: str, literal: str) -> list:
    """Sorted offsets of LITERAL -- the spelling of a numeric literal, or an ordering
    operator -- in the function(s) named FUNC, nested ones included."""
    hits = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == func:
            for c in ast.walk(node):
                if literal in _ORDERINGS:
                    hits.update(p for p, op in _comparisons(src, c, at) if op == literal)
                elif isinstance(c, ast.Constant) and type(c.value) in (int, float):
                    start = at(c.lineno, c.col_offset)  # the literal's own text, as written
                    if src[start:at(c.end_lineno, c.end_col_offset)] == literal:
                        hits.add(start)
    return sorted(hits)


@functools.lru_cache(maxsize=8)
def _parsed(src: str):
    """``(tree, at)`` of a module's text, kept for the next lookup in the same text (a list
    names many literals of one module)."""
    return ast.parse(src), _locator(src)


def _inline(src: str, name: str):
    """``FUNCTION:LITERAL[:N]``: ``(start, end, literal)`` of the N-th numeric literal spelled
    LITERAL in the function(s) named FUNCTION (nested ones included; N counts from 1 in source
    order and may be left out when there is exactly one), or None."""
    func, literal, *nth = name.split(":")
    hits = _hits(src, *_parsed(src), func, literal)
    k = int(nth[0]) if nth else (1 if len(hits) == 1 else 0)
    return (hits[k - 1], hits[k - 1] + len(literal), literal) if 1 <= k <= len(hits) else None


#: ordering operators and the twin each is swept to (strict <-> non-strict)
_ORDERINGS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
_OP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _comparisons(src: str, node, at):
    """``(offset, operator)`` of each ordering operator of ``node`` if it is a comparison: the
    operator's text is the only token between its two operands besides brackets."""
    if not isinstance(node, ast.Compare):
        return []
    out, left = [], node.left
    for op, right in zip(node.ops, node.comparators):
        text = _OP_TEXT.get(type(op))
        if text is not None:
            a, b = at(left.end_lineno, left.end_col_offset), at(right.lineno, right.col_offset)
            between = src[a:b]
            m = re.search(rf"(?<![<>=!]){re.escape(text)}(?![<>=])", between)
            if m is None or between.count(text[0]) != 1:
                raise ValueError(f"cannot place {text!r} between {between!r}")
            out.append((a + m.start(), text))
        left = right
    return out


def comparison_entries(module: str) -> list:
    """``MODULE FUNCTION:OP:N TWIN`` for every ordering comparison in the functions of
    ``module`` (a comparison inside nested functions is listed under the innermost one, and N
    counts as :func:`_inline` does, so every entry resolves to its comparison)."""
    src = (ROOT / module).read_text()
    tree = ast.parse(src)
    at = _locator(src)
    owner = {}  # comparison offset -> (innermost function name, operator)

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if name is not None:
                for pos, op in _comparisons(src, child, at):
                    owner[pos] = (name, op)
            visit(child, name)

    visit(tree, None)
    numbered, out = {}, []
    for pos, (name, op) in sorted(owner.items()):
        same = numbered.setdefault((name, op), _hits(src, tree, at, name, op))
        out.append(f"{module} {name}:{op}:{same.index(pos) + 1} {_ORDERINGS[op]}")
    return out


def _constant(path: Path, name: str):
    """``(start, end, literal)`` of the literal in ``NAME = literal`` at the start of a line of
    ``path``, or of an inline literal ``FUNCTION:LITERAL[:N]`` (:func:`_inline`); None if absent."""
    if not path.is_file():
        return None
    if ":" in name:
        return _inline(path.read_text(), name)
    m = re.search(rf"^({re.escape(name)}\s*(?::[^=]+)?=\s*)(\S+)", path.read_text(), re.M)
    return (m.start(2), m.end(2), m.group(2)) if m else None


def _run_kill(command: str, cwd: Path, env: dict) -> tuple:
    """``(killed, last lines)`` of a kill command; one that outlives :data:`KILL_TIMEOUT`
    (a mutated loop that no longer stops) is killed with its whole process group and
    counts as killed, as in cosmic-ray."""
    proc = subprocess.Popen(command, shell=True, cwd=cwd, env=env, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=KILL_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return True, [f"timed out after {KILL_TIMEOUT:g} s"]
    return proc.returncode != 0, out.strip().splitlines()[-2:]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--comparisons"] and len(argv) > 1:
        for module in argv[1:]:
            for entry in comparison_entries(module):
                print(entry)
        return 0
    if len(argv) != 2:
        print("usage: python tools/constant_sweep.py LIST OUT.jsonl", file=sys.stderr)
        return 2
    entries = []
    for ln in Path(argv[0]).read_text().splitlines():
        ln = ln.split("#", 1)[0].strip()
        if ln:
            mod, name, value, *why = ln.split(None, 3)
            entries.append((mod, name, value, why[0] if why else ""))
    if not entries:
        print(f"{argv[0]}: no constants listed", file=sys.stderr)
        return 2
    commands = _kill_commands()
    for mod, name, _, _ in entries:  # every entry checked before any work
        if mod not in commands or _constant(ROOT / mod, name) is None:
            print(f"{mod} {name}: no such module constant, or no cosmic-ray kill command for the module",
                  file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory() as tmp, open(argv[1], "a") as out:
        tree = Path(tmp)
        _tree(tree)
        env = {**os.environ, "CR_PYTHON": sys.executable}
        for mod, name, value, why in entries:
            path = tree / mod
            orig = path.read_text()
            start, end, literal = _constant(path, name)
            path.write_text(orig[:start] + value + orig[end:])
            t0 = time.perf_counter()
            try:
                killed, tail = _run_kill(commands[mod], tree, env)
            finally:
                path.write_text(orig)
            rec = {"module": mod, "name": name, "old": literal, "new": value, "killed": killed,
                   "seconds": round(time.perf_counter() - t0, 1), "why": why, "tail": tail}
            out.write(json.dumps(rec) + "\n")
            out.flush()
            print(("killed   " if rec["killed"] else "SURVIVED ") + f"{mod} {name} {literal} -> {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
