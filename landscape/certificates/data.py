r"""The certificate data object: :class:`Certificate`, its JSON form, and verification.

A certificate is frozen (arrays read-only, mappings immutable) and holds everything
needed to re-check it; :func:`verify_certificate` recomputes its bounds from the stored
data alone with the verifier its kind registered (:func:`register_verifier`).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .._objective import LoraMLProblem

#: A spurious local minimum of G (and of L) lies within ``radius`` of the point.
VERDICT_SPURIOUS = "certified_spurious_local_minimum"


#: A local minimum of G lies within ``radius`` of the point, but it is not proven to be
#: worse than the witness (e.g. the point is a global minimum).
VERDICT_LOCAL_MIN = "certified_local_minimum"


#: Nothing is claimed; ``reason`` says which condition failed.
VERDICT_NONE = "not_certified"


_VERDICTS = (VERDICT_SPURIOUS, VERDICT_LOCAL_MIN, VERDICT_NONE)


#: Working precision of the ``arb`` balls (bits).  Products of two doubles need 106
#: bits to be exact and the Hessian entries are short sums of such products, so at 256
#: bits they are exact or nearly so; radii stay ~1e-70 and never decide a verdict.
ARB_PRECISION = 256


#: Format tag and version of the JSON form.
JSON_FORMAT = "loraml-certificate"


JSON_VERSION = 1


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

    def __repr__(self) -> str:
        T, d, k = np.shape(self.point)
        return (f"Certificate({self.kind!r}, T={T}, d={d}, k={k}: {self.verdict}, radius={self.radius:.3e}; "
                "summary() for the bounds, to_json() for everything)")

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
        if not isinstance(data, Mapping):
            raise ValueError(f"not a {JSON_FORMAT} document (a JSON {type(data).__name__}, not an object)")
        if data.get("format") != JSON_FORMAT:
            raise ValueError(f"not a {JSON_FORMAT} document (format={data.get('format')!r})")
        version = data.get("version")
        # the integer itself: JSON's true and 1.0 compare equal to 1 in Python, but name no version
        if type(version) is not int or version != JSON_VERSION:
            raise ValueError(f"unsupported certificate version {version!r}")
        _check_document(data)
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
        """Inverse of :meth:`to_json`: accepts the text or an already parsed dict, also as
        ``report.json`` embeds it (a class entry ``classes[i]``, or its ``"certificate"``
        entry, both of which hold the certificate under the key ``"certificate"``)."""
        data = _strict_json(text) if isinstance(text, (str, bytes)) else text
        while isinstance(data, Mapping) and "format" not in data and isinstance(data.get("certificate"), Mapping):
            data = data["certificate"]
        if isinstance(data, Mapping) and "format" not in data and "certificate" in data and data["certificate"] is None:
            raise ValueError("this entry holds no certificate (its class is not a certified spurious candidate)")
        return cls.from_dict(data)


def _strict_json(text):
    """Parse a certificate's JSON text strictly: NaN / Infinity tokens (not JSON; to_json
    writes null for an infinite bound) and a key given twice in one object (json would keep
    the last value silently) are refused with a ValueError."""
    from ..runtime.safe_load import _JSONRangeError, _no_duplicate_keys, _parse_constant

    try:
        return json.loads(text, parse_constant=_parse_constant, object_pairs_hook=_no_duplicate_keys)
    except _JSONRangeError as exc:
        raise ValueError(f"certificate JSON: {exc}") from None
    except RecursionError:
        raise ValueError("certificate JSON nested too deeply") from None


#: The keys of a certificate document (:meth:`Certificate.to_dict`), and the optional ones.
_DOCUMENT_KEYS = frozenset({"format", "version", "kind", "rank", "tasks", "point", "radius", "verdict", "reason",
                            "enclosures", "bounds", "margins", "parameters"})
_OPTIONAL_KEYS = frozenset({"witness", "diagnostics"})


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_document(data: Mapping) -> None:
    """Refuse (ValueError, one line) a certificate document whose keys or value types are
    not those :meth:`Certificate.to_dict` writes: a missing or unknown key, a rank that is not
    an integer (JSON's ``true``, ``1.0`` or ``"1"`` would be read as 1), a radius or a bound
    that is not a number or null, an enclosure that is not a pair."""
    missing = sorted(_DOCUMENT_KEYS - set(data))
    if missing:
        raise ValueError(f"certificate document lacks {', '.join(repr(k) for k in missing)}")
    unknown = sorted(set(data) - _DOCUMENT_KEYS - _OPTIONAL_KEYS, key=str)
    if unknown:
        raise ValueError(f"certificate document has unknown key(s) {', '.join(repr(k) for k in unknown)}")
    for key in ("kind", "verdict", "reason"):
        if not isinstance(data[key], str):
            raise ValueError(f"certificate {key} must be a string, got {data[key]!r}")
    if type(data["rank"]) is not int:
        raise ValueError(f"certificate rank must be an integer, got {data['rank']!r}")
    if not _is_number(data["radius"]):
        raise ValueError(f"certificate radius must be a number, got {data['radius']!r}")
    for key in ("enclosures", "bounds", "margins", "parameters") + (("diagnostics",) if "diagnostics" in data else ()):
        if not isinstance(data[key], Mapping):
            raise ValueError(f"certificate {key} must be an object, got {type(data[key]).__name__}")
    for name, pair in data["enclosures"].items():
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(v is None or _is_number(v) for v in pair)):
            raise ValueError(f"enclosure {name!r} must be a pair [lower, upper] of numbers or nulls, got {pair!r}")
    for key in ("bounds", "margins"):
        for name, v in data[key].items():
            if not (v is None or _is_number(v)):
                raise ValueError(f"{key[:-1]} {name!r} must be a number or null, got {v!r}")


def _array_to_json(a: np.ndarray, kind: str):
    """Nested lists, except for the large ``taylor_fp`` certificates: there the exact
    little-endian float64 bytes in base64 (:func:`landscape.runtime.store.encode`), 8 bytes
    per number instead of ~20 characters, and a fast exact round trip."""
    if kind == "taylor_fp":
        from ..runtime.store import encode

        return encode(np.asarray(a, dtype="<f8"))
    return a.tolist()


def _array_from_json(x) -> np.ndarray:
    if isinstance(x, dict):
        from ..runtime.store import decode

        if x.get("dtype") not in ("<f8", "float64"):
            raise ValueError(f"certificate arrays must be float64, got dtype {x.get('dtype')!r}")
        return np.asarray(decode(x), dtype=np.float64)
    try:
        return np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("certificate arrays must be rectangular nested lists of numbers") from None


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


#: The verifier of each certificate kind, ``fn(cert, problem, precision, max_points) -> bool``.
#: Each kind's module registers its own, so this module imports none of them.
_VERIFIERS: dict[str, Callable[..., bool]] = {}


def register_verifier(kind: str, fn: Callable[..., bool]) -> None:
    """Make ``fn`` the verifier of certificates of ``kind`` (called by the kind's module)."""
    _VERIFIERS[kind] = fn


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
        return _VERIFIERS[cert.kind](cert, problem, prec, max_points)
    except (ValueError, KeyError, TypeError, ArithmeticError):
        return False
