#!/usr/bin/env bash
# The single-GPU benchmarks of issues 13 and 14, side by side on a lent 4-GPU machine: one queue of commands per
# GPU (CUDA_VISIBLE_DEVICES=i, 16 CPU threads each), each queue stopped at --budget seconds. Every figure it
# produces is compared only with a baseline of the same queue (same GPU, same run). Run from the repo root:
#   bash bench/gpu_suite.sh [budget_s] [queues, e.g. 0,1,2,3]
# Carried (git-ignored): .whl/ (transformers 5.24 & co, bench/gpu_env.sh), .whl_ds/ (trl, peft, accelerate,
# liger-kernel, torchcodec 0.13, ...: bench/zero3_command.md), .ffmpeg/ffmpeg_libs.tar.xz (PyAV 18.1's FFmpeg
# libraries, for torchcodec), .omni/assets (python bench/omni_speed.py prepare --assets .omni/assets).
# Outputs in $OUT: q<i>.log per queue and each command's JSON / profile files.
set -u
BUDGET=${1:-480}
QUEUES=${2:-0,1,2,3}
T0=$(date +%s)
mkdir -p /tmp/site
if [ -f .ffmpeg/ffmpeg_libs.tar.xz ] && [ ! -d /tmp/site/av.libs ]; then
  python3 -c "import tarfile; tarfile.open('.ffmpeg/ffmpeg_libs.tar.xz').extractall('/tmp/site', filter='data')" || exit 1
fi
# shellcheck source=bench/gpu_env.sh
source bench/gpu_env.sh || exit 1
export LD_LIBRARY_PATH=/tmp/site/av.libs:${LD_LIBRARY_PATH:-}
[ -d cli ] && ln -sfn "$PWD/cli" /tmp/mmla_ns/mmla/cli
if compgen -G ".whl_ds/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl_ds/*.whl || exit 1
fi
export OMP_NUM_THREADS=16 OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
echo "suite: environment ready after $(( $(date +%s) - T0 )) s"

q0() {  # issue 13: LoRA SFT through training/sft.py with the recipe's settings and the automatic choices, profiled,
        # against the plain PEFT loop of the same process
  python3 bench/train_speed.py --only llm --profile --out "$OUT/profile_after" --json "$OUT/train_speed_llm.json"
}
q1() {  # issue 13: the settings before the speed work (SDPA, gradient checkpointing, LoRA dropout 0.05), profiled;
        # then the Qwen2-VL-7B video SFT
  python3 bench/train_speed.py --only llm --no-baseline --profile --out "$OUT/profile_before" \
    --sft-args "--attn_implementation sdpa --gradient_checkpointing true --lora_dropout 0.05" \
    --json "$OUT/train_speed_llm_before.json"
  python3 bench/train_speed.py --only video --video-batch 4 --steps 20 --json "$OUT/train_speed_video.json"
}
q2() {  # issue 13: padding-free evaluation against the prefill-only bound and the padded path, same run
  python3 bench/eval_speed.py ${EVAL_SPEED_ARGS:-} --json "$OUT/eval_speed_packed.json"
}
q3() {  # issue 14: Qwen2.5-Omni-7B shape with and without audio; then issue 13: torch.compile on the SFT path
  python3 bench/omni_speed.py run --assets .omni/assets --json "$OUT/omni_speed.json"
  python3 bench/train_speed.py --only llm --no-baseline --sft-args "--torch_compile true" \
    --json "$OUT/train_speed_llm_compile.json"
}
export -f q0 q1 q2 q3
left=$(( BUDGET - ($(date +%s) - T0) ))
for i in ${QUEUES//,/ }; do
  CUDA_VISIBLE_DEVICES=$i timeout -k 5 "$left" bash -c "q$i" > "$OUT/q$i.log" 2>&1 &
done
wait
for i in ${QUEUES//,/ }; do
  echo "=== queue $i (GPU $i), last lines"; grep -v "it/s\]\|s/it\]" "$OUT/q$i.log" | tail -n 25
done
echo "suite: done after $(( $(date +%s) - T0 )) s"
