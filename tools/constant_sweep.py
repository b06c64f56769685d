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

cosmic-ray's NumberReplacer moves a literal by one (1e-9 -> 1.000000001 or -0.999999999),
which any test of the sign or the order of magnitude kills; the verdicts of a check depend on
its tolerances to a factor, so this sweep moves each one by 2x to 10x in the direction that
would let a wrong result through.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def _inline(src: str, name: str):
    """``FUNCTION:LITERAL[:N]``: ``(start, end, literal)`` of the N-th numeric literal spelled
    LITERAL in the function(s) named FUNCTION (nested ones included; N counts from 1 in source
    order and may be left out when there is exactly one), or None."""
    import ast

    func, literal, *nth = name.split(":")
    lines = src.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    hits = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == func:
            for c in ast.walk(node):
                if (isinstance(c, ast.Constant) and type(c.value) in (int, float)
                        and ast.get_source_segment(src, c) == literal):
                    # col_offset counts UTF-8 bytes
                    hits.add(offsets[c.lineno - 1] + len(lines[c.lineno - 1].encode()[:c.col_offset].decode()))
    hits = sorted(hits)
    k = int(nth[0]) if nth else (1 if len(hits) == 1 else 0)
    return (hits[k - 1], hits[k - 1] + len(literal), literal) if 1 <= k <= len(hits) else None


def _constant(path: Path, name: str):
    """``(start, end, literal)`` of the literal in ``NAME = literal`` at the start of a line of
    ``path``, or of an inline literal ``FUNCTION:LITERAL[:N]`` (:func:`_inline`); None if absent."""
    if not path.is_file():
        return None
    if ":" in name:
        return _inline(path.read_text(), name)
    m = re.search(rf"^({re.escape(name)}\s*(?::[^=]+)?=\s*)(\S+)", path.read_text(), re.M)
    return (m.start(2), m.end(2), m.group(2)) if m else None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
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
                r = subprocess.run(commands[mod], shell=True, cwd=tree, capture_output=True, text=True, env=env)
            finally:
                path.write_text(orig)
            rec = {"module": mod, "name": name, "old": literal, "new": value, "killed": r.returncode != 0,
                   "seconds": round(time.perf_counter() - t0, 1), "why": why,
                   "tail": (r.stdout + r.stderr).strip().splitlines()[-2:]}
            out.write(json.dumps(rec) + "\n")
            out.flush()
            print(("killed   " if rec["killed"] else "SURVIVED ") + f"{mod} {name} {literal} -> {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
