"""The LoRA-ML objective as a mathematical object (THEORY.md sections 2, 5-8).

Public surface: the problem object with its derivatives, curvature on the quotient by
O(k), derivative diagnostics, and the instances used throughout the toolkit.
"""
from ._curvature import (
    DENSE_EIGH_MAX_DIM,
    ZERO_EIGENVALUE_RTOL,
    SpectrumSummary,
    haynsworth_inertia_check,
    inertia,
    quotient_basis,
    quotient_hessian,
    reduced_spectrum,
    smallest_eigenpairs,
    symmetry_tangent_basis,
)
from ._diagnostics import TaylorCheck, finite_difference_gradient, taylor_check
from ._instances import (
    PlantedInstance,
    f1_instance,
    f1_point,
    f2_spurious_instance,
    random_instance,
    thm33_counterexample_instance,
    thm33_counterexample_minimiser,
)
from ._objective import LoraMLProblem, commutation_matrix, unvec, unvec_factors, vec, vec_factors
from ._validation import LandscapeInputError

from .runtime.version import __version__

__all__ = [
    "__version__",
    "LoraMLProblem",
    "LandscapeInputError",
    "PlantedInstance",
    "SpectrumSummary",
    "TaylorCheck",
    "DENSE_EIGH_MAX_DIM",
    "ZERO_EIGENVALUE_RTOL",
    "commutation_matrix",
    "f1_instance",
    "f1_point",
    "f2_spurious_instance",
    "finite_difference_gradient",
    "haynsworth_inertia_check",
    "inertia",
    "quotient_basis",
    "quotient_hessian",
    "random_instance",
    "reduced_spectrum",
    "smallest_eigenpairs",
    "symmetry_tangent_basis",
    "taylor_check",
    "thm33_counterexample_instance",
    "thm33_counterexample_minimiser",
    "unvec",
    "unvec_factors",
    "vec",
    "vec_factors",
]

from .certificates import (  # noqa: E402  (certificates, THEORY.md section 8)
    VERDICT_LOCAL_MIN,
    VERDICT_NONE,
    VERDICT_SPURIOUS,
    Certificate,
    CertificateNotApplicable,
    CertificateTooLarge,
    epsilon_net_certificate,
    net_size_estimate,
    polish_critical_point,
    taylor_certificate,
    verify_certificate,
)

__all__ += [
    "polish_critical_point",
    "Certificate",
    "CertificateNotApplicable",
    "CertificateTooLarge",
    "VERDICT_LOCAL_MIN",
    "VERDICT_NONE",
    "VERDICT_SPURIOUS",
    "epsilon_net_certificate",
    "net_size_estimate",
    "taylor_certificate",
    "verify_certificate",
]

from ._search import (  # noqa: E402  (critical-point search, THEORY.md sections 5-6)
    SEARCH_METHODS,
    AuditCost,
    SearchResult,
    curvature_mode,
    estimate_audit_cost,
    gradient_descent,
    gradient_root,
    lbfgs,
    newton_polish,
    perturbed_gradient_descent,
    random_starts,
    search,
    trust_region_newton,
)
from ._classify import Classification, CriticalClass, classify, deduplicate  # noqa: E402
from ._io import TaskInput, load_tasks  # noqa: E402
from ._audit import AuditReport, audit  # noqa: E402

__all__ += [
    "SEARCH_METHODS",
    "AuditCost",
    "SearchResult",
    "estimate_audit_cost",
    "curvature_mode",
    "gradient_descent",
    "gradient_root",
    "lbfgs",
    "newton_polish",
    "perturbed_gradient_descent",
    "random_starts",
    "search",
    "trust_region_newton",
    "Classification",
    "CriticalClass",
    "classify",
    "deduplicate",
    "TaskInput",
    "load_tasks",
    "AuditReport",
    "audit",
]

from .enumeration import EnumerationResult, enumerate_critical_points  # noqa: E402  (issue 20)

__all__ += ["EnumerationResult", "enumerate_critical_points"]

from ._instances import F2Instance  # noqa: E402
from ._random import Size, as_generator, seed_from  # noqa: E402  (one convention, see landscape._random)

__all__ += ["F2Instance", "Size", "as_generator", "seed_from"]
