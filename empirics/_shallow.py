"""Shallow-network experiment (THEORY.md 9.2; paper App. D.2).

Ground truth: ``y = c^T sigmoid((A* + U*_t U*_t^T) x) + eps`` with scalar noise
``eps ~ N(0, sigma^2)``, ``x ~ N(0, I_d)``, and ``A*, U*_t, c`` with i.i.d. N(0, 1) entries.
Learner: ``Linear(d, d, no bias) -> sigmoid -> Linear(d, 1, no bias)`` trained with MSE.
LoRA-ML adds per-task asymmetric adapters ``B_t A_t`` on the first layer (``B_t = 0``,
``A_t`` Kaiming-uniform); SR trains the bare network on all tasks. Both use AdamW
(lr 1e-3, weight decay 0.01) with the tasks' losses summed and one full-batch step per
epoch. Fine-tuning: a fresh rank-k' adapter on the first layer of the frozen base.
Metric: MSE against the clean outputs on the n fine-tuning inputs at the last epoch.

Two implementations of the same protocol:

* :class:`ShallowFamily` plugs into the generic trainer (:mod:`empirics._trainer`), with
  LoRA from HF ``peft``: used for tests and single runs.
* :func:`run_shallow_batched` trains all trials *and both methods* of one configuration
  at once on stacked parameters (batched matmuls). AdamW acts elementwise, so stacked
  parameters give exactly per-trial AdamW; SR is the same network with its adapters
  masked out (zero forward contribution, hence zero gradient).
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ShallowConfig", "ShallowProblem", "draw_shallow_problem", "ShallowFamily", "run_shallow_batched",
           "SHALLOW_PAPER_DEFAULTS", "central_range", "trial_streams", "draw_shallow_init", "INIT_STREAM"]

#: How a trial's network initialisation is seeded (stored in records, so a record made
#: with another scheme is never mistaken for this one): an independent child stream
#: ``SeedSequence(seed).spawn(1)[0]``, not the data stream after the test-task data.
INIT_STREAM = "seedsequence-child-0"


@dataclass(frozen=True)
class ShallowConfig:
    """One configuration of the shallow-network experiment (THEORY.md 9.2, Table 9).

    Attributes
    ----------
    T, d, k, N, n : task count, width, ground-truth adapter rank, samples per retraining
        task, test samples.
    sigma : noise standard deviation.
    finetune_rank : LoRA rank k' used in fine-tuning (``None``: k).
    retrain_epochs, finetune_epochs : full-batch AdamW epochs (paper: 40000 and 15000).
    lr, weight_decay : AdamW settings (paper: 1e-3 and torch's default 0.01).
    record_every : store the test MSE every this many fine-tuning epochs (for curves).
    """

    T: int = 3
    d: int = 10
    k: int = 1
    N: int = 1000
    n: int = 100
    sigma: float = 0.1
    finetune_rank: int | None = None
    retrain_epochs: int = 40000
    finetune_epochs: int = 15000
    lr: float = 1e-3
    weight_decay: float = 0.01
    record_every: int = 100

    def __post_init__(self):
        for name in ("T", "d", "k", "N", "n", "retrain_epochs", "finetune_epochs", "record_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"ShallowConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0, got {self.sigma}")
        if self.k > self.d:
            raise ValueError(f"k (the adapter rank) must be <= d={self.d}, got {self.k}")
        if self.finetune_rank is not None and not 1 <= self.finetune_rank <= self.d:
            raise ValueError(f"finetune_rank must lie in [1, d={self.d}], got {self.finetune_rank}")
        for name in ("lr", "weight_decay"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"ShallowConfig.{name} must be a finite number >= 0, got {v}")

    @property
    def rank_prime(self) -> int:
        return self.k if self.finetune_rank is None else self.finetune_rank


#: Table 9 defaults for the shallow network (THEORY.md 9.2).
SHALLOW_PAPER_DEFAULTS = ShallowConfig()


@dataclass(frozen=True)
class ShallowProblem:
    """Ground truth and data of one trial: arrays ``(T+1, ...)``, the last task is the test task.

    ``X[t]`` has shape ``(N_t, d)``; ``Y[t]`` noisy and ``Y_clean[t]`` noise-free outputs.
    """

    A_star: np.ndarray
    U_star: np.ndarray
    c: np.ndarray
    X: tuple
    Y: tuple
    Y_clean: tuple


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def draw_shallow_problem(cfg: ShallowConfig, rng: np.random.Generator) -> ShallowProblem:
    """Draw ground truth and data for one trial from ``rng`` (THEORY.md 9.2)."""
    d, k, T = cfg.d, cfg.k, cfg.T
    A_star = rng.standard_normal((d, d))
    U_star = rng.standard_normal((T + 1, d, k))
    c = rng.standard_normal(d)
    Xs, Ys, Cs = [], [], []
    for t in range(T + 1):
        m = cfg.N if t < T else cfg.n
        X = rng.standard_normal((m, d))
        clean = _sigmoid(X @ (A_star + U_star[t] @ U_star[t].T).T) @ c
        Xs.append(X)
        Cs.append(clean)
        Ys.append(clean + cfg.sigma * rng.standard_normal(m))
    return ShallowProblem(A_star, U_star, c, tuple(Xs), tuple(Ys), tuple(Cs))


def trial_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The two independent streams of trial ``seed``: ``(data, init)``.

    ``data`` is ``default_rng(seed)`` (ground truth and every task's samples,
    :func:`draw_shallow_problem`); ``init`` is ``default_rng`` of the first spawned child
    of ``SeedSequence(seed)`` (network and adapter initialisations,
    :func:`draw_shallow_init`). So the initialisation of a trial does not depend on how
    many samples were drawn before it: a sweep over n or N changes the data only, not
    the starting point of training (THEORY.md 9.2).
    """
    child = np.random.SeedSequence(int(seed)).spawn(1)[0]
    return np.random.default_rng(int(seed)), np.random.default_rng(child)


def _kaiming_bound(fan_in: int) -> float:
    # torch's default Linear init: kaiming_uniform(a=sqrt(5)) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    return 1.0 / math.sqrt(fan_in)


def draw_shallow_init(cfg: ShallowConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Initialisations of one trial from ``rng`` (torch's default Linear init, U(-1/sqrt(d), 1/sqrt(d))).

    ``W1`` (d, d) and ``c`` (1, d): the network; ``LA`` (T, k, d): the retraining
    adapters' ``A_t`` (``B_t = 0``); ``FA`` (k', d): the fine-tuning adapter's ``A``.
    """
    d, T, k, kp = cfg.d, cfg.T, cfg.k, cfg.rank_prime
    b = _kaiming_bound(d)
    return {"W1": rng.uniform(-b, b, (d, d)), "c": rng.uniform(-b, b, (1, d)),
            "LA": rng.uniform(-b, b, (T, k, d)), "FA": rng.uniform(-b, b, (kp, d))}


def central_range(values: np.ndarray, clip: int = 2) -> tuple[float, float, float]:
    """Median and central range of ``values`` (THEORY.md 9.4).

    Returns ``(median, low, high)`` where ``low/high`` are the sorted values with ``clip``
    removed on each side (``clip=2`` of 10 trials: the central 6 values). The official
    ``make_plot.py`` prints ``sorted[3]`` and ``sorted[-3]`` and the lower median; see
    THEORY.md 9.5 item 7. Here the median is the usual (average of the middle two).
    """
    v = np.sort(np.asarray(values, dtype=float).ravel())
    if isinstance(clip, bool) or not isinstance(clip, (int, np.integer)) or clip < 0:
        raise ValueError(f"clip must be an integer >= 0 (values dropped on each side), got {clip!r}")
    if v.size <= 2 * clip:
        raise ValueError(f"need more than {2 * clip} values for a central range, got {v.size}")
    return float(np.median(v)), float(v[clip]), float(v[-clip - 1])


# --------------------------------------------------------------------------------------
# Generic-trainer family
# --------------------------------------------------------------------------------------


def _family_class():
    import torch
    from torch import nn

    from ._trainer import Family, TaskData

    class _ShallowFamily(Family):
        name = "shallow"
        lora_target_modules = ("0",)
        head_module = "2"

        def __init__(self, problem: ShallowProblem, dtype=torch.float32):
            self.problem = problem
            self.d = problem.A_star.shape[0]
            self.dtype = dtype

            def tens(a):
                return torch.as_tensor(np.asarray(a), dtype=dtype)

            P = problem
            self._tasks = [TaskData(f"task_{t}", train=(tens(P.X[t]), tens(P.Y[t])))
                           for t in range(len(P.X) - 1)]
            self._test = TaskData("test", train=(tens(P.X[-1]), tens(P.Y[-1])),
                                  test=(tens(P.X[-1]), tens(P.Y_clean[-1])))

        def init_model(self, generator):
            d = self.d
            model = nn.Sequential(nn.Linear(d, d, bias=False), nn.Sigmoid(), nn.Linear(d, 1, bias=False))
            with torch.no_grad():
                for layer in (model[0], model[2]):
                    # torch's default Linear init, drawn from the run's generator
                    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            return model.to(self.dtype)

        def retrain_tasks(self):
            return self._tasks

        def test_task(self):
            return self._test

        def loss(self, model, batch):
            x, y = batch
            return torch.mean((model(x).squeeze(-1) - y) ** 2)

        def describe(self):
            return {"name": self.name, "d": self.d, "T": len(self._tasks)}

    return _ShallowFamily


def ShallowFamily(problem: ShallowProblem, **kwargs):  # noqa: N802 - factory that builds a class lazily
    """The shallow network as a :class:`empirics.Family` (torch imported lazily).

    LoRA targets the first layer (module ``"0"``); the last-layer head is module ``"2"``.
    The test task evaluates MSE against clean outputs on its ``test`` split.
    """
    return _family_class()(problem, **kwargs)


# --------------------------------------------------------------------------------------
# Batched fast path
# --------------------------------------------------------------------------------------


def _retrain_step(W1, c, LA, LB, mask, X, Xt, Y):
    r"""Loss and hand-written gradients of one full-batch retraining step, set on ``.grad``.

    The loss is :math:`\sum_{b,t}\frac1N\|c_b^\top\sigma(W_{bt}X_{bt}) - Y_{bt}\|^2`
    with :math:`W_{bt} = W_{1,b} + m_b B_{bt}A_{bt}` (:math:`m_b = 0` for SR).  With
    :math:`g = 2r/N`, :math:`H=\sigma(Z)`:
    :math:`\nabla_c = \sum_t gH^\top`, :math:`\nabla_Z = H(1-H)\odot(c\,g^\top)`,
    :math:`\nabla_{W} = \nabla_Z X^\top`, :math:`\nabla_{W_1}=\sum_t\nabla_W`,
    :math:`\nabla_B = m\nabla_W A^\top`, :math:`\nabla_A = mB^\top\nabla_W`.
    Autograd computes the same numbers (tested) but keeps extra intermediates and
    launches more kernels; in place, one step is about twice as fast on a CPU core.
    """
    import torch

    N = Y.shape[-1]
    with torch.no_grad():
        Weff = W1.unsqueeze(1) + mask * (LB @ LA)                 # (B, T, d, d)
        H = torch.sigmoid_(Weff @ Xt)                             # (B, T, d, N)
        r = (c.unsqueeze(1) @ H).squeeze(-2) - Y                  # (B, T, N)
        loss = (r * r).mean(-1).sum()
        g = r.mul_(2.0 / N)
        c.grad = (g.unsqueeze(-2) @ H.transpose(-1, -2)).sum(1)   # (B, 1, d)
        dZ = H.sub_(H * H)                                        # H (1 - H), in place
        dZ.mul_(c.unsqueeze(1).transpose(-1, -2)).mul_(g.unsqueeze(-2))
        gW = dZ @ X                                               # (B, T, d, d)
        W1.grad = gW.sum(1)
        gW.mul_(mask)
        LB.grad = gW @ LA.transpose(-1, -2)
        LA.grad = LB.transpose(-1, -2) @ gW
    return loss


def worker_position() -> int | None:
    """1, 2, ... in the worker processes of a local pool (the line of that worker's progress
    bar under the driver's: multiprocessing numbers the processes a command starts, and a
    command starts one pool), None in the main process."""
    import multiprocessing as mp

    ident = getattr(mp.current_process(), "_identity", ())
    return int(ident[0]) if ident else None


def run_shallow_batched(cfg: ShallowConfig, seeds: list[int], *, dtype: str = "float32",
                        progress: bool = False, threads: int | None = None,
                        checkpoint: str | None = None, checkpoint_every: int = 5000) -> dict[str, Any]:
    """Run LoRA-ML and SR (retraining + LoRA fine-tuning) for all ``seeds`` at once.

    Parameters
    ----------
    cfg : ShallowConfig
    seeds : list of int
        One trial per seed; trial ``i`` draws its problem and its initialisations from
        the two independent streams of :func:`trial_streams` ``(seeds[i])`` (no global
        state), so the initialisation does not depend on n or N.
    dtype : {"float32", "float64"}
    progress : bool
        Show tqdm bars.
    threads : int, optional
        ``torch.set_num_threads`` for the run (restored afterwards).
    checkpoint : path, optional
        File for the full training state (parameters, AdamW state, epoch, stage),
        written every ``checkpoint_every`` epochs; a run started with the same
        arguments resumes from it. Removed when the run finishes.

    Returns
    -------
    dict
        ``final_mse`` of shape ``(2, trials)`` (methods ``["lora-ml", "sr"]``), ``curve``
        of shape ``(2, trials, n_records)`` (test MSE against clean outputs every
        ``record_every`` fine-tuning epochs), ``curve_epochs``, ``retrain_loss`` (final
        summed retraining loss, ``(2, trials)``), ``methods``.

    Notes
    -----
    Batch layout: index ``m * trials + i`` is method ``m`` and trial ``i``. Both methods of
    a trial share the problem and the base initialisation and the fine-tuning adapter
    initialisation (the same-init convention of THEORY.md 9.1).
    """
    import torch

    if not seeds:
        raise ValueError("need at least one seed")
    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run_batched(cfg, seeds, tdt, progress, checkpoint, checkpoint_every)
    finally:
        torch.set_num_threads(old_threads)


def _checkpoint_fits(saved, base_shapes, ft_shapes, cfg) -> bool:
    """Whether a loaded checkpoint has the structure and tensor shapes this run writes."""
    import torch

    def tensors_fit(ts, shapes):
        return isinstance(ts, list) and len(ts) == len(shapes) and all(
            isinstance(t, torch.Tensor) and tuple(t.shape) == s and bool(torch.isfinite(t).all())
            for t, s in zip(ts, shapes))

    try:
        stage, epoch = saved["stage"], saved["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or not isinstance(saved["opt"], dict):
            return False
        if stage == "retrain":
            return 0 <= epoch <= cfg.retrain_epochs and tensors_fit(saved["tensors"], base_shapes)
        if stage == "finetune":
            extra = saved["extra"]
            return (0 <= epoch <= cfg.finetune_epochs and tensors_fit(extra["base"], base_shapes)
                    and tensors_fit(saved["tensors"], ft_shapes) and isinstance(extra["curve"], list)
                    and isinstance(extra["epochs"], list) and len(extra["curve"]) == len(extra["epochs"]))
    except (KeyError, TypeError, IndexError):
        return False
    return False


def _run_batched(cfg: ShallowConfig, seeds: list[int], tdt, progress: bool, checkpoint, checkpoint_every: int
                 ) -> dict[str, Any]:
    import os

    import torch

    ident = {"cfg": dataclasses.asdict(cfg), "seeds": list(seeds), "dtype": str(tdt), "init": INIT_STREAM}
    saved = None
    if checkpoint is not None and os.path.exists(checkpoint):
        from ._trainer import load_checkpoint

        saved = load_checkpoint(checkpoint)
        if saved is None or saved.get("ident") != ident:
            saved = None

    def save(stage, epoch, tensors, opt, extra=None):
        if checkpoint is None or epoch % checkpoint_every:
            return
        tmp = str(checkpoint) + ".tmp"
        torch.save({"ident": ident, "stage": stage, "epoch": epoch, "tensors": [t.detach() for t in tensors],
                    "opt": opt.state_dict(), "extra": extra}, tmp)
        os.replace(tmp, checkpoint)

    S, T, d, k, kp = len(seeds), cfg.T, cfg.d, cfg.k, cfg.rank_prime
    M = 2  # methods: 0 = LoRA-ML, 1 = SR
    B = M * S
    probs, inits = [], []
    for s in seeds:
        data_rng, init_rng = trial_streams(s)
        probs.append(draw_shallow_problem(cfg, data_rng))
        inits.append(draw_shallow_init(cfg, init_rng))

    def stack(get, methods=True):
        arr = np.stack([get(i) for i in range(S)])
        if methods:
            arr = np.concatenate([arr] * M, axis=0)
        return torch.as_tensor(arr, dtype=tdt)

    X = stack(lambda i: np.stack(probs[i].X[:T]))               # (B, T, N, d)
    Y = stack(lambda i: np.stack(probs[i].Y[:T]))               # (B, T, N)
    W1 = stack(lambda i: inits[i]["W1"]).requires_grad_(True)   # (B, d, d)
    c = stack(lambda i: inits[i]["c"]).requires_grad_(True)     # (B, 1, d)
    LA = stack(lambda i: inits[i]["LA"]).requires_grad_(True)   # (B, T, k, d)
    LB = torch.zeros(B, T, d, k, dtype=tdt, requires_grad=True)
    mask = torch.ones(B, 1, 1, 1, dtype=tdt)
    mask[S:] = 0.0  # SR: no adapters

    def bar(start, n, desc):
        if not progress:
            return range(start, n)
        from tqdm.auto import tqdm

        # in a worker process of a local pool: one line per worker below the driver's units bar
        pos = worker_position()
        return tqdm(range(start, n), desc=desc if pos is None else f"[worker {pos}] {desc}", mininterval=1.0,
                    initial=start, total=n, disable=None, position=pos, leave=pos is None)

    params = [W1, c, LA, LB]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = 0
    if saved is not None and not _checkpoint_fits(saved, [tuple(p_.shape) for p_ in params],
                                                  [(B, kp, d), (B, d, kp)], cfg):
        print(f"warning: checkpoint {checkpoint} does not hold this run's tensors (corrupted?); "
              "starting from the beginning", file=sys.stderr)
        saved = None
    if saved is not None:
        with torch.no_grad():
            for p_, v in zip(params, saved["tensors"] if saved["stage"] == "retrain" else saved["extra"]["base"]):
                p_.copy_(v)
        if saved["stage"] == "retrain":
            opt.load_state_dict(saved["opt"])
            start = saved["epoch"]
        else:
            start = cfg.retrain_epochs
    Xt = X.transpose(-1, -2).contiguous()  # (B, T, d, N); contiguous once, not per step
    for ep in bar(start, cfg.retrain_epochs, f"retrain T={T} d={d} k={k} N={cfg.N}"):
        _retrain_step(W1, c, LA, LB, mask, X, Xt, Y)
        opt.step()
        save("retrain", ep + 1, params, opt)
    with torch.no_grad():
        Weff = W1.unsqueeze(1) + mask * (LB @ LA)
        out = (c.unsqueeze(1) @ torch.sigmoid(Weff @ Xt)).squeeze(-2)
        retrain_loss = ((out - Y) ** 2).mean(-1).sum(-1).reshape(M, S)

    # fine-tuning: fresh rank-k' adapter on the frozen first layer
    W1f, cf = W1.detach(), c.detach()
    Xf = stack(lambda i: probs[i].X[T]).transpose(-1, -2)        # (B, d, n)
    Yf = stack(lambda i: probs[i].Y[T])                           # (B, n)
    Cf = stack(lambda i: probs[i].Y_clean[T])
    FA = stack(lambda i: inits[i]["FA"]).requires_grad_(True)    # (B, k', d)
    FB = torch.zeros(B, d, kp, dtype=tdt, requires_grad=True)
    opt = torch.optim.AdamW([FA, FB], lr=cfg.lr, weight_decay=cfg.weight_decay)
    curve, epochs = [], []
    start = 0
    if saved is not None and saved["stage"] == "finetune":
        with torch.no_grad():
            FA.copy_(saved["tensors"][0])
            FB.copy_(saved["tensors"][1])
        opt.load_state_dict(saved["opt"])
        start, epochs = saved["epoch"], list(saved["extra"]["epochs"])
        curve = [c.numpy() if torch.is_tensor(c) else np.asarray(c) for c in saved["extra"]["curve"]]

    def predict():
        return (cf @ torch.sigmoid((W1f + FB @ FA) @ Xf)).squeeze(-2)  # (B, n)

    for e in bar(start, cfg.finetune_epochs, "finetune"):
        opt.zero_grad(set_to_none=True)
        out = predict()
        loss = ((out - Yf) ** 2).mean(-1).sum()
        loss.backward()
        opt.step()
        if (e + 1) % cfg.record_every == 0 or e + 1 == cfg.finetune_epochs:
            with torch.no_grad():
                curve.append(((predict() - Cf) ** 2).mean(-1).reshape(M, S).double().numpy())
            epochs.append(e + 1)
        # the curve as tensors: a checkpoint is read back with torch.load(weights_only=True),
        # which refuses numpy arrays (the whole file would be unreadable and the run restart)
        save("finetune", e + 1, [FA, FB], opt, {"base": [p_.detach() for p_ in params],
                                                "curve": [torch.from_numpy(c) for c in curve], "epochs": epochs})
    if checkpoint is not None and os.path.exists(checkpoint):
        os.remove(checkpoint)
    final = curve[-1]
    return {
        "methods": ["lora-ml", "sr"],
        "final_mse": final,
        "curve": np.stack(curve, axis=-1),
        "curve_epochs": np.asarray(epochs),
        "retrain_loss": retrain_loss.double().numpy(),
        "seeds": list(seeds),
        "config": dataclasses.asdict(cfg),
    }
