#!/usr/bin/env bash
# Selective mutation-testing run (tools/mutation.py) over the rigorous core: a stated
# random fraction (seed 0) of each module's mutants, in random order.
# Usage: tools/mutation.sh OUT.jsonl [PYTHON]   (from the project root; ~1 h on a loaded 2-core machine)
set -euo pipefail
out=${1:?usage: tools/mutation.sh OUT.jsonl [PYTHON]}
py=${2:-python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
run() { "$py" tools/mutation.py --seed 0 --out "$out" --modules "$1" --fraction "$2"; }
run landscape/certificates/data.py 0.03
run landscape/certificates/common.py 0.03
run landscape/certificates/enclosures.py 0.03
run landscape/certificates/polish.py 0.03
run landscape/certificates/taylor_arb.py 0.03
run landscape/certificates/net.py 0.03
run landscape/_interval.py 0.35
run theory/_independent.py 0.05
run landscape/_objective.py 0.06
run landscape/_curvature.py 0.06
run theory/_linalg.py 0.1
run theory/_result.py 0.1
run theory/_registry.py 0.1
run theory/_checks_sr.py 0.015
run theory/_checks_minima.py 0.015
run theory/_checks_saddles.py 0.015
"$py" tools/mutation.py --summary "$out"
