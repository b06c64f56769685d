r"""Route 2 for :math:`k=1`, :math:`T\ge3`: a parameter homotopy in PHCpack, one path per
sign orbit, from a solved generic instance.

The family
    For :math:`k=1` the critical points of :math:`G` solve the cubics
    :math:`E_t(\mathbf u;S)=(X_t-\bar X+C_t)u_t=0`, :math:`C_t=\bar S-S_t`, whose coefficients
    are *linear* in the parameters :math:`S=(S_1,\dots,S_T)` (complex symmetric).  Solutions
    with :math:`u_t=0` for :math:`t\notin\sigma` are the solutions of the same family in the
    variables :math:`u_\sigma` (the *support* :math:`\sigma`; :math:`\bar X` keeps the factor
    :math:`1/T`), and a path that starts with :math:`u_t=0` keeps it, so each support is a family
    of its own.
Parameter homotopy
    ``phc -p`` tracks :math:`a(1-s)^2Q+s^2P` from the instance :math:`Q=E(\cdot;S^0)` to
    :math:`P=E(\cdot;S^1)`.  The cubic part is the same in :math:`P` and :math:`Q`, so for every
    :math:`s` this is :math:`(a(1-s)^2+s^2)\,E(\cdot;S(s))` with
    :math:`S(s)=(a(1-s)^2S^0+s^2S^1)/(a(1-s)^2+s^2)`: a path in the parameter space, off the
    (complex codimension-one) discriminant for all but finitely many :math:`a`.  By the
    parameter continuation theorem (Morgan & Sommese 1989), when :math:`S^0` is generic and
    the start list holds *all* its solutions, the path ends include every isolated solution
    at :math:`S^1`.
Sign orbits
    :math:`u_t\mapsto-u_t` maps solutions to solutions for every parameter value, so the path
    from a flipped start is the flipped path: one path per orbit (:math:`2^{|\sigma|}` points)
    is tracked and the ends are flipped back, :math:`2^{|\sigma|}` times fewer paths than a
    solver in :math:`\mathbf u`.
The generic instance
    is solved once per :math:`(T,d)` by monodromy (:func:`monodromy_orbits`), with
    ``phc -p`` as the only tracker: pick :math:`u^0` at random, solve the *linear* equations
    :math:`E(u^0;S)=0` for :math:`S` (so :math:`u^0` is a solution at :math:`S^0`), then send
    the known solutions around loops :math:`S^0\to S^j\to S^0` in the complex parameter space
    until the number of orbits reaches the count implied by the degree of the ideal
    (msolve, modular) of a random rational instance.  The solutions are stored in
    ``starts/T{T}_d{d}.json`` (``tools/enumeration_tables.py starts``) together with the
    degrees they were checked against.  A file may hold fewer solutions than the degree
    (``found_count`` < ``degree_u_system``, written only with ``--allow-short``); the route
    then still finds every real point that lies on a path, and says that its complex
    count cannot reach the degree.

Why it is long: the family, its projective chart, the driver of ``phc -p`` and the
monodromy that made the start files belong to one object (the parameter homotopy of the
:math:`k=1` cubics) and share its term lists; split, each part would import the others.
"""
from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from fractions import Fraction
from itertools import combinations
from math import lcm
from pathlib import Path

import numpy as np

from ._backends import BackendError, parse_phc_solutions, phc_executable, phc_number, phc_version

__all__ = ["ParamFamily", "track", "homogenize", "integer_scale", "to_chart", "from_chart",
           "monodromy_orbits", "start_file", "load_starts", "build_starts",
           "canonical", "orbit_keys"]

STARTS = Path(__file__).with_name("starts")


# --------------------------------------------------------------------------------------
# The family E(u; S) on a support
# --------------------------------------------------------------------------------------
class ParamFamily:
    """The :math:`k=1` gradient cubics on the support ``supp`` (a tuple of task indices),
    as term lists ``{exponent tuple: coefficient}`` with complex coefficients."""

    def __init__(self, T: int, d: int, supp):
        self.T, self.d, self.supp = T, d, tuple(supp)
        self.names = [f"u{t}_{i}_0" for t in self.supp for i in range(d)]
        self.n = len(self.names)
        # the cubic part does not depend on S: build it once (exact, and in floats)
        self._cubic_q = [self._cubic_eq(a, i) for a in range(len(self.supp)) for i in range(d)]
        self._cubic = [{m: float(c) for m, c in eq.items()} for eq in self._cubic_q]

    def _var(self, a, i):
        return a * self.d + i

    def _mono(self, *idx):
        e = [0] * self.n
        for v in idx:
            e[v] += 1
        return tuple(e)

    def _cubic_eq(self, a, i):
        """(X_t - Xbar) u_t, row i, for t = supp[a]."""
        T, d, terms = self.T, self.d, {}
        for j in range(d):
            for b in range(len(self.supp)):
                c = (1 - Fraction(1, T)) if b == a else -Fraction(1, T)
                m = self._mono(self._var(b, i), self._var(b, j), self._var(a, j))
                terms[m] = terms.get(m, 0) + c
        return terms

    def polys(self, S) -> list:
        """Equations at the parameters ``S`` (shape ``(T, d, d)``, symmetric): float
        coefficients for an array, :class:`fractions.Fraction` ones for exact tasks
        (nested lists of fractions, :func:`._systems.exact_tasks`)."""
        exact = not isinstance(S, np.ndarray)
        if exact:
            T = self.T
            C = [[[sum(S[s][i][j] for s in range(T)) / T - S[t][i][j] for j in range(self.d)]
                  for i in range(self.d)] for t in range(T)]
            cubic = self._cubic_q
        else:
            Cf = S.mean(axis=0)[None] - S
            C, cubic = Cf.tolist(), self._cubic
        out = []
        for a, t in enumerate(self.supp):
            for i in range(self.d):
                terms = dict(cubic[a * self.d + i])
                for j in range(self.d):
                    m = self._mono(self._var(a, j))
                    terms[m] = terms.get(m, 0) + C[t][i][j]
                out.append(terms)
        return out

    def residual(self, S: np.ndarray, u: np.ndarray) -> np.ndarray:
        """E(u; S) for ``u`` of shape ``(len(supp), d)`` (vectorised check of a solution)."""
        S = np.asarray(S)
        C = S.mean(axis=0)[None] - S
        X = np.einsum("ai,aj->aij", u, u)
        Xbar = X.sum(axis=0) / self.T
        return np.array([(X[a] - Xbar + C[t]) @ u[a] for a, t in enumerate(self.supp)])

    def jacobian(self, S: np.ndarray, u: np.ndarray) -> np.ndarray:
        """d E / d u at ``u`` (shape ``(len(supp) d, len(supp) d)``)."""
        S = np.asarray(S)
        C = S.mean(axis=0)[None] - S
        b, d, T = len(self.supp), self.d, self.T
        J = np.zeros((b * d, b * d), dtype=complex)
        eye = np.eye(d)
        for a, t in enumerate(self.supp):
            ua = u[a]
            blk = (1 - 1 / T) * ((ua @ ua) * eye + 2 * np.outer(ua, ua)) + C[t]
            for c in range(b):
                if c != a:
                    blk = blk - np.outer(u[c], u[c]) / T
                    J[a * d:(a + 1) * d, c * d:(c + 1) * d] = -((u[c] @ ua) * eye + np.outer(u[c], ua)) / T
            J[a * d:(a + 1) * d, a * d:(a + 1) * d] = blk
        return J

    def newton(self, S: np.ndarray, u: np.ndarray, steps: int = 8) -> np.ndarray:
        """Newton's method on E(.; S) from ``u`` (complex)."""
        u = np.array(u, dtype=complex)
        for _ in range(steps):
            try:
                du = np.linalg.solve(self.jacobian(S, u), self.residual(S, u).ravel())
            except np.linalg.LinAlgError:
                break
            u = u - du.reshape(u.shape)
            if np.max(np.abs(du)) <= 1e-15 * (1 + np.max(np.abs(u))):
                break
        return u

    def fit_params(self, u: np.ndarray, rng) -> np.ndarray:
        """Random complex symmetric ``S`` with E(u; S) = 0 (least-norm correction of a
        random draw; the equations are linear in S)."""
        T, d = self.T, self.d
        S0 = _random_sym(rng, T, d)
        basis = []
        for t in range(T):
            for i in range(d):
                for j in range(i, d):
                    B = np.zeros((T, d, d), dtype=complex)
                    B[t, i, j] = B[t, j, i] = 1.0
                    basis.append(B)
        r0 = self.residual(S0, u).ravel()
        A = np.array([(self.residual(S0 + B, u).ravel() - r0) for B in basis]).T
        coef = np.linalg.lstsq(A, -r0, rcond=None)[0]
        S = S0 + np.tensordot(coef, np.array(basis), axes=1)
        if np.max(np.abs(self.residual(S, u))) > 1e-10 * (1 + np.max(np.abs(u)) ** 3):
            raise BackendError("could not fit parameters to the seed solution")
        return S

    def phc_text(self, S, chart=None, scale: int = 1) -> str:
        """The equations at ``S`` (see :meth:`polys`) times ``scale`` in PHCpack's format;
        with ``chart`` (complex, length ``n + 1``) the projective form of :func:`homogenize`
        in the unknowns ``names + [HOMOGENEOUS]``.  Coefficients are written to 17
        digits: exactly when ``scale`` makes an exact one an integer below :math:`2^{53}`
        (PHC then tracks to the very system that is certified).  (Plain integers are not
        written as such: PHC 2.4.86's reader fails on some lines of them.)"""
        polys, names = [{m: c * scale for m, c in eq.items()} for eq in self.polys(S)], self.names
        if chart is not None:
            polys, names = homogenize(polys, chart), names + [HOMOGENEOUS]
        lines = [f"{len(names)} {len(names)}"]
        for terms in polys:
            parts = []
            for m, c in terms.items():
                if c == 0:
                    continue
                mono = "*".join(names[v] + (f"^{e}" if e > 1 else "") for v, e in enumerate(m) if e)
                c = complex(c)  # an integer below 2^53 is exact, and so are its 17 digits
                parts.append(f"+({c.real:.17e}{c.imag:+.17e}*i)" + (f"*{mono}" if mono else ""))
            lines.append("\n".join(parts) + ";")  # one term a line: phc's reader splits long lines badly
        return "\n".join(lines) + "\n"


HOMOGENEOUS = "h0"  # the extra unknown of the projective chart


def integer_scale(polys) -> int:
    """The least common multiple of the denominators of the exact coefficients of
    ``polys`` (1 when none is exact): the factor that makes them integers."""
    out = 1
    for eq in polys:
        for c in eq.values():
            if isinstance(c, Fraction):
                out = lcm(out, c.denominator)
    return out


def homogenize(polys, chart) -> list:
    r"""The projective form of the cubics ``polys`` (term dicts in :math:`n` unknowns): each
    term times :math:`h^{3-\deg}`, so the equations are homogeneous in
    :math:`(\mathbf u,h)`, plus the affine chart :math:`a\cdot(\mathbf u,h)=1`
    (``chart`` :math:`=a`).  A solution :math:`\mathbf u` corresponds to
    :math:`(\mathbf u,1)/(a\cdot(\mathbf u,1))` and back by :math:`\mathbf u=v/h`
    (:func:`to_chart`, :func:`from_chart`).  For the parameter homotopy the cubic part is
    still the same at both ends, so each homotopy system is again a non-zero multiple of
    the projective form at the parameters :math:`S(s)`: the paths are those of the affine
    homotopy seen in projective space, where a solution of large norm has an O(1)
    representative with a small :math:`h`."""
    chart = np.asarray(chart, dtype=complex)
    n = len(chart) - 1
    out = []
    for terms in polys:
        out.append({m + (3 - sum(m),): c for m, c in terms.items()})
    lin = {tuple(int(j == i) for j in range(n + 1)): complex(chart[i]) for i in range(n + 1)}
    lin[(0,) * (n + 1)] = -1.0
    out.append(lin)
    return out


def to_chart(u, chart) -> np.ndarray:
    r"""Points ``u`` (rows) as :math:`(\mathbf u,1)/(a\cdot(\mathbf u,1))`."""
    u = np.asarray(u, dtype=complex)
    x = np.concatenate([u, np.ones((len(u), 1), dtype=complex)], axis=1)
    return x / (x @ np.asarray(chart, dtype=complex))[:, None]


def from_chart(x, *, tiny: float = 1e-12) -> np.ndarray:
    r"""Back from :func:`to_chart`: :math:`v/h`, NaN where :math:`|h|` is at most ``tiny``
    times :math:`|v|` (a point at infinity, or PHC lost the path)."""
    x = np.asarray(x, dtype=complex)
    v, h = x[:, :-1], x[:, -1:]
    bad = ~(np.abs(h[:, 0]) > tiny * np.max(np.abs(x), axis=1))
    with np.errstate(all="ignore"):
        u = v / h
    u[bad] = np.nan
    return u


def _random_sym(rng, T, d):
    Z = rng.standard_normal((T, d, d)) + 1j * rng.standard_normal((T, d, d))
    return (Z + np.swapaxes(Z, 1, 2)) / 2


# --------------------------------------------------------------------------------------
# Sign orbits
# --------------------------------------------------------------------------------------
def canonical(u: np.ndarray) -> np.ndarray:
    """The orbit representative: each block's largest entry has a positive real part
    (positive imaginary part if the real part is 0)."""
    u = np.array(u, dtype=complex)
    for a in range(u.shape[0]):
        j = int(np.argmax(np.abs(u[a])))
        z = u[a, j]
        if z.real < 0 or (z.real == 0 and z.imag < 0):
            u[a] = -u[a]
    return u


def orbit_keys(U: np.ndarray) -> np.ndarray:
    """Sign-invariant coordinates of orbits: the upper triangles of X_a = u_a u_a^T,
    one row per orbit (``U`` shape ``(N, blocks, d)``)."""
    N, b, d = U.shape
    iu = np.triu_indices(d)
    X = np.einsum("nai,naj->naij", U, U)
    return X[:, :, iu[0], iu[1]].reshape(N, -1)


class _OrbitSet:
    """Distinct orbits (sign-invariant keys compared with a relative tolerance)."""

    def __init__(self, tol=1e-6):
        self.tol, self.reps, self._keys = tol, [], None

    def add(self, u) -> bool:
        key = orbit_keys(u[None])[0]
        if self._keys is not None and len(self._keys):
            dist = np.max(np.abs(self._keys - key[None]), axis=1)
            scale = 1.0 + np.max(np.abs(key))
            if np.min(dist) <= self.tol * scale:
                return False
            self._keys = np.vstack([self._keys, key[None]])
        else:
            self._keys = key[None]
        self.reps.append(canonical(u))
        return True

    def __len__(self):
        return len(self.reps)


# --------------------------------------------------------------------------------------
# phc -p
# --------------------------------------------------------------------------------------
_DIAG = re.compile(r"^== err :\s*(\S+)\s*= rco :\s*(\S+)\s*= res :\s*(\S+)")


def _solutions_text(names, sols) -> str:
    out = [f"{len(sols)} {len(names)}", "=" * 60]
    for n, s in enumerate(sols, 1):
        out += [f"solution {n} :", "t :  0.00000000000000E+00   0.00000000000000E+00", "m : 1",
                "the solution for t :"]
        out += [f" {nm} : {z.real:.17e}  {z.imag:.17e}" for nm, z in zip(names, s)]
        out.append("== err :  0.000E+00 = rco :  1.000E+00 = res :  0.000E+00 ==")
    return "\n".join(out) + "\n"


def _parse_solutions(raw: str, names):
    """Ends of ``phc -p`` and per end ``(rco, res)`` from its diagnostics line."""
    arr, diag = parse_phc_solutions(raw, names, _DIAG)
    return arr, np.array([(phc_number(f.group(2)), phc_number(f.group(3))) for f in diag]).reshape(-1, 2)


def track(family: ParamFamily, S_from, S_to, starts: np.ndarray, gamma: complex, *, threads: int = 1,
          timeout: float = 600.0, seed: int = 1, decimals: int = 16, chart=None):
    """Track the solutions ``starts`` (rows, in ``family.names`` order) of E(.; S_from) to
    E(.; S_to) with ``phc -p`` and accessibility constant ``gamma``, in double precision
    (``decimals`` 16) or double-double (32); with ``chart`` (complex, length ``n + 1``)
    in the projective form of :func:`homogenize` (the same paths; the ends are mapped back).
    Exact target tasks ``S_to`` (fractions) are written exactly: both systems are
    multiplied by :func:`integer_scale` of the target, which leaves the homotopy's paths
    as they are (it multiplies the whole homotopy), so that at a condition number of
    :math:`10^{12}` the ends solve the certified system rather than its float rounding.
    Returns the ends (one row per start, NaN where PHC lost the path or it went to
    infinity), and per end ``(rco, res)``."""
    if decimals not in (16, 32):
        raise ValueError(f"decimals must be 16 or 32, got {decimals}")
    exe = phc_executable()
    starts = np.asarray(starts, dtype=complex).reshape(-1, family.n)
    if not len(starts):
        return starts.copy(), np.zeros((0, 2))
    names, x0 = family.names, starts
    if chart is not None:
        chart = np.asarray(chart, dtype=complex).ravel()
        if chart.shape != (family.n + 1,):
            raise ValueError(f"a chart needs {family.n + 1} coefficients, got {chart.size}")
        names, x0 = names + [HOMOGENEOUS], to_chart(starts, chart)
    with tempfile.TemporaryDirectory(prefix="landscape-phcp-") as tmp:
        tmp = Path(tmp)
        scale = integer_scale(family.polys(S_to))
        (tmp / "target").write_text(family.phc_text(S_to, chart, scale))
        (tmp / "start").write_text(family.phc_text(S_from, chart, scale) + "\nTHE SOLUTIONS :\n"
                                   + _solutions_text(names, x0))
        answers = "\n".join(["target", "out", "y", "sols", "start", "a", repr(float(gamma.real)),
                             repr(float(gamma.imag))] + (["d", "32"] if decimals == 32 else [])
                            + ["0", "0", "n"]) + "\n"
        cmd = [exe, f"-0{int(seed) % 2**31 + 1}", f"-t{max(1, int(threads))}", "-p"]
        try:
            proc = subprocess.run(cmd, input=answers, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise BackendError(f"phc -p did not finish within {timeout:.0f} s") from None
        out = tmp / "out"
        if proc.returncode != 0 or not out.is_file() or "THE SOLUTIONS :" not in out.read_text():
            raise BackendError(f"phc -p failed (status {proc.returncode}): {proc.stdout.strip()[-200:]}")
        ends, diag = _parse_solutions(out.read_text(), names)
    if len(ends) != len(starts):
        raise BackendError(f"phc -p returned {len(ends)} ends for {len(starts)} paths")
    return (ends if chart is None else from_chart(ends)), diag


def good_ends(ends, diag, *, big=1e6, rco_min=1e-12):
    """Mask of path ends that are finite, not too large and nonsingular."""
    return (np.all(np.isfinite(ends), axis=1) & (np.max(np.abs(ends), axis=1) < big) & (diag[:, 0] > rco_min))


# --------------------------------------------------------------------------------------
# Monodromy: all solutions of a generic instance
# --------------------------------------------------------------------------------------
def set_partitions(items):
    """Every partition of the tuple ``items`` into non-empty blocks."""
    items = list(items)
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in set_partitions(rest):
        yield [[first]] + part
        for j in range(len(part)):
            yield part[:j] + [[first] + part[j]] + part[j + 1:]


def pattern_seed(family: ParamFamily, partition, rng) -> np.ndarray:
    """A random complex ``u`` whose blocks are parallel exactly within each class of
    ``partition`` (lists of task indices of the support)."""
    b, d = len(family.supp), family.d
    where = {t: a for a, t in enumerate(family.supp)}
    u = np.zeros((b, d), dtype=complex)
    for cls in partition:
        v = rng.standard_normal(d) + 1j * rng.standard_normal(d)
        for t in cls:
            u[where[t]] = (rng.standard_normal() + 1j * rng.standard_normal()) * v
    return u


def monodromy_orbits(family: ParamFamily, rng, *, target: int | None = None, stall: int = 3,
                     max_loops: int = 40, threads: int = 1, timeout: float = 3600.0, log=None,
                     budget_s: float | None = None):
    r"""Orbits of solutions with every block of the support non-zero, at a generic complex
    parameter ``S0`` found here.

    The incidence variety :math:`\{(S,\mathbf u):E(\mathbf u;S)=0\}` need not be
    irreducible, and monodromy never leaves a component.  At :math:`d=2` a parallel pair
    :math:`u_s\parallel u_t` lowers the rank of the linear equations in :math:`S` by as much
    as it lowers the dimension of the :math:`\mathbf u` it allows, so it carries a component
    of its own (without its seed, monodromy at :math:`(T,d)=(3,2)` stops at 2 of 8 orbits).
    So one seed per set partition of the support (its classes parallel), and one per block
    made isotropic, is fitted and moved to ``S0`` by one parameter path (a seed on a
    component that does not dominate the parameter space lands on one that does; at
    :math:`(3,3)` the last of 106 orbits, a large one, was reached only this way from an
    isotropic seed), and all known orbits
    are sent around loops :math:`S^0\to S^j\to S^0` until ``target`` orbits are known, or
    (without a target) ``stall`` consecutive new loops added nothing.  Returns
    ``(S0, reps (N, n) array, info)``."""
    t0 = time.perf_counter()
    b, d = len(family.supp), family.d
    parts = list(set_partitions(family.supp))
    u0 = pattern_seed(family, [[t] for t in family.supp], rng)
    S0 = family.fit_params(u0, rng)
    known = _OrbitSet()
    known.add(u0)
    paths = 0
    seeds = [pattern_seed(family, part, rng) for part in parts
             if not (len(part) == b or (d == 1 and len(part) > 1))]  # u0 is the general seed
    if d >= 2:  # one isotropic block (u_a^T u_a = 0): at (3, 3) the only seed that reached the last orbit
        for a in range(b):
            u = pattern_seed(family, [[t] for t in family.supp], rng)
            z = rng.standard_normal(d - 1) + 1j * rng.standard_normal(d - 1)
            u[a] = np.concatenate([z, [np.sqrt(-(z @ z))]])
            seeds.append(u)
    for up in seeds:
        Sp = family.fit_params(up, rng)
        end, dg = track(family, Sp, S0, up.ravel()[None], _unit(rng), threads=threads, timeout=timeout)
        paths += 1
        seed_end = end[0].reshape(b, d).copy()
        if good_ends(end, dg)[0] and _solves(family, S0, seed_end):
            known.add(seed_end)
    loops, sent, dry = [], [], 0
    while True:
        n_before = len(known)  # the orbits known before the newest loop was tracked
        progress = True
        while progress:  # send every known orbit around every loop
            progress = False
            for j, (S1, g1, g2) in enumerate(loops):
                todo = np.array([r.ravel() for r in known.reps[sent[j]:]])
                sent[j] = len(known)
                if not len(todo):
                    continue
                progress = True
                mid, dg = track(family, S0, S1, todo, g1, threads=threads, timeout=timeout)
                ok = good_ends(mid, dg)
                paths += len(todo)
                back, dg2 = track(family, S1, S0, mid[ok], g2, threads=threads, timeout=timeout)
                paths += int(ok.sum())
                before = len(known)
                for e in back[good_ends(back, dg2)]:
                    u = e.reshape(b, d).copy()
                    if _solves(family, S0, u):
                        known.add(u)
                if log:
                    log(f"support {family.supp} loop {j}: {len(todo)} paths, {len(known) - before} new, "
                        f"{len(known)} orbits, {time.perf_counter() - t0:.0f} s")
                if target is not None and len(known) >= target:
                    break
            if target is not None and len(known) >= target:
                break
        if target is not None and len(known) >= target:
            break
        if loops:  # did the newest loop (with every orbit it led to sent around all loops) add one?
            dry = 0 if len(known) > n_before else dry + 1
        if len(loops) >= max_loops or (target is None and dry >= stall):
            break
        if budget_s is not None and time.perf_counter() - t0 > budget_s:
            break  # no new loop after the budget: the caller sees the count it has
        loops.append((_random_sym(rng, family.T, d), _unit(rng), _unit(rng)))
        sent.append(0)
    info = {"loops": len(loops), "paths": paths, "seeds": 1 + len(seeds), "seconds": round(time.perf_counter() - t0, 1)}
    return S0, np.array([r.ravel() for r in known.reps]), info


def _solves(family, S0, u) -> bool:
    """``u`` solves E(.; S0) (relative residual, after Newton polish in place) with every
    block of the support non-zero."""
    u[...] = family.newton(S0, u)
    scale = 1.0 + float(np.max(np.abs(u)))
    return bool(np.min(np.max(np.abs(u), axis=1)) > 1e-8 * scale
                and np.max(np.abs(family.residual(S0, u))) <= 1e-9 * scale ** 3)


def _unit(rng):
    z = rng.standard_normal() + 1j * rng.standard_normal()
    return complex(z / abs(z))


# --------------------------------------------------------------------------------------
# Start data (one file per (T, d), committed)
# --------------------------------------------------------------------------------------
def start_file(T: int, d: int) -> Path:
    return STARTS / f"T{T}_d{d}.json"


def _cx(a):
    a = np.asarray(a, dtype=complex)
    return {"re": a.real.tolist(), "im": a.imag.tolist()}


def _uncx(o):
    return np.array(o["re"], dtype=float) + 1j * np.array(o["im"], dtype=float)


def load_starts(T: int, d: int):
    """``{support tuple: (S0, reps)}`` and the file's metadata, or None if absent."""
    f = start_file(T, d)
    if not f.is_file():
        return None
    data = json.loads(f.read_text())
    out = {}
    for s in data["supports"]:
        out[tuple(s["support"])] = (_uncx(s["S0"]), _uncx(s["orbits"]).reshape(-1, len(s["support"]) * d))
    return out, data


def support_degrees(T, d, rng, *, timeout=3600.0):
    """Generic number of solutions with exactly ``m`` non-zero blocks, per ``m`` (complex
    points, every sign copy), from msolve's degree of each support system at one random
    rational instance (the family is symmetric under permuting tasks, so one support per
    size suffices)."""
    from ._backends import msolve_degree
    from ._systems import PolySystem, exact_tasks, gradient_system, on_support

    tasks = np.round(rng.standard_normal((T, d, d)), 2)
    S = exact_tasks(tasks)
    exact = {0: 1}
    total = {}
    g = gradient_system(S, T, d, 1)
    for m in range(1, T + 1):
        # the support {0..m-1}: the system with the other blocks set to zero
        keep, polys, names = on_support(g, set(range(m)))
        sub = PolySystem(g.ring, [g.gens[j] for j in keep], names, polys)
        deg = msolve_degree(sub.msolve_text(), names, timeout=timeout)
        if deg is None:
            raise BackendError(f"support size {m}: the system is not zero-dimensional")
        total[m] = deg
        from math import comb

        exact[m] = deg - sum(comb(m, j) * exact[j] for j in range(m))
    return exact, total


def blackbox_complete(family: ParamFamily, S0, reps, *, timeout: float = 7200.0):
    """Add to the orbits ``reps`` at ``S0`` those that PHC's black-box solver (``phc -b``,
    a polyhedral homotopy that reaches every isolated solution with non-zero coordinates)
    finds and monodromy did not; returns ``(reps, number added)``."""
    from ._backends import run_phc

    b, d = len(family.supp), family.d
    known = _OrbitSet()
    for r in reps:
        known.add(np.asarray(r).reshape(b, d))
    n0 = len(known)
    out = run_phc(family.phc_text(S0), family.names, timeout=timeout)
    for s_ in out.solutions:
        u = np.asarray(s_).reshape(b, d).copy()
        if np.all(np.isfinite(u)) and _solves(family, S0, u):
            known.add(u)
    return np.array([r.ravel() for r in known.reps]), len(known) - n0


def build_starts(T: int, d: int, *, seed: int = 0, threads: int = 1, log=print, given=None,
                 blackbox: bool = False, allow_short: bool = False, budget_s: float | None = None) -> dict:
    """Solve a generic instance of every support by monodromy: the content of the start
    file (``tools/enumeration_tables.py starts`` writes it to :func:`start_file`).

    ``given`` maps supports to ``(S0, reps, info)`` already computed; with ``blackbox``, a
    support whose monodromy stops short of its count is completed by :func:`blackbox_complete`
    (monodromy cannot leave a component of the incidence variety, so an orbit on a
    component without a seed is out of its reach).  With ``allow_short`` a support left
    short is written as is: ``found_count`` is then below ``degree_u_system`` and the route
    reports that its complex count cannot match the degree."""
    import platform

    import resource

    t0, c0 = time.perf_counter(), _cpu(resource)
    rng = np.random.default_rng([20, T, d, seed])
    exact, total = support_degrees(T, d, rng)
    supports = []
    for m in range(1, T + 1):
        want = exact[m] // 2 ** m
        if exact[m] % 2 ** m:
            raise BackendError(f"support size {m}: {exact[m]} points is not a union of sign orbits")
        for supp in combinations(range(T), m):
            fam = ParamFamily(T, d, supp)
            if given and supp in given:
                S0, reps, info = given[supp]
            else:
                S0, reps, info = monodromy_orbits(fam, rng, target=want, threads=threads, log=log, budget_s=budget_s)
            if len(reps) < want and blackbox:
                info = dict(info, monodromy_orbits=len(reps))
                reps, info["added_by_phc_b"] = blackbox_complete(fam, S0, reps)
            if len(reps) > want or (len(reps) < want and not allow_short):
                raise BackendError(f"support {supp}: monodromy found {len(reps)} of {want} orbits")
            supports.append({"support": list(supp), "S0": _cx(S0), "orbits": _cx(reps),
                             "n_orbits": len(reps), "n_orbits_expected": want, "monodromy": info})
    found = 1 + sum(s["n_orbits"] * 2 ** len(s["support"]) for s in supports)
    data = {
        "T": T, "d": d, "k": 1, "seed": seed,
        "what": "all solutions (one per sign orbit) of a generic complex instance of the k = 1 gradient "
                "cubics on every support, found by monodromy with phc -p",
        "degree_u_system": total[T],
        "found_count": found,
        "points_by_support_size": {str(m): exact[m] for m in range(T + 1)},
        "orbits_by_support_size": {str(m): exact[m] // 2 ** m for m in range(T + 1)},
        "checked_against": "msolve degree of the ideal (modular Groebner basis) of a random rational instance, "
                           "per support size",
        "phc": phc_version(), "python": platform.python_version(),
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_s": round(_cpu(resource) - c0, 1),
        "supports": supports,
    }
    return data


def _cpu(resource) -> float:
    """CPU seconds of this process and its finished children (phc, msolve)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


