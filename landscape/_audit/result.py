"""The audit's result object: the report's data with accessors and a one-line repr.

Kept apart from :mod:`~landscape._audit.run` (which builds it) so that code reading a
report, and users scripting against it, need not hold the orchestration in their heads.
"""
from __future__ import annotations

from dataclasses import dataclass

from .._classify import SPURIOUS_CANDIDATE
from .._objective import LoraMLProblem

__all__ = ["AuditReport"]


@dataclass(frozen=True, eq=False)
class AuditReport:
    """Result of :func:`audit`.

    Attributes
    ----------
    data : dict
        The machine-readable report (what ``report.json`` holds).
    markdown : str
        The human summary (what ``report.md`` holds).
    files : tuple of str
        Files written (empty when ``out`` was None).
    problem : LoraMLProblem
    results : tuple of SearchResult
    classifications : tuple of Classification
    classes : tuple of CriticalClass
    certificates : dict
        Class id -> certificate object (or None) for spurious candidates.
    """

    data: dict
    markdown: str
    files: tuple
    problem: LoraMLProblem
    results: tuple
    classifications: tuple
    classes: tuple
    certificates: dict

    # ------------------------------------------------------------ accessors
    @property
    def summary(self) -> dict:
        """``report.json``'s ``summary``: counts per kind, classes, what was recovered."""
        return self.data["summary"]

    @property
    def counts(self) -> dict:
        """Runs per kind of endpoint (``global_minimum``, ``spurious_candidate``, ...)."""
        return dict(self.data["summary"]["counts"])

    @property
    def global_minimum_found(self) -> bool:
        return bool(self.data["summary"]["global_minimum_found"])

    @property
    def agrees(self):
        """True / False: the findings agree / contradict the applicable theorem; None: no
        theorem applies (``report.data["theory"]["not_applicable_reason"]`` says why)."""
        th = self.data["theory"]
        return th["agrees"] if th["applicable"] else None

    @property
    def theory(self) -> dict:
        return self.data["theory"]

    def class_entries(self, kind: str | None = None) -> list:
        """``report.json``'s class entries (in your units), optionally of one ``kind``."""
        return [c for c in self.data["classes"] if kind is None or c["kind"] == kind]

    def certificate(self, class_id: int):
        """The :class:`landscape.Certificate` of a spurious candidate class (for the tasks
        divided by :math:`2^e`, see ``data["input"]["scale_exponent"]``), or None."""
        return self.certificates.get(int(class_id))

    def certified_spurious(self) -> list:
        """``(class entry, Certificate)`` for every class certified to hold a spurious
        local minimum; ``Certificate.verify()`` re-checks one."""
        out = []
        for c in self.class_entries(SPURIOUS_CANDIDATE):
            cert = self.certificates.get(c["id"])
            if cert is not None and getattr(cert, "certified", False):
                out.append((c, cert))
        return out

    def __repr__(self) -> str:
        inp, sm = self.data["input"], self.data["summary"]
        parts = [f"{n} {kind.replace('_', ' ')}" for kind, n in sm["counts"].items() if n]
        agrees = self.agrees
        verdict = "no theorem applies" if agrees is None else ("agrees with theory" if agrees else "CONTRADICTS theory")
        text = (f"AuditReport(d={inp['d']}, T={inp['T']}, k={inp['k']}: {sm['n_runs']} runs -> "
                f"{sm['n_classes']} classes; {', '.join(parts) or 'nothing found'}; "
                f"certified spurious: {sm['certified_spurious']}; {verdict})")
        return text if len(text) <= 300 else text[:296] + "...)"

    __str__ = __repr__
