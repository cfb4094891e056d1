#!/usr/bin/env bash
# Run bench/eval_scaling.py on a lent multi-GPU machine from a snapshot of committed code.
# Here (once):   mkdir -p .snap && git archive HEAD | tar -x -C .snap/code   (.snap/ is in .git/info/exclude)
#                .venv/bin/python bench/eval_scaling.py prepare --assets .snap/assets
#                wheels: .whl/ (transformers 5.24.0, tokenizers 0.23.3, huggingface_hub 2.4.0, datasets 5.2.0,
#                evaluate 0.4.6, dill, multiprocess, httpx2, httpcore2, truststore), .whl_av/ (av 18.1.0,
#                torchcodec 0.13.0: video workloads only; PyAV's FFmpeg libraries serve torchcodec)
# There:         bash .snap/code/bench/eval_scaling.sh run --workloads text_val,text_test --nprocs 1,2
# Here, as a smoke test: INSTALL_WHEELS=0 PY=$PWD/.venv/bin/python bash bench/eval_scaling.sh run --tiny ...
# Every argument goes to `eval_scaling.py`; --assets defaults to .snap/assets. Wheels are installed once per
# machine (into /tmp/site), so a second call on the same warm machine may carry only what it adds.
set -euo pipefail
REPO=$(pwd)
CODE=$REPO/.snap/code
PY=${PY:-python3}
whl=$(ls "$REPO"/.whl/*.whl "$REPO"/.whl_av/*.whl 2>/dev/null || true)
if [ -n "$whl" ] && [ "${INSTALL_WHEELS:-1}" = 1 ]; then
  # shellcheck disable=SC2086
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $whl
fi
mkdir -p /tmp/mmla_ns/mmla
for sub in $(cd "$CODE" && ls -d loaders eval training hub_cards cli 2>/dev/null); do ln -sfn "$CODE/$sub" "/tmp/mmla_ns/mmla/$sub"; done
export PYTHONPATH=/tmp/mmla_ns:/tmp/site
# torchcodec needs libavcodec & co.: link PyAV's bundled copies under their sonames (as bench/gpu_env.sh).
if [ -d /tmp/site/av.libs ] && [ ! -e /tmp/ffmpeg_libs/.done ]; then
  mkdir -p /tmp/ffmpeg_libs
  for lib in /tmp/site/av.libs/lib*.so*; do
    base=$(basename "$lib")
    name=$(echo "$base" | sed -E 's/^(lib[a-z0-9_]+)-[0-9a-f]{8}\.so\.([0-9]+).*/\1.so.\2/')
    [ "$name" != "$base" ] && ln -sfn "$lib" "/tmp/ffmpeg_libs/$name"
  done
  touch /tmp/ffmpeg_libs/.done
fi
# av.libs too: its libraries name their bundled dependencies (libdrm-<hash>.so) by file name, and $ORIGIN of a
# symlinked copy is the link's folder.
export LD_LIBRARY_PATH=/tmp/ffmpeg_libs:/tmp/site/av.libs:${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
cmd=$1
shift
has_assets=0
for a in "$@"; do [ "$a" = "--assets" ] && has_assets=1; done
extra=()
[ "$cmd" = run ] && [ $has_assets = 0 ] && extra=(--assets "$REPO/.snap/assets")
cd "$CODE"
exec "$PY" bench/eval_scaling.py "$cmd" "${extra[@]}" "$@"
