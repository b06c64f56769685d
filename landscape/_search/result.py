r"""What every search shares: :class:`SearchResult`, the methods' names, default
iteration budgets and tolerance, the natural scale of a problem and random starts.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from .._random import accepts_seed
from .._curvature import SpectrumSummary
from .._objective import LoraMLProblem

#: Names accepted by :func:`search` (and by ``python -m landscape audit --method``).
SEARCH_METHODS = ("gd", "pgd", "lbfgs", "trust-region", "root-hybr", "root-lm")


#: Default iteration caps.  First-order methods on a quartic with condition numbers
#: of a few hundred (THEORY.md section 8 reports kappa ~ 339) need O(kappa log(1/eps))
#: iterations, about 1e4 in the worst observed case; the second-order and root
#: finding methods converge in tens of iterations when they converge at all.
DEFAULT_MAX_ITER = {
    "gd": 5000,
    "pgd": 5000,
    "lbfgs": 3000,
    "trust-region": 200,
    "root-hybr": 400,
    "root-lm": 400,
}


#: Stopping tolerance of the searches on ``||grad G||_F``, relative to the natural
#: gradient scale ``s^{3/2}`` (``s`` from :func:`problem_scale`).  The searches only
#: have to get into the basin of quadratic convergence of the Newton polish.
SEARCH_GTOL_REL = 1e-8


@dataclass(frozen=True)
class SearchResult:
    r"""One run of a critical-point search on :math:`G`.

    Attributes
    ----------
    method : str
        One of :data:`SEARCH_METHODS` (``root-*`` runs done matrix-free say so in
        ``stop_reason``).
    start_index : int
        Index of the starting point in the list the search was given.
    point : ndarray, shape (T, d, k)
        The final point (after the Newton polish).
    loss : float
        :math:`G` at ``point``.
    grad_norm : float
        :math:`\|\nabla G\|_F` at ``point``.
    spectrum : SpectrumSummary or None
        Spectrum of :math:`S` on the quotient by :math:`O(k)` at ``point``
        (:func:`landscape.reduced_spectrum`); None if not requested.
    iterations : int
        Iterations of the search proper (not counting the polish).
    stop_reason : str
        Why the search stopped, in words.
    polish_steps : int
        Accepted Newton steps of the final polish.
    loss_before_polish, grad_norm_before_polish : float
        The values where the search itself stopped.
    """

    method: str
    start_index: int
    point: np.ndarray
    loss: float
    grad_norm: float
    spectrum: SpectrumSummary | None
    iterations: int
    stop_reason: str
    polish_steps: int = 0
    loss_before_polish: float = float("nan")
    grad_norm_before_polish: float = float("nan")

    def __repr__(self) -> str:
        lam = "" if self.spectrum is None else f", lambda_min_quotient={self.spectrum.lambda_min_quotient:.3e}"
        return (f"SearchResult({self.method!r}, start {self.start_index}: G={self.loss:.3e}, "
                f"|grad|={self.grad_norm:.1e}{lam}, {self.iterations} iterations, point of shape "
                f"{tuple(np.shape(self.point))})")


#: problem_scale is a pure function of the (frozen) problem and costs a pass over T d^2
#: numbers; it is asked for dozens of times per audit.
_SCALE_CACHE: "weakref.WeakKeyDictionary[LoraMLProblem, float]" = weakref.WeakKeyDictionary()


def problem_scale(problem: LoraMLProblem) -> float:
    r"""Natural scale :math:`s` of the task matrices (entries of :math:`UU^\top`).

    :math:`s = (\frac1T\sum_t\|A^\star_t-\bar A^\star\|_F^2)^{1/2}`, i.e.
    :math:`\sqrt{2G(0)/T}`.  Then :math:`U` scales like :math:`s^{1/2}`, :math:`G`
    like :math:`s^2`, :math:`\nabla G` like :math:`s^{3/2}` and :math:`S` like
    :math:`s`, which makes every tolerance in this module scale-free.  Identical
    tasks (:math:`s=0`) fall back to the size of the mean task, or 1.
    """
    cached = _SCALE_CACHE.get(problem)
    if cached is not None:
        return cached
    dev = problem.tasks - problem.mean_task[None]
    s = float(np.sqrt(np.einsum("tij,tij->", dev, dev) / problem.T))
    # identical tasks, tested exactly: their mean is rounded (three equal tasks summed and
    # divided by 3), so the deviations are round-off, not a scale
    if not s > 0 or bool(np.all(problem.tasks == problem.tasks[:1])):
        m = float(np.linalg.norm(problem.mean_task))
        s = m if m > 0 else 1.0
    _SCALE_CACHE[problem] = s
    return s


@accepts_seed()
def random_starts(problem: LoraMLProblem, rng: np.random.Generator, n: int) -> np.ndarray:
    r"""``n`` Gaussian starting points, shape ``(n, T, d, k)``.

    Entries are :math:`\mathcal N(0,\sigma^2)` with :math:`\sigma^2 = c\,s/(d\sqrt k)`,
    so that :math:`\|U_tU_t^\top\|_F\approx c\,s`, matching the size of the task
    deviations; the factor :math:`c` is log-uniform in :math:`[1/16, 4]` per start so
    that both the neighbourhood of :math:`\mathbf U=0` (where saddles of low rank sit)
    and the far field are explored.
    """
    T, d, k = problem.T, problem.d, problem.k
    s = problem_scale(problem)
    c = np.exp(rng.uniform(np.log(1 / 16), np.log(4.0), size=n))
    sigma = np.sqrt(c * s / (d * np.sqrt(k)))
    return sigma[:, None, None, None] * rng.standard_normal((n, T, d, k))
