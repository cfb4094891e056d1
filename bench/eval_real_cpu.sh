#!/usr/bin/env bash
# Zero-shot SmolLM2-135M-Instruct (embedded GGUF) on the real MMLA validation texts, both scoring modes (CPU).
# Usage: bench/eval_real_cpu.sh [DATA_DIR] [OUT_DIR]   (DATA_DIR holds one folder per task, e.g. mintrec/validation.jsonl)
# Environment: STYLE (prompt style: upstream [default], upstream_sft, paper), EXTRA (more `mmla eval` options, e.g.
# "--parse-mode upstream --upstream-metrics"), TASKS, BATCH, LIMIT (first N rows per task, for a quick check).
# Task by task (both modes for each), then one combined run per mode (all cached by then) for results.json.
# Resumable: rerunning reuses the cached predictions in OUT_DIR/<mode>/predictions/. The default OUT_DIR is per
# style, so runs of different prompt styles never overwrite each other's predictions.
set -euo pipefail
STYLE=${STYLE:-upstream}
DATA=${1:-../shared/data}
OUT=${2:-/tmp/mmla_eval_real_cpu_$STYLE}
PY=${PY:-.venv/bin/python}
TASKS=${TASKS:-mintrec,mosi,mustard,iemocap,meld}
run() {  # run TASKS MODE
  # shellcheck disable=SC2086  # EXTRA is a list of options
  "$PY" -m mmla.cli eval --model smollm2 --tasks "$1" --data "$DATA" --split validation --mode "$2" \
    --batch-size "${BATCH:-16}" --dtype float32 --device cpu --prompt-style "$STYLE" \
    ${LIMIT:+--limit "$LIMIT"} ${EXTRA:-} --output "$OUT/$2"
}
for TASK in ${TASKS//,/ }; do
  for MODE in generate rank; do
    start=$(date +%s); run "$TASK" "$MODE" >/dev/null; echo "$TASK $MODE: $(( $(date +%s) - start )) s"
  done
done
for MODE in generate rank; do run "$TASKS" "$MODE"; done
"$PY" -m mmla.cli report "$OUT/generate" "$OUT/rank" --output "$OUT"
