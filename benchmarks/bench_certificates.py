"""Benchmark of the Taylor certificate at scale (issue 11 section 4, issue 21 item 2).

The App. F.2 spurious minimum (THEORY.md section 8; T = 3, d = 3, k = 1) embedded into
dimension d by :func:`landscape.certificates.taylor_fp.embed_spurious_instance` (a block construction
that keeps it a strict spurious local minimum; random rotation, so every matrix is
dense) is certified with the floating-point Taylor certificate (a priori rounding-error
bounds, Rump's Cholesky criterion), written to JSON, read back and re-verified:

* T*d*k = 300 (d = 100): both paths run; the ``arb`` path is timed in the same run
  and the ratio printed (the arb path refuses above 300);
* T*d*k = 1002, 3000 (d = 334, 1000);
* ``--full``: T*d*k = 10002 (d = 3334): targets under 2 minutes for the certificate,
  under 2 GiB peak memory, and within 2.5x of a bare ``np.linalg.cholesky`` of the same
  n (issue 21).

Each size runs in child processes of its own (one BLAS thread), so that each peak
resident memory (``ru_maxrss``) is its own: a first child draws the instance and saves
it, a second loads it, certifies (peak read here: the instance plus everything the
certificate needs), writes the certificate's JSON and then times a bare
``np.linalg.cholesky`` of a symmetric positive definite n x n matrix, so that the
certificate/Cholesky ratio is measured in one process; a third reads the JSON back and
re-verifies it (its own peak).

Run ``python benchmarks/bench_certificates.py [--full] [--only-d D ...] [--out FILE]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Targets at T*d*k = 10^4 (issue 11: time; issue 21: memory and the Cholesky ratio).
TARGET_10K_S = 120.0
TARGET_10K_GIB = 2.0
TARGET_10K_CHOL_RATIO = 2.5

_MAKE = r"""
import sys
import numpy as np
from landscape._instances import f2_spurious_instance
from landscape.certificates.taylor_fp import embed_spurious_instance
d, seed, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
inst, U0 = f2_spurious_instance()
tasks, U, Us, lam_K = embed_spurious_instance(inst.problem.tasks, U0, inst.U_star, d, np.random.default_rng(seed))
np.savez(path, tasks=tasks, U=U, Us=Us)
"""

_RUN = r"""
import json, resource, sys, time
import numpy as np
import landscape as ls
from landscape.certificates import taylor_certificate

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

path, method, chol, json_path = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
with np.load(path) as z:
    tasks, U, Us = z["tasks"], z["U"], z["Us"]
p = ls.LoraMLProblem(tasks, 1)
del tasks
rss_loaded = peak()
t0 = time.perf_counter()
cert = taylor_certificate(p, U, witness=Us, method=method)
t_cert = time.perf_counter() - t0
peak_cert = peak()
t0 = time.perf_counter()
text = cert.to_json()
t_json = time.perf_counter() - t0
with open(json_path, "w") as fh:
    fh.write(text)
out = {"d": p.d, "n": p.dim_U, "kind": cert.kind, "verdict": cert.verdict, "certify_s": t_cert, "to_json_s": t_json,
       "json_mb": len(text) / 1e6, "lambda_lower": cert.bounds["lambda_min_quotient_lower"], "C1": cert.margins["C1"],
       "C2": cert.margins["C2"], "G_lower": cert.enclosures["G(U0)"][0], "shift": cert.parameters["shift"],
       "rss_loaded_gib": rss_loaded, "peak_certify_gib": peak_cert}
del cert, text
if chol:
    n = p.dim_U
    A = np.random.default_rng(0).standard_normal((n, n))
    A += A.T
    A[np.diag_indices(n)] += 4.0 * np.sqrt(n)  # Gershgorin-safe: symmetric positive definite
    t0 = time.perf_counter()
    L = np.linalg.cholesky(A)
    out["cholesky_s"] = time.perf_counter() - t0
print(json.dumps(out))
"""

_VERIFY = r"""
import json, resource, sys, time
from landscape.certificates import Certificate
t0 = time.perf_counter()
with open(sys.argv[1]) as fh:
    cert = Certificate.from_json(fh.read())
t_load = time.perf_counter() - t0
t0 = time.perf_counter()
ok = cert.verify()
print(json.dumps({"reverified": ok, "from_json_s": t_load, "verify_s": time.perf_counter() - t0,
                  "peak_verify_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def _child(code: str, *args) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                         cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "child failed")
    return out.stdout


def run(d, seed, method="auto", cholesky=False):
    with tempfile.TemporaryDirectory() as tmp:
        path, cert_path = Path(tmp) / "instance.npz", Path(tmp) / "certificate.json"
        _child(_MAKE, d, seed, path)
        out = json.loads(_child(_RUN, path, method, int(cholesky), cert_path).strip().splitlines()[-1])
        out.update(json.loads(_child(_VERIFY, cert_path).strip().splitlines()[-1]))
        out["json_s"] = out["to_json_s"] + out["from_json_s"]
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also T*d*k = 10002 (under 2 GiB, a few minutes)")
    ap.add_argument("--only-d", type=int, nargs="+", default=None, help="run only these d (no arb comparison)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the measurements here (JSON)")
    args = ap.parse_args(argv)
    if args.only_d is not None and any(d <= 3 for d in args.only_d):
        print("error: --only-d: every d must exceed 3 (the embedded instance has d = 3)", file=sys.stderr)
        return 2
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                       "loadavg": os.getloadavg()}, "cases": []}
    ok = True
    if args.only_d is None:
        arb = run(100, args.seed, method="arb")
        fp = run(100, args.seed, method="fp")
        print(f"T*d*k = 300: arb {arb['certify_s']:.2f} s + verify {arb['verify_s']:.2f} s; float "
              f"{fp['certify_s']:.2f} s + verify {fp['verify_s']:.2f} s: {arb['certify_s'] / fp['certify_s']:.1f}x / "
              f"{arb['verify_s'] / fp['verify_s']:.1f}x; lambda lower bounds arb {arb['lambda_lower']:.12g}, "
              f"float {fp['lambda_lower']:.12g}; verdicts {arb['verdict']} / {fp['verdict']}")
        ok &= arb["verdict"] == fp["verdict"] and arb["reverified"] and fp["reverified"]
        out["ratio_300"] = {"arb": arb, "fp": fp}
    sizes = args.only_d if args.only_d is not None else (334, 1000) + ((3334,) if args.full else ())
    for d in sizes:
        r = run(d, args.seed, cholesky=True)
        r["cholesky_ratio"] = r["certify_s"] / r["cholesky_s"]
        passed = r["verdict"] == "certified_spurious_local_minimum" and r["reverified"]
        if r["n"] >= 10_000:
            passed &= (r["certify_s"] < TARGET_10K_S and r["peak_certify_gib"] < TARGET_10K_GIB
                       and r["cholesky_ratio"] < TARGET_10K_CHOL_RATIO)
        ok &= passed
        print(f"T*d*k = {r['n']}: {r['verdict']}, re-verified {r['reverified']}; certify {r['certify_s']:.1f} s "
              f"= {r['cholesky_ratio']:.2f}x a bare Cholesky of n = {r['n']} ({r['cholesky_s']:.1f} s, same process), "
              f"JSON round trip {r['json_s']:.1f} s ({r['json_mb']:.0f} MB), verify {r['verify_s']:.1f} s; "
              f"lambda >= {r['lambda_lower']:.9g}, C1 {r['C1']:.3g}, C2 {r['C2']:.3g}; peak "
              f"{r['peak_certify_gib']:.2f} GiB certifying (instance loaded: {r['rss_loaded_gib']:.2f} GiB), "
              f"{r['peak_verify_gib']:.2f} GiB re-verifying from the JSON file in a process of its own; "
              f"{'OK' if passed else 'MISSED'}")
        out["cases"].append({**r, "passed": passed})
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    if args.out:
        from landscape.runtime.atomic import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(out, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
