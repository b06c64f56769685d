#!/usr/bin/env bash
# Sampled cosmic-ray run of one module (issue 16, item 8).
# Usage (from the project root): tools/cr_run.sh tools/cosmic-ray/NAME.toml N OUTDIR [PYTHON]
#   N mutants drawn uniformly (seed 0) from the module's cosmic-ray mutants; the run happens in
#   a copy of the tracked and untracked-unignored files (cosmic-ray mutates files in place),
#   the session (OUTDIR/NAME.sqlite), its JSON dump and cr-report's text land in OUTDIR.
#   N = 0 runs every mutant (the full run).  Set CR_BASELINE=1 to run the unmutated kill command first.
#   CR_RERUN=1: re-run only the survivors of the session already in OUTDIR (after adding tests);
#   the first run's dump is kept as OUTDIR/NAME.run1.jsonl; CR_EXCEPT=FILE leaves the survivors
#   listed there (judged equivalent) out of the re-run.
#   CR_ONLY="OP@ROW:COL ...": a fresh session that runs only the named mutants (a survivor of an
#   earlier session found again by operator and position after the module changed).
#   CR_EXTEND=M: run M more mutants of the session already in OUTDIR (drawn from those left out).
#   CR_SEED=S: draw the N mutants with seed S instead of 0 (a fresh sample of a module whose
#   seed-0 sample is already in its record; join it with tools/cr_record.py --merge).
set -euo pipefail
cfg=${1:?usage: tools/cr_run.sh CONFIG N OUTDIR [PYTHON]}; n=${2:?N}; out=${3:?OUTDIR}; py=${4:-python}
bin=$(dirname "$(command -v "$py")")
name=$(basename "$cfg" .toml)
mkdir -p "$out"; out=$(cd "$out" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
root=$(pwd); venv=$(cd "$bin/.." && pwd); base=$("$py" -c 'import sys; print(sys.base_prefix)')
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work"
cd "$work"
export CR_PYTHON=$py
if [ "${CR_EXTEND:-0}" -gt 0 ]; then
  "$py" tools/cr_sample.py "$out/$name.sqlite" --extend "$CR_EXTEND" --seed 0
elif [ "${CR_RERUN:-0}" = 1 ]; then
  cp "$out/$name.jsonl" "$out/$name.run1.jsonl"
  "$py" tools/cr_sample.py "$out/$name.sqlite" --reopen-survivors --except "${CR_EXCEPT:-/dev/null}"
else
  rm -f "$out/$name.sqlite"
  "$bin/cosmic-ray" init "$cfg" "$out/$name.sqlite"
  if [ "${CR_BASELINE:-0}" = 1 ]; then "$bin/cosmic-ray" baseline "$cfg"; fi
  if [ -n "${CR_ONLY:-}" ]; then
    # shellcheck disable=SC2086
    "$py" tools/cr_sample.py "$out/$name.sqlite" --only $CR_ONLY
  elif [ "$n" -gt 0 ]; then "$py" tools/cr_sample.py "$out/$name.sqlite" "$n" --seed "${CR_SEED:-0}"; fi
fi
"$bin/cosmic-ray" exec "$cfg" "$out/$name.sqlite"
# the dump quotes test output: paths of this machine become relative or <venv>/, <python>/
"$bin/cosmic-ray" dump "$out/$name.sqlite" \
  | sed -E -e "s#$work/##g" -e "s#/tmp/tmp\.[A-Za-z0-9]+/##g" -e "s#/tmp/pytest-of-[A-Za-z0-9_]+/pytest-[0-9]+(/[A-Za-z0-9_.-]+)*#<pytest-tmp>/...#g" -e "s#$venv/#<venv>/#g" -e "s#$base/#<python>/#g" -e "s#$root/##g" > "$out/$name.jsonl"
"$bin/cr-report" "$out/$name.sqlite" > "$out/$name.report.txt" || true
tail -3 "$out/$name.report.txt"
