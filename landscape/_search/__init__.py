r"""Critical-point search on the reduced LoRA-ML objective :math:`G` (THEORY.md section 5).

Every critical point of the joint loss :math:`\mathcal L` is :math:`(A(\mathbf U),\mathbf U)`
with :math:`\nabla G(\mathbf U)=0`, and local minima correspond one to one (section 5,
"Equivalences"), so all searches run on :math:`G` in the variables
:math:`\mathbf U\in\mathbb R^{T\times d\times k}`.

Four families of searches are provided:

* :func:`gradient_descent` -- multistart gradient descent, vectorised over the starts
  (Barzilai-Borwein step with Armijo backtracking, one batched residual per trial);
* :func:`perturbed_gradient_descent` -- the same iteration with random perturbations in
  a small ball whenever the gradient is small (Jin et al. 2017), which escapes strict
  saddles and stops at approximate second-order stationary points;
* :func:`trust_region_newton` -- a second-order method (scipy ``trust-exact`` / ``trust-ncg`` with
  the analytic Hessian-vector product of section 5) and :func:`lbfgs`;
* :func:`gradient_root` -- root finding on :math:`\nabla G=0` with the analytic
  Jacobian :math:`S=\nabla^2G` (``hybr`` or ``lm``), which also lands on saddles, as in
  the checks of THEORY.md section 6 (Thm 3.4) and section 8 (App. F.2).

Each run ends with a few Newton steps on :math:`\nabla G=0` (pseudo-inverse on the
symmetry kernel) so that the second-order classification is done at a point whose
gradient is at round-off level, then the spectrum of :math:`S` on the quotient by
:math:`O(k)` is computed with :func:`landscape.reduced_spectrum`.  Each run is
returned as a frozen :class:`SearchResult`.

Curvature is either ``"dense"`` (the Schur complement :math:`S` as a matrix) or
``"hvp"`` (Hessian-vector products only: Lanczos for the spectrum, MINRES for Newton
steps, matrix-free least squares for root finding); :func:`curvature_mode` chooses.

Rooms: :mod:`~landscape._search.result` (:class:`SearchResult`, the methods' names and
budgets, the natural scale, random starts), :mod:`~landscape._search.cost` (which
curvature mode fits in memory, and what an audit will cost), :mod:`~landscape._search.descent`
(the batched first-order engine), :mod:`~landscape._search.polish` (Newton polish) and
:mod:`~landscape._search.methods` (the searches and :func:`search`).  Every name of the
former single module ``landscape._search`` is available here.
"""
from .cost import (  # noqa: F401
    AUTO_DENSE_MAX_BYTES,
    AuditCost,
    COST_ENUMERATION,
    COST_FIXED,
    COST_PER_DENSE_SQUARE,
    COST_PER_KERNEL_ENTRY,
    COST_PER_KERNEL_START,
    COST_PER_PAIR,
    COST_PER_PAIR_ENTRY,
    COST_PER_R31_PAIR,
    COST_PER_START,
    COST_PER_START_ENTRY,
    COST_PLOTS,
    CurvatureMode,
    ESTIMATE_BASIS,
    MEMORY_BASE_BYTES,
    MEMORY_DENSE_BLOCK_COPIES,
    MEMORY_DENSE_S_COPIES,
    MEMORY_ENUMERATION_BYTES,
    MEMORY_PER_TASK_BYTES,
    MEMORY_PLOTS_BYTES,
    MEMORY_TASK_COPIES,
    START_COPIES,
    _factored_min_d,
    available_memory_bytes,
    curvature_mode,
    dense_schur_bytes,
    estimate_audit_cost,
)
from .descent import (  # noqa: F401
    ARMIJO_C,
    ARMIJO_MAX_HALVINGS,
    PGD_DECREASE_REL,
    PGD_ESCAPE_ITERS,
    PGD_GRAD_REL,
    PGD_MAX_PERTURBATIONS,
    PGD_RADIUS_REL,
    _DenseBatch,
    _FactoredBatch,
    _batched_loss_grad,
    _batched_residual,
    _descent_batch,
    _grad_from_residual,
    _norms,
)
from .methods import (  # noqa: F401
    _Diverged,
    _common,
    _expand_methods,
    _finish,
    _flat_fg,
    _newton_minres_root,
    _reindex,
    default_spectrum_count,
    gradient_descent,
    gradient_root,
    lbfgs,
    perturbed_gradient_descent,
    search,
    trust_region_newton,
)
from .polish import (  # noqa: F401
    LM_DAMPINGS,
    MINRES_MAXITER,
    PINV_RTOL,
    POLISH_GTOL_REL,
    POLISH_MAX_STEPS,
    newton_polish,
)
from .result import (  # noqa: F401
    _SCALE_CACHE,
    DEFAULT_MAX_ITER,
    SEARCH_GTOL_REL,
    SEARCH_METHODS,
    SearchResult,
    problem_scale,
    random_starts,
)

__all__ = [
    "SEARCH_METHODS",
    "SearchResult",
    "CurvatureMode",
    "curvature_mode",
    "problem_scale",
    "random_starts",
    "gradient_descent",
    "perturbed_gradient_descent",
    "lbfgs",
    "trust_region_newton",
    "gradient_root",
    "newton_polish",
    "search",
    "AuditCost",
    "estimate_audit_cost",
]
