r"""The registry of checks: one entry per statement of THEORY.md, with sizes per scale.

Scales
------
``quick``
    Small sizes for the test-suite (a few seconds in all).
``paper``
    The sizes THEORY.md quotes for each reference check (the default; the whole
    registry runs in well under a minute on 2 cores).

Each check draws its random numbers from its own generator,
``numpy.random.default_rng([seed, crc32(id)])``, so a check gives the same numbers
whether it runs alone (``--only``) or with the whole registry.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from . import _checks_calculus as _calc
from . import _checks_enumeration as _en
from . import _checks_minima as _mn
from . import _checks_rates as _rt
from . import _checks_saddles as _sd
from . import _checks_sr as _sr
from ._result import CheckResult, Case, fmt

__all__ = [
    "Check",
    "Report",
    "REGISTRY",
    "SCALES",
    "DEFAULT_SCALE",
    "UnknownCheckError",
    "check_ids",
    "get_check",
    "rng_for",
    "run",
]

SCALES = ("quick", "paper")
DEFAULT_SCALE = "paper"


class UnknownCheckError(ValueError):
    """An id given to :func:`run` / ``--only`` is not in the registry."""


@dataclass(frozen=True)
class Check:
    """A registry entry.

    Attributes
    ----------
    id : str
        The statement id (as in THEORY.md).
    func : callable ``(rng, **sizes) -> CheckResult``
    sizes : mapping from scale name to keyword arguments of ``func``
    control : bool
        True for a negative control: a check that the conclusion *fails* where a
        hypothesis of the statement fails (its PASS means "failed as predicted").
    title : str
        One line of plain text for ``--help``.
    """

    id: str
    func: Callable[..., CheckResult]
    sizes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    control: bool = False
    title: str = ""

    def run(self, rng: np.random.Generator, scale: str = DEFAULT_SCALE, **overrides) -> CheckResult:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        kwargs = dict(self.sizes.get(scale, {}))
        kwargs.update(overrides)
        return self.func(rng, **kwargs)


def _normalise(check_id: str) -> str:
    return "".join(check_id.lower().split())


REGISTRY: tuple[Check, ...] = (
    Check(
        "R3.1",
        _sr.check_r31,
        {"quick": {"subsets": 50}, "paper": {}},
        title="task diversity: any min(d,Tk) columns of the U*_t are independent",
    ),
    Check(
        "Eq.(7)-(8)",
        _sr.check_eq7_8,
        {"quick": {"N": 50_000}, "paper": {}},
        title="infinite-sample loss: (E L^N - d sigma^2)/2 = ||A - A*_t||^2/2 (Monte Carlo)",
    ),
    Check(
        "Eq.(11)-(12)",
        _sr.check_eq11_12,
        {"quick": {"N": 5_000}, "paper": {}},
        title="SR closed form A_SR = mean of the A*_t (gradient, pooled OLS)",
    ),
    Check(
        "Thm 3.1",
        _sr.check_thm31,
        {"quick": {"draws": 5_000}, "paper": {}},
        title="expected SR training loss (T-1) k d(d+1)/2 (Monte Carlo)",
    ),
    Check(
        "Prop 1",
        _sr.check_prop1,
        {"quick": {}, "paper": {}},
        title="SR rank inflation; fine-tuning loss > 0 below rank min(d,(T+1)k), 0 at it",
    ),
    Check(
        "Prop 2",
        _sr.check_prop2,
        {"quick": {"T": 20_000}, "paper": {}},
        title="large-T floor of SR fine-tuning, k^2 (d-k')/2 (T = 5e4, running mean)",
    ),
    Check(
        "Lemma 1",
        _rt.check_lemma1,
        # repetitions sized for power against a 2% bias (theory._slopes) at both scales
        {"quick": {}, "paper": {}},
        title="reduced-rank regression error sigma^2 k'(2d-k') and its tail bound",
    ),
    Check(
        "Remark 3.2 / Cor 2 / Cor 4",
        _rt.check_rates,
        {"quick": {"reps": 150}, "paper": {}},
        title="fine-tuning error ratio SR / LoRA-ML; Cor 2 (T=2, 3k), Cor 4 (k)",
    ),
    Check(
        "Rates as slopes",
        _rt.check_rate_slopes,
        {"quick": {}, "paper": {}},
        title="log-log slopes with intervals: error vs n, k'(2d-k'), T (saturation); tail vs d",
    ),
    Check(
        "Eq.(34) / Thm B.1",
        _calc.check_schur,
        {"quick": {}, "paper": {}},
        title="derivatives (Taylor slopes), Hess G = Schur complement, Haynsworth",
    ),
    Check(
        "Thm 3.2 + Cor 1",
        _mn.check_thm32,
        {"quick": {"boosts": 4}, "paper": {}},
        title="structure of global minima on the T=2 O(k,k) family; rank-3k fine-tune",
    ),
    Check(
        "Thm 3.2 via GD",
        _mn.check_thm32_gd,
        {"quick": {}, "paper": {}},
        title="the same structure at the minimiser reached by the official GD (T=2)",
    ),
    Check(
        "App F.1",
        _mn.check_f1,
        {"quick": {"starts": 6}, "paper": {}},
        title="the hyperbola of global minima (4 branches) and nothing else",
    ),
    Check(
        "Thm 3.3 + Cor 3",
        _mn.check_thm33,
        {"quick": {"starts": 8, "gd_sizes": ((6, 3, 1),), "gd_outer": 1000}, "paper": {"starts": 75}},
        title="T>=3, d>=3k: global minimiser unique up to O(k); rank-k fine-tune",
    ),
    Check(
        "Thm 3.3 control: T=2",
        _mn.check_thm33_control_t2,
        {"quick": {"starts": 8}, "paper": {}},
        control=True,
        title="negative control: uniqueness must fail for T=2",
    ),
    Check(
        "Thm 3.3 control: d=2k",
        _mn.check_thm33_control_d2k,
        {"quick": {"starts": 8}, "paper": {}},
        control=True,
        title="negative control: uniqueness must fail for d=2k (section 4 instance)",
    ),
    Check(
        "Thm 3.4",
        _sd.check_thm34,
        {"quick": {"starts": 15}, "paper": {"starts": 100}},
        title="T=2: critical points with G>0 are strict saddles; Lemmas 3-7, Cor 5-6, (35)",
    ),
    Check(
        "App C",
        _sr.check_appC,
        {"quick": {"reps": 500}, "paper": {}},
        title="asymmetric adapters: ranks and the drift of the SR mean",
    ),
    Check(
        "App F.2",
        _sd.check_f2,
        {"quick": {}, "paper": {}},
        title="certified spurious local minimum for T=3 (landscape Taylor certificate)",
    ),
    Check(
        _en.CHECK_ID,
        _en.check_enumeration,
        # (3, 3, 1) costs 20-60 s of msolve on 2 cores: paper scale only
        {"quick": {"t2_instances": 1, "t3_instances": 0}, "paper": {"t2_instances": 3, "t3_instances": 1}},
        title="over every critical point (certified enumeration, extra 'algebra'): Thm 3.4 at T=2, Thm 3.3 "
              "uniqueness at T=3",
    ),
)


def check_ids() -> tuple[str, ...]:
    """The registry ids in run order."""
    return tuple(c.id for c in REGISTRY)


def get_check(check_id: str) -> Check:
    """Look up a check by id (case and spaces ignored)."""
    key = _normalise(check_id)
    for c in REGISTRY:
        if _normalise(c.id) == key:
            return c
    raise UnknownCheckError(
        f"unknown check id {check_id!r}; known ids: " + ", ".join(repr(i) for i in check_ids())
    )


def rng_for(seed: int, check_id: str) -> np.random.Generator:
    """The generator a check receives: independent of which other checks run."""
    return np.random.default_rng([int(seed), zlib.crc32(check_id.encode())])


@dataclass(frozen=True)
class Report:
    """All results of one :func:`run`."""

    results: tuple[CheckResult, ...]
    seed: int
    scale: str
    seconds: float

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def __getitem__(self, check_id: str) -> CheckResult:
        """The result of one statement by its id, e.g. ``report["Thm 3.1"]``."""
        for r in self.results:
            if r.id == check_id:
                return r
        raise KeyError(f"no result for {check_id!r}; ids: {', '.join(r.id for r in self.results)}")

    def __repr__(self) -> str:
        n_fail = len(self.failures)
        fails = "" if not n_fail else f"; FAILED: {', '.join(r.id for r in self.failures)}"
        text = (f"Report({len(self.results) - n_fail}/{len(self.results)} passed, scale={self.scale!r}, "
                f"seed={self.seed}, {self.seconds:.1f} s{fails})")
        return text if len(text) <= 300 else text[:296] + "...)"

    def to_dict(self) -> dict:
        return {
            "seed": self.seed,
            "scale": self.scale,
            "seconds": round(self.seconds, 3),
            "passed": self.passed,
            "n_checks": len(self.results),
            "n_failed": len(self.failures),
            "results": [{**r.to_dict(), "control": _is_control(r.id)} for r in self.results],
        }

    def table(self, *, width: int | None = None, verbose: bool = False, columns: int | None = None) -> str:
        """Plain-text table: statement, predicted, measured, verdict, seconds.

        Nothing is cut: long cells wrap inside their column.  ``width`` is the width of
        the predicted and measured columns; by default they share what ``columns``
        leaves (default: the terminal's width, :func:`shutil.get_terminal_size`, which
        reads ``COLUMNS`` and falls back to 80 when the output is not a terminal).
        """
        import shutil
        import textwrap

        idw = max(len("statement"), *(len(r.id) for r in self.results)) if self.results else 9
        if width is None:
            total = columns if columns is not None else shutil.get_terminal_size((80, 24)).columns
            longest = max([len(" ".join(str(x).split())) for r in self.results for x in (r.predicted, r.measured)],
                          default=9)
            width = min(max(20, (total - idw - 2 - 2 - 2 - 7 - 2 - 6) // 2), max(longest, len("predicted")))
        width = max(8, int(width))

        def wrap(s: str, w: int) -> list[str]:
            return textwrap.wrap(" ".join(str(s).split()), w, break_long_words=True, break_on_hyphens=False) or [""]

        head = f"{'statement':<{idw}}  {'predicted':<{width}}  {'measured':<{width}}  verdict  {'s':>6}"
        lines = [head, "-" * len(head)]
        for r in self.results:
            pred, meas = wrap(r.predicted, width), wrap(r.measured, width)
            for j in range(max(len(pred), len(meas))):
                first = j == 0
                row = (f"{r.id if first else '':<{idw}}  {pred[j] if j < len(pred) else '':<{width}}  "
                       f"{meas[j] if j < len(meas) else '':<{width}}")
                lines.append((row + f"  {r.verdict:<7}  {r.seconds:6.2f}") if first else row.rstrip())
            if verbose or not r.passed:
                indent = " " * (idw + 4)
                for c in r.cases:
                    mark = "ok " if c.passed else "BAD"
                    text = (f"{mark} {c.label}: predicted {fmt(c.predicted)}, measured {fmt(c.measured)}, "
                            f"tol {fmt(c.tolerance)}")
                    lines += textwrap.wrap(" ".join(text.split()), max(40, len(head)), initial_indent=indent,
                                           subsequent_indent=indent + "    ", break_on_hyphens=False)
                if r.notes and not r.passed:
                    lines += textwrap.wrap(f"note: {r.notes}", max(40, len(head)), initial_indent=indent,
                                           subsequent_indent=indent + "    ")
        n_fail = len(self.failures)
        lines.append("-" * len(head))
        lines.append(
            f"{len(self.results) - n_fail}/{len(self.results)} passed"
            f" (scale={self.scale}, seed={self.seed}, {self.seconds:.1f} s)"
            + ("" if not n_fail else "; FAILED: " + ", ".join(r.id for r in self.failures))
        )
        return "\n".join(lines)


def _is_control(check_id: str) -> bool:
    try:
        return get_check(check_id).control
    except UnknownCheckError:
        return False


def _error_result(check: Check, exc: BaseException, started: float) -> CheckResult:
    msg = f"{type(exc).__name__}: {exc}"
    return CheckResult(
        id=check.id,
        reference="",
        hypotheses="",
        predicted="(check raised an exception)",
        measured="error",
        tolerance="",
        tolerance_why="",
        passed=False,
        seconds=time.perf_counter() - started,
        cases=(Case("exception", "no exception", msg, "", False),),
        notes=msg,
    )


def run(
    ids: Iterable[str] | None = None,
    *,
    seed: int = 0,
    scale: str = DEFAULT_SCALE,
    progress: bool = False,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Report:
    """Run the registry (or the checks named in ``ids``) and return a :class:`Report`.

    Parameters
    ----------
    ids : iterable of str, optional
        Check ids (case and spaces ignored); all checks when omitted.
    seed : int
        Master seed; check ``id`` receives :func:`rng_for` ``(seed, id)``.
    scale : {"quick", "paper"}
    progress : bool
        Show a tqdm progress bar on stderr.
    overrides : mapping id -> keyword arguments, optional
        Extra keyword arguments for individual checks (e.g. an injected formula).

    Raises
    ------
    UnknownCheckError
        If an id is not in the registry.
    ValueError
        If ``scale`` is unknown.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if ids is None:
        selected: Sequence[Check] = REGISTRY
    else:
        selected = []
        for i in ids:
            c = get_check(i)
            if c not in selected:
                selected.append(c)
    extra = {get_check(k).id: v for k, v in (overrides or {}).items()}
    t0 = time.perf_counter()
    results = []
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=len(selected), file=sys.stderr, unit="check", leave=False, disable=None)
    try:
        for c in selected:
            if bar is not None:
                bar.set_description(c.id)
            started = time.perf_counter()
            try:
                res = c.run(rng_for(seed, c.id), scale, **extra.get(c.id, {}))
            except Exception as exc:  # a crashing check is a failed check, reported as such
                res = _error_result(c, exc, started)
            results.append(res)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return Report(tuple(results), int(seed), scale, time.perf_counter() - t0)
