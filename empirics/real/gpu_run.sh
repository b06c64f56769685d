#!/usr/bin/env bash
# Table 1 (vision, six rows x 5 seeds) and Table 2 (language, 5 seeds) on one GPU.
#
# Prepare here (CPU machine), once:   .venv/bin/python -m empirics.real.gpu_prepare
# Run on the device machine (repository root), e.g. with the device tool:
#     run(command="bash empirics/real/gpu_run.sh all", carry=["carry/real"], timeout_s=600)
# Modes: all | vision | language | table3 (LoRA ranks 1,4,8,16; language).
#
# Independent seeds run as parallel processes on the one GPU (each process is bound by
# kernel launches at these model sizes, so several fill the GPU better than one), all
# writing units into one folder; a last call per experiment merges the units (a unit
# finished earlier is never recomputed, so after a timeout a second call with the same
# WORK folder finishes the missing units only -- but $W lives on the device machine,
# which starts bare, so keep LIMIT inside one call). Results (records, tables, logs) are copied flat into $OUT when it is set.
set -uo pipefail
MODE=${1:-all}
C=${CARRY_DIR:-carry/real}
W=${WORK:-out/gpu}
PY=${PY:-python3}
LIMIT=${LIMIT:-500}   # seconds per experiment process; leaves time for the merge inside 10 min
DEVICE=${DEVICE:-cuda}
# extra flags for a reduced dry run (e.g. on CPU); empty for the paper protocol
read -r -a XV <<< "${EXTRA_VISION:-}"
read -r -a XL <<< "${EXTRA_LANGUAGE:-}"
read -r -a VSEEDS <<< "${VISION_SEEDS:-1 2 3 4 5}"      # the paper's seeds (vision scripts: 1..5)
read -r -a LSEEDS <<< "${LANGUAGE_SEEDS:-0 1 2 3 4}"    # (convai scripts: 0..4)
mkdir -p "$W"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=2 LORAML_CACHE=${LORAML_CACHE:-/tmp/loraml_cache}
t0=$(date +%s)
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi"; } | tee "$W/gpu.txt"
$PY -c "import torch, peft, transformers; print('torch', torch.__version__, 'peft', peft.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$W/gpu.txt"

VARGS=(--device "$DEVICE" --archive "$C/cifar10_jpeg_q75.tar.xz" "${XV[@]}")
LARGS=(--device "$DEVICE" "${XL[@]}" --model "$C/minilm" --valid-file "$C/convai2/valid_self_original.regen_cands.txt.gz" --map-dir "$C/convai2")
pids=()

if [[ $MODE == all || $MODE == vision ]]; then
  # decode once before the seed processes start (about 10 s)
  $PY -c "from empirics.real._cifar import decode_jpeg_archive; decode_jpeg_archive('$C/cifar10_jpeg_q75.tar.xz')"
  for s in "${VSEEDS[@]}"; do
    timeout "$LIMIT" $PY -m empirics vision "${VARGS[@]}" --seeds $s --out "$W/vision" > "$W/vision_seed$s.log" 2>&1 &
    pids+=($!)
  done
fi
if [[ $MODE == all || $MODE == language || $MODE == table3 ]]; then
  if [[ ! -f $C/minilm/model.safetensors ]]; then
    $PY -c "import lzma, shutil; shutil.copyfileobj(lzma.open('$C/minilm/model.safetensors.xz'), open('$C/minilm/model.safetensors', 'wb'))"
  fi
fi
if [[ $MODE == all || $MODE == language ]]; then
  for s in "${LSEEDS[@]}"; do
    timeout "$LIMIT" $PY -m empirics language "${LARGS[@]}" --seeds $s --out "$W/language" > "$W/language_seed$s.log" 2>&1 &
    pids+=($!)
  done
fi
if [[ $MODE == table3 ]]; then
  for r in 1 4 8 16; do
    timeout "$LIMIT" $PY -m empirics language "${LARGS[@]}" --seeds "${LSEEDS[@]}" --retrain lora-ml sr reptile --peft lora --rank $r \
      --out "$W/table3_rank$r" > "$W/table3_rank$r.log" 2>&1 &
    pids+=($!)
  done
fi
for p in "${pids[@]}"; do wait "$p" || echo "process $p exited with $?"; done
t1=$(date +%s)
echo "experiments: $((t1 - t0)) s" | tee -a "$W/gpu.txt"

# merge the finished units (nothing is trained here) and render the tables
if [[ $MODE == all || $MODE == vision ]]; then
  $PY -m empirics vision "${VARGS[@]}" --seeds "${VSEEDS[@]}" --summarize-only --out "$W/vision" > "$W/vision_merge.log" 2>&1
fi
if [[ $MODE == all || $MODE == language ]]; then
  $PY -m empirics language "${LARGS[@]}" --seeds "${LSEEDS[@]}" --summarize-only --out "$W/language" > "$W/language_merge.log" 2>&1
fi
$PY - "$W" <<'PYEOF'
import json, sys
from pathlib import Path
from figures._real_tables import render_record
w = Path(sys.argv[1])
for exp, stem in (("vision", "table1"), ("language", "table2")):
    rec = w / exp / f"{exp}_record.json"
    if rec.is_file():
        render_record(json.loads(rec.read_text()), w, stem, kind=exp)
PYEOF
echo "total: $(( $(date +%s) - t0 )) s" | tee -a "$W/gpu.txt"
if [[ -n ${OUT:-} ]]; then
  for f in "$W"/vision/vision_record.json "$W"/language/language_record.json "$W"/table1.md "$W"/table2.md "$W"/table1.png "$W"/table2.png "$W"/gpu.txt; do
    [[ -f $f ]] && cp "$f" "$OUT/"
  done
  tar czf "$OUT/logs_and_units.tar.gz" --exclude='*.pt' -C "$W" . 2>/dev/null
fi
