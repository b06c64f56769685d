"""Linear-model experiment (THEORY.md sections 2 and 9.1; paper App. D.1).

Tasks ``y = A*_t x + eps`` with ``A*_t = A* + U*_t U*_t^T``. Retraining is LoRA-ML with
symmetric adapters ``U_t U_t^T`` (eq. (13)) by the official alternating gradient descent,
or SR (eq. (11)) by gradient descent on the pooled data; fine-tuning fits an asymmetric
``U V^T`` of rank k' (``3k`` if ``T = 2``, else ``k``; eq. (9)) by gradient descent.

Second moments instead of data
------------------------------
The finite-sample loss ``(1/2N) ||Y_t - M X_t||_F^2`` has gradient
``G_t(M) = M S_xx,t - S_yx,t`` with ``S_xx,t = X_t X_t^T / N`` and
``S_yx,t = Y_t X_t^T / N``. Every step below uses only these d x d matrices, so a step
costs O(T d^3) whatever N is, and the iterates equal those of the official full-data
code exactly (:func:`full_data_reference` is that code's algorithm, used by the tests and
the benchmark). Trials and sweep points of the same shape are stacked and advanced
together with batched matrix products (:func:`run_linear_batched`).

Paper defaults and official-code deviations
-------------------------------------------
:class:`LinearOptions` defaults follow the paper (THEORY.md 9.5): noise standard
deviation ``sigma`` (the code uses ``sigma**2``), i.i.d. ``A*`` (the code symmetrises),
SR without stray adapters (the code keeps random untrained ``U_t`` in SR's gradient), the
same fine-tuning initialisation for both methods (``shared_finetune_init``). The metric
is reported as in the code (``||(A*_{T+1} - A - U V^T) X||_F^2`` on the n fine-tuning
inputs, a sum) and per sample (divided by n).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["LinearConfig", "LinearOptions", "LinearProblem", "LINEAR_PAPER_DEFAULTS", "draw_linear_problem",
           "run_linear_batched", "full_data_reference", "LinearFamily", "FINETUNE_ITERATIONS"]

#: Fine-tuning iterations per varied parameter in the official scripts (THEORY.md 9.1).
FINETUNE_ITERATIONS = {"T": 10000, "d": 1400, "N": 1000, "n": 1000, "k": 10000}


@dataclass(frozen=True)
class LinearOptions:
    """Switches between the paper's protocol (defaults) and the official code's.

    Attributes
    ----------
    noise_std_squared : bool
        Draw noise with standard deviation ``sigma**2`` as the official code does
        (THEORY.md 9.5 item 1). Default: ``sigma``.
    symmetric_a_star : bool
        Symmetrise ``A*`` as ``(G + G^T)/2`` as the official code does (item 2).
    sr_stray_adapters : bool
        Keep random never-trained ``U_t ~ N(0, init_std^2)`` inside SR's gradient as the
        official code does (item 3).
    shared_finetune_init : bool
        Fine-tune LoRA-ML and SR from the same ``(U, V)`` initialisation (paper
        default); ``False`` draws one initialisation per method.
    """

    noise_std_squared: bool = False
    symmetric_a_star: bool = False
    sr_stray_adapters: bool = False
    shared_finetune_init: bool = True

    @classmethod
    def official(cls) -> "LinearOptions":
        """All deviations of the official code switched on."""
        return cls(noise_std_squared=True, symmetric_a_star=True, sr_stray_adapters=True,
                   shared_finetune_init=False)


@dataclass(frozen=True)
class LinearConfig:
    """One point of the linear experiment (THEORY.md 9.1; Table 9 defaults).

    Attributes
    ----------
    T, d, k, N, n, sigma : tasks, dimension, adapter rank, samples per retraining task,
        test samples, noise level.
    outer_steps, inner_steps : LoRA-ML alternating GD (3000 outer, 10 inner).
    lr_A, lr_U : LoRA-ML step sizes of A (with the 1/T of the pooled loss) and of U_t.
    sr_epochs, sr_lr : SR gradient descent.
    finetune_iters, finetune_lr : fine-tuning gradient descent.
    finetune_rank : k' (``None``: ``3k`` if ``T == 2`` else ``k``, as the official code).
    init_std : standard deviation of every adapter initialisation (0.1).
    record_every : store the test loss every this many fine-tuning iterations.
    """

    T: int = 3
    d: int = 10
    k: int = 1
    N: int = 5000
    n: int = 100
    sigma: float = 0.1
    outer_steps: int = 3000
    inner_steps: int = 10
    lr_A: float = 0.03
    lr_U: float = 0.003
    sr_epochs: int = 3000
    sr_lr: float = 0.03
    finetune_iters: int = 10000
    finetune_lr: float = 0.005
    finetune_rank: int | None = None
    init_std: float = 0.1
    record_every: int = 10

    def __post_init__(self):
        for name in ("T", "d", "k", "N", "n", "record_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"LinearConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("outer_steps", "inner_steps", "sr_epochs", "finetune_iters"):
            if getattr(self, name) < 0:
                raise ValueError(f"LinearConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("sigma", "init_std", "lr_A", "lr_U", "sr_lr", "finetune_lr"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"LinearConfig.{name} must be a finite number >= 0, got {v}")
        if self.k > self.d:
            raise ValueError(f"k (the adapter rank) must be <= d={self.d}, got {self.k}")
        if self.finetune_rank is not None and not 1 <= self.finetune_rank <= self.d:
            raise ValueError(f"finetune_rank must lie in [1, d={self.d}], got {self.finetune_rank}")

    @property
    def rank_prime(self) -> int:
        """k': the official choice is 3k for T = 2 (Cor 2) and k otherwise (Cor 4)."""
        if self.finetune_rank is not None:
            return self.finetune_rank
        return min(self.d, 3 * self.k if self.T == 2 else self.k)

    def shape_key(self) -> tuple:
        """Points with equal keys are advanced together in one batch."""
        return (self.T, self.d, self.k, self.rank_prime, self.outer_steps, self.inner_steps, self.lr_A,
                self.lr_U, self.sr_epochs, self.sr_lr, self.finetune_iters, self.finetune_lr, self.record_every)


#: Table 9 defaults of the linear experiment.
LINEAR_PAPER_DEFAULTS = LinearConfig()


@dataclass(frozen=True)
class LinearProblem:
    """Ground truth, second moments and initialisations of one trial.

    Shapes: ``A_star (d, d)``, ``U_star (T+1, d, k)``, ``Sxx, Syx (T, d, d)``,
    ``Syy (T,)`` (``tr(Y Y^T)/N``), ``Sxx_test, Syx_test (d, d)``, ``Syy_test`` scalar,
    ``U0 (T, d, k)`` (LoRA-ML init), ``stray (T, d, k)`` (SR stray adapters, zero unless
    the option is on), ``FU0, FV0 (2, d, k')`` (fine-tuning init per method: LoRA-ML, SR).
    """

    A_star: np.ndarray
    U_star: np.ndarray
    Sxx: np.ndarray
    Syx: np.ndarray
    Syy: np.ndarray
    Sxx_test: np.ndarray
    Syx_test: np.ndarray
    Syy_test: float
    U0: np.ndarray
    stray: np.ndarray
    FU0: np.ndarray
    FV0: np.ndarray
    n: int
    data: tuple | None = None  # (X_t, Y_t) per task incl. test, only when keep_data=True


def draw_linear_problem(cfg: LinearConfig, rng: np.random.Generator, options: LinearOptions = LinearOptions(),
                        *, keep_data: bool = False) -> LinearProblem:
    """Draw one trial (THEORY.md 9.1, model M1) from ``rng``.

    Samples the data matrices once (cost O(T d^2 N)) and keeps only their second
    moments unless ``keep_data``.
    """
    d, k, T, kp = cfg.d, cfg.k, cfg.T, cfg.rank_prime
    G = rng.standard_normal((d, d))
    A_star = (G + G.T) / 2 if options.symmetric_a_star else G
    U_star = rng.standard_normal((T + 1, d, k))
    noise_std = cfg.sigma ** 2 if options.noise_std_squared else cfg.sigma
    Sxx, Syx, Syy, data = [], [], [], []
    for t in range(T + 1):
        m = cfg.N if t < T else cfg.n
        X = rng.standard_normal((d, m))
        Y = (A_star + U_star[t] @ U_star[t].T) @ X + noise_std * rng.standard_normal((d, m))
        Sxx.append(X @ X.T / m)
        Syx.append(Y @ X.T / m)
        Syy.append(float(np.sum(Y * Y)) / m)
        if keep_data:
            data.append((X, Y))
    U0 = cfg.init_std * rng.standard_normal((T, d, k))
    stray = cfg.init_std * rng.standard_normal((T, d, k))
    if not options.sr_stray_adapters:
        stray = np.zeros_like(stray)
    FU0 = cfg.init_std * rng.standard_normal((2, d, kp))
    FV0 = cfg.init_std * rng.standard_normal((2, d, kp))
    if options.shared_finetune_init:
        FU0[1], FV0[1] = FU0[0], FV0[0]
    return LinearProblem(A_star, U_star, np.stack(Sxx[:T]), np.stack(Syx[:T]), np.asarray(Syy[:T]),
                         Sxx[T], Syx[T], Syy[T], U0, stray, FU0, FV0, cfg.n,
                         tuple(data) if keep_data else None)


def _t(x):
    return np.swapaxes(x, -1, -2)


def _retrain_lora_ml(A, U, Sxx, Syx, cfg: LinearConfig):
    """Official alternating GD (THEORY.md 9.1) on stacks: A (B,d,d), U (B,T,d,k).

    ``G_t = (A + U_t U_t^T) S_xx,t - S_yx,t``; outer ``A -= lr_A mean_t G_t``; inner
    ``U_t -= lr_U (G_t + G_t^T) U_t``. Inner steps use ``C_t = A S_xx,t - S_yx,t`` and
    thin products, so they cost O(d^2 k).
    """
    for _ in range(cfg.outer_steps):
        G = (A[:, None] + U @ _t(U)) @ Sxx - Syx
        A = A - cfg.lr_A * G.mean(axis=1)
        C = A[:, None] @ Sxx - Syx
        Ct = _t(C)
        for _ in range(cfg.inner_steps):
            UtU = _t(U) @ U
            SU = Sxx @ U
            # (G + G^T) U with G = C + U U^T Sxx:  C U + C^T U + U (U^T Sxx U) + Sxx U (U^T U)
            grad = C @ U + Ct @ U + U @ (_t(U) @ SU) + SU @ UtU
            U = U - cfg.lr_U * grad
    return A, U


def _retrain_sr(A, stray, Sxx, Syx, cfg: LinearConfig):
    """GD on the pooled loss: ``A -= sr_lr mean_t ((A + stray_t stray_t^T) S_xx,t - S_yx,t)``."""
    W = stray @ _t(stray)                      # zero unless the official option is on
    off = (W @ Sxx - Syx).mean(axis=1)
    Sbar = Sxx.mean(axis=1)
    for _ in range(cfg.sr_epochs):
        A = A - cfg.sr_lr * (A @ Sbar + off)
    return A


def _finetune(A_hat, U, V, Sxx, Syx, target, n, cfg: LinearConfig):
    """GD on ``(1/2n)||Y - (A_hat + U V^T) X||^2``; returns the code's metric every record_every.

    The metric is ``n tr(D S_xx D^T)`` with ``D = A*_{T+1} - A_hat - U V^T``, i.e.
    ``||D X||_F^2`` on the n fine-tuning inputs (THEORY.md 9.1 "Metric (code)").
    """
    def metric(U, V):
        D = target - A_hat - U @ _t(V)
        return n * np.einsum("bij,bjk,bik->b", D, Sxx, D)

    C = A_hat @ Sxx - Syx
    out, its = [metric(U, V)], [0]
    for it in range(1, cfg.finetune_iters + 1):
        G = C + U @ (_t(V) @ Sxx)
        gU, gV = G @ V, _t(G) @ U
        U, V = U - cfg.finetune_lr * gU, V - cfg.finetune_lr * gV
        if it % cfg.record_every == 0 or it == cfg.finetune_iters:
            out.append(metric(U, V))
            its.append(it)
    return np.stack(out, axis=-1), np.asarray(its)


def run_linear_batched(points: Sequence[LinearConfig], seeds: Sequence[Sequence[int]] | Sequence[int],
                       options: LinearOptions = LinearOptions(), *, progress: bool = False) -> list[dict[str, Any]]:
    """Run LoRA-ML and SR (retraining then fine-tuning) for many points and trials at once.

    Parameters
    ----------
    points : sequence of LinearConfig
        Sweep points; points with the same :meth:`LinearConfig.shape_key` are stacked.
    seeds : sequence
        For each point, a sequence of integer seeds, one per trial (or one flat sequence
        used for every point). Trial ``(p, i)`` draws everything from
        ``numpy.random.default_rng(seeds[p][i])``.
    options : LinearOptions
    progress : bool

    Returns
    -------
    list of dict, one per point
        ``loss_sum`` (2, trials, records): the code's metric (methods ``lora-ml``, ``sr``);
        ``loss_per_sample`` the same divided by n; ``iterations`` (records,);
        ``A_err`` (2, trials): ``||A_hat - A*||_F``; ``config``, ``seeds``.

    References
    ----------
    THEORY.md 9.1 (protocol), 9.5 (deviations), eqs. (9), (11), (13).
    """
    points = list(points)
    if not points:
        raise ValueError("need at least one point")
    if seeds and np.ndim(seeds[0]) == 0:
        seeds = [list(seeds)] * len(points)
    if len(seeds) != len(points):
        raise ValueError(f"got {len(seeds)} seed lists for {len(points)} points")
    groups: dict[tuple, list[int]] = {}
    for p, cfg in enumerate(points):
        groups.setdefault(cfg.shape_key(), []).append(p)
    results: list[dict | None] = [None] * len(points)
    it = groups.values()
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(list(it), desc="linear groups", disable=None)
    for members in it:
        cfg0 = points[members[0]]
        probs, owner = [], []
        for p in members:
            for s in seeds[p]:
                probs.append(draw_linear_problem(points[p], np.random.default_rng(s), options))
                owner.append(p)
        st = {f: np.stack([getattr(P, f) for P in probs]) for f in
              ("A_star", "U_star", "Sxx", "Syx", "Sxx_test", "Syx_test", "U0", "stray", "FU0", "FV0")}
        n_vec = np.asarray([P.n for P in probs], dtype=float)
        Bn, d = len(probs), cfg0.d
        A_ml, _ = _retrain_lora_ml(np.zeros((Bn, d, d)), st["U0"], st["Sxx"], st["Syx"], cfg0)
        A_sr = _retrain_sr(np.zeros((Bn, d, d)), st["stray"], st["Sxx"], st["Syx"], cfg0)
        target = st["A_star"] + st["U_star"][:, -1] @ _t(st["U_star"][:, -1])
        # fine-tune both methods in one stack: first half LoRA-ML, second half SR
        two = lambda x: np.concatenate([x, x])  # noqa: E731
        curves, its = _finetune(np.concatenate([A_ml, A_sr]),
                                np.concatenate([st["FU0"][:, 0], st["FU0"][:, 1]]),
                                np.concatenate([st["FV0"][:, 0], st["FV0"][:, 1]]),
                                two(st["Sxx_test"]), two(st["Syx_test"]), two(target), two(n_vec), cfg0)
        curves = curves.reshape(2, Bn, -1)
        A_err = np.stack([np.linalg.norm(A_ml - st["A_star"], axis=(1, 2)),
                          np.linalg.norm(A_sr - st["A_star"], axis=(1, 2))])
        owner = np.asarray(owner)
        for p in members:
            sel = owner == p
            results[p] = {
                "methods": ["lora-ml", "sr"],
                "loss_sum": curves[:, sel],
                "loss_per_sample": curves[:, sel] / points[p].n,
                "iterations": its,
                "A_err": A_err[:, sel],
                "config": dataclasses.asdict(points[p]),
                "options": dataclasses.asdict(options),
                "seeds": list(seeds[p]),
            }
    return results


def full_data_reference(cfg: LinearConfig, problem: LinearProblem, *, outer_steps: int, sr_epochs: int,
                        finetune_iters: int) -> dict[str, np.ndarray]:
    """The official algorithm on full data matrices (cost O(T d^2 N) per step).

    A faithful, unoptimised transcription of the official loops (per task, per step,
    over the d x N data), used as the oracle in tests and as the baseline of the
    benchmark. Needs ``problem`` drawn with ``keep_data=True``.

    Returns
    -------
    dict with ``A_ml``, ``U_ml``, ``A_sr`` and ``metric_ml``, ``metric_sr`` (the code's
    metric after each fine-tuning iteration, including iteration 0).
    """
    if problem.data is None:
        raise ValueError("full_data_reference needs a problem drawn with keep_data=True")
    T = cfg.T
    XY = problem.data
    A = np.zeros((cfg.d, cfg.d))
    U = [problem.U0[t].copy() for t in range(T)]
    for _ in range(outer_steps):
        gA = np.zeros_like(A)
        for t in range(T):
            X, Y = XY[t]
            E = (A + U[t] @ U[t].T) @ X - Y
            gA += E @ X.T / X.shape[1]
        A = A - cfg.lr_A * gA / T
        for _ in range(cfg.inner_steps):
            for t in range(T):
                X, Y = XY[t]
                E = (A + U[t] @ U[t].T) @ X - Y
                U[t] = U[t] - cfg.lr_U * (X @ E.T + E @ X.T) @ U[t] / X.shape[1]
    A_ml = A
    A = np.zeros((cfg.d, cfg.d))
    for _ in range(sr_epochs):
        gA = np.zeros_like(A)
        for t in range(T):
            X, Y = XY[t]
            E = (A + problem.stray[t] @ problem.stray[t].T) @ X - Y
            gA += E @ X.T / X.shape[1]
        A = A - cfg.sr_lr * gA / T
    A_sr = A
    Xn, Yn = XY[T]
    target = problem.A_star + problem.U_star[T] @ problem.U_star[T].T
    out = {}
    for m, A_hat in enumerate((A_ml, A_sr)):
        Uf, Vf = problem.FU0[m].copy(), problem.FV0[m].copy()
        metric = [np.sum(((target - A_hat - Uf @ Vf.T) @ Xn) ** 2)]
        for _ in range(finetune_iters):
            E = (A_hat + Uf @ Vf.T) @ Xn - Yn
            G = E @ Xn.T / Xn.shape[1]
            Uf, Vf = Uf - cfg.finetune_lr * G @ Vf, Vf - cfg.finetune_lr * G.T @ Uf
            metric.append(np.sum(((target - A_hat - Uf @ Vf.T) @ Xn) ** 2))
        out["metric_ml" if m == 0 else "metric_sr"] = np.asarray(metric)
    out.update(A_ml=A_ml, U_ml=np.stack(U), A_sr=A_sr)
    return out


# --------------------------------------------------------------------------------------
# The linear model as a Family of the generic trainer
# --------------------------------------------------------------------------------------


def _family_class():
    import torch
    from torch import nn

    from ._trainer import AdapterSet, Family, TaskData

    class _LinearModel(nn.Module):
        """``M = A + delta_active``; the forward returns the effective matrix M."""

        def __init__(self, A: torch.Tensor):
            super().__init__()
            self.A = nn.Parameter(A.clone())
            self.delta: Any = None  # callable returning the active adapter's matrix

        def forward(self):
            return self.A if self.delta is None else self.A + self.delta()

    class _MatrixAdapters(AdapterSet):
        """Per-name adapters ``U U^T`` (symmetric, retraining) or ``U V^T`` (fine-tuning)."""

        def __init__(self, model, names, inits_U, inits_V, symmetric, train_base):
            self.model, self.names, self.symmetric = model, tuple(names), symmetric
            self.U = nn.ParameterDict({n: nn.Parameter(u.clone()) for n, u in zip(self.names, inits_U)})
            self.V = None if symmetric else nn.ParameterDict(
                {n: nn.Parameter(v.clone()) for n, v in zip(self.names, inits_V)})
            # register so state_dict / .to() / checkpoints include the adapters
            model.adapter_U = self.U
            if self.V is not None:
                model.adapter_V = self.V
            model.A.requires_grad_(train_base)
            self.activate(self.names[0])

        def activate(self, name):
            if name not in self.names:
                raise ValueError(f"unknown adapter {name!r}; have {self.names}")
            U = self.U[name]
            V = U if self.symmetric else self.V[name]
            self.model.delta = lambda: U @ V.T

        def adapter_parameters(self, name):
            return [self.U[name]] if self.symmetric else [self.U[name], self.V[name]]

        def base_parameters(self):
            return [self.model.A]

        def strip(self):
            return _LinearModel(self.model.A.detach())

    class _LinearFamily(Family):
        name = "linear"

        def __init__(self, problem: LinearProblem, method_index: int = 0, dtype=torch.float64):
            self.problem, self.dtype = problem, dtype
            self.method_index = method_index  # which fine-tuning init (0: LoRA-ML, 1: SR)
            P = problem
            tens = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
            self._tasks = [TaskData(f"task_{t}", train=(tens(P.Sxx[t]), tens(P.Syx[t]), tens(P.Syy[t])))
                           for t in range(P.Sxx.shape[0])]
            target = P.A_star + P.U_star[-1] @ P.U_star[-1].T
            self._test = TaskData("test", train=(tens(P.Sxx_test), tens(P.Syx_test), tens(P.Syy_test)),
                                  test=(tens(P.Sxx_test), tens(target)))

        def init_model(self, generator):
            d = self.problem.A_star.shape[0]
            return _LinearModel(torch.zeros(d, d, dtype=self.dtype))  # A_0 = 0 (official init)

        def retrain_tasks(self):
            return self._tasks

        def test_task(self):
            return self._test

        def loss(self, model, batch):
            # (1/2N)||Y - M X||^2 = 1/2 (tr(M Sxx M^T) - 2 tr(M Syx^T) + tr(Syy))
            Sxx, Syx, Syy = batch
            M = model()
            return 0.5 * (torch.sum((M @ Sxx) * M) - 2 * torch.sum(M * Syx) + Syy)

        def evaluate(self, model, task, split):
            if split != "test":
                return super().evaluate(model, task, split)
            Sxx, target = task.test
            with torch.no_grad():
                D = target - model()
                per_sample = float(torch.sum((D @ Sxx) * D))
            return {"loss": per_sample, "loss_sum": per_sample * self.problem.n}

        def attach_lora(self, model, names, *, rank, stage, generator, alpha=None, dropout=0.0):
            P, tens = self.problem, (lambda a: torch.as_tensor(np.asarray(a), dtype=self.dtype))
            if stage == "retrain":
                if rank != P.U0.shape[-1]:
                    raise ValueError(f"retraining rank {rank} differs from the problem's k={P.U0.shape[-1]}")
                return _MatrixAdapters(model, names, [tens(P.U0[t]) for t in range(len(names))], None,
                                       symmetric=True, train_base=True)
            if rank != P.FU0.shape[-1]:
                raise ValueError(f"fine-tuning rank {rank} differs from the problem's k'={P.FU0.shape[-1]}")
            m = self.method_index
            return _MatrixAdapters(model, names, [tens(P.FU0[m])] * len(names), [tens(P.FV0[m])] * len(names),
                                   symmetric=False, train_base=False)

        def attach_heads(self, model, names, *, stage, generator):
            raise ValueError("the linear model has no last layer; use LoRA adapters")

    return _LinearFamily


def LinearFamily(problem: LinearProblem, method_index: int = 0, **kwargs):  # noqa: N802 - lazy class factory
    """The linear model of THEORY.md 9.1 as a :class:`empirics.Family`.

    Tasks are second moments ``(S_xx, S_yx, tr S_yy)``; the loss is
    ``(1/2N)||Y - M X||_F^2`` written through them. Retraining adapters are symmetric
    ``U_t U_t^T`` started at the problem's ``U0``; fine-tuning adapters are ``U V^T``
    started at the problem's fine-tuning init of method ``method_index`` (0 LoRA-ML,
    1 SR). With SGD, ``lr = lr_A / T`` (the trainer sums task losses),
    ``adapter_lr = lr_U`` and ``inner_adapter_steps = inner_steps`` the generic trainer
    reproduces :func:`run_linear_batched`.
    """
    return _family_class()(problem, method_index, **kwargs)
