r"""Certificates that the reduced LoRA-ML loss has a spurious local minimum (THEORY.md section 8).

A certificate is a frozen data object (:class:`Certificate`) that holds the task
matrices, the adapter rank, a candidate point :math:`\mathbf U_0` (float64 values,
i.e. exact dyadic rationals), a radius, the rigorous bounds it relies on, the margins
of the inequalities and the verdict.  :func:`verify_certificate` recomputes every bound
from the stored task matrices and points alone, so a certificate can be checked later,
elsewhere, without the search that produced the candidate.

Two kinds are provided.

Taylor (polynomial) certificate, :func:`taylor_certificate`
    THEORY.md section 8, conditions (C1) and (C2), made rigorous and extended to the
    quotient by :math:`O(k)`.  All quantities that enter the verdict are enclosed with
    python-flint ``arb`` balls (see :mod:`landscape._interval`).
Epsilon-net certificate, :func:`epsilon_net_certificate`
    THEORY.md section 8, "Rigorous epsilon-net version", with a tighter Lipschitz bound,
    an up-front size estimate and a refusal (:class:`CertificateTooLarge`) above a
    budget.  The reduced loss is enclosed on the net with outward-rounded vectorised
    interval arithmetic.

Mathematics of the Taylor certificate
-------------------------------------
Write :math:`D_t(\mathbf U)=A^\star_t-U_tU_t^\top`, let :math:`\mathcal P` centre over
tasks, and :math:`\Delta=\mathbf U-\mathbf U_0`.  With :math:`a=\mathcal P D(\mathbf U_0)`,
:math:`b=\mathcal P(-(U_{0,t}\Delta_t^\top+\Delta_tU_{0,t}^\top))_t` and
:math:`c=\mathcal P(-\Delta_t\Delta_t^\top)_t`, the reduced loss is exactly

.. math::
    G(\mathbf U_0+\Delta)=G(\mathbf U_0)+\langle g,\Delta\rangle
    +\tfrac12\Delta^\top S\Delta+\langle b,c\rangle+\tfrac12\|c\|^2,

:math:`g=\nabla G(\mathbf U_0)`, :math:`S=\nabla^2G(\mathbf U_0)`.  Since
:math:`\|b\|\le2m\|\Delta\|` with :math:`m\ge\max_t\|U_{0,t}\|_2` and
:math:`\|c\|\le\|\Delta\|^2`, every :math:`\Delta` in a subspace :math:`E` on which
:math:`\Delta^\top S\Delta\ge\lambda\|\Delta\|^2` satisfies, with :math:`\rho=\|\Delta\|`,

.. math::
    G(\mathbf U_0+\Delta)-G(\mathbf U_0)\ \ge\ \varphi(\rho):=-\|g\|\rho+\tfrac12\lambda\rho^2-2m\rho^3 .

For a radius :math:`r` the certificate checks, with rigorous bounds
:math:`\|g\|\le\bar g`, :math:`m\le\bar m`, :math:`\lambda\ge\underline\lambda`:

* (Cq) :math:`\underline\lambda/2-2\bar m r\ge0` (curvature dominates the cubic on
  :math:`[0,r]`, so :math:`\varphi(\rho)\ge-\bar g\rho`);
* (C1) :math:`-\bar g+\underline\lambda r/2-2\bar m r^2>0`, i.e. :math:`\varphi(r)>0`.
  With :math:`r=\lambda/(8m)` this is THEORY's :math:`\|g\|<\lambda^2/(32m)`;
* (C2) :math:`\underline G(\mathbf U_0)-\bar g r>\overline G(\mathbf W)` for a stored
  *witness* point :math:`\mathbf W`.  THEORY compares with :math:`0=\min G`, which is
  right for tasks of model M1; comparing with the loss at an explicit witness is valid
  for any task matrices (their global minimum need not be 0), and the witness is part
  of the certificate.

The quotient (k >= 2)
---------------------
:math:`G` is invariant under :math:`U_t\mapsto U_tO_t`, so :math:`S` is singular at
critical points and :math:`\varphi` cannot be positive on a full sphere: the orbit of
:math:`\mathbf U_0` leaves every ball.  Let :math:`\mathcal T` be the span of the orbit's
tangent generators :math:`Y_{t,ij}=(0,\dots,U_{0,t}(E_{ij}-E_{ji}),\dots,0)` (entries
are :math:`\pm` entries of :math:`\mathbf U_0`, hence exact) and :math:`E=\mathcal T^\perp`.

*Procrustes alignment.*  For any :math:`\mathbf U` pick :math:`O_t\in O(k)` minimising
:math:`\|U_tO_t-U_{0,t}\|_F` (compactness).  Stationarity along :math:`O_te^{s\Omega}`
gives :math:`(U_tO_t)^\top U_{0,t}` symmetric, which is exactly
:math:`\langle U_tO_t-U_{0,t},U_{0,t}\Omega\rangle=0` for every skew :math:`\Omega`.
So :math:`\Delta:=\mathbf U\cdot O-\mathbf U_0\in E`, :math:`\|\Delta\|\le\|\mathbf U-\mathbf U_0\|`
and :math:`G(\mathbf U)=G(\mathbf U_0+\Delta)`.

*Existence.*  Let :math:`f(\mathbf U)=\min_O\|\mathbf U\cdot O-\mathbf U_0\|` and
:math:`K=\{f\le r\}` (compact).  On :math:`\{f=r\}` the aligned :math:`\Delta` lies in
:math:`E` with :math:`\|\Delta\|=r`, so (C1) gives :math:`G>G(\mathbf U_0)`.  Hence the
minimum of :math:`G` on :math:`K` is attained in the open set :math:`\{f<r\}`: a local
minimiser, which may be rotated into :math:`B_r(\mathbf U_0)`.  (Cq)+(C2) give
:math:`G\ge G(\mathbf U_0)-\|g\|r>G(\mathbf W)` on all of :math:`K`, so it is spurious.
By THEORY.md section 5 ("Equivalences") it is a spurious local minimum of
:math:`\mathcal L` as well.

Why the *orthogonal* complement: the alignment lands in :math:`\mathcal T^\perp` and in
no other complement, so a curvature bound on an arbitrary complement :math:`E'` would
need a separate transversality estimate for the slice :math:`\mathbf U_0+E'` on the
whole ball; :math:`E=\mathcal T^\perp` needs none, and :math:`\mathcal T` is spanned by
generators that are exact in floating point.  For rank-deficient :math:`U_{0,t}` the
generators are dependent or zero; the argument is unchanged (:math:`\mathcal T` is
their span), and the curvature bound then typically fails, honestly.

*Curvature on E without a basis of E.*  For :math:`\Delta\in E`, :math:`Y^\top\Delta=0`
exactly, hence :math:`\Delta^\top S\Delta=\Delta^\top(S+cYY^\top)\Delta` for every
:math:`c\ge0`, and :math:`\lambda:=\lambda_{\min}(S+cYY^\top)` is a valid curvature
bound on :math:`E`.  No orthonormal (irrational) basis is ever needed; :math:`c` is a
float chosen so that the orbit directions are lifted above the quotient spectrum.  For
:math:`k=1` there are no generators and :math:`H=S`.

*Rigorous smallest eigenvalue.*  With a float shift :math:`\mu` and the float Cholesky
factor :math:`L` of :math:`H-\mu I` (an exact rational matrix), :math:`H-\mu I=LL^\top+F`
with :math:`LL^\top\succeq0`, so :math:`\lambda_{\min}(H)\ge\mu-\|F\|_2\ge\mu-\|F\|_F`;
:math:`F` is enclosed entrywise in ``arb``.

What is rigorous, and what is not
---------------------------------
Rigorous (enclosed in ``arb`` at the exact stored float points): :math:`G(\mathbf U_0)`,
:math:`\|\nabla G(\mathbf U_0)\|`, :math:`G(\mathbf W)`, the bound on :math:`m`, the
entries of :math:`S+cYY^\top`, the Cholesky residual and hence the eigenvalue bound,
and every margin.  The epsilon-net certificate adds the loss on the net (outward-
rounded numpy intervals), the covering radius of the actual float grid and the
Lipschitz bound.  Heuristic, and harmless because their outputs are only *stored and
checked*: Newton polishing, the witness search, the choice of :math:`r`, :math:`c`,
:math:`\mu` and of the float Cholesky factor.  Trusted: python-flint/Arb's ball
arithmetic and IEEE-754 round-to-nearest in numpy's elementwise ufuncs.

References
----------
THEORY.md section 8 (certificates), section 5 (reduced loss, Schur complement,
equivalence of local minima of L and G, symmetry).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from ._interval import IntervalArray, _up, arb_from_array, arb_pair, arb_precision
from ._objective import LoraMLProblem, vec_factors

__all__ = [
    "Certificate",
    "CertificateTooLarge",
    "CertificateNotApplicable",
    "NetSizeEstimate",
    "VERDICT_SPURIOUS",
    "VERDICT_LOCAL_MIN",
    "VERDICT_NONE",
    "TAYLOR_MAX_DIM",
    "NET_MAX_POINTS",
    "taylor_certificate",
    "epsilon_net_certificate",
    "net_size_estimate",
    "verify_certificate",
    "polish_critical_point",
    "find_witness",
]

# --------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------
#: A spurious local minimum of G (and of L) lies within ``radius`` of the point.
VERDICT_SPURIOUS = "certified_spurious_local_minimum"
#: A local minimum of G lies within ``radius`` of the point, but it is not proven to be
#: worse than the witness (e.g. the point is a global minimum).
VERDICT_LOCAL_MIN = "certified_local_minimum"
#: Nothing is claimed; ``reason`` says which condition failed.
VERDICT_NONE = "not_certified"
_VERDICTS = (VERDICT_SPURIOUS, VERDICT_LOCAL_MIN, VERDICT_NONE)

# --------------------------------------------------------------------------------------
# Named constants
# --------------------------------------------------------------------------------------
#: Working precision of the ``arb`` balls (bits).  Products of two doubles need 106
#: bits to be exact and the Hessian entries are short sums of such products, so at 256
#: bits they are exact or nearly so; radii stay ~1e-70 and never decide a verdict.
ARB_PRECISION = 256

#: Largest reduced dimension ``T*d*k`` accepted by the Taylor certificate.  The
#: Hessian is assembled entry by entry in ``arb`` (a few ball operations per entry in
#: Python) and the Cholesky residual costs an n^3 ``arb`` product.  Measured on the
#: 2-core development machine at n = 300 (d = 50, T = 3, k = 2): ~11 s to build the
#: certificate (polishing and float spectra included), ~1.6 s to re-verify it.
TAYLOR_MAX_DIM = 300

#: Default budget for the number of net points of the epsilon-net certificate.  The
#: loss is enclosed at about 3e5 points per second for T*d*k = 6 (outward-rounded
#: numpy intervals, measured on the 2-core development machine), fewer as T*d^2*k
#: grows, so 2e6 points keep one call under ~10 s: an interactive budget.  It is a
#: keyword, not a limit of the method.
NET_MAX_POINTS = 2_000_000

#: Relative inflation of the stored Lipschitz claims of a net certificate.  They come
#: from Cholesky bounds whose float shift depends on LAPACK's eigenvalue estimate, so a
#: re-verification elsewhere may differ in the last bits; 1e-9 covers that and costs
#: nothing measurable in the margins.
NET_CLAIM_SLACK = 1e-9

#: Points of the net processed per vectorised chunk (memory ~ 100 * chunk * n bytes).
NET_CHUNK = 200_000

#: Newton polishing: at most this many steps; a step is kept only if it lowers the
#: gradient norm, so the loop also stops at the float64 noise floor (~1e-16 * ||S|| ||U||).
POLISH_MAX_STEPS = 8

#: Relative singular-value cut-off of the least-squares Newton step.  For k >= 2 the
#: Hessian has exact zero eigenvalues along the O(k) orbit; the cut-off removes them
#: (minimum-norm step) while keeping genuine curvature down to 1e-10 of the largest.
POLISH_RCOND = 1e-10

#: Shift of the Cholesky test below the float estimate of lambda_min: relative part.
#: Costs a relative 1e-6 of the eigenvalue bound and keeps H - mu I safely positive
#: definite for the float Cholesky.
CHOL_SHIFT_REL = 1e-6

#: Absolute part of the shift, in units of n * eps_machine * ||H||: the float Cholesky
#: of a matrix whose smallest eigenvalue exceeds ~n eps ||H|| succeeds (backward
#: stability); 64 leaves room for the rounding of H itself.
CHOL_SHIFT_ABS = 64.0

#: How many times the Cholesky shift is enlarged (x16 each) before giving up.
CHOL_RETRIES = 6

#: Orbit directions are lifted to about this multiple of the spectral radius of S by
#: the penalty c Y Y^T, well above the quotient's smallest eigenvalue.
PENALTY_FACTOR = 2.0

#: Eigenvalues of Y_t^T Y_t below this fraction of the largest are treated as
#: dependent generators when choosing the penalty (the bound stays valid for any c).
GENERATOR_RTOL = 1e-10

#: Random starts of the default witness search (BFGS on G).  On model-M1 instances
#: a handful of starts reaches a global minimum (G ~ 1e-20) with overwhelming
#: probability (THEORY.md section 8: 0.4-0.5% of runs end at spurious points).
WITNESS_STARTS = 8

#: Seed of the witness search when the caller passes no Generator.
WITNESS_SEED = 0

#: Tolerances of the witness search (BFGS, then Newton polishing); the witness only
#: needs a loss below the certificate's lower bound, so these are generous.
WITNESS_GTOL = 1e-10
WITNESS_MAXITER = 200

#: Format tag and version of the JSON form.
JSON_FORMAT = "loraml-certificate"
JSON_VERSION = 1


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------
class CertificateTooLarge(RuntimeError):
    """A certificate would exceed its computational budget; nothing was attempted.

    Attributes
    ----------
    kind : str
        ``"taylor"`` or ``"epsilon_net"``.
    estimate : float
        Estimated work (net points, or the reduced dimension for the Taylor kind).
    budget : float
        The budget that the estimate exceeds.
    """

    def __init__(self, message: str, *, kind: str, estimate: float, budget: float, details=None):
        super().__init__(message)
        self.kind = kind
        self.estimate = estimate
        self.budget = budget
        self.details = details


class CertificateNotApplicable(ValueError):
    """The certificate kind cannot be applied to this problem (the message says why)."""


# --------------------------------------------------------------------------------------
# The data object
# --------------------------------------------------------------------------------------
def _frozen_array(x) -> np.ndarray:
    arr = np.array(x, dtype=np.float64, copy=True)
    arr.flags.writeable = False
    return arr


def _frozen_map(m) -> Mapping:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True, eq=False)
class Certificate:
    r"""A re-verifiable claim about the reduced loss near a point (THEORY.md section 8).

    Attributes
    ----------
    kind : str
        ``"taylor"`` or ``"epsilon_net"``.
    tasks : ndarray, shape (T, d, d)
        The task matrices :math:`A^\star_t` (float64, i.e. exact rationals).
    rank : int
        Adapter rank :math:`k`.
    point : ndarray, shape (T, d, k)
        The candidate :math:`\mathbf U_0` the claim is about (after polishing).
    radius : float
        The radius :math:`r` of the ball (Taylor: of the set :math:`\{f\le r\}`, see
        the module notes) that contains the local minimiser.
    verdict : str
        One of :data:`VERDICT_SPURIOUS`, :data:`VERDICT_LOCAL_MIN`, :data:`VERDICT_NONE`.
    reason : str
        One line: what was proven, or which condition failed.
    enclosures : mapping str -> (lo, hi)
        Two-sided rigorous enclosures (outward-rounded floats) of exact quantities,
        e.g. ``"G(U0)"``, ``"grad_norm"``, ``"G(witness)"``.
    bounds : mapping str -> float
        One-sided rigorous bounds used by the inequalities; the suffix says the side
        (``lambda_min_lower``, ``m_upper``, ``lipschitz_upper``, ...).
    margins : mapping str -> float
        Rigorous lower bounds of each inequality's slack; a condition holds iff its
        margin is > 0.
    parameters : mapping
        Exact inputs that verification reuses (penalty ``c``, Cholesky shift ``mu``,
        net spacing, ...).
    witness : ndarray or None
        A point whose loss upper-bounds the global minimum (used by (C2)).
    diagnostics : mapping
        Non-rigorous information (float estimates, timings, polishing record).
    """

    kind: str
    tasks: np.ndarray
    rank: int
    point: np.ndarray
    radius: float
    verdict: str
    reason: str
    enclosures: Mapping[str, tuple] = field(default_factory=dict)
    bounds: Mapping[str, float] = field(default_factory=dict)
    margins: Mapping[str, float] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    witness: np.ndarray | None = None
    diagnostics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "tasks", _frozen_array(self.tasks))
        set_(self, "point", _frozen_array(self.point))
        set_(self, "rank", int(self.rank))
        set_(self, "radius", float(self.radius))
        if self.witness is not None:
            set_(self, "witness", _frozen_array(self.witness))
        pairs = {k: (float(v[0]), float(v[1])) for k, v in dict(self.enclosures).items()}
        set_(self, "enclosures", _frozen_map(pairs))
        set_(self, "bounds", _frozen_map({k: float(v) for k, v in dict(self.bounds).items()}))
        set_(self, "margins", _frozen_map({k: float(v) for k, v in dict(self.margins).items()}))
        set_(self, "parameters", _frozen_map(self.parameters))
        set_(self, "diagnostics", _frozen_map(self.diagnostics))
        if self.kind not in ("taylor", "taylor_fp", "epsilon_net"):
            raise ValueError(f"unknown certificate kind {self.kind!r}")
        if self.verdict not in _VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")

    # ---------------------------------------------------------------- views
    @property
    def certified(self) -> bool:
        """True iff the certificate claims a spurious local minimum."""
        return self.verdict == VERDICT_SPURIOUS

    @property
    def local_minimum_certified(self) -> bool:
        """True iff the certificate claims a local minimum (spurious or not) near the point."""
        return self.verdict in (VERDICT_SPURIOUS, VERDICT_LOCAL_MIN)

    @property
    def problem(self) -> LoraMLProblem:
        return LoraMLProblem(self.tasks, self.rank)

    def verify(self) -> bool:
        """Recompute every bound from the stored data; see :func:`verify_certificate`."""
        return verify_certificate(self)

    def summary(self) -> str:
        """A few human-readable lines."""
        T, d, k = self.point.shape
        lines = [f"{self.kind} certificate (T={T}, d={d}, k={k}): {self.verdict}", f"  {self.reason}"]
        lines.append(f"  radius r = {self.radius:.6g}")
        for name, (lo, hi) in self.enclosures.items():
            lines.append(f"  {name} in [{lo:.10g}, {hi:.10g}]")
        for name, v in self.bounds.items():
            lines.append(f"  {name} = {v:.10g}")
        for name, v in self.margins.items():
            lines.append(f"  margin {name} >= {v:.6g}")
        return "\n".join(lines)

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        """Plain-Python form (floats round-trip exactly through :mod:`json`)."""
        return {
            "format": JSON_FORMAT,
            "version": JSON_VERSION,
            "kind": self.kind,
            "rank": self.rank,
            "tasks": _array_to_json(self.tasks, self.kind),
            "point": _array_to_json(self.point, self.kind),
            "radius": self.radius,
            "verdict": self.verdict,
            "reason": self.reason,
            "enclosures": {
                k: [_finite_or_none(v[0]), _finite_or_none(v[1])] for k, v in self.enclosures.items()
            },
            "bounds": {k: _finite_or_none(v) for k, v in self.bounds.items()},
            "margins": {k: _finite_or_none(v) for k, v in self.margins.items()},
            "parameters": dict(self.parameters),
            "witness": None if self.witness is None else _array_to_json(self.witness, self.kind),
            "diagnostics": _jsonable(dict(self.diagnostics)),
        }

    def to_json(self, **kwargs) -> str:
        """Strict JSON text (infinite bounds become ``null``); ``kwargs`` go to
        :func:`json.dumps` (e.g. ``indent=2``)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping) -> "Certificate":
        if data.get("format") != JSON_FORMAT:
            raise ValueError(f"not a {JSON_FORMAT} document (format={data.get('format')!r})")
        if data.get("version") != JSON_VERSION:
            raise ValueError(f"unsupported certificate version {data.get('version')!r}")
        return cls(
            kind=data["kind"],
            tasks=_array_from_json(data["tasks"]),
            rank=data["rank"],
            point=_array_from_json(data["point"]),
            radius=data["radius"],
            verdict=data["verdict"],
            reason=data["reason"],
            enclosures={
                k: (_none_to(v[0], -math.inf), _none_to(v[1], math.inf))
                for k, v in data["enclosures"].items()
            },
            bounds={
                k: _none_to(v, math.inf if k.endswith("_upper") else -math.inf)
                for k, v in data["bounds"].items()
            },
            margins={k: _none_to(v, -math.inf) for k, v in data["margins"].items()},
            parameters=data["parameters"],
            witness=None if data.get("witness") is None else _array_from_json(data["witness"]),
            diagnostics=data.get("diagnostics", {}),
        )

    @classmethod
    def from_json(cls, text) -> "Certificate":
        """Inverse of :meth:`to_json` (accepts the text or an already parsed dict)."""
        return cls.from_dict(json.loads(text) if isinstance(text, (str, bytes)) else text)


def _array_to_json(a: np.ndarray, kind: str):
    """Nested lists, except for the large ``taylor_fp`` certificates: there the exact
    little-endian float64 bytes in base64 (:func:`landscape.runtime.executor.encode`), 8 bytes
    per number instead of ~20 characters, and a fast exact round trip."""
    if kind == "taylor_fp":
        from .runtime.store import encode

        return encode(np.asarray(a, dtype="<f8"))
    return a.tolist()


def _array_from_json(x) -> np.ndarray:
    if isinstance(x, dict):
        from .runtime.store import decode

        if x.get("dtype") not in ("<f8", "float64"):
            raise ValueError(f"certificate arrays must be float64, got dtype {x.get('dtype')!r}")
        return np.asarray(decode(x), dtype=np.float64)
    return np.array(x, dtype=np.float64)


def _finite_or_none(x: float):
    """Strict JSON has no infinities: an infinite bound (the trivial one) is stored as null."""
    return float(x) if math.isfinite(x) else None


def _none_to(x, default: float) -> float:
    return default if x is None else float(x)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


# --------------------------------------------------------------------------------------
# Float-side helpers: polishing, witness search, tangent generators
# --------------------------------------------------------------------------------------
def polish_critical_point(problem: LoraMLProblem, U, *, max_steps: int = POLISH_MAX_STEPS):
    r"""Newton steps on :math:`\nabla G=0` with the analytic :math:`S` (float64).

    Each step solves :math:`S\,\delta=\nabla G` by least squares with relative cut-off
    :data:`POLISH_RCOND` (minimum-norm step, which ignores the O(k) kernel for
    :math:`k\ge2`) and is kept only if it lowers :math:`\|\nabla G\|`.

    Returns
    -------
    U : ndarray, shape (T, d, k)
    record : dict
        ``steps``, ``grad_norms`` (before each accepted step and at the end) and
        ``displacement`` (Frobenius distance from the input).
    """
    U_in = problem.check_factors(U)
    x = vec_factors(U_in)
    g = problem.reduced_grad_flat(x)
    norms = [float(np.linalg.norm(g))]
    steps = 0
    for _ in range(max_steps):
        S = problem.schur_complement(problem.unpack_factors(x))
        step = np.linalg.lstsq(S, g, rcond=POLISH_RCOND)[0]
        x_new = x - step
        g_new = problem.reduced_grad_flat(x_new)
        if not np.linalg.norm(g_new) < norms[-1]:
            break
        x, g = x_new, g_new
        norms.append(float(np.linalg.norm(g)))
        steps += 1
    U_out = problem.unpack_factors(x)
    return U_out, {
        "steps": steps,
        "grad_norms": norms,
        "displacement": float(np.linalg.norm(U_out - U_in)),
    }


def find_witness(
    problem: LoraMLProblem,
    *,
    rng: np.random.Generator | None = None,
    starts: int = WITNESS_STARTS,
) -> np.ndarray:
    r"""A point with small reduced loss, used as the comparison point of (C2).

    BFGS on :math:`G` from ``starts`` Gaussian starts (scaled to the task
    matrices), each finished by Newton polishing; returns the lowest.  The result is
    only an *upper* bound on :math:`\min G`, which is all (C2) needs; a poor witness
    can only make a certificate fail, never make it wrong.
    """
    from scipy.optimize import minimize

    rng = np.random.default_rng(WITNESS_SEED) if rng is None else rng
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    T, d, k = problem.T, problem.d, problem.k
    centred = problem.tasks - problem.mean_task[None]
    # Entries of size s give ||U_t U_t^T||_F ~ d k s^2; match the spread of the tasks.
    spread = float(np.linalg.norm(centred)) / math.sqrt(T)
    scale = math.sqrt(max(spread, 1e-12) / (d * math.sqrt(k)))
    best, best_val = None, math.inf
    for _ in range(max(1, starts)):
        x0 = scale * rng.standard_normal(problem.dim_U)
        res = minimize(
            problem.reduced_loss_flat,
            x0,
            jac=problem.reduced_grad_flat,
            method="BFGS",
            options={"gtol": WITNESS_GTOL, "maxiter": WITNESS_MAXITER},
        )
        U, _ = polish_critical_point(problem, problem.unpack_factors(res.x))
        val = problem.reduced_loss(U)
        if val < best_val:
            best, best_val = U, val
    return best


def _tangent_generators(U: np.ndarray) -> list[np.ndarray]:
    r"""Per task, the ``(d*k, k(k-1)/2)`` matrix of generators :math:`\mathrm{vec}(U_t(E_{ij}-E_{ji}))`.

    Column-major vec: :math:`U_tE_{ij}` puts column :math:`i` of :math:`U_t` in column
    :math:`j`.  Entries are exactly :math:`\pm` entries of ``U`` (no rounding).
    """
    T, d, k = U.shape
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    out = []
    for t in range(T):
        Y = np.zeros((d * k, len(pairs)))
        for c, (i, j) in enumerate(pairs):
            Y[j * d : (j + 1) * d, c] = U[t, :, i]
            Y[i * d : (i + 1) * d, c] = -U[t, :, j]
        out.append(Y)
    return out


def _choose_penalty(S: np.ndarray, gens: list[np.ndarray]) -> float:
    """Float ``c >= 0`` that lifts the orbit directions above the quotient spectrum."""
    if not gens or gens[0].shape[1] == 0:
        return 0.0
    sig = []
    for Y in gens:
        ev = np.linalg.eigvalsh(Y.T @ Y)
        if ev.size and ev[-1] > 0:
            sig.append(float(np.min(ev[ev > GENERATOR_RTOL * ev[-1]])))
    if not sig:
        return 0.0
    spec = float(np.max(np.abs(np.linalg.eigvalsh(S)))) if S.size else 0.0
    return float(PENALTY_FACTOR * max(spec, 1.0) / min(sig))


# --------------------------------------------------------------------------------------
# arb-side enclosures
# --------------------------------------------------------------------------------------
def _sqrt_nonneg(x):
    r"""Enclosure of :math:`\sqrt{y}` for the non-negative quantity :math:`y\in x`."""
    from flint import arb

    hi = x.upper()
    if not hi > 0:
        return arb(0)
    lo = x.lower()
    lo_root = lo.sqrt().lower() if lo > 0 else arb(0)
    hi_root = hi.sqrt().upper()
    return arb((lo_root + hi_root) / 2, (hi_root - lo_root) / 2)


def _arb_state(tasks: np.ndarray, U: np.ndarray) -> dict:
    r"""Enclosures at an exact point: :math:`G`, the centred residuals :math:`a_t`,
    :math:`\|\nabla G\|_F` and an upper bound of :math:`\max_t\|U_t\|_2`.

    The spectral-norm bound is :math:`\sqrt{\min(\mathrm{tr}\,G_t,\ \max_i\sum_j|(G_t)_{ij}|)}`
    with :math:`G_t=U_t^\top U_t` (trace = Frobenius, Gershgorin row sums bound
    :math:`\lambda_{\max}`); both are exact upper bounds, equal for :math:`k=1`.
    """
    from flint import arb

    T, d, k = U.shape
    Us = [arb_from_array(U[t]) for t in range(T)]
    D = [arb_from_array(tasks[t]) - Us[t] * Us[t].transpose() for t in range(T)]
    Dsum = D[0]
    for t in range(1, T):
        Dsum = Dsum + D[t]
    Dbar = Dsum / T
    a = [D[t] - Dbar for t in range(T)]
    G = arb(0)
    for t in range(T):
        for i in range(d):
            for j in range(d):
                G += a[t][i, j] ** 2
    G = G / 2
    gsq = arb(0)
    for t in range(T):
        gt = (a[t] + a[t].transpose()) * Us[t]  # = -grad_{U_t} G
        for i in range(d):
            for j in range(k):
                gsq += gt[i, j] ** 2
    gnorm = _sqrt_nonneg(gsq)
    m_sq_upper = arb(0)
    for t in range(T):
        Gt = Us[t].transpose() * Us[t]
        trace = sum((Gt[i, i] for i in range(k)), arb(0)).upper()
        gersh = max(sum((abs(Gt[i, j]) for j in range(k)), arb(0)).upper() for i in range(k))
        mt = trace if trace < gersh else gersh
        if mt > m_sq_upper:
            m_sq_upper = mt
    m_upper = m_sq_upper.sqrt().upper() if m_sq_upper > 0 else arb(0)
    return {"G": G, "a": a, "gnorm": gnorm, "m_upper": m_upper, "U": Us}


def _arb_hessian(state: dict, T: int, d: int, k: int):
    r"""The reduced Hessian :math:`S=\nabla^2G` as an ``arb_mat``, entry by entry.

    With column-major vec (entry :math:`\Delta_t[q,l]` at :math:`t\,dk+l\,d+q`),

    .. math::
        S_{(s,j,p),(t,l,q)} = 2(\delta_{st}-\tfrac1T)\big(U_t[p,l]U_s[q,j]
        +\delta_{pq}(U_t^\top U_s)_{lj}\big) - \delta_{st}\delta_{jl}(a_t+a_t^\top)_{pq},

    i.e. :math:`(\delta_{st}-\frac1T)B_s^\top B_t - \delta_{st}I_k\otimes(a_t+a_t^\top)`
    (THEORY.md section 5, Schur complement, with :math:`R_t=-a_t`).
    """
    from flint import arb, arb_mat

    Us, a = state["U"], state["a"]
    n = T * d * k
    S = arb_mat(n, n)
    cross = [[Us[t].transpose() * Us[s] for s in range(T)] for t in range(T)]  # (U_t^T U_s)
    symA = [a[t] + a[t].transpose() for t in range(T)]
    invT = arb(1) / T
    for s in range(T):
        for t in range(s, T):
            coef = 2 * ((1 if s == t else 0) - invT)
            C = cross[t][s]
            for j in range(k):
                for p in range(d):
                    row = s * d * k + j * d + p
                    for l in range(k):
                        for q in range(d):
                            col = t * d * k + l * d + q
                            if col < row and s == t:
                                continue
                            val = Us[t][p, l] * Us[s][q, j]
                            if p == q:
                                val += C[l, j]
                            val = coef * val
                            if s == t and j == l:
                                val -= symA[t][p, q]
                            S[row, col] = val
                            S[col, row] = val
    return S


def _arb_penalty(U: np.ndarray, c: float):
    r""":math:`c\,YY^\top` as an ``arb_mat`` (block diagonal over tasks)."""
    from flint import arb, arb_mat

    T, d, k = U.shape
    n = T * d * k
    P = arb_mat(n, n)
    if c == 0.0 or k < 2:
        return P
    for t, Y in enumerate(_tangent_generators(U)):
        Ya = arb_from_array(Y)
        B = Ya * Ya.transpose() * arb(c)
        off = t * d * k
        for i in range(d * k):
            for j in range(d * k):
                P[off + i, off + j] = B[i, j]
    return P


def _arb_to_mid(M) -> np.ndarray:
    n, m = M.nrows(), M.ncols()
    return np.array([[float(M[i, j].mid()) for j in range(m)] for i in range(n)])


def _frob_upper(M):
    from flint import arb

    acc = arb(0)
    for i in range(M.nrows()):
        for j in range(M.ncols()):
            acc += M[i, j].abs_upper() ** 2
    return acc.upper().sqrt().upper()


def _cholesky_lower_bound(H, H_mid: np.ndarray, mu: float):
    r"""Rigorous :math:`\lambda_{\min}(H)\ge\mu-\|H-\mu I-LL^\top\|_F` (``arb`` point) and
    the residual bound; ``None`` if the float Cholesky of :math:`H-\mu I` fails."""
    from flint import arb, arb_mat

    n = H_mid.shape[0]
    try:
        L = np.linalg.cholesky(H_mid - mu * np.eye(n))
    except np.linalg.LinAlgError:
        return None
    La = arb_from_array(L)
    F = H - La * La.transpose()
    for i in range(n):
        F[i, i] = F[i, i] - arb(mu)
    res = _frob_upper(F)
    return (arb(mu) - res).lower(), res


def _lambda_min_lower(H, H_mid: np.ndarray, mu: float | None = None):
    """Lower bound of lambda_min(H) (``arb`` point), the shift used, and the residual.

    If ``mu`` is given (verification), only that shift is tried.  Otherwise the
    shift starts at the float estimate minus :data:`CHOL_SHIFT_REL` / :data:`CHOL_SHIFT_ABS`
    and grows until the float Cholesky succeeds.
    """
    from flint import arb

    n = H_mid.shape[0]
    if mu is not None:
        out = _cholesky_lower_bound(H, H_mid, mu)
        return (arb(-math.inf), mu, math.inf) if out is None else (out[0], mu, float(out[1].upper()))
    lam = np.linalg.eigvalsh(0.5 * (H_mid + H_mid.T))
    scale = max(float(np.max(np.abs(lam))), np.finfo(float).tiny)
    delta = max(CHOL_SHIFT_REL * abs(float(lam[0])), CHOL_SHIFT_ABS * n * np.finfo(float).eps * scale)
    for _ in range(CHOL_RETRIES):
        mu = float(lam[0] - delta)
        out = _cholesky_lower_bound(H, H_mid, mu)
        if out is not None:
            return out[0], mu, float(out[1].upper())
        delta *= 16.0
    return arb(-math.inf), float(lam[0] - delta), math.inf


# --------------------------------------------------------------------------------------
# Taylor certificate
# --------------------------------------------------------------------------------------
def _float_down(x) -> float:
    return arb_pair(x)[0]


def _float_up(x) -> float:
    return arb_pair(x)[1]


def _taylor_bounds(tasks, rank, U0, *, penalty: float, shift: float | None, precision: int):
    """Rigorous bounds at ``U0``: enclosures of G and ||g||, m_upper, lambda lower bound.

    Returns (enclosures, bounds, parameters-used, diagnostics).  ``bounds`` holds the
    conservative floats that the decision uses: the lambda bound is lowered by two more
    residual bounds so that re-verification on another BLAS (slightly different L)
    still implies it.
    """
    T, d, k = U0.shape
    with arb_precision(precision):
        st = _arb_state(tasks, U0)
        S = _arb_hessian(st, T, d, k)
        H = S + _arb_penalty(U0, penalty) if penalty else S
        H_mid = _arb_to_mid(H)
        lam_lo, mu, res = _lambda_min_lower(H, H_mid, shift)
        lam_claim = lam_lo - 2 * res if math.isfinite(res) else lam_lo
        lam_rigorous = _float_down(lam_lo) if math.isfinite(res) else -math.inf
        enclosures = {"G(U0)": arb_pair(st["G"]), "grad_norm": arb_pair(st["gnorm"])}
        bounds = {
            "lambda_min_quotient_lower": _float_down(lam_claim) if math.isfinite(res) else -math.inf,
            "m_upper": _float_up(st["m_upper"]),
            "grad_norm_upper": arb_pair(st["gnorm"])[1],
        }
    diag = {"cholesky_residual": res, "lambda_min_quotient_rigorous": lam_rigorous}
    return enclosures, bounds, {"penalty": penalty, "shift": mu}, diag


def _witness_upper(tasks, W, precision: int) -> tuple[float, float]:
    with arb_precision(precision):
        return arb_pair(_arb_state(tasks, W)["G"])


def _taylor_radius(bounds) -> float:
    """Radius of the Taylor ball from certified bounds: just below lambda / (8 m), where
    the cubic term is at most half the quadratic one; 0 when lambda is not certified > 0."""
    lam = bounds["lambda_min_quotient_lower"]
    m_up = bounds["m_upper"]
    if math.isfinite(lam) and lam > 0.0 and m_up > 0.0:
        return float(np.nextafter(lam / (8.0 * m_up), 0.0))
    if math.isfinite(lam) and lam > 0.0:
        # every U0_t = 0: no cubic term; any radius with phi(r) > 0 works
        return float(4.0 * bounds["grad_norm_upper"] / lam) or 1.0
    return 0.0


def _taylor_decide(enclosures, bounds, r: float, witness_pair, precision: int):
    """(C1), (Cq), (C2) in ``arb`` on the stored (exact float) bounds."""
    from flint import arb

    lam = bounds["lambda_min_quotient_lower"]
    with arb_precision(precision):
        if not math.isfinite(lam) or lam <= 0.0 or not (r > 0.0):
            margins = {"C1": -math.inf, "Cq": -math.inf, "C2": -math.inf}
            reason = (
                f"the Hessian on the quotient is not certified positive definite "
                f"(rigorous lower bound of lambda_min = {lam:.6g})"
            )
            return margins, VERDICT_NONE, reason
        L, M, g, rr = arb(lam), arb(bounds["m_upper"]), arb(bounds["grad_norm_upper"]), arb(r)
        c1 = -g + L * rr / 2 - 2 * M * rr * rr
        cq = L / 2 - 2 * M * rr
        G_lo = arb(enclosures["G(U0)"][0])
        W_hi = arb(witness_pair[1]) if witness_pair is not None else None
        c2 = (G_lo - g * rr - W_hi) if W_hi is not None else None
        margins = {
            "C1": _float_down(c1),
            "Cq": _float_down(cq),
            "C2": _float_down(c2) if c2 is not None else -math.inf,
        }
    if not (margins["Cq"] >= 0.0):
        return margins, VERDICT_NONE, f"radius too large for the cubic term (Cq margin {margins['Cq']:.3g})"
    if not (margins["C1"] > 0.0):
        return margins, VERDICT_NONE, (
            f"(C1) fails: gradient norm <= {bounds['grad_norm_upper']:.3g} is not below "
            f"lambda r/2 - 2 m r^2 (C1 margin {margins['C1']:.3g})"
        )
    if not (margins["C2"] > 0.0):
        if witness_pair is None:
            why = "the ball's lower bound G(U0) - |g| r is not positive, so no point can lie below it"
        else:
            why = f"G(U0) - |g| r is not above G(witness): C2 margin {margins['C2']:.3g}"
        return margins, VERDICT_LOCAL_MIN, (
            f"a local minimiser lies within r of the point (C1 margin {margins['C1']:.3g}); "
            f"not shown to be spurious ({why})"
        )
    return margins, VERDICT_SPURIOUS, (
        f"a spurious local minimiser lies within r of the point: (C1) margin {margins['C1']:.3g}, "
        f"(C2) margin {margins['C2']:.3g} above G(witness)"
    )


def taylor_certificate(
    problem: LoraMLProblem,
    U0,
    *,
    polish: bool = True,
    witness=None,
    rng: np.random.Generator | None = None,
    witness_starts: int = WITNESS_STARTS,
    max_dim: int = TAYLOR_MAX_DIM,
    precision: int = ARB_PRECISION,
    method: str = "auto",
) -> Certificate:
    r"""Polynomial (Taylor) certificate (C1)-(C2) of THEORY.md section 8, made rigorous.

    Parameters
    ----------
    problem : LoraMLProblem
    U0 : array_like, shape (T, d, k)
        Candidate point.
    polish : bool
        Run :func:`polish_critical_point` first; the certificate is then about the
        polished point (stored in ``cert.point``; the displacement is in
        ``cert.diagnostics``).
    witness : array_like, shape (T, d, k), optional
        A point whose loss bounds :math:`\min G` from above (for model-M1 tasks,
        ``U_star`` gives ~0).  If omitted, :func:`find_witness` searches for one with
        ``rng`` (default seed :data:`WITNESS_SEED`) when the ball's lower bound is
        positive; the witness found is stored in the certificate.
    max_dim : int
        Refuse (:class:`CertificateTooLarge`) when ``T*d*k`` exceeds this.
    method : {"auto", "arb", "fp"}
        ``"arb"``: the ``arb`` enclosure described here.  ``"fp"``: the float64 path
        with a priori rounding-error bounds and Rump's Cholesky criterion
        (:func:`landscape._rump.fp_taylor_certificate`, kind ``"taylor_fp"``, k = 1,
        ``T*d*k`` up to :data:`landscape._rump.FP_TAYLOR_MAX_DIM`).  ``"auto"``: arb up to
        ``max_dim``, the float path for k = 1 between :data:`TAYLOR_MAX_DIM` and its own
        limit, otherwise refuse.
    precision : int
        ``arb`` working precision in bits.

    Returns
    -------
    Certificate
        ``kind="taylor"``; its verdict is one of :data:`VERDICT_SPURIOUS`,
        :data:`VERDICT_LOCAL_MIN`, :data:`VERDICT_NONE`.

    Notes
    -----
    What is rigorous: the enclosures of :math:`G(\mathbf U_0)`, :math:`\|\nabla
    G(\mathbf U_0)\|`, :math:`G(\mathbf W)`, the upper bound of :math:`m`, the lower
    bound of :math:`\lambda_{\min}(S+cYY^\top)` (Cholesky residual in ``arb``) and the
    inequalities (Cq), (C1), (C2), all at the exact stored points.  Polishing, the
    choice of :math:`r=\underline\lambda/(8\bar m)` (rounded to a float), of the
    penalty :math:`c` and the shift :math:`\mu` are heuristics whose output is simply
    stored; they cannot make the verdict wrong.  See the module docstring for the
    argument, including the quotient by :math:`O(k)` for :math:`k\ge2`.
    """
    t_start = time.perf_counter()
    if not isinstance(problem, LoraMLProblem):
        raise TypeError("problem must be a LoraMLProblem")
    U_in = problem.check_factors(U0, "U0")
    n = problem.dim_U
    if method not in ("auto", "arb", "fp"):
        raise ValueError(f"unknown method {method!r}: use auto, arb or fp")
    from . import _rump

    if method == "fp" or (method == "auto" and n > max_dim and problem.k == 1
                          and TAYLOR_MAX_DIM < n <= _rump.FP_TAYLOR_MAX_DIM):
        return _rump.fp_taylor_certificate(problem, U_in, witness=witness, rng=rng, polish=polish,
                                           precision=precision)
    if n > max_dim:
        raise CertificateTooLarge(
            f"Taylor certificate refused: reduced dimension T*d*k = {n} exceeds the budget "
            f"max_dim = {max_dim} (the Hessian is enclosed entrywise in arb, O(n^3) work)",
            kind="taylor",
            estimate=n,
            budget=max_dim,
        )
    if polish:
        U, record = polish_critical_point(problem, U_in)
    else:
        g0 = float(np.linalg.norm(problem.reduced_grad(U_in)))
        U, record = U_in.copy(), {"steps": 0, "grad_norms": [g0], "displacement": 0.0}
    S_float = problem.schur_complement(U)
    penalty = _choose_penalty(S_float, _tangent_generators(U)) if problem.k >= 2 else 0.0
    enclosures, bounds, params, diag = _taylor_bounds(
        problem.tasks, problem.k, U, penalty=penalty, shift=None, precision=precision
    )
    r = _taylor_radius(bounds)
    # Only search for a witness when the ball's lower bound is positive at all.
    ball_lower = enclosures["G(U0)"][0] - bounds["grad_norm_upper"] * r
    W = None
    if witness is not None:
        W = problem.check_factors(witness, "witness")
    elif r > 0.0 and ball_lower > 0.0:
        W = find_witness(problem, rng=rng, starts=witness_starts)
    W_pair = _witness_upper(problem.tasks, W, precision) if W is not None else None
    if W_pair is not None:
        enclosures["G(witness)"] = W_pair
    margins, verdict, reason = _taylor_decide(enclosures, bounds, r, W_pair, precision)
    lam_float = float(np.linalg.eigvalsh(S_float)[0])
    from ._curvature import reduced_spectrum

    spec = reduced_spectrum(problem, U)
    diagnostics = {
        "polish": record,
        "lambda_min_raw_float": lam_float,
        "lambda_min_quotient_float": float(spec.lambda_min_quotient),
        "condition_number_quotient_float": float(spec.eigenvalues[-1] / spec.eigenvalues[0])
        if spec.eigenvalues[0] > 0
        else math.inf,
        "seconds": time.perf_counter() - t_start,
        **diag,
    }
    params = {**params, "precision": int(precision)}
    return Certificate(
        kind="taylor",
        tasks=problem.tasks,
        rank=problem.k,
        point=U,
        radius=r,
        verdict=verdict,
        reason=reason,
        enclosures=enclosures,
        bounds=bounds,
        margins=margins,
        parameters=params,
        witness=W,
        diagnostics=diagnostics,
    )


# --------------------------------------------------------------------------------------
# Epsilon-net certificate
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NetSizeEstimate:
    r"""Size of an :math:`\epsilon`-net of the sphere :math:`\partial B_r\subset\mathbb R^n`.

    Attributes
    ----------
    n : int
        Ambient dimension (the sphere has dimension ``n - 1``).
    points_per_axis : int
        Grid points per coordinate on each face of the cube (construction below).
    log10_points : float
        :math:`\log_{10}` of the construction's size :math:`2n\,p^{n-1}`.
    log10_covering : float
        :math:`\log_{10}` of :math:`(r/\epsilon)^{n-1}`, the order of the covering
        number of a sphere of dimension :math:`n-1` at scale :math:`\epsilon/r` (any
        net needs at least this many points up to a factor depending only on n).
    """

    n: int
    radius: float
    eps: float
    points_per_axis: int
    log10_points: float
    log10_covering: float

    @property
    def points(self) -> float:
        return 10.0 ** self.log10_points


def net_size_estimate(n: int, r: float, eps: float) -> NetSizeEstimate:
    r"""Up-front size of the cube-face net used by :func:`epsilon_net_certificate`.

    The sphere is the radial image of the cube surface :math:`\{\|x\|_\infty=1\}`.
    Each of the :math:`2n` faces carries a grid with :math:`p` points per free
    coordinate and spacing :math:`h=2/(p-1)`; a face point is within
    :math:`\tfrac h2\sqrt{n-1}` of the grid, and radial projection onto the unit
    sphere (the projection onto the unit ball, 1-Lipschitz) does not increase
    distances.  So :math:`p-1\ge r\sqrt{n-1}/\epsilon` gives an :math:`\epsilon`-net.
    """
    if not (r > 0 and eps > 0):
        raise ValueError("r and eps must be positive")
    n = int(n)
    if n == 1:
        return NetSizeEstimate(1, r, eps, 1, math.log10(2.0), 0.0)
    p = int(math.ceil(r * math.sqrt(n - 1) / eps)) + 1
    log10_points = math.log10(2 * n) + (n - 1) * math.log10(p)
    log10_cov = (n - 1) * math.log10(max(r / eps, 1.0))
    return NetSizeEstimate(n, float(r), float(eps), p, log10_points, log10_cov)


def _net_shape_matrix(problem: LoraMLProblem, U: np.ndarray, shape: str) -> np.ndarray | None:
    r"""``None`` for the sphere; for the ellipsoid a float approximation of
    :math:`S^{-1/2}` (any invertible matrix is valid; this one equalises the gap)."""
    if shape == "sphere":
        return None
    if shape != "ellipsoid":
        raise ValueError(f"shape must be 'sphere' or 'ellipsoid', got {shape!r}")
    lam, V = np.linalg.eigh(problem.schur_complement(U))
    if lam[0] <= 0:
        raise CertificateNotApplicable(
            f"no ellipsoid to certify on: the Hessian at the point is not positive definite "
            f"(lambda_min ~ {lam[0]:.3g})"
        )
    return (V / np.sqrt(lam)) @ V.T


def _suggest_net_parameters(problem: LoraMLProblem, U: np.ndarray, A) -> tuple[float, float]:
    r"""Float heuristics for ``(r, eps)`` (only the size estimate depends on them).

    Sphere: :math:`r=\lambda/(16m)` (the cubic term then eats at most a quarter of the
    gap :math:`\lambda r^2/2`), and :math:`\epsilon` = 0.9 x gap / (gradient bound
    :math:`\|S\|r`), i.e. THEORY's :math:`\epsilon\lesssim r/(2\kappa)`.
    Ellipsoid (:math:`A\approx S^{-1/2}`): the gap is :math:`\approx r^2/2` in every
    direction and the gradient in z is :math:`\approx\|z\|`, so :math:`\epsilon` solves
    :math:`\epsilon^2+r\epsilon=\mathrm{gap}`; :math:`r` keeps the cubic term below
    1/8 of the gap.
    """
    S = problem.schur_complement(U)
    lam = np.linalg.eigvalsh(S)
    m = max(float(np.linalg.norm(U[t], 2)) for t in range(problem.T))
    g = float(np.linalg.norm(problem.reduced_grad(U)))
    lam_min = float(lam[0])
    if lam_min <= 0:
        raise CertificateNotApplicable(
            f"no sphere to certify on: the Hessian at the point is not positive definite "
            f"(lambda_min ~ {lam_min:.3g})"
        )
    m = max(m, 1e-300)
    if A is None:
        r = lam_min / (16 * m)
        gap = 0.5 * lam_min * r * r - 2 * m * r**3 - g * r
        lip = float(np.max(np.abs(lam))) * r + g
        return r, 0.9 * max(gap, 0.0) / lip
    a = float(np.linalg.norm(A, 2))
    r = 1.0 / (32.0 * m * a**3)
    gap = 0.5 * r * r - 2 * m * (a * r) ** 3 - a * g * r
    eps = 0.5 * (-r + math.sqrt(r * r + 4 * max(gap, 0.0)))
    return r, 0.9 * eps


def _net_faces(n: int, p: int, chunk: int):
    """Yield chunks of cube-surface grid points (grid = ``linspace(-1, 1, p)`` per free axis)."""
    grid = np.linspace(-1.0, 1.0, p)
    per_face = p ** (n - 1)
    for axis in range(n):
        free = [i for i in range(n) if i != axis]
        for sign in (-1.0, 1.0):
            for start in range(0, per_face, chunk):
                rem = np.arange(start, min(start + chunk, per_face))
                coords = np.empty((rem.size, n))
                for i in reversed(free):
                    coords[:, i] = grid[rem % p]
                    rem = rem // p
                coords[:, axis] = sign
                yield coords


def _interval_reduced_loss(tasks: np.ndarray, P: IntervalArray, T: int, d: int, k: int) -> IntervalArray:
    """Enclosure of G at a batch of interval points ``P`` (flat layout, shape (N, T*d*k))."""

    def u(t, q, l):  # flat index t*d*k + l*d + q  <->  U[t, q, l]
        return P[:, t * d * k + l * d + q]

    D = {}
    for t in range(T):
        for i in range(d):
            for j in range(i, d):
                acc = None
                for l in range(k):
                    prod = u(t, i, l).square() if i == j else u(t, i, l) * u(t, j, l)
                    acc = prod if acc is None else acc + prod
                D[t, i, j] = IntervalArray(tasks[t, i, j]) - acc
                if j != i:
                    D[t, j, i] = IntervalArray(tasks[t, j, i]) - acc
    G = None
    for i in range(d):
        for j in range(d):
            total = D[0, i, j]
            for t in range(1, T):
                total = total + D[t, i, j]
            mean = total / float(T)
            for t in range(T):
                term = (D[t, i, j] - mean).square()
                G = term if G is None else G + term
    return G * 0.5


def _spectral_upper(M_arb, M_mid):
    r"""Rigorous upper bound of :math:`\|M\|_2` for a symmetric ``arb_mat`` (``arb`` point)."""
    from flint import arb

    lo, _, _ = _lambda_min_lower(M_arb, M_mid)
    neg_lo, _, _ = _lambda_min_lower(-M_arb, -M_mid)
    if not (lo.is_finite() and neg_lo.is_finite()):
        return None
    out = arb(0)
    for cand in ((-neg_lo).upper(), (-lo).upper()):  # lambda_max <= -neg_lo, -lambda_min <= -lo
        if cand > out:
            out = cand
    return out


def _net_lipschitz(st: dict, S_arb, S_mid, A: np.ndarray | None, R: float):
    r"""Upper bound of :math:`\sup_{\|z\|\le R}\|A^\top\nabla G(U_0+Az)\|` (``arb`` point).

    Returns ``(bound, details)``; see :func:`epsilon_net_certificate` for the two
    bounds (a) and (b), and their ellipsoid form.
    """
    from flint import arb

    m0 = st["m_upper"]
    RR = arb(R)
    gn = st["gnorm"].upper()
    if A is None:
        a_norm = arb(1)
        sigma = _spectral_upper(S_arb, S_mid)
    else:
        Aa = arb_from_array(A)
        AtA = Aa.transpose() * Aa
        a_sq = _spectral_upper(AtA, _arb_to_mid(AtA))
        ASA = Aa.transpose() * S_arb * Aa
        ASA_mid = _arb_to_mid(ASA)
        sigma = _spectral_upper(ASA, 0.5 * (ASA_mid + ASA_mid.T))
        if a_sq is None:
            raise CertificateNotApplicable("could not bound the norm of the shape matrix")
        a_norm = a_sq.sqrt().upper()
    rho = (a_norm * RR).upper()  # ||A z|| <= ||A|| R
    two_g0 = (2 * st["G"]).upper()
    root = two_g0.sqrt().upper() if two_g0 > 0 else arb(0)
    bound_a = (a_norm * 2 * (m0 + rho) * (root + 2 * m0 * rho + rho * rho)).upper()
    details = {"lipschitz_bound_a_upper": bound_a, "shape_norm_upper": a_norm}
    best = bound_a
    if sigma is not None:
        bound_b = (a_norm * gn + sigma * RR + a_norm * (6 * m0 * rho * rho + 2 * rho * rho * rho)).upper()
        details["lipschitz_bound_b_upper"] = bound_b
        details["shaped_hessian_norm_upper"] = sigma
        if bound_b < best:
            best = bound_b
    return best, details


def epsilon_net_certificate(
    problem: LoraMLProblem,
    U0,
    r: float | None = None,
    eps: float | None = None,
    *,
    shape: str = "sphere",
    max_points: int = NET_MAX_POINTS,
    polish: bool = True,
    witness=None,
    rng: np.random.Generator | None = None,
    witness_starts: int = WITNESS_STARTS,
    precision: int = ARB_PRECISION,
) -> Certificate:
    r"""Epsilon-net certificate of THEORY.md section 8 ("Rigorous epsilon-net version").

    Parameters
    ----------
    problem : LoraMLProblem
        Must have ``k = 1`` (see Notes).
    U0 : array_like, shape (T, d, 1)
        Candidate point (polished first unless ``polish=False``).
    r, eps : float, optional
        Radius of the sphere (in z, see ``shape``) and net scale.  Defaults: float
        heuristics (:func:`_suggest_net_parameters`); only the size depends on them.
    shape : {"sphere", "ellipsoid"}
        ``"sphere"``: THEORY's sphere :math:`\partial B_r(U_0)` (:math:`A=I`).
        ``"ellipsoid"``: the boundary of :math:`U_0+A\,B_r` with a stored float
        matrix :math:`A\approx S^{-1/2}`; the gap is then about :math:`r^2/2` in every
        direction, so the net no longer pays the condition number (an extension).
    max_points : int
        Budget.  If the net would have more points, :class:`CertificateTooLarge` is
        raised *before* anything is built, with the estimate in its message.
    witness, rng, witness_starts
        As in :func:`taylor_certificate` (comparison point for spuriousness).

    Notes
    -----
    *Set.*  :math:`K=\{U_0+Az:\|z\|\le r\}` with :math:`A` invertible (proven: a
    rigorous lower bound of :math:`\lambda_{\min}(A^\top A)` is positive), a compact
    neighbourhood of :math:`U_0`.  If :math:`G>G(U_0)` on :math:`\partial K`, the
    minimum of :math:`G` on :math:`K` is attained inside: a local minimiser.

    *Net.*  The cube-face grid of :func:`net_size_estimate` in z, radially projected;
    the actual covering radius :math:`\epsilon_{\rm eff}=r\,\tfrac{h_{\max}}2\sqrt{n-1}`
    uses the float grid's largest gap (exact).  :math:`G` is enclosed at the *exact*
    points :math:`U_0+A\,r\,q/\|q\|` with :class:`IntervalArray`.

    *Lipschitz bound* of :math:`z\mapsto G(U_0+Az)` on :math:`\|z\|\le R=r+\epsilon_{\rm eff}`
    (a segment from a sphere point to its net point stays there), with
    :math:`a\ge\|A\|_2`, :math:`\rho=aR\ge\|U-U_0\|`, the smaller of

    (a) :math:`a\cdot2(m_0+\rho)\big(\sqrt{2G(U_0)}+2m_0\rho+\rho^2\big)`, from
        :math:`\|\nabla G(U)\|\le2\max_t\|U_t\|_2\sqrt{2G(U)}` (as
        :math:`\nabla_{U_t}G=(R_t+R_t^\top)U_t`, :math:`\sum_t\|R_t\|^2=2G`) and
        :math:`\sqrt{2G(U)}=\|\mathcal PD(U)\|\le\sqrt{2G(U_0)}+2m_0\rho+\rho^2`;
    (b) :math:`a\|g\|+\|A^\top SA\|_2R+a(6m_0\rho^2+2\rho^3)`, differentiating the
        exact quartic expansion (module notes): the cubic term :math:`\langle b,c\rangle`
        has gradient :math:`\le6m_0\rho^2`, the quartic :math:`\tfrac12\|c\|^2` at most
        :math:`2\rho^3`.  Spectral norms are bounded by the Cholesky bounds on
        :math:`\lambda_{\min}(\pm\cdot)`.

    For the sphere (:math:`a=1`) both are tighter than THEORY's formula, which also
    needs :math:`U^\star`.

    *Conditions.*  (N1) :math:`\min_{\rm net}\underline G>\overline G(U_0)+\mathrm{Lip}\,
    \epsilon_{\rm eff}` gives :math:`G>G(U_0)` on :math:`\partial K`; (N2)
    :math:`\underline G(U_0)-\mathrm{Lip}\,r>\overline G(W)` makes the minimiser spurious.

    *k >= 2* is refused (:class:`CertificateNotApplicable`): the O(k) orbit of
    :math:`U_0` crosses every sphere around it, where :math:`G=G(U_0)`, so (N1) cannot
    hold in the full space; a net on the slice would need an exact basis of the
    complement of the orbit.  :func:`taylor_certificate` handles the quotient.
    """
    t_start = time.perf_counter()
    if not isinstance(problem, LoraMLProblem):
        raise TypeError("problem must be a LoraMLProblem")
    U_in = problem.check_factors(U0, "U0")
    if problem.k != 1:
        raise CertificateNotApplicable(
            f"epsilon-net certificate needs k = 1 (got k = {problem.k}): the O(k) orbit of the "
            "point meets every sphere around it; use taylor_certificate, which works on the quotient"
        )
    n = problem.dim_U
    U, record = polish_critical_point(problem, U_in) if polish else (U_in.copy(), {"steps": 0})
    A = _net_shape_matrix(problem, U, shape)
    if r is None or eps is None:
        r_s, eps_s = _suggest_net_parameters(problem, U, A)
        r = r_s if r is None else r
        eps = eps_s if eps is None else eps
    r, eps = float(r), float(eps)
    if not (r > 0 and eps > 0):
        raise CertificateNotApplicable(f"need r > 0 and eps > 0 (got r = {r:.3g}, eps = {eps:.3g})")
    est = net_size_estimate(n, r, eps)
    if est.log10_points > math.log10(max(max_points, 1)):
        raise CertificateTooLarge(
            f"epsilon-net certificate refused: an eps-net of the {shape} of radius r = {r:.3g} "
            f"in dimension n = {n} at eps = {eps:.3g} needs about 10^{est.log10_points:.1f} points "
            f"(covering number ~ (r/eps)^(n-1) = 10^{est.log10_covering:.1f}); budget max_points = "
            f"{max_points:.3g}. Use taylor_certificate instead.",
            kind="epsilon_net",
            estimate=10.0 ** min(est.log10_points, 300.0),
            budget=max_points,
            details=est,
        )
    return _net_evaluate(
        problem, U, r, est.points_per_axis, A, witness=witness, rng=rng, witness_starts=witness_starts,
        precision=precision, record=record, t_start=t_start, requested_eps=eps,
    )


def _inflate(x: float) -> float:
    return float(_up(np.float64(x) * (1.0 + NET_CLAIM_SLACK)))


def _net_decide(enclosures, bounds, r: float, have_witness: bool, count: int, shape: str, precision: int):
    """(N1), (N2) in ``arb`` on the claimed (exact float) bounds."""
    from flint import arb

    with arb_precision(precision):
        lip, eps_eff = arb(bounds["lipschitz_upper"]), arb(bounds["eps_effective_upper"])
        G0_lo, G0_hi = arb(enclosures["G(U0)"][0]), arb(enclosures["G(U0)"][1])
        n1 = arb(bounds["min_net_G_lower"]) - G0_hi - lip * eps_eff
        n2 = (G0_lo - lip * arb(r) - arb(enclosures["G(witness)"][1])) if have_witness else None
        margins = {"N1": _float_down(n1), "N2": _float_down(n2) if n2 is not None else -math.inf}
    if margins["N1"] > 0 and margins["N2"] > 0:
        return margins, VERDICT_SPURIOUS, (
            f"G > G(U0) on the {shape} (net of {count} points, N1 margin {margins['N1']:.3g}) and "
            f"G > G(witness) inside (N2 margin {margins['N2']:.3g})"
        )
    if margins["N1"] > 0:
        return margins, VERDICT_LOCAL_MIN, (
            f"G > G(U0) on the {shape} (net of {count} points, N1 margin {margins['N1']:.3g}): a local "
            f"minimiser lies inside; spuriousness not shown (N2 margin {margins['N2']:.3g})"
        )
    return margins, VERDICT_NONE, (
        f"(N1) fails on the {shape}: min over the net of G - G(U0) does not exceed Lip * eps "
        f"(N1 margin {margins['N1']:.3g})"
    )


def _net_evaluate(problem, U, r, p, A, *, witness, rng, witness_starts, precision, record, t_start,
                  requested_eps, stored_witness=None, search_witness=True):
    from flint import arb

    T, d, k = problem.T, problem.d, problem.k
    n = problem.dim_U
    tasks = problem.tasks
    grid = np.linspace(-1.0, 1.0, p)
    with arb_precision(precision):
        # exact largest gap of the float grid (differences of floats, evaluated in arb)
        hmax = arb(0)
        for i in range(p - 1):
            gap = (arb(float(grid[i + 1])) - arb(float(grid[i]))).upper()
            if gap > hmax:
                hmax = gap
        eps_eff = _float_up(arb(r) * hmax / 2 * arb(max(n - 1, 0)).sqrt()) if n > 1 else 0.0
        st = _arb_state(tasks, U)
        S_arb = _arb_hessian(st, T, d, k)
        S_mid = _arb_to_mid(S_arb)
        if A is not None:
            Aa = arb_from_array(A)
            AtA = Aa.transpose() * Aa
            lo_AtA, _, _ = _lambda_min_lower(AtA, _arb_to_mid(AtA))
            if not lo_AtA > 0:
                raise CertificateNotApplicable("the shape matrix is not proven invertible")
        # Segments between a sphere point and its net point stay in the ball of radius r;
        # r + eps_eff (rounded up) is a safe over-estimate.
        lip, lip_details = _net_lipschitz(st, S_arb, S_mid, A, _float_up(arb(r) + arb(eps_eff)))
        lip_f = _float_up(lip)
        G0_pair = arb_pair(st["G"])
        ball_lower = _float_down(arb(G0_pair[0]) - arb(lip_f) * arb(r))
    # The net: enclosures of G at U0 + A r q/||q||.
    u0 = vec_factors(U)
    min_lo, argmin, count = math.inf, None, 0
    for Q in _net_faces(n, p, NET_CHUNK):
        Qi = IntervalArray(Q)
        norm = Qi.square().sum(axis=1).sqrt()
        Z = (Qi * r) / IntervalArray(norm.lo[:, None], norm.hi[:, None])  # exact sphere points
        if A is None:
            Pts = IntervalArray(u0[None, :]) + Z
        else:
            cols = []
            for i in range(n):  # u0_i + sum_j A_ij z_j, A exact floats
                acc = IntervalArray(u0[i])
                for j in range(n):
                    acc = acc + Z[:, j] * float(A[i, j])
                cols.append(acc)
            Pts = IntervalArray(np.stack([c.lo for c in cols], axis=1),
                                np.stack([c.hi for c in cols], axis=1))
        Gi = _interval_reduced_loss(tasks, Pts, T, d, k)
        j = int(np.argmin(Gi.lo))
        if Gi.lo[j] < min_lo:
            min_lo, argmin = float(Gi.lo[j]), (Q[j] / np.linalg.norm(Q[j])).tolist()
        count += Q.shape[0]
    # Witness.
    W = stored_witness
    if W is None and witness is not None:
        W = problem.check_factors(witness, "witness")
    elif W is None and search_witness and ball_lower > 0.0:
        W = find_witness(problem, rng=rng, starts=witness_starts)
    W_pair = _witness_upper(tasks, W, precision) if W is not None else None
    with arb_precision(precision):
        rigorous = {
            "min_net_G_lower": min_lo,
            "lipschitz_upper": lip_f,
            "eps_effective_upper": eps_eff,
            **{name: _float_up(v) for name, v in lip_details.items()},
        }
    # Claims: Lipschitz-type bounds inflated by NET_CLAIM_SLACK, so that a re-verification
    # whose float spectra (shift choice) differ in the last bits still implies them.
    bounds = {
        name: (_inflate(v) if name.endswith("_upper") and name != "eps_effective_upper" else v)
        for name, v in rigorous.items()
    }
    enclosures = {"G(U0)": G0_pair}
    if W_pair is not None:
        enclosures["G(witness)"] = W_pair
    shape = "sphere" if A is None else "ellipsoid"
    margins, verdict, reason = _net_decide(enclosures, bounds, r, W_pair is not None, count, shape, precision)
    return Certificate(
        kind="epsilon_net",
        tasks=tasks,
        rank=k,
        point=U,
        radius=r,
        verdict=verdict,
        reason=reason,
        enclosures=enclosures,
        bounds=bounds,
        margins=margins,
        parameters={
            "shape": shape,
            "shape_matrix": None if A is None else np.asarray(A).tolist(),
            "points_per_axis": int(p),
            "net_points": int(count),
            "requested_eps": float(requested_eps),
            "precision": int(precision),
        },
        witness=W,
        diagnostics={
            "polish": record,
            "net_argmin_direction": argmin,
            "rigorous": rigorous,
            "seconds": time.perf_counter() - t_start,
        },
    )


# --------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------
def _pair_within(stored, recomputed) -> bool:
    return stored[0] <= recomputed[0] and recomputed[1] <= stored[1]


def verify_certificate(cert: Certificate, *, max_points: int | None = None) -> bool:
    r"""Re-verify a certificate from its stored data alone.

    Recomputes, at the stored exact point(s), every enclosure and bound with the
    stored parameters, then re-derives the margins and the verdict.  Returns True iff

    * every stored enclosure contains the recomputed one, every stored one-sided
      bound is implied by the recomputed one (a stored lower bound is not above the
      recomputed lower bound, and symmetrically), and every stored margin is not above
      the recomputed margin; and
    * the recomputed verdict equals the stored verdict.

    Any edit of the task matrices, the point, the witness, the radius or a bound that
    makes a claim stronger than what can be recomputed makes it return False.  For an
    epsilon-net certificate the net is rebuilt (``max_points`` caps it; default: the
    stored size).
    """
    try:
        problem = LoraMLProblem(cert.tasks, cert.rank)
        problem.check_factors(cert.point, "point")
        if cert.witness is not None:
            problem.check_factors(cert.witness, "witness")
        prec = int(cert.parameters.get("precision", ARB_PRECISION))
        if cert.kind == "taylor":
            return _verify_taylor(cert, problem, prec)
        if cert.kind == "taylor_fp":  # float64 path with a priori error bounds (landscape._rump)
            from ._rump import verify_fp_taylor

            return verify_fp_taylor(cert)
        return _verify_net(cert, problem, prec, max_points)
    except (ValueError, KeyError, TypeError, ArithmeticError):
        return False


def _claims_hold(cert, enclosures, bounds, margins) -> bool:
    for name, stored in cert.enclosures.items():
        if name not in enclosures or not _pair_within(stored, enclosures[name]):
            return False
    for name, stored in cert.bounds.items():
        if name not in bounds:
            return False
        if name.endswith("_lower") and not stored <= bounds[name]:
            return False
        if name.endswith("_upper") and not stored >= bounds[name]:
            return False
    if margins is None:
        return True
    for name, stored in cert.margins.items():
        if name not in margins or not stored <= margins[name]:
            return False
    return True


def _verify_taylor(cert, problem, prec) -> bool:
    U = np.asarray(cert.point)
    penalty = float(cert.parameters["penalty"])
    shift = float(cert.parameters["shift"])
    if problem.k == 1 and penalty != 0.0:
        return False
    if not penalty >= 0.0:
        return False
    enclosures, bounds, _, diag = _taylor_bounds(
        problem.tasks, problem.k, U, penalty=penalty, shift=shift, precision=prec
    )
    # The stored lambda claim must be implied by the recomputed rigorous bound (not by
    # the recomputed, deliberately more conservative claim): a different BLAS may give
    # a slightly different Cholesky factor and residual.
    bounds["lambda_min_quotient_lower"] = diag["lambda_min_quotient_rigorous"]
    W_pair = None
    if cert.witness is not None:
        W_pair = _witness_upper(problem.tasks, np.asarray(cert.witness), prec)
        enclosures["G(witness)"] = W_pair
    if not _claims_hold(cert, enclosures, bounds, None):
        return False
    # Decide from the stored claims (now known to be implied by recomputation).
    margins, verdict, _ = _taylor_decide(
        dict(cert.enclosures), dict(cert.bounds), cert.radius,
        cert.enclosures.get("G(witness)") if cert.witness is not None else None, prec,
    )
    for name, stored in cert.margins.items():
        if name not in margins or not stored <= margins[name]:
            return False
    return verdict == cert.verdict


def _verify_net(cert, problem, prec, max_points) -> bool:
    p = int(cert.parameters["points_per_axis"])
    n = problem.dim_U
    budget = int(cert.parameters.get("net_points", 0)) if max_points is None else max_points
    if problem.k != 1 or p < 2 or 2 * n * p ** (n - 1) > max(budget, 1):
        return False
    shape = cert.parameters.get("shape", "sphere")
    A = cert.parameters.get("shape_matrix")
    if (shape == "sphere") != (A is None):
        return False
    A = None if A is None else np.array(A, dtype=np.float64).reshape(n, n)
    redo = _net_evaluate(
        problem, np.asarray(cert.point), cert.radius, p, A, witness=None, rng=None, witness_starts=0,
        precision=prec, record={}, t_start=time.perf_counter(),
        requested_eps=cert.parameters.get("requested_eps", 0.0),
        stored_witness=None if cert.witness is None else np.asarray(cert.witness), search_witness=False,
    )
    if not _claims_hold(cert, redo.enclosures, dict(redo.diagnostics["rigorous"]), None):
        return False
    margins, verdict, _ = _net_decide(
        dict(cert.enclosures), dict(cert.bounds), cert.radius, cert.witness is not None,
        int(cert.parameters.get("net_points", 0)), shape, prec,
    )
    for name, stored in cert.margins.items():
        if name not in margins or not stored <= margins[name]:
            return False
    return verdict == cert.verdict and redo.parameters["net_points"] == cert.parameters["net_points"]
