"""Synthetic figures and tables: Figure 1 (linear model, :mod:`figures._figure1`), the
shallow-network figures for the five sweeps and the shallow-network result tables
(:mod:`figures._shallow`), THEORY.md 9.1-9.4; what they share is :mod:`figures._sweeps`.

Importing this module registers them all; every name of the former single module is
available here.
"""
from __future__ import annotations

from ._figure1 import (  # noqa: F401
    _LINEAR_PAPER,
    _LINEAR_SMOKE,
    _OFFICIAL_OPTIONS,
    PER_SAMPLE_SWEEPS,
    _linear_group_unit,
    _linear_points,
    OFFICIAL_DEVIATIONS,
    compute_figure1,
    figure1_claims,
    figure1_deviations,
    format_figure1_summary,
    render_figure1,
)
from ._shallow import (  # noqa: F401
    _SHALLOW_PAPER,
    _SHALLOW_SMOKE,
    PAPER_DECIMALS,
    PAPER_SHALLOW_TABLES,
    PAPER_TABLE_CONFIDENCE,
    _figure_order,
    _run_shallow_units,
    _shallow_chunk_unit,
    _shallow_points,
    _units_root,
    compute_shallow_sweep,
    compute_shallow_tables,
    format_shallow_tables,
    render_shallow_sweep,
    render_shallow_tables,
    shallow_claims,
    shallow_table_rows,
)
from ._sweeps import (  # noqa: F401
    _SWEEP_LABEL,
    METHOD_CMAP,
    METHOD_LABELS,
    METHOD_STYLE,
    PAGE_WIDTH_IN,
    PLOT_MAX_POINTS,
    SAVE_DPI,
    SWEEPS,
    VECTOR_FORMATS,
    VALUE_MARKERS,
    _central,
    _central_clip,
    _central_range_words,
    _executor_or_default,
    _marker_positions,
    claim_lines,
    _has_display,
    _key,
    _method_colors,
    _plt,
    _save,
    _thin,
    _write_md,
    trial_seeds,
)

__all__ = ["PAPER_SHALLOW_TABLES", "SWEEPS", "trial_seeds", "shallow_table_rows", "format_shallow_tables"]
