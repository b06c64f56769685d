"""Benchmark of the fused, seed-batched vision engine against the sequential trainer.

One retraining epoch of the vision protocol (MLP-Mixer on four class-pair tasks, the
best-epoch validation included) for S seeds, in the same process:

* sequential: :func:`empirics._trainer.retrain` (HF ``peft`` LoRA, one task forward after
  another, one seed after another), as ``python -m empirics vision`` runs today;
* batched: :func:`empirics.real._batched.retrain_group` (all seeds and all tasks of a step
  in one forward).

Both consume the same generators and produce the same weights (tests/test_real_batched.py);
the benchmark prints the wall time of each, the ratio batched / sequential and the
speed-up, and the ratio of process CPU times (steadier than wall time on a shared machine).
On a CPU it also prints, per method and engine, the achieved FLOP rate -- the matrix
products' FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode`` over process CPU
time -- against the single-core float32 ``torch.mm`` rate measured in the same process
(also on CPU time), and the ceiling: the same engine's matrix products alone, recorded
with their shapes and strides and replayed (:func:`record_matmuls`, :func:`matmul_ceiling`),
with the share of the engine's time they take. Images are random pixels in the CIFAR-10
shape (the cost does not depend on their content), so no data set is needed.

Committed records (``benchmarks/records/bench_real-*.json``): the CPU Table 1's size (width
32, batch 8, 200 images per task; ``table1-s{1,5}``) and the default size (``w64-s{1,5}``)
for one and five seeds; ``-v3`` with malloc kept on the heap (``bench_malloc.py``), the
earlier versions before it; ``-v4`` the five-seed runs of both sizes again on a second 2-core CPU.

Usage::

    python benchmarks/bench_real.py [--width 64] [--batch-size 64] [--per-task 256] [--seeds 3]
                                    [--methods lora-ml sr] [--threads 1] [--repeats 3]
                                    [--profile 15] [--out bench.json]

``--repeats R`` alternates R timed runs of each engine and keeps each one's fastest (process
CPU time); ``--profile N`` adds the batched engine's N costliest aten operators (process CPU time of
each, :func:`top_ops`), as shares of all operators' time. Every row records the one-minute load
average before and after its timed runs, and the fraction of the engine that a batched
run actually uses for that group (:func:`empirics.real._batched.route`). On a CPU the
process's malloc is set as a run sets it (:func:`empirics._malloc.tune`, recorded as
``malloc``); ``LORAML_MALLOC=system`` measures glibc's default instead.
    python benchmarks/bench_real.py --device cuda   # paper sizes on a GPU host, bf16

The CPU default (an untimed warm-up epoch per engine first) takes about a minute on one core; ``--device cuda`` defaults to the paper's
width 512, batch 256 and 2,048 images per task (timing one epoch after a warm-up epoch).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Paper sizes used by ``--device cuda`` unless overridden (THEORY.md 9.5).
CUDA_DEFAULTS = {"width": 512, "batch_size": 256, "per_task": 2048}
#: Reduced CPU sizes: a minute on one core for both engines.
CPU_DEFAULTS = {"width": 64, "batch_size": 64, "per_task": 256}


def _family(per_task: int, width: int, batch_size: int, device: str):
    import numpy as np

    from empirics.real._fixtures import random_vision_arrays
    from empirics.real._vision import VisionFamily
    from empirics.real._vision_data import build_vision_tasks

    rng = np.random.default_rng(0)
    arrays = random_vision_arrays(rng, n_train=5 * per_task, n_test=max(50, per_task // 2))
    tasks = build_vision_tasks(arrays, device=device)
    return VisionFamily(tasks, batch_size=batch_size, dim=width)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a float32 ``torch.mm`` of two n x n matrices in this process, at its
    current torch thread count, on process CPU time (best of ``repeats``; on a shared
    machine CPU time is what this process got, wall time also counts the others): the
    peak the engines are measured against."""
    import torch

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        torch.mm(a, b)
        best = min(best, time.process_time() - c0)
    return 2 * n ** 3 / best / 1e9


#: The matrix products of the engines (what FlopCounterMode counts).
MATMULS = ("mm", "bmm", "addmm", "baddbmm")


def record_matmuls(fn) -> dict:
    """``{(op, shapes, strides): calls}``: every matrix product ``fn()`` runs (forward and
    backward), by operand layout."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: dict = {}

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name in MATMULS:
                ts = tuple(a for a in args if isinstance(a, torch.Tensor))
                key = (name, tuple(tuple(t.shape) for t in ts), tuple(t.stride() for t in ts),
                       tuple(float(v) for k, v in sorted((kwargs or {}).items()) if k in ("alpha", "beta")))
                seen[key] = seen.get(key, 0) + 1
            return func(*args, **(kwargs or {}))

    with Recorder():
        fn()
    return seen


def matmul_ceiling(calls: dict, repeats: int = 3, min_s: float = 0.02) -> float:
    """Process CPU seconds the recorded matrix products take alone (:func:`record_matmuls`):
    each (op, layout) replayed on random operands of the same shapes and strides, best of
    ``repeats`` timings of at least ``min_s`` each, times its number of calls."""
    import torch

    ops = {"mm": torch.mm, "bmm": torch.bmm, "addmm": torch.addmm, "baddbmm": torch.baddbmm}
    g = torch.Generator().manual_seed(0)
    total = 0.0
    for (name, shapes, strides, scalars), count in calls.items():
        # operands with the recorded strides (broadcast biases have stride 0) over random storage
        args = [torch.randn(1 + sum((n - 1) * d for n, d in zip(sh, st) if n > 0), generator=g).as_strided(sh, st)
                for sh, st in zip(shapes, strides)]
        kw = dict(zip(("beta", "alpha"), scalars)) if scalars else {}
        ops[name](*args, **kw)
        reps = 1
        while True:
            c0 = time.process_time()
            for _ in range(reps):
                ops[name](*args, **kw)
            if time.process_time() - c0 >= min_s:
                break
            reps *= 4
        best = float("inf")
        for _ in range(repeats):
            c0 = time.process_time()
            for _ in range(reps):
                ops[name](*args, **kw)
            best = min(best, (time.process_time() - c0) / reps)
        total += best * count
    return total


def count_flops(fn) -> int:
    """FLOPs of the matrix products ``fn()`` runs (``torch.utils.flop_counter.FlopCounterMode``:
    matmuls forward and backward; elementwise work counts zero)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def top_ops(fn, n: int) -> dict:
    """The ``n`` aten operators that take the most process CPU time in one call of ``fn``,
    each timed on its own (a ``TorchDispatchMode`` reads ``time.process_time`` around every
    operator; the mode's own bookkeeping falls outside the timed spans):
    ``{"ops": [{"op", "calls", "cpu_ms", "share"}], "ops_cpu_s", "total_cpu_s"}``, shares of
    the operators' summed time; ``total_cpu_s`` - ``ops_cpu_s`` is Python, the autograd
    engine and the mode itself. (torch.profiler's per-operator times are wall-clock spans,
    which on this machine charged some backward operators several times their CPU time.)"""
    from torch.utils._python_dispatch import TorchDispatchMode

    acc: dict = {}

    class Timer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            c0 = time.process_time()
            out = func(*args, **(kwargs or {}))
            dt = time.process_time() - c0
            e = acc.setdefault(func.overloadpacket.__name__, [0, 0.0])
            e[0] += 1
            e[1] += dt
            return out

    c0 = time.process_time()
    with Timer():
        fn()
    total = time.process_time() - c0
    ops_s = sum(t for _, t in acc.values()) or 1e-12
    rows = sorted(acc.items(), key=lambda kv: -kv[1][1])[:n]
    return {"ops": [{"op": k, "calls": c, "cpu_ms": 1e3 * t, "share": t / ops_s} for k, (c, t) in rows],
            "ops_cpu_s": ops_s, "total_cpu_s": total}


def _timed(fn, device: str) -> tuple:
    """(wall s, process CPU s) of one call of ``fn``."""
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def bench(method: str, family, seeds, device: str, bf16: bool, compile: bool, warmup: bool,
          repeats: int = 1, profile_top: int = 0) -> dict:
    import dataclasses

    from empirics._trainer import retrain
    from empirics.real import _batched
    from empirics.real._run import RunConfig, stage_generator, stage_plan

    cfg = RunConfig(epochs=1, reptile_outer_epochs=1, device=device, bf16=bf16)
    rt, _ = stage_plan(cfg, method, len(family.retrain_tasks()))
    if method == "reptile":  # one outer epoch: every task once
        rt = dataclasses.replace(rt, epochs=len(family.retrain_tasks()))

    def sequential():
        for s in seeds:
            retrain(family, rt, stage_generator(s, 0))

    def batched():
        _batched.retrain_group(family, rt, [stage_generator(s, 0) for s in seeds], compile=compile)

    if warmup:  # allocator, cuBLAS handles, compilation
        _batched.retrain_group(family, dataclasses.replace(rt, epochs=1), [stage_generator(s, 0) for s in seeds],
                               compile=compile)
        retrain(family, dataclasses.replace(rt, epochs=1), stage_generator(seeds[0], 0))
    cpu = not device.startswith("cuda")
    # FLOPs and the matrix products of the same work, counted in untimed runs (the counter
    # and the recorder slow what they watch)
    flops_seq = count_flops(sequential) if cpu else None
    flops_bat = count_flops(batched) if cpu else None
    load_before = os.getloadavg()[0]
    peak_before = matmul_rate() if cpu else None
    # the engines alternate; each keeps its fastest run (process CPU time; wall time of that run)
    seq, seq_cpu, bat, bat_cpu = (float("inf"),) * 4
    for _ in range(repeats):
        w, c = _timed(sequential, device)
        seq, seq_cpu = (w, c) if c < seq_cpu else (seq, seq_cpu)
        w, c = _timed(batched, device)
        bat, bat_cpu = (w, c) if c < bat_cpu else (bat, bat_cpu)
    route = _batched.route(cfg, method, len(seeds))  # what a batched run does with this group
    out = {"method": method, "route": route[0], "route_reason": route[1], "repeats": repeats,
           "sequential_s": seq, "batched_s": bat, "ratio_batched_over_sequential": bat / seq,
           "speedup": seq / bat, "sequential_cpu_s": seq_cpu, "batched_cpu_s": bat_cpu,
           "cpu_ratio_batched_over_sequential": bat_cpu / seq_cpu}
    if cpu:
        peak = 0.5 * (peak_before + matmul_rate())  # the matmul rate around the timed runs
        mm_seq, mm_bat = matmul_ceiling(record_matmuls(sequential)), matmul_ceiling(record_matmuls(batched))
        out.update({"matmul_gflops": peak, "sequential_gflop": flops_seq / 1e9, "batched_gflop": flops_bat / 1e9})
        for name, flops, wall, cpu_s, mm in (("sequential", flops_seq, seq, seq_cpu, mm_seq),
                                              ("batched", flops_bat, bat, bat_cpu, mm_bat)):
            out.update({
                f"{name}_gflops": flops / cpu_s / 1e9,  # on process CPU time, as the matmul rate
                f"{name}_fraction_of_matmul": flops / cpu_s / 1e9 / peak,
                f"{name}_wall_gflops": flops / wall / 1e9,
                # the engine's own matrix products alone, replayed at its shapes: the ceiling
                f"{name}_matmul_only_cpu_s": mm,
                f"{name}_matmul_only_gflops": flops / mm / 1e9,
                f"{name}_matmul_only_fraction_of_matmul": flops / mm / 1e9 / peak,
                f"{name}_matmul_share_of_time": mm / cpu_s})
        # the engine a batched run retrains this group with (route), and its fraction
        out["routed_fraction_of_matmul"] = out[f"{route[0]}_fraction_of_matmul"]
    # one-minute load average before and after the timed runs (other processes share the caches)
    out["load_average"] = [load_before, os.getloadavg()[0]]
    if profile_top:
        out["batched_top_ops"] = top_ops(batched, profile_top)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/bench_real.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--per-task", type=int, default=None, help="training images per retraining task")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds S (default %(default)s)")
    p.add_argument("--methods", nargs="+", default=["lora-ml", "sr"],
                   choices=("lora-ml", "sr", "last-layer-ml", "reptile"))
    p.add_argument("--compile", action="store_true", help="torch.compile the batched forward")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default %(default)s)")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up epoch of each engine")
    p.add_argument("--repeats", type=int, default=1,
                   help="timed runs per engine, alternating; each engine's fastest counts (default %(default)s)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also print the batched engine's N operators with the largest self CPU time")
    p.add_argument("--out", default=None, help="also write the numbers as JSON here")
    a = p.parse_args(argv)
    defaults = CUDA_DEFAULTS if a.device.startswith("cuda") else CPU_DEFAULTS
    width = a.width or defaults["width"]
    batch = a.batch_size or defaults["batch_size"]
    per_task = a.per_task or defaults["per_task"]
    if min(width, batch, per_task, a.seeds, a.threads, a.repeats) < 1 or a.profile < 0:
        print("error: sizes, --seeds, --threads and --repeats must be >= 1, --profile >= 0", file=sys.stderr)
        return 2
    import torch

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"error: --device {a.device} requested but CUDA is not available", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    from empirics import _malloc

    # before the first large tensor, as a run does (the engine and the runner tune it on a CPU);
    # LORAML_MALLOC=system measures glibc's default instead
    try:
        malloc = _malloc.tune_for(a.device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bf16 = a.device.startswith("cuda")
    family = _family(per_task, width, batch, a.device)
    seeds = list(range(1, a.seeds + 1))
    rows = []
    if a.threads != 1 and not a.device.startswith("cuda"):
        print("note: the matmul rate is measured at the same thread count as the engines", file=sys.stderr)
    print(f"one retraining epoch, {a.seeds} seeds, width {width}, batch {batch}, {per_task} images/task, "
          f"device {a.device}{' bf16' if bf16 else ''}; malloc {malloc['mode']}"
          f"{' (' + malloc['reason'] + ')' if 'reason' in malloc else ''}")
    for m in a.methods:
        r = bench(m, family, seeds, a.device, bf16, a.compile, warmup=not a.no_warmup, repeats=a.repeats,
                  profile_top=a.profile)
        rows.append(r)
        print(f"{m:14s} sequential {r['sequential_s']:8.2f} s  batched {r['batched_s']:8.2f} s  "
              f"ratio batched/sequential {r['ratio_batched_over_sequential']:.3f}  (speed-up {r['speedup']:.2f}x; "
              f"process CPU time ratio {r['cpu_ratio_batched_over_sequential']:.3f})")
        if "matmul_gflops" in r:
            print(f"{'':14s} single-core float32 torch.mm {r['matmul_gflops']:.1f} GFLOP/s (process CPU time); "
                  f"FlopCounterMode: {r['batched_gflop']:.2f} GFLOP batched, {r['sequential_gflop']:.2f} sequential")
            for name in ("sequential", "batched"):
                print(f"{'':14s} {name:10s} {r[name + '_gflops']:6.1f} GFLOP/s = "
                      f"{100 * r[name + '_fraction_of_matmul']:3.0f}% of torch.mm; its matmuls alone at its shapes "
                      f"{r[name + '_matmul_only_gflops']:6.1f} GFLOP/s = "
                      f"{100 * r[name + '_matmul_only_fraction_of_matmul']:3.0f}% (the ceiling), "
                      f"{100 * r[name + '_matmul_share_of_time']:3.0f}% of its time")
            print(f"{'':14s} the engine a batched run uses here ({r['route']}): "
                  f"{100 * r['routed_fraction_of_matmul']:3.0f}% of torch.mm")
        faster = "batched" if r["batched_cpu_s"] <= r["sequential_cpu_s"] else "sequential"
        print(f"{'':14s} faster engine here (process CPU time): {faster}; a batched run retrains this group "
              f"{'batched' if r['route'] == 'batched' else 'on the sequential trainer: ' + r['route_reason']}"
              f"{'' if faster == r['route'] else '  <-- NOT the faster engine'}")
        print(f"{'':14s} load average (1 min) before / after the timed runs: "
              f"{r['load_average'][0]:.2f} / {r['load_average'][1]:.2f}")
        if "batched_top_ops" in r:
            top = r["batched_top_ops"]
            print(f"{'':14s} batched engine, costliest operators (process CPU time of each; shares of "
                  f"the operators' {top['ops_cpu_s']:.2f} s):")
            for op in top["ops"]:
                print(f"{'':14s}   {op['op']:28s} {100 * op['share']:5.1f}%  {op['cpu_ms']:8.1f} ms  {op['calls']:6d} calls")
    if a.out:
        from empirics._records import provenance, write_json

        write_json(a.out, {"kind": "loraml.bench_real", "device": a.device, "width": width, "batch_size": batch,
                           "per_task": per_task, "seeds": a.seeds, "threads": a.threads, "malloc": malloc, "rows": rows,
                           "provenance": provenance(device=a.device)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
