"""The landscape audit (:func:`audit`), in rooms by what changes together.

* :mod:`~landscape._audit.run`: validating the input, certifying spurious candidates
  and putting the findings together (:func:`audit`, :class:`AuditReport`);
* :mod:`~landscape._audit.search`: running the critical-point searches as executor units;
* :mod:`~landscape._audit.theory`: judging the findings against the theorems of
  THEORY.md (:func:`theory_assessment`, R3.1, model M1, zero modes, the T = 2 continuum);
* :mod:`~landscape._audit.report`: the entries of ``report.json`` and ``report.md``;
* :mod:`~landscape._audit.units`: the user's units and the JSON form of numbers;
* :mod:`~landscape._audit.plots`: the plots (SVG, drawn by :mod:`~landscape._audit.svg`).

Every name of the former single module ``landscape._audit`` is available here.
"""
from .plots import (  # noqa: F401
    _COLORS,
    HIST_BINS,
    HIST_MIN_SPAN,
    MAX_SPECTRUM_PLOTS,
    _plot_losses,
    _plot_orbit,
    _plot_saddle,
    _plot_spectrum,
)
from .report import MAX_LISTED_RUNS, REPORT_SCHEMA_VERSION, _class_dict, _markdown  # noqa: F401
from .run import (  # noqa: F401
    BOOST_RATIO,
    DEFAULT_STARTS,
    DIVERGENCE_FACTOR,
    AuditReport,
    _as_input,
    _audit_body,
    _certify,
    _divergence,
    _normalised,
    audit,
    scale_exponent,
)
from .search import (  # noqa: F401
    STARTS_PER_UNIT,
    _blas_limits,
    _result_from_json,
    _result_to_json,
    _search_units,
    search_unit,
)
from .theory import (  # noqa: F401
    CONTINUUM_SAMPLE_BOOSTS,
    M1_SYMMETRY_RTOL,
    R31_RTOL,
    R31_SUBSETS,
    _continuum_summary,
    _model_m1_check,
    _r31_check,
    _zero_mode_note,
    _zero_mode_origin,
    _zero_mode_summary,
    theory_assessment,
)
from .units import MAX_JSON_MATRIX_ENTRIES, _num, _one_line, _sanitize, _Units  # noqa: F401

__all__ = ["AuditReport", "audit", "theory_assessment", "REPORT_SCHEMA_VERSION", "DEFAULT_STARTS"]
