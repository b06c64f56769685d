r"""Result objects of the theory checks and the small statistics they share.

A check returns one :class:`CheckResult`.  Most statements are verified on several
configurations (sizes, instances, branches); each configuration is a :class:`Case`
with its own predicted value, measured value, tolerance and verdict, and the check
passes when every case passes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "Case",
    "CheckResult",
    "mean_and_se",
    "ratio_of_means",
    "clopper_pearson",
    "Z_CRITICAL",
    "CI_LEVEL",
    "EPS",
    "make_result",
    "normal_ci",
    "fmt",
]

#: Two-sided critical value for Monte-Carlo agreement: a correct formula fails a
#: single comparison with probability :math:`2\Phi(-4)\approx 6\cdot10^{-5}`, so
#: the whole registry (a few dozen comparisons) passes with probability > 0.99 on
#: any seed, while a wrong constant that moves the mean by more than 4 standard
#: errors is caught.
Z_CRITICAL = 4.0

#: Level of the confidence intervals reported next to Monte-Carlo estimates.
CI_LEVEL = 0.95

#: Machine epsilon of float64; floating-point tolerances are multiples of it.
EPS = float(np.finfo(float).eps)


def _plain(x: Any) -> Any:
    """Convert numpy scalars/arrays and tuples into JSON-friendly Python objects."""
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else repr(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    return x


@dataclass(frozen=True)
class Case:
    """One configuration of a check.

    Attributes
    ----------
    label : str
        What was tested, e.g. ``"d=10 k=1 T=3"``.
    predicted : float or str
        The value (or relation) the statement predicts.
    measured : float or str
        What was measured.
    tolerance : float or str
        The allowed discrepancy (its meaning is stated in the check's
        ``tolerance_why``).
    passed : bool
        Verdict of this case.
    ci : tuple of float, optional
        Confidence interval of ``measured`` (Monte-Carlo cases only).
    """

    label: str
    predicted: Any
    measured: Any
    tolerance: Any
    passed: bool
    ci: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        return _plain(
            {
                "label": self.label,
                "predicted": self.predicted,
                "measured": self.measured,
                "tolerance": self.tolerance,
                "ci": self.ci,
                "passed": self.passed,
            }
        )


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check of a THEORY.md statement.

    Attributes
    ----------
    id : str
        Registry id (the tag used in THEORY.md, e.g. ``"Thm 3.1"``).
    reference : str
        Where the statement lives (paper and THEORY.md section / equation).
    hypotheses : str
        The hypotheses under which the statement is tested (for a negative control:
        the hypothesis that is deliberately violated).
    predicted, measured : str
        One-line summaries for the table; the numbers are in ``cases``.
    tolerance : str
        One-line summary of the tolerance.
    tolerance_why : str
        Why the tolerance has that size (standard errors, conditioning, solver
        accuracy, floating-point error bounds).
    passed : bool
        True iff every case passed.
    seconds : float
        Wall time of the check.
    cases : tuple of Case
    ci : tuple of float, optional
        Headline confidence interval (Monte-Carlo checks).
    notes : str
        Anything a reader needs to interpret the result (e.g. which certificate was
        used).
    skipped : str
        Non-empty (one line: why) when the check could not run here, e.g. an optional
        solver is not installed; it then counts as passed and its verdict is ``SKIP``.
    """

    id: str
    reference: str
    hypotheses: str
    predicted: str
    measured: str
    tolerance: str
    tolerance_why: str
    passed: bool
    seconds: float
    cases: tuple[Case, ...] = field(default_factory=tuple)
    ci: tuple[float, float] | None = None
    notes: str = ""
    skipped: str = ""

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "SKIP"
        return "PASS" if self.passed else "FAIL"

    def __repr__(self) -> str:
        text = (f"CheckResult({self.id!r}: {self.verdict}, {len(self.cases)} cases, "
                f"predicted {' '.join(self.predicted.split())!r}, measured {' '.join(self.measured.split())!r})")
        return text if len(text) <= 300 else text[:296] + "...)"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "reference": self.reference,
            "hypotheses": self.hypotheses,
            "predicted": self.predicted,
            "measured": self.measured,
            "ci": _plain(self.ci),
            "tolerance": self.tolerance,
            "tolerance_why": self.tolerance_why,
            "verdict": self.verdict,
            "seconds": round(float(self.seconds), 4),
            "notes": self.notes,
            "skipped": self.skipped,
            "cases": [c.to_dict() for c in self.cases],
        }


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------
def mean_and_se(samples: np.ndarray) -> tuple[float, float]:
    """Sample mean and its standard error (ddof=1) along the first axis."""
    x = np.asarray(samples, dtype=float)
    n = x.shape[0]
    if n < 2:
        raise ValueError("need at least two samples for a standard error")
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(n))


def normal_ci(mean: float, se: float, level: float = CI_LEVEL) -> tuple[float, float]:
    """Two-sided normal confidence interval ``mean +- z se``."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    return (mean - z * se, mean + z * se)


def ratio_of_means(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    r"""Ratio :math:`\bar a/\bar b` of two independent sample means and its
    delta-method standard error
    :math:`\frac{\bar a}{\bar b}\sqrt{(se_a/\bar a)^2 + (se_b/\bar b)^2}`."""
    ma, sa = mean_and_se(a)
    mb, sb = mean_and_se(b)
    r = ma / mb
    return r, abs(r) * math.sqrt((sa / ma) ** 2 + (sb / mb) ** 2)


def clopper_pearson(successes: int, n: int, level: float) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided confidence interval for a binomial proportion."""
    alpha = 1.0 - level
    lo = 0.0 if successes == 0 else float(stats.beta.ppf(alpha / 2, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(stats.beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return lo, hi


def fmt(x: Any, digits: int = 4) -> str:
    """Short human-readable number for tables."""
    if isinstance(x, str):
        return x
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if x == 0.0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits}g}"
    return f"{x:.{max(digits - 2, 1)}e}"


def make_result(
    id: str,
    *,
    reference: str,
    hypotheses: str,
    predicted: str,
    measured: str,
    tolerance: str,
    tolerance_why: str,
    cases,
    started: float,
    ci: tuple[float, float] | None = None,
    notes: str = "",
) -> CheckResult:
    """Assemble a :class:`CheckResult`; the verdict is the conjunction of the cases.

    ``started`` is a :func:`time.perf_counter` reading taken when the check began.
    """
    import time

    cases = tuple(cases)
    if not cases:
        raise ValueError(f"check {id!r} produced no cases")
    return CheckResult(
        id=id,
        reference=reference,
        hypotheses=hypotheses,
        predicted=predicted,
        measured=measured,
        tolerance=tolerance,
        tolerance_why=tolerance_why,
        passed=all(bool(c.passed) for c in cases),
        seconds=time.perf_counter() - started,
        cases=cases,
        ci=ci,
        notes=notes,
    )
