"""The batched vision engine's stages: retraining (:func:`retrain_group`) and fine-tuning
(:func:`finetune_group`) of S seeds at once, and one unit of the vision protocol for a
group of seeds (:func:`run_group`). See :mod:`empirics.real._batched` for the engine as a
whole; the stage plan, history and unit formats are :mod:`empirics.real._protocol`'s, the
optimizers, schedules and Reptile steps :mod:`empirics._stage`'s, so both engines share them.
"""
from __future__ import annotations

import dataclasses
import math
import time

import torch

from .._stage import ReptileOuter, make_optimizer, make_scheduler, reptile_inner_optimizer, reptile_outer_step
from ._batched_engine import (BatchData, Engine, check_supported, dev_generators, history_records, init_base,
                              init_heads, init_lora, lora_targets, reptile_order, reptile_plan, rounds_plan, route,
                              task_view)
from ._batched_model import StackedModel, stack_state_dicts
from ._config import stage_generator
from ._protocol import compact_history, finetune_entry, retrain_steps, stage_plan

__all__ = ["retrain_group", "finetune_group", "run_group", "multi_tensor", "sequential_retrain"]


def multi_tensor(opt):
    """``opt`` with torch's multi-tensor (``foreach``) update in every group, also on a CPU
    (torch picks it by default on CUDA only). The elementwise arithmetic is the
    single-tensor update's, bit for bit (``tests/test_real_batched.py``), with one call
    per operation for all of a group's tensors instead of one per tensor: on a CPU at the
    CPU Table 1's size the optimizer step took 30 % less time."""
    for group in opt.param_groups:
        if "foreach" in group:
            group["foreach"] = True
    return opt


def retrain_group(family, cfg, gens, *, compile: bool = False, progress: bool = False):
    """Retrain S seeds of ``cfg.method`` (a :class:`~empirics._trainer.StageConfig`) at once.

    ``gens``: one stage generator per seed (``stage_generator(seed, 0)``), the only source
    of randomness, consumed exactly as :func:`empirics._trainer.retrain` consumes it.

    Returns
    -------
    (base, histories, best_epochs)
        ``base``: stacked retrained base weights (the best validation epoch per seed when
        ``cfg.select_best``); ``histories``: per seed, trainer-style epoch records;
        ``best_epochs``: per seed, the selected epoch (``None`` without selection).
    """
    check_supported(cfg)
    eng = Engine(family, cfg.device, bf16=cfg.bf16, compile=compile)
    dev, S = eng.device, len(gens)
    tasks = eng.tasks
    T = len(tasks.names)
    data = BatchData(tasks.train_x, tasks.train_y)
    base = init_base(family, gens, dev)
    model = StackedModel(base=base)
    if cfg.method == "lora-ml":
        if cfg.lora_heads:  # heads first, then LoRA on the body: the order of attach_lora_heads
            model.heads = init_heads(eng.net.dim, family.arch["num_classes"], T, gens, dev)
        model.lora = init_lora(eng.net, base, T, cfg.k, gens, dev, lora_targets(eng.net, cfg.lora_heads))
        model.lora_scaling = (cfg.k if cfg.lora_alpha is None else cfg.lora_alpha) / cfg.k
    elif cfg.method == "last-layer-ml":
        model.heads = init_heads(eng.net.dim, family.arch["num_classes"], T, gens, dev)
    dev_gens = dev_generators(dev, S)
    base_list = list(base.values())
    best_score = torch.full((S,), -math.inf, dtype=torch.float64, device=dev)
    best_epoch = torch.full((S,), -1, dtype=torch.long, device=dev)
    best_state = {k: v.detach().clone() for k, v in base.items()} if cfg.select_best else None
    epochs, loss_log, acc_log, vloss_log, task_log = [], [], [], [], []

    def validate(epoch):
        if not cfg.validate_every or epoch % cfg.validate_every:
            acc_log.append(None); vloss_log.append(None)
            return
        accs, vls = [], []
        for t in range(T):
            tot, cor = eng.evaluate(task_view(model, t) if (model.lora or model.heads) else model,
                                    tasks.val_x[t], tasks.val_y[t], S)
            n = max(len(tasks.val_y[t]), 1)
            accs.append(cor.to(torch.float64) / n); vls.append(tot.to(torch.float64) / n)
        acc, vl = torch.stack(accs, 1), torch.stack(vls, 1)
        avg = accs[0].clone()
        for a in accs[1:]:  # left to right, as the trainer's Python sum
            avg = avg + a
        avg = avg / T
        acc_log.append(acc); vloss_log.append(vl)
        if cfg.select_best:
            better = avg > best_score
            best_score.copy_(torch.where(better, avg, best_score))
            best_epoch.copy_(torch.where(better, torch.full_like(best_epoch, epoch), best_epoch))
            for k, v in base.items():
                sel = better.view((S,) + (1,) * (v.dim() - 1))
                best_state[k].copy_(torch.where(sel, v.detach(), best_state[k]))

    bar = _bar(cfg.epochs * (cfg.reptile_inner_steps if cfg.method == "reptile" else  # per-step progress
                             max(math.ceil(n / eng.batch_size) for n in data.sizes) * (T if cfg.step_per == "batch" else 1)),
               f"batched retrain-{cfg.method}", progress)
    if cfg.method == "reptile":
        if cfg.reptile_outer == "interpolate":
            outer = ReptileOuter(base_list, lr=cfg.lr)
        else:
            outer = multi_tensor(make_optimizer(dataclasses.replace(cfg, optimizer=cfg.reptile_outer),
                                                [{"params": base_list}]))
        sched = make_scheduler(cfg, outer, cfg.epochs)
        orders = [None] * S
        for epoch in range(1, cfg.epochs + 1):
            if (epoch - 1) % T == 0:  # a new outer epoch: each seed draws its task order
                orders = [reptile_order(g, T) for g in gens]
            visit = [int(orders[s][(epoch - 1) % T]) for s in range(S)]
            plans = [reptile_plan(g, visit[s], data.sizes, eng.batch_size, cfg.reptile_inner_steps)
                     for s, g in enumerate(gens)]
            task_log.append(visit)
            theta = [p.detach().clone() for p in base_list]
            inner = multi_tensor(reptile_inner_optimizer(cfg, base_list))
            total = torch.zeros(S, dtype=torch.float64, device=dev)
            steps = [[p[k] for p in plans] for k in range(cfg.reptile_inner_steps)]
            gidx, gvalid = eng.index_steps(data, steps, [[[t] for t in visit]] * len(steps))
            for k in range(cfg.reptile_inner_steps):
                x, y, valid, masks = eng.batch(data, steps[k], gidx[k], gvalid[k], dev_gens)
                inner.zero_grad(set_to_none=True)
                loss = eng.losses(model, x, y, valid, masks)[:, 0]
                loss.sum().backward()
                inner.step()
                bar.update(1)
                total += loss.detach()
            reptile_outer_step(cfg, outer, base_list, theta, T)  # the trainer's own update
            sched.step()
            epochs.append(epoch)
            loss_log.append(total / cfg.reptile_inner_steps)
            validate(epoch)
    else:
        groups = [{"params": base_list}, {"params": model.adapter_tensors(),
                                          "lr": cfg.lr if cfg.adapter_lr is None else cfg.adapter_lr}]
        opt = multi_tensor(make_optimizer(cfg, groups))
        eng.plan_chunks(S, T)
        rounds = max(math.ceil(n / eng.batch_size) for n in data.sizes)
        per_round = T if cfg.step_per == "batch" else 1
        sched = make_scheduler(cfg, opt, cfg.epochs * rounds * per_round)
        for epoch in range(1, cfg.epochs + 1):
            plans = [rounds_plan(g, data.sizes, eng.batch_size, eng.augment) for g in gens]
            total = torch.zeros(S, dtype=torch.float64, device=dev)
            steps = [[p[r] for p in plans] for r in range(rounds)]
            gidx, gvalid = eng.index_steps(data, steps, [[list(range(T))] * S] * rounds)
            for r in range(rounds):
                x, y, valid, masks = eng.batch(data, steps[r], gidx[r], gvalid[r], dev_gens)
                if cfg.step_per == "batch":
                    # SR, the official accounting: one step per task batch, tasks in turn; the
                    # round's batches (and augmentation draws) come first, then each forward
                    # continues the dropout stream, as in the trainer
                    for t in range(T):
                        opt.zero_grad(set_to_none=True)
                        loss = eng.losses(model, x[:, t:t + 1], y[:, t:t + 1], valid[:, t:t + 1],
                                          [m[:, t:t + 1] for m in masks])[:, 0]
                        loss.sum().backward()
                        opt.step()
                        sched.step()
                        bar.update(1)
                        total += loss.detach()
                    continue
                opt.zero_grad(set_to_none=True)
                loss = eng.backward(model, x, y, valid, masks)
                opt.step()
                sched.step()
                bar.update(1)
                step = torch.zeros(S, dtype=torch.float64, device=dev)
                for t in range(T):  # the trainer's per-step float64 sum, task by task
                    step += loss[:, t].detach()
                total += step
            epochs.append(epoch)
            loss_log.append(total / rounds)
            validate(epoch)
    bar.close()
    # the stage's one synchronisation: everything logged comes to the host here
    losses = torch.stack(loss_log).cpu().numpy() if loss_log else torch.zeros((0, S)).numpy()
    accs = [a.cpu().numpy() if a is not None else None for a in acc_log]
    vls = [v.cpu().numpy() if v is not None else None for v in vloss_log]
    hist = history_records(epochs, losses, accs, vls, tasks.names, extra=task_log if task_log else None)
    final = {k: v.detach() for k, v in (best_state if cfg.select_best else base).items()}
    if cfg.select_best:
        be = best_epoch.cpu().tolist()
        best = [e if e >= 0 else None for e in be]
        # no validation epoch at all: the trainer keeps the last weights
        final = {k: torch.where((best_epoch >= 0).view((S,) + (1,) * (v.dim() - 1)), v, base[k].detach())
                 for k, v in final.items()}
    else:
        best = [None] * S
    return final, hist, best


def finetune_group(family, base: dict, cfg, gens, *, compile: bool = False, progress: bool = False):
    """Fine-tune a fresh rank-``cfg.k`` LoRA (``cfg.method == "lora"``) or a fresh head
    (``"last-layer"``) on the frozen stacked ``base`` of S seeds, on the test task.

    ``gens``: one generator per seed (``stage_generator(seed, 1, peft index, 0)``).

    Returns
    -------
    list of dict
        Per seed: ``accuracy``, ``loss`` (after the last epoch), ``accuracy_per_epoch`` and
        ``best_accuracy_over_epochs``, as :func:`empirics.real._protocol.train_unit` records them.
    """
    check_supported(cfg)
    eng = Engine(family, cfg.device, bf16=cfg.bf16, compile=compile)
    dev, S, tasks = eng.device, len(gens), eng.tasks
    data = BatchData([tasks.ft_x], [tasks.ft_y])
    frozen = {k: v.detach().clone().to(dev) for k, v in base.items()}
    model = StackedModel(base=frozen)
    if cfg.method == "lora":
        if cfg.lora_heads:  # a fresh head, then LoRA on the body: the order of attach_lora_heads
            model.heads = init_heads(eng.net.dim, family.arch["num_classes"], 1, gens, dev)
        model.lora = init_lora(eng.net, frozen, 1, cfg.k, gens, dev, lora_targets(eng.net, cfg.lora_heads))
        model.lora_scaling = (cfg.k if cfg.lora_alpha is None else cfg.lora_alpha) / cfg.k
    else:
        model.heads = init_heads(eng.net.dim, family.arch["num_classes"], 1, gens, dev)
    opt = multi_tensor(make_optimizer(cfg, [{"params": model.adapter_tensors()}]))
    rounds = math.ceil(data.sizes[0] / eng.batch_size)
    sched = make_scheduler(cfg, opt, cfg.epochs * rounds)
    dev_gens = dev_generators(dev, S)
    n_eval = max(len(tasks.eval_y), 1)
    accs, losses = [], []
    bar = _bar(cfg.epochs * rounds, f"batched finetune-{cfg.method}", progress)  # per-step progress
    for _ in range(1, cfg.epochs + 1):
        plans = [rounds_plan(g, data.sizes, eng.batch_size, eng.augment) for g in gens]
        steps = [[p[r] for p in plans] for r in range(rounds)]
        gidx, gvalid = eng.index_steps(data, steps, [[[0]] * S] * rounds)
        for r in range(rounds):
            x, y, valid, masks = eng.batch(data, steps[r], gidx[r], gvalid[r], dev_gens)
            opt.zero_grad(set_to_none=True)
            eng.losses(model, x, y, valid, masks).sum().backward()
            opt.step()
            sched.step()
            bar.update(1)
        tot, cor = eng.evaluate(model, tasks.eval_x, tasks.eval_y, S)
        accs.append(cor); losses.append(tot)
    bar.close()
    if not accs:  # zero epochs: the untouched fresh adapter
        tot, cor = eng.evaluate(model, tasks.eval_x, tasks.eval_y, S)
        accs, losses = [cor], [tot]
    acc = (torch.stack(accs).to(torch.float64) / n_eval).cpu().numpy()
    loss = (torch.stack(losses).to(torch.float64) / n_eval).cpu().numpy()
    out = []
    for s in range(S):
        per = [float(a) for a in acc[:, s]] if cfg.epochs else []
        out.append({"task": "test", "accuracy": float(acc[-1, s]), "loss": float(loss[-1, s]),
                    "best_accuracy_over_epochs": max(per) if per else float(acc[-1, s]),
                    "accuracy_per_epoch": per})
    return out


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _bar(total, desc, progress):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=None)


def sequential_retrain(family, cfg, seeds):
    """The retraining stage ``cfg`` of each seed by the sequential trainer
    (:func:`empirics._trainer.retrain`, generator ``stage_generator(seed, 0)``), in
    :func:`retrain_group`'s return format: stacked base weights, histories, best epochs."""
    from .._trainer import retrain

    results = [retrain(family, cfg, stage_generator(int(s), 0)) for s in seeds]
    states = [{k: v.detach() for k, v in r.model.state_dict().items()} for r in results]
    return (stack_state_dicts(states, torch.device(cfg.device)), [r.history for r in results],
            [r.best_epoch for r in results])


def run_group(cfg, family, method: str, seeds, *, compile: bool = False, progress: bool = False) -> list:
    """The vision protocol of :func:`empirics.real._protocol.train_unit` for several seeds at once.

    Retrain ``method`` for every seed of ``seeds`` together (or seed after seed on the
    sequential trainer where :func:`~empirics.real._batched_engine.route` says so), keep each seed's best
    average-validation epoch, then every fine-tuning of ``PAIRINGS[method]`` in
    ``cfg.peft`` on the test task (8, 9), again all seeds together.

    Returns
    -------
    list of dict
        One unit per seed, in the unit format of :mod:`empirics.real._protocol` (merged
        by ``summarize``). Wall times are the group's, divided by the number of seeds
        (``group`` holds the group's own).
    """
    seeds = [int(s) for s in seeds]
    T = len(family.retrain_tasks())
    rt_cfg, ft_cfgs = stage_plan(cfg, method, T)
    t0 = time.perf_counter()
    rt_engine = route(cfg, method, len(seeds))[0]
    if rt_engine == "sequential":
        base, hists, best = sequential_retrain(family, rt_cfg, seeds)
    else:
        base, hists, best = retrain_group(family, rt_cfg, [stage_generator(s, 0) for s in seeds],
                                          compile=compile, progress=progress)
    if base[next(iter(base))].is_cuda:
        torch.cuda.synchronize()
    rt_wall = time.perf_counter() - t0
    steps = retrain_steps(rt_cfg, family)
    units = [{"retrain": method, "seed": s, "engine": "batched", "retrain_engine": rt_engine,
              "retrain_wall_s": rt_wall / len(seeds),
              "best_epoch": best[i], "retrain_steps": steps, "retrain_history": compact_history(hists[i]),
              "finetune": {}}
             for i, s in enumerate(seeds)]
    ft_walls = {}
    for pi, (peft, ft_cfg) in enumerate(ft_cfgs.items()):
        t1 = time.perf_counter()
        res = finetune_group(family, base, ft_cfg, [stage_generator(s, 1, pi, 0) for s in seeds],
                             compile=compile, progress=progress)
        ft_walls[peft] = time.perf_counter() - t1
        for i, r in enumerate(res):
            units[i]["finetune"][peft] = [finetune_entry(r["task"], r["accuracy"], r["loss"], r["accuracy_per_epoch"],
                                                         ft_walls[peft] / len(seeds))]
    wall = time.perf_counter() - t0
    for u in units:
        u["wall_s"] = wall / len(seeds)
        u["group"] = {"seeds": seeds, "retrain_wall_s": rt_wall, "finetune_wall_s": ft_walls, "wall_s": wall}
    return units
