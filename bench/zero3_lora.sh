#!/usr/bin/env bash
# ZeRO-3 LoRA on a Qwen2-VL-72B shape: the whole GPU run as one command (bench/zero3_lora.py run; options pass
# through, e.g. --steps 12 --batch 4). Run from the repo root on the lent 4-GPU machine:
#   bash bench/zero3_lora.sh
# Carried (git-ignored, prepared here):
#   .whl/     transformers 5.24 & co (see bench/gpu_env.sh)
#   .whl_ds/  deepspeed 0.19.8 (DS_BUILD_OPS=0 pip wheel: pure Python, ops JIT-built only if ever needed), hjson,
#             pydantic 2.14.4 + pydantic-core (cp312 manylinux), annotated-types, typing-inspection,
#             typing-extensions, trl 1.16.0, peft 0.21.2, accelerate 1.15.0, torchcodec 0.13.0
#   .zero3/   processor (proc/), the synthetic MIntRec sample release with clips (data/), and the FFmpeg
#             libraries bundled in PyAV 18.1's wheel (ffmpeg_libs.tar.xz: 19 MB instead of the 36 MB wheel)
# Made by: python bench/zero3_lora.py prepare --assets .zero3 (+ the pip commands in bench/zero3_command.md).
export ZERO3_T0=${ZERO3_T0:-$(date +%s.%N)}
set -u
mkdir -p /tmp/site
if [ -f .zero3/ffmpeg_libs.tar.xz ] && [ ! -d /tmp/site/av.libs ]; then
  # extracted before gpu_env.sh, which links /tmp/site/*.libs/libav*.so.* under their sonames for torchcodec
  python3 -c "import tarfile; tarfile.open('.zero3/ffmpeg_libs.tar.xz').extractall('/tmp/site', filter='data')" \
    || { echo "zero3: FFmpeg libraries could not be unpacked" >&2; exit 1; }
fi
# shellcheck source=bench/gpu_env.sh
source bench/gpu_env.sh || exit 1
# gpu_env.sh links the FFmpeg libraries under their sonames; loaded through those links, their own hashed
# dependencies (RPATH $ORIGIN = the link's folder) are found only through the library path.
export LD_LIBRARY_PATH=/tmp/site/av.libs:${LD_LIBRARY_PATH:-}
[ -d cli ] && ln -sfn "$PWD/cli" /tmp/mmla_ns/mmla/cli  # the mmla console script's package (mmla.cli)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl_ds/*.whl \
  || { echo "zero3: wheel install failed" >&2; exit 1; }
export DS_ACCELERATOR=cuda
echo "zero3: environment ready after $(python3 -c "import time; print(round(time.time() - $ZERO3_T0, 1))") s"
exec python3 bench/zero3_lora.py run --assets .zero3 "$@"
