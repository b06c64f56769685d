r"""What a search costs before it runs: whether the dense Schur complement fits in
memory (:func:`curvature_mode`), and the audit's predicted wall time and peak memory
(:func:`estimate_audit_cost`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .._curvature import DENSE_EIGH_MAX_DIM
from .._objective import LoraMLProblem
from .._validation import LandscapeInputError

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


#: Cost model of :func:`estimate_audit_cost` (issue 17, item 6): CPU seconds of one idle
#: core and peak resident memory of the whole ``python -m landscape audit`` command,
#: fitted by ``benchmarks/bench_estimates.py`` to measured audits of planted instances
#: over a grid of sizes -- large T (d = 3, T up to 1000), large d (T = 3, d up to 2000),
#: k = 1, 2, 3, dense and Hessian-vector-product curvature, with and without plots --
#: each run in a child process of its own whose CPU time and peak RSS ``os.wait4``
#: reports.  The record ``benchmarks/records/estimates.json`` holds the grid, the
#: measurements and these estimates; ``tests/test_estimates_record.py`` checks that
#: every measured / estimated ratio lies in [1/2, 2] and that this code still gives the
#: stored estimates (so a changed model needs a new measurement).
#:
#: The coefficients were fitted (least squares on relative errors, non-negative) to two
#: earlier measurements of the grid (CPU times of the same size differed by up to 40%
#: between them on the loaded 2-core machine); the committed record is a third, fresh one.
#:
#: Time terms (seconds):
#:
#: * COST_FIXED: interpreter, imports, validation, report; COST_PLOTS: the plots (SVG
#:   text, a few milliseconds each since issue 21; matplotlib took 1.4 s);
#:   COST_ENUMERATION: the automatic enumeration of tiny instances (msolve).
#: * COST_PER_PAIR per pair of tasks (T(T-1)/2 of them: the model-M1 inertia check, a
#:   Python loop of small LAPACK calls) plus COST_PER_PAIR_ENTRY per entry d^2 of each
#:   difference, and COST_PER_R31_PAIR per pair for the R3.1 rank check when the truth
#:   (A*, U*) is not given.  This is what dominates large T: (3, 1000, 1) spends about
#:   47 of its 51 estimated seconds there.
#: * per start: COST_PER_START (the methods' Python overhead, classification),
#:   COST_PER_START_ENTRY per stored entry T d^2 k (products with the task matrices),
#:   COST_PER_DENSE_SQUARE per n^2 (n = T d k) in dense-curvature mode (building and
#:   decomposing the Schur complement: its LAPACK time grows like n^3, but below
#:   DENSE_EIGH_MAX_DIM the measured cost grows like n^2), and for k >= 2 --
#:   where the O(k) orbit makes S singular at every critical point and the MINRES solves
#:   run to their cap -- COST_PER_KERNEL_START, plus in Hessian-vector-product mode
#:   COST_PER_KERNEL_ENTRY per stored entry and per zero mode k(k-1)/2.
COST_FIXED = 0.70
COST_PLOTS = 0.05
COST_ENUMERATION = 1.2
COST_PER_PAIR = 9.4e-5
COST_PER_PAIR_ENTRY = 2.9e-7
COST_PER_R31_PAIR = 1.4e-5
COST_PER_START = 0.012
COST_PER_START_ENTRY = 7.3e-8
COST_PER_DENSE_SQUARE = 3.3e-6
COST_PER_KERNEL_START = 0.10
COST_PER_KERNEL_ENTRY = 3.2e-7


#: Memory terms (bytes): MEMORY_BASE_BYTES for the interpreter with numpy and scipy,
#: MEMORY_PLOTS_BYTES for the plots (a few arrays of curve values; matplotlib took
#: 33 MiB), MEMORY_ENUMERATION_BYTES for the enumeration
#: (its msolve child); MEMORY_TASK_COPIES copies of the T d^2 task entries alive at the
#: peak (the input, the problem's stack, deviations, the mean, the model-M1
#: differences), MEMORY_PER_TASK_BYTES per task, START_COPIES copies of each start's
#: T d k entries (points, gradients, BB history, trial points, results), and in dense
#: mode MEMORY_DENSE_S_COPIES copies of the n x n Schur complement (S, its
#: eigenvectors, workspace) and MEMORY_DENSE_BLOCK_COPIES of the T blocks of d^2 x dk
#: it is built from.
MEMORY_BASE_BYTES = 92 * 2**20
MEMORY_PLOTS_BYTES = 1 * 2**20
MEMORY_ENUMERATION_BYTES = 49 * 2**20
MEMORY_TASK_COPIES = 4.6
MEMORY_PER_TASK_BYTES = 31 * 2**10
START_COPIES = 32
MEMORY_DENSE_S_COPIES = 5.2
MEMORY_DENSE_BLOCK_COPIES = 0.72

#: The estimates are for one idle core; on a busy machine the wall time is longer.
ESTIMATE_BASIS = "CPU time of one idle core"


@dataclass(frozen=True)
class AuditCost:
    """Up-front estimate of an audit's time (CPU seconds of one idle core) and peak memory."""

    seconds: float
    bytes: int
    curvature: str
    detail: str

    def describe(self) -> str:
        return (f"estimated {self.seconds:.0f} s ({ESTIMATE_BASIS}) and {self.bytes / 2**30:.2f} GiB "
                f"({self.curvature} curvature; {self.detail})")


def estimate_audit_cost(d: int, T: int, k: int, starts: int, *, curvature: str = "auto", plots: bool = True,
                        certify: bool = True, truth_known: bool = True, enumeration: bool = False) -> AuditCost:
    r"""Estimate the time and peak memory of ``landscape.audit`` on ``(d, T, k)`` with
    ``starts`` starts (all methods): CPU seconds of one idle core (wall time on a busy
    machine is longer) and peak resident memory of the whole command.

    The terms are those of the constants above, fitted within a factor 2 of measured
    audits (``benchmarks/records/estimates.json``).  ``plots``: the audit draws its plots;
    ``truth_known``: the input holds :math:`(A^\star, U^\star)`, so R3.1 is checked on
    the columns of :math:`U^\star` instead of on every pair of tasks; ``enumeration``:
    the complete enumeration runs (the automatic one of tiny instances).  Certificates
    of spurious candidates are not included (``certify`` is accepted for the signature;
    how many candidates there are is not known before the search).
    """
    d, T, k, starts = int(d), int(T), int(k), max(int(starts), 1)
    n = T * d * k
    entries = T * d * d * k
    dense_bytes = int(8 * (4 * T * d * d * d * k + 3 * n * n))  # dense_schur_bytes
    dense = curvature == "dense" or (curvature == "auto" and n <= DENSE_EIGH_MAX_DIM
                                      and dense_bytes <= AUTO_DENSE_MAX_BYTES)
    pairs = T * (T - 1) / 2
    t_fixed = COST_FIXED + (COST_PLOTS if plots else 0.0) + (COST_ENUMERATION if enumeration else 0.0)
    t_checks = pairs * (COST_PER_PAIR + COST_PER_PAIR_ENTRY * d * d + (0.0 if truth_known else COST_PER_R31_PAIR))
    per_start = COST_PER_START + COST_PER_START_ENTRY * entries
    if dense:
        per_start += COST_PER_DENSE_SQUARE * float(n) ** 2
    if k >= 2:
        per_start += COST_PER_KERNEL_START
        if not dense:
            per_start += COST_PER_KERNEL_ENTRY * entries * (k * (k - 1) // 2)
    t_search = starts * per_start
    seconds = t_fixed + t_checks + t_search
    mem = (MEMORY_BASE_BYTES + (MEMORY_PLOTS_BYTES if plots else 0) + (MEMORY_ENUMERATION_BYTES if enumeration else 0)
           + 8 * MEMORY_TASK_COPIES * T * d * d + MEMORY_PER_TASK_BYTES * T + 8 * START_COPIES * starts * n)
    if dense:
        mem += 8 * (MEMORY_DENSE_S_COPIES * n * n + MEMORY_DENSE_BLOCK_COPIES * T * d ** 3 * k)
    detail = (f"searches {t_search:.1f} s, task-pair checks {t_checks:.1f} s, fixed {t_fixed:.1f} s; "
              "certificates not included")
    return AuditCost(float(seconds), int(mem), "dense" if dense else "hvp", detail)


def _factored_min_d() -> int:
    from .. import _factored

    return _factored.FACTORED_MIN_D
