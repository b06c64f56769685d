#!/usr/bin/env bash
# Kill command of the cosmic-ray runs (tools/cosmic-ray/*.toml): the mutated module's
# targeted test files, then `python -m theory --scale quick` stopping at the first failed
# check (tools/theory_failfast.py).  Exit 0 = the mutant survived.  The tests go first only
# because they are the faster kill; a mutant is killed when either command fails, so the
# order does not change which mutants survive.  No byte code is written or reused, so a
# mutated source is never shadowed by a stale .pyc.
set -uo pipefail
py=${CR_PYTHON:-python}
export PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
"$py" -m pytest -x -q -p no:cacheprovider "$@" || exit 1
"$py" tools/theory_failfast.py || exit 1
