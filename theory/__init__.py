r"""Every statement of THEORY.md as a numerical check.

``python -m theory`` runs the registry and prints one row per statement:

``statement``
    The id used in THEORY.md (``Thm 3.1``, ``Prop 2``, ``App F.2``, ...).  Rows whose
    id contains ``control`` are *negative controls*: a hypothesis of the statement is
    deliberately violated (``T=2``, ``d=2k``) and the row PASSES when the conclusion
    is seen to FAIL, as the theory predicts.
``predicted``
    What the statement predicts (closed-form constants, ranks, signs).
``measured``
    What was measured; Monte-Carlo quantities are means whose standard errors define
    the tolerance (``--json`` also has 95% confidence intervals).
``verdict``
    ``PASS`` when every case of the check agrees with the prediction within its
    tolerance.  Tolerances are derived from the mathematics: 4 standard errors for
    Monte-Carlo means, SVD/eigenvalue backward-error bounds for ranks and zeros,
    residual-based bounds for identities at numerically found points, and rigorous
    ball arithmetic for the F.2 certificate.  A failing row is followed by its cases.

The process exits 0 when every row passes, 1 when any fails and 2 on bad arguments.

From Python::

    from theory import run
    report = run(["Thm 3.1"], seed=0, scale="quick")
    print(report.table(verbose=True))

Each check is also importable (``check_thm31`` etc.); it takes an explicit
:class:`numpy.random.Generator` and its sizes, and returns a frozen
:class:`CheckResult`.  Checks that compare with a closed-form constant accept the
formula as a keyword (``expected=``, ``needed_rank=``, ``floor=``, ``dof=``), so a
wrong constant can be injected and must make the check fail.
"""
from ._checks_minima import (
    UniquenessReport,
    check_f1,
    check_thm32,
    check_thm32_gd,
    check_thm33,
    check_thm33_control_d2k,
    check_thm33_control_t2,
    official_alternating_gd,
    thm32_structure,
    uniqueness_report,
    zero_loss_search,
)
from ._atlas import AtlasConfig, atlas, atlas_cell, atlas_units
from ._checks_rates import check_lemma1, check_rate_slopes, check_rates, lora_ml_needed_rank
from ._checks_calculus import check_schur
from ._checks_saddles import check_f2, check_thm34, t2_critical_points
from ._checks_sr import (
    check_appC,
    check_eq7_8,
    check_eq11_12,
    check_prop1,
    check_prop2,
    check_r31,
    check_thm31,
    prop1_needed_rank,
    prop2_floor,
    thm31_expected_sr_loss,
)
from ._linalg import random_okk, rrr_prediction_errors
from ._registry import (
    DEFAULT_SCALE,
    REGISTRY,
    SCALES,
    Check,
    Report,
    UnknownCheckError,
    check_ids,
    get_check,
    rng_for,
    run,
)
from ._result import Case, CheckResult
from ._slopes import SlopeFit, detection_power, linear_fit, loglog_slope, reps_for_power

from landscape.runtime.version import __version__

__all__ = [
    "__version__",
    "AtlasConfig",
    "Case",
    "Check",
    "CheckResult",
    "DEFAULT_SCALE",
    "REGISTRY",
    "Report",
    "SlopeFit",
    "SCALES",
    "UniquenessReport",
    "UnknownCheckError",
    "atlas",
    "atlas_cell",
    "atlas_units",
    "check_appC",
    "check_eq7_8",
    "check_eq11_12",
    "check_f1",
    "check_f2",
    "check_ids",
    "check_lemma1",
    "check_prop1",
    "check_prop2",
    "check_r31",
    "check_rate_slopes",
    "check_rates",
    "check_schur",
    "check_thm31",
    "check_thm32",
    "check_thm32_gd",
    "check_thm33",
    "check_thm33_control_d2k",
    "check_thm33_control_t2",
    "check_thm34",
    "detection_power",
    "get_check",
    "linear_fit",
    "loglog_slope",
    "lora_ml_needed_rank",
    "official_alternating_gd",
    "prop1_needed_rank",
    "prop2_floor",
    "random_okk",
    "reps_for_power",
    "rng_for",
    "rrr_prediction_errors",
    "run",
    "t2_critical_points",
    "thm31_expected_sr_loss",
    "thm32_structure",
    "uniqueness_report",
    "zero_loss_search",
]
