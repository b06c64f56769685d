r"""Random and published instances of the LoRA-ML problem (THEORY.md sections 2, 4, 8)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._objective import LoraMLProblem
from ._random import Size, as_generator
from ._validation import LandscapeInputError, check_rank

__all__ = [
    "PlantedInstance",
    "F2Instance",
    "random_instance",
    "f1_instance",
    "thm33_counterexample_instance",
    "f2_spurious_instance",
]


@dataclass(frozen=True, eq=False)
class PlantedInstance:
    r"""Tasks of model M1 with known truth: :math:`A^\star_t = A^\star + U^\star_tU^{\star\top}_t`.

    This is how the truth is given to the toolkit: build one from your own
    ``A_star`` (d x d) and ``U_star`` (T x d x k), or draw one with
    :func:`random_instance`, and pass it wherever tasks are expected
    (:func:`landscape.audit` then also checks task diversity R3.1 on the columns of
    ``U_star`` and certifies spurious minima against the known global minimum).

    Attributes
    ----------
    A_star : ndarray (d, d)
        The shared matrix :math:`A^\star`.
    U_star : ndarray (T, d, k)
        The task factors :math:`U^\star_t`.
    problem : LoraMLProblem
        The LoRA-ML objective of the tasks, with rank ``k``.
    tasks : ndarray (T, d, d)
        The task matrices :math:`A^\star_t`.
    W : ndarray (T, d, d)
        :math:`U^\star_tU^{\star\top}_t`.
    size : Size
        ``(d, T, k)``.
    """

    A_star: np.ndarray
    U_star: np.ndarray

    @property
    def problem(self) -> LoraMLProblem:
        return LoraMLProblem.from_factors(self.A_star, self.U_star)

    @property
    def W(self) -> np.ndarray:
        return self.U_star @ np.swapaxes(self.U_star, 1, 2)

    @property
    def tasks(self) -> np.ndarray:
        return np.asarray(self.A_star)[None] + self.W

    @property
    def size(self) -> Size:
        T, d, k = np.shape(self.U_star)
        return Size(d, T, k)

    def __repr__(self) -> str:
        d, T, k = self.size
        return f"PlantedInstance(d={d}, T={T}, k={k})"


def random_instance(rng, d: int, T: int, k: int, *, symmetric_A: bool = False) -> PlantedInstance:
    r"""Model M1 with i.i.d. :math:`\mathcal N(0,1)` entries for :math:`A^\star` and :math:`U^\star_t`.

    ``rng`` is a :class:`numpy.random.Generator` or an integer seed; the sizes come in
    the toolkit's order ``(d, T, k)``.  ``symmetric_A=True`` reproduces the official
    code's :math:`(G+G^\top)/2` (THEORY.md 9.5, item 2).
    """
    rng = as_generator(rng, name="rng")
    if T < 1:
        raise LandscapeInputError(f"need at least 1 task, got T={T}")
    check_rank(k, d)
    A = rng.standard_normal((d, d))
    if symmetric_A:
        A = 0.5 * (A + A.T)
    U = rng.standard_normal((T, d, k))
    return PlantedInstance(A, U)


def f1_instance(d: int = 2) -> PlantedInstance:
    r"""App. F.1: :math:`T=2`, :math:`k=1`, :math:`A^\star=0`, :math:`U^\star_t=e_t`."""
    if d < 2:
        raise LandscapeInputError("F.1 needs d >= 2")
    U = np.zeros((2, d, 1))
    U[0, 0, 0] = 1.0
    U[1, 1, 0] = 1.0
    return PlantedInstance(np.zeros((d, d)), U)


def f1_point(theta: float, s1: int = 1, s2: int = 1, d: int = 2):
    r"""A point of the F.1 hyperbola: :math:`u_1=(s_1\cosh\theta, s_1s_2\sinh\theta)`,
    :math:`u_2=(\sinh\theta, s_2\cosh\theta)`, and :math:`A=e_1e_1^\top-u_1u_1^\top`."""
    if s1 not in (-1, 1) or s2 not in (-1, 1):
        raise LandscapeInputError(f"the F.1 branch signs are +1 or -1, got s1={s1!r}, s2={s2!r}")
    ch, sh = np.cosh(theta), np.sinh(theta)
    U = np.zeros((2, d, 1))
    U[0, :2, 0] = (s1 * ch, s1 * s2 * sh)
    U[1, :2, 0] = (sh, s2 * ch)
    e1 = np.zeros(d)
    e1[0] = 1.0
    A = np.outer(e1, e1) - U[0] @ U[0].T
    return A, U


#: THEORY.md section 4, "Why d >= 3k": d = 2, k = 1, T = 3 instance whose global
#: minima include a point with A != A*.
THM33_COUNTEREXAMPLE_U_STAR = np.array([[-0.8, -1.3], [-0.2, 0.4], [1.1, 0.1]])


def thm33_counterexample_instance() -> PlantedInstance:
    """The d = 2k, T = 3 instance of THEORY.md section 4 (A* = 0)."""
    U = THM33_COUNTEREXAMPLE_U_STAR[:, :, None].copy()
    return PlantedInstance(np.zeros((2, 2)), U)


def thm33_counterexample_minimiser(U_star=None):
    r"""Exact second global minimiser of :func:`thm33_counterexample_instance` (or of the
    :math:`d=2`, :math:`k=1`, :math:`T=3` instance with :math:`A^\star=0` and factors
    ``U_star``, shape (3, 2) or (3, 2, 1)).

    With :math:`Q=sQ_0`, :math:`\ell_t(Q_0) = w_t^\top\mathrm{adj}(Q_0)w_t = 1`
    solved linearly for the three entries of :math:`\mathrm{adj}(Q_0)`, and
    :math:`s = 1/\det Q_0`, each :math:`W_t - Q` is rank one; when all three are PSD its
    factor is :math:`\hat u_t`.  Returns ``(Q, U_hat)`` (so :math:`\hat A = A^\star + Q`).
    Raises :class:`ArithmeticError` when some :math:`W_t-Q` is not PSD (THEORY.md: about
    35% of Gaussian instances): its most negative eigenvalue is below
    :math:`-10^{-9}` times its largest eigenvalue in absolute value, a relative test, so
    that the verdict does not change when the instance is scaled.
    """
    w = THM33_COUNTEREXAMPLE_U_STAR if U_star is None else np.asarray(U_star, dtype=float)
    if w.shape not in ((3, 2), (3, 2, 1)) or not np.all(np.isfinite(w)):
        raise LandscapeInputError(f"U_star must hold 3 finite factors in R^2, got shape {np.shape(U_star)}")
    w = w.reshape(3, 2)
    # adj(Q0) = [[c, -b], [-b, a]] for Q0 = [[a, b], [b, c]]; l_t = c w1^2 - 2 b w1 w2 + a w2^2.
    M = np.stack([w[:, 1] ** 2, -2 * w[:, 0] * w[:, 1], w[:, 0] ** 2], axis=1)
    a, b, c = np.linalg.solve(M, np.ones(3))
    Q0 = np.array([[a, b], [b, c]])
    Q = Q0 / np.linalg.det(Q0)
    W = w[:, :, None] * w[:, None, :]
    U_hat = np.zeros((3, 2, 1))
    for t in range(3):
        lam, vecs = np.linalg.eigh(W[t] - Q)
        if lam[0] < -1e-9 * float(np.max(np.abs(lam))):
            raise ArithmeticError(f"W_{t + 1} - Q is not PSD (eigenvalues {lam[0]:.3g}, {lam[1]:.3g}): "
                                  "the construction does not apply")
        U_hat[t, :, 0] = np.sqrt(max(lam[-1], 0.0)) * vecs[:, -1]
    return Q, U_hat


#: THEORY.md section 8, certified spurious local minimum (rng 0, T=3, k=1, d=3).
F2_U_STAR = np.array(
    [
        [0.316462366449, -0.581863384354, -0.72925955371],
        [0.640621751493, -0.372051247918, -0.336894466018],
        [1.917854502271, -0.981819363075, -0.281605709418],
    ]
)
F2_U0 = np.array(
    [
        [-0.036075651206, -0.432810235023, -0.669862558214],
        [-0.554586951359, 0.075803271208, -0.084320922961],
        [1.890165457967, -0.896442135301, -0.149584698226],
    ]
)


class F2Instance(NamedTuple):
    """The F.2 instance and its spurious point: unpacks as ``(instance, U0)`` and is
    itself a :class:`PlantedInstance` for every other purpose (``A_star``, ``U_star``,
    ``problem``, and :func:`landscape.audit` accepts it as tasks)."""

    instance: PlantedInstance
    U0: np.ndarray

    A_star = property(lambda self: self.instance.A_star)
    U_star = property(lambda self: self.instance.U_star)
    problem = property(lambda self: self.instance.problem)
    tasks = property(lambda self: self.instance.tasks)
    W = property(lambda self: self.instance.W)
    size = property(lambda self: self.instance.size)

    def __repr__(self) -> str:
        d, T, k = self.size
        return f"F2Instance(d={d}, T={T}, k={k}, U0 of shape {tuple(self.U0.shape)})"


def f2_spurious_instance() -> F2Instance:
    """The published F.2 instance and its (unpolished) spurious point ``U0``, shape (3, 3, 1).

    ``inst, U0 = f2_spurious_instance()`` unpacks it; ``landscape.audit(f2_spurious_instance(), 1)``
    audits its tasks (add ``extra_starts=U0[None]`` to start a search at ``U0``).
    """
    return F2Instance(PlantedInstance(np.zeros((3, 3)), F2_U_STAR[:, :, None].copy()), F2_U0[:, :, None].copy())
