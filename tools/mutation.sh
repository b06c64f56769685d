#!/usr/bin/env bash
# Selective mutation-testing run (tools/mutation.py) over the rigorous core: every mutant
# of landscape/_interval.py, a stated random fraction (seed 0) of the others.
# Usage: tools/mutation.sh OUT.jsonl [PYTHON]      (from the project root; ~30-40 min on one core)
set -euo pipefail
out=${1:?usage: tools/mutation.sh OUT.jsonl [PYTHON]}
py=${2:-python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
run() { "$py" tools/mutation.py --seed 0 --out "$out" --modules "$1" --fraction "$2"; }
run landscape/_interval.py 1.0
run landscape/_certificates.py 0.05
run theory/_independent.py 0.08
run landscape/_objective.py 0.1
run landscape/_curvature.py 0.1
run theory/_linalg.py 0.1
run theory/_result.py 0.1
run theory/_registry.py 0.1
run theory/_checks_sr.py 0.02
run theory/_checks_minima.py 0.02
run theory/_checks_saddles.py 0.02
"$py" tools/mutation.py --summary "$out"
