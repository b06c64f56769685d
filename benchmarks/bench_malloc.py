"""What keeping glibc's large blocks on the heap (:mod:`empirics._malloc`) buys the CPU engines.

malloc's setting is process-wide, so each measurement is a child process: one retraining
epoch of the vision protocol (random CIFAR-shaped pixels, as ``bench_real.py``) after an
untimed warm-up epoch, batched engine then sequential trainer, with ``LORAML_MALLOC=heap``
(what a run sets) or ``system`` (glibc's default). The two modes alternate ``--repeats``
times; each keeps its fastest process CPU time per engine. Printed per engine: both CPU
times, the ratio heap / system, the minor page faults of the timed epoch and each child's
peak resident memory. The children also check that the two modes' retrained weights are
the same bit for bit (a sha256 of every weight).

Usage::

    python benchmarks/bench_malloc.py [--method lora-ml] [--width 64] [--batch-size 64]
                                      [--per-task 256] [--seeds 5] [--repeats 3] [--out F]

The default takes about two minutes on one core.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("heap", "system")

_CHILD = r"""
import hashlib, json, resource, sys, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
import torch
torch.set_num_threads(1)
from empirics import _malloc
st = _malloc.tune()
from bench_real import _family
from empirics._trainer import retrain
from empirics.real import _batched
from empirics.real._run import RunConfig, stage_generator, stage_plan
a = json.loads(sys.argv[1])
fam = _family(a["per_task"], a["width"], a["batch_size"], "cpu")
cfg = RunConfig(epochs=1, reptile_outer_epochs=1, device="cpu", bf16=False)
rt, _ = stage_plan(cfg, a["method"], len(fam.retrain_tasks()))
seeds = list(range(1, a["seeds"] + 1))
def batched():
    return _batched.retrain_group(fam, rt, [stage_generator(s, 0) for s in seeds])[0]
def sequential():
    return [retrain(fam, rt, stage_generator(s, 0)) for s in seeds]
out = {{"malloc": st}}
for name, fn in (("batched", batched), ("sequential", sequential)):
    fn()  # warm-up: allocator, caches
    f0, c0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
    res = fn()
    out[name + "_cpu_s"] = time.process_time() - c0
    out[name + "_minor_faults"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    if name == "batched":
        h = hashlib.sha256()
        for k in sorted(res):
            h.update(k.encode()); h.update(res[k].detach().contiguous().numpy().tobytes())
        out["batched_weights_sha256"] = h.hexdigest()
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def child(mode: str, args: dict) -> dict:
    env = {**os.environ, "LORAML_MALLOC": mode, "OMP_NUM_THREADS": "1"}
    code = _CHILD.format(root=str(ROOT), bench=str(ROOT / "benchmarks"))
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"child ({mode}) failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/bench_malloc.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="lora-ml", choices=("lora-ml", "sr", "last-layer-ml", "reptile"))
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--per-task", type=int, default=256)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    if min(a.width, a.batch_size, a.per_task, a.seeds, a.repeats) < 1:
        print("error: sizes, --seeds and --repeats must be >= 1", file=sys.stderr)
        return 2
    args = {"method": a.method, "width": a.width, "batch_size": a.batch_size, "per_task": a.per_task,
            "seeds": a.seeds}
    runs = {m: [] for m in MODES}
    load = [os.getloadavg()[0]]
    for _ in range(a.repeats):
        for m in MODES:
            runs[m].append(child(m, args))
    load.append(os.getloadavg()[0])
    if runs["system"][0]["malloc"]["mode"] != "system" or runs["heap"][0]["malloc"]["mode"] != "heap":
        print(f"error: malloc could not be set here: {runs['heap'][0]['malloc']}", file=sys.stderr)
        return 1
    same = len({r["batched_weights_sha256"] for m in MODES for r in runs[m]}) == 1
    print(f"one retraining epoch of {a.method}, {a.seeds} seeds, width {a.width}, batch {a.batch_size}, "
          f"{a.per_task} images/task; best of {a.repeats} alternating child processes per mode")
    rows = {}
    for eng in ("batched", "sequential"):
        best = {m: min(runs[m], key=lambda r: r[eng + "_cpu_s"]) for m in MODES}
        row = {m + "_cpu_s": best[m][eng + "_cpu_s"] for m in MODES}
        row.update({m + "_minor_faults": best[m][eng + "_minor_faults"] for m in MODES})
        row["ratio_heap_over_system"] = row["heap_cpu_s"] / row["system_cpu_s"]
        rows[eng] = row
        print(f"{eng:10s} heap {row['heap_cpu_s']:6.2f} s  system {row['system_cpu_s']:6.2f} s  "
              f"ratio heap/system {row['ratio_heap_over_system']:.3f}  minor page faults "
              f"{row['heap_minor_faults']:,} vs {row['system_minor_faults']:,}")
    peak = {m: max(r["peak_rss_mib"] for r in runs[m]) for m in MODES}
    print(f"peak resident memory of a child: heap {peak['heap']:.0f} MiB, system {peak['system']:.0f} MiB "
          f"(ratio {peak['heap'] / peak['system']:.2f})")
    print(f"retrained weights the same bit for bit in every child: {same}")
    print(f"load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f}")
    if a.out:
        from empirics._records import provenance, write_json

        write_json(a.out, {"kind": "loraml.bench_malloc", **args, "repeats": a.repeats, "rows": rows,
                           "peak_rss_mib": peak, "same_weights": same, "load_average": load,
                           "malloc": runs["heap"][0]["malloc"], "runs": runs, "provenance": provenance(device="cpu")})
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
