r"""What a search costs before it runs: whether the dense Schur complement fits in
memory (:func:`curvature_mode`), and the audit's predicted wall time and peak memory
(:func:`estimate_audit_cost`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .._curvature import DENSE_EIGH_MAX_DIM
from .._objective import LoraMLProblem
from .._validation import LandscapeInputError
from .polish import MINRES_MAXITER, POLISH_MAX_STEPS

#: Memory above which the ``auto`` mode stops building the dense Schur complement.
#: ``LoraMLProblem.schur_complement`` forms the T blocks B_t of size d^2 x dk and a
#: few temporaries of that size; beyond ~256 MiB this costs more than a second per
#: point on 2 cores, while Hessian-vector products cost O(T d^2 k) each.
AUTO_DENSE_MAX_BYTES = 256 * 2**20


@dataclass(frozen=True)
class CurvatureMode:
    """How second-order information is obtained, and why.

    ``mode`` is ``"dense"`` (the Schur complement as a matrix, dense ``eigh``) or
    ``"hvp"`` (Hessian-vector products: Lanczos, MINRES, matrix-free least squares).
    """

    mode: str
    reason: str
    dense_bytes: int = field(default=0)


def dense_schur_bytes(problem: LoraMLProblem) -> int:
    """Bytes needed to build the dense Schur complement with the core routine."""
    T, d, k = problem.T, problem.d, problem.k
    # four d^2 x dk arrays per task (two Kronecker products, their sum, the
    # concatenation) plus S and its eigendecomposition (three n x n arrays).
    return int(8 * (4 * T * d * d * d * k + 3 * problem.dim_U**2))


def available_memory_bytes() -> int:
    """Memory the process may still allocate: ``MemAvailable`` (else total RAM),
    capped by a cgroup memory limit when one is set (containers, CI runners)."""
    import os

    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
            avail = 2**34
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit():
            avail = min(avail, int(text))
    return avail


def curvature_mode(problem: LoraMLProblem, requested: str = "auto") -> CurvatureMode:
    """Choose dense or Hessian-vector-product curvature for ``problem``.

    Parameters
    ----------
    requested : {"auto", "dense", "hvp"}
        ``"dense"`` raises :class:`LandscapeInputError` when the dense Schur complement
        would not fit in the available memory; ``"auto"`` uses it only when
        ``dim_U <= DENSE_EIGH_MAX_DIM`` and it needs at most
        :data:`AUTO_DENSE_MAX_BYTES`.
    """
    need = dense_schur_bytes(problem)
    n = problem.dim_U
    if requested == "hvp":
        return CurvatureMode("hvp", "Hessian-vector products requested", need)
    if requested == "dense":
        avail = available_memory_bytes()
        if need > avail:
            raise LandscapeInputError(
                f"dense Hessian does not fit in memory: building S for (T, d, k) = "
                f"({problem.T}, {problem.d}, {problem.k}) needs {need / 2**30:.1f} GiB, "
                f"{avail / 2**30:.1f} GiB available; use Hessian-vector products (--curvature hvp)"
            )
        return CurvatureMode("dense", "dense Schur complement requested", need)
    if requested != "auto":
        raise LandscapeInputError(f"unknown curvature mode {requested!r}: use auto, dense or hvp")
    if n <= DENSE_EIGH_MAX_DIM and need <= AUTO_DENSE_MAX_BYTES:
        return CurvatureMode("dense", f"dim_U = {n} is small: dense Schur complement", need)
    return CurvatureMode(
        "hvp",
        f"large problem (dim_U = {n}, dense Schur complement would need "
        f"{need / 2**20:.0f} MiB): switched to Hessian-vector products (Lanczos, MINRES)",
        need,
    )


#: Cost model of :func:`estimate_audit_cost`, fitted to full audits of planted
#: (d, 3, 1) instances with 10 starts on 2 shared cores (load 3-6): d = 500, 1000,
#: 2000 took 2.3, 6.7 and 35 s.  Per start and per stored task entry (T d^2 k) the
#: searches, polish, spectra and classification cost COST_PER_START_ENTRY seconds
#: (about 160 products with the task matrices per start, memory bound); the model-M1
#: check of the audit runs T(T-1)/2 dense eigvalsh, COST_PER_EIG_FLOP seconds per d^3;
#: the dense-curvature path (small problems) costs COST_PER_DENSE_FLOP per flop of the
#: ~(POLISH_MAX_STEPS + 2) dense eigendecompositions of S per start (9 n^3 flops each);
#: COST_FIXED covers imports, report and plots.
COST_PER_START_ENTRY = 2.6e-7


COST_PER_EIG_FLOP = 1.0e-10


#: For k >= 2 the O(k) orbit makes S singular at every critical point, and the MINRES
#: solves of the polish and of the matrix-free root finder run to their cap: about
#: KERNEL_SOLVES_PER_START solves of MINRES_MAXITER Hessian-vector products per start,
#: each costing COST_PER_HVP_ENTRY per stored entry T d^2 k plus COST_PER_HVP_CALL of
#: interpreter overhead (measured: (200, 3, 2) x 20 starts, 32 s).
KERNEL_SOLVES_PER_START = 10


COST_PER_HVP_ENTRY = 6e-10


COST_PER_HVP_CALL = 1e-4


COST_PER_DENSE_FLOP = 1.0e-9


COST_FIXED = 2.0


#: The estimate is multiplied by this before it is compared with a limit: the fit's
#: worst under-prediction was 1.3x, and a busy machine is 1.5x slower again.
COST_SAFETY = 2.0


#: Resident memory besides the arrays: interpreter, numpy/scipy/matplotlib (measured
#: ~150 MiB) with margin.
MEMORY_BASE_BYTES = 256 * 2**20


#: Copies of the T d^2 task entries alive at the peak (input, the problem's stack,
#: its deviations and their symmetric part, the mean, one d x d buffer per dense check
#: and eigvalsh workspace); measured peak RSS of the d = 2000 audit: 0.94 GiB.
MEMORY_TASK_COPIES = 8


@dataclass(frozen=True)
class AuditCost:
    """Up-front estimate of an audit's wall time and peak memory (safety factor included)."""

    seconds: float
    bytes: int
    curvature: str
    detail: str

    def describe(self) -> str:
        return (f"estimated {self.seconds:.0f} s and {self.bytes / 2**30:.2f} GiB "
                f"({self.curvature} curvature; {self.detail}; safety factor {COST_SAFETY:g} included)")


def estimate_audit_cost(d: int, T: int, k: int, starts: int, *, curvature: str = "auto") -> AuditCost:
    r"""Estimate the wall time and peak memory of ``landscape.audit`` on ``(d, T, k)``
    with ``starts`` starts, from the per-operation costs above times :data:`COST_SAFETY`.

    Time: ``starts * T d^2 k`` entry-products (searches, polish, Lanczos spectra,
    classification), ``T(T-1)/2`` dense eigvalsh of :math:`d\times d` differences
    (model-M1 check), and in dense-curvature mode the eigendecompositions of the
    :math:`n\times n` Schur complement (:math:`n=Tdk`).  Memory: the task copies, the
    batched starts, and the dense Schur complement when it is built.
    """
    d, T, k, starts = int(d), int(T), int(k), max(int(starts), 1)
    n = T * d * k
    entries = T * d * d * k
    dense_bytes = int(8 * (4 * T * d * d * d * k + 3 * n * n))
    dense = curvature == "dense" or (curvature == "auto" and n <= DENSE_EIGH_MAX_DIM
                                      and dense_bytes <= AUTO_DENSE_MAX_BYTES)
    t_search = COST_PER_START_ENTRY * starts * entries
    if k >= 2 and not dense:
        t_search += starts * KERNEL_SOLVES_PER_START * MINRES_MAXITER * (COST_PER_HVP_ENTRY * entries
                                                                         + COST_PER_HVP_CALL)
    t_eig = COST_PER_EIG_FLOP * (T * (T - 1) / 2) * d**3
    t_dense = COST_PER_DENSE_FLOP * starts * (POLISH_MAX_STEPS + 2) * 9.0 * n**3 if dense else 0.0
    seconds = COST_SAFETY * (COST_FIXED + t_search + t_eig + t_dense)
    batch = 8 * starts * T * d * k * 16  # U, gradients, BB history, trial points of a batch
    residual_batch = 0 if d >= _factored_min_d() else 8 * 3 * starts * T * d * d
    mem = MEMORY_BASE_BYTES + 8 * MEMORY_TASK_COPIES * T * d * d + batch + residual_batch
    if dense:
        mem += dense_bytes
    detail = (f"searches {t_search:.1f} s, dense checks {t_eig:.1f} s"
              + (f", dense Schur complements {t_dense:.1f} s" if dense else ""))
    return AuditCost(float(seconds), int(mem), "dense" if dense else "hvp", detail)


def _factored_min_d() -> int:
    from .. import _factored

    return _factored.FACTORED_MIN_D
