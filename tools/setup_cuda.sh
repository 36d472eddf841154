#!/usr/bin/env bash
# Installs ONNX Runtime with its CUDA execution provider into the ignored
# folder .deps/ (docs/cuda.md explains the route):
#
#   .deps/onnxruntime-cuda-1.29.0/libonnxruntime.so                  npm onnxruntime-node@1.29.0 (a CUDA-enabled build)
#   .deps/onnxruntime-cuda-1.29.0/libonnxruntime_providers_shared.so npm com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
#   .deps/onnxruntime-cuda-1.29.0/libonnxruntime_providers_cuda.so   (the same package; CUDA 13, cuDNN 9)
#   .deps/onnxruntime-cuda -> onnxruntime-cuda-1.29.0
#
# The CUDA libraries themselves (CUDA 13 runtime, cuBLAS, cuRAND, cuDNN 9)
# are not installed: they come from a CUDA installation or a PyTorch
# environment, and LD_LIBRARY_PATH must name their folders.
#
# Usage:
#   tools/setup_cuda.sh            install (skipped when already done), then print how to use it
#   tools/setup_cuda.sh --ld-path  print nothing but a LD_LIBRARY_PATH value holding the CUDA
#                                  libraries found on this machine (exit 1 when some are missing);
#                                  needs no network (tools/device_check.sh uses it)
#   tools/setup_cuda.sh --find     report where each CUDA library was found
#
# Safe to run again; the folder appears whole or not at all.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=${ORT_VERSION:-1.29.0}
GPU_PKG=${GPU_PKG:-com.github.asus4.onnxruntime.linux-x64-gpu}
GPU_PKG_VERSION=${GPU_PKG_VERSION:-0.4.9}
DEPS=.deps
DEST=$DEPS/onnxruntime-cuda-$ORT_VERSION

# Sonames the CUDA provider needs (readelf -d) or opens at run time (cuDNN).
CUDA_LIBS=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9)

# python_site prints the site-packages folders of the Pythons that have torch
# (or any nvidia-* wheel): the PyTorch CUDA 13 wheels carry the libraries.
python_sites() {
  local py path seen=" "
  for py in ${CRITLAB_PYTHON_CUDA:-} python3 python /opt/torch/.venv/bin/python3; do
    path=$(command -v "$py" 2>/dev/null) || continue
    path=$(readlink -f "$path")
    case $seen in *" $path "*) continue ;; esac
    seen="$seen$path "
    "$py" - 2>/dev/null <<'EOF' || true
import os, site, sys
dirs = set(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
try:
    import torch
    dirs.add(os.path.dirname(os.path.dirname(torch.__file__)))
except Exception:
    pass
for d in sorted(dirs):
    if os.path.isdir(os.path.join(d, "nvidia")) or os.path.isdir(os.path.join(d, "torch")):
        print(d)
EOF
  done | awk '!seen[$0]++'
}

# init_sites caches python_sites in SITES (each Python that imports torch
# takes seconds); call it in the main shell, before find_lib.
SITES=
init_sites() { [ -n "$SITES" ] || SITES="$(python_sites) ."; }
sites() { init_sites; echo "${SITES% .}"; }

# find_lib NAME prints the folder of the first NAME found: the PyTorch
# wheels first (nvidia/*/lib, nvidia/cu13/lib), then CUDA installs, then
# the loader cache.
find_lib() {
  local name=$1 d f
  for d in $(sites); do
    f=$(find "$d/nvidia" "$d/torch/lib" -maxdepth 3 -name "$name" 2>/dev/null | sort | head -n1)
    [ -n "$f" ] && { dirname "$f"; return 0; }
  done
  for d in ${CUDA_HOME:-} /usr/local/cuda /usr/local/cuda-13* /usr/lib/x86_64-linux-gnu /usr/local/nvidia/lib64 /usr/lib64; do
    [ -d "$d" ] || continue
    f=$(find "$d" -maxdepth 3 -name "$name" 2>/dev/null | sort | head -n1)
    [ -n "$f" ] && { dirname "$f"; return 0; }
  done
  f=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n {print $NF; exit}')
  [ -n "$f" ] && { dirname "$f"; return 0; }
  return 1
}

# ld_path prints LD_LIBRARY_PATH with the CUDA library folders in front,
# plus every nvidia/*/lib folder of the same Python (cuDNN opens NVRTC and
# its own sub-libraries at run time); returns 1 when a library is missing.
ld_path() {
  local dirs=() missing=0 name d
  init_sites
  for name in "${CUDA_LIBS[@]}"; do
    if d=$(find_lib "$name"); then
      dirs+=("$d")
    else
      echo "setup_cuda: $name not found" >&2
      missing=1
      [ "$name" = libcurand.so.10 ] && echo "setup_cuda: (the provider links libcurand.so.10 but calls nothing in it; newer PyTorch wheels lack it: pip install nvidia-curand, or a CUDA 13 toolkit, provides it)" >&2
    fi
  done
  for d in $(sites); do
    for f in "$d"/nvidia/*/lib; do [ -d "$f" ] && dirs+=("$f"); done
  done
  local out
  out=$(printf '%s\n' "${dirs[@]}" ${LD_LIBRARY_PATH:+$(tr ':' '\n' <<<"$LD_LIBRARY_PATH")} | awk 'NF && !seen[$0]++' | paste -sd:)
  echo "$out"
  return $missing
}

case "${1:-}" in
  --ld-path) ld_path; exit $? ;;
  --find)
    rc=0
    init_sites
    for name in "${CUDA_LIBS[@]}" libcuda.so.1; do
      if d=$(find_lib "$name"); then printf '%-20s %s\n' "$name" "$d"; else printf '%-20s MISSING\n' "$name"; rc=1; fi
    done
    exit $rc ;;
  "") ;;
  *) echo "usage: tools/setup_cuda.sh [--ld-path | --find]" >&2; exit 2 ;;
esac

have_all() {
  local f
  for f in libonnxruntime.so libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so SOURCES; do
    [ -s "$DEST/$f" ] || return 1
  done
}

mkdir -p "$DEPS"
if ! have_all; then
  command -v npm >/dev/null || { echo "setup_cuda: npm is needed to fetch the packages (apt-get install npm)" >&2; exit 1; }
  tmp=$(mktemp -d "$DEPS/.setup-cuda.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/out"

  # libonnxruntime.so: onnxruntime-node's Linux x64 library is built with the
  # CUDA provider bridge (it loads libonnxruntime_providers_cuda.so from its
  # own folder); make setup already unpacked the same file.
  cpu_lib=$DEPS/onnxruntime-$ORT_VERSION/libonnxruntime.so
  if [ -s "$cpu_lib" ]; then
    cp "$cpu_lib" "$tmp/out/libonnxruntime.so"
  else
    echo "setup_cuda: ONNX Runtime $ORT_VERSION (npm onnxruntime-node)"
    (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
    tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
    mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$tmp/out/libonnxruntime.so"
    rm -rf "$tmp/package" "$tmp"/onnxruntime-node-*.tgz
  fi

  echo "setup_cuda: CUDA provider for ONNX Runtime $ORT_VERSION (npm $GPU_PKG@$GPU_PKG_VERSION, ~180 MB)"
  (cd "$tmp" && npm pack --silent "$GPU_PKG@$GPU_PKG_VERSION" >/dev/null)
  tar -xzf "$tmp/$GPU_PKG-$GPU_PKG_VERSION.tgz" -C "$tmp" \
    package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so \
    package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
  mv "$tmp"/package/Plugins/Linux/x64/libonnxruntime_providers_{cuda,shared}.so "$tmp/out/"
  rm -rf "$tmp/package" "$tmp/$GPU_PKG-$GPU_PKG_VERSION.tgz"

  # The provider must be the same release as the library.
  v=$(strings "$tmp/out/libonnxruntime.so" | grep -m1 -x "$ORT_VERSION" || true)
  [ "$v" = "$ORT_VERSION" ] || { echo "setup_cuda: $tmp/out/libonnxruntime.so is not ONNX Runtime $ORT_VERSION" >&2; exit 1; }
  {
    echo "libonnxruntime.so                  npm onnxruntime-node@$ORT_VERSION bin/napi-v6/linux/x64/libonnxruntime.so.1"
    echo "libonnxruntime_providers_cuda.so   npm $GPU_PKG@$GPU_PKG_VERSION Plugins/Linux/x64/"
    echo "libonnxruntime_providers_shared.so npm $GPU_PKG@$GPU_PKG_VERSION Plugins/Linux/x64/"
    echo
    (cd "$tmp/out" && sha256sum libonnxruntime.so libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so)
  } >"$tmp/out/SOURCES"
  rm -rf "$DEST.partial"
  mv "$tmp/out" "$DEST.partial"
  rm -rf "$DEST"
  mv "$DEST.partial" "$DEST"
fi
ln -sfn "onnxruntime-cuda-$ORT_VERSION" "$DEPS/onnxruntime-cuda"

echo "setup_cuda: done: ONNX Runtime $ORT_VERSION with the CUDA provider in $DEST"
cat <<EOF

Use it (any command; the same library runs the CPU provider too):

  CRITLAB_ORT_LIB=$DEPS/onnxruntime-cuda/libonnxruntime.so critlab doctor --device cuda

The provider needs, on LD_LIBRARY_PATH or in the loader cache: the CUDA 13
runtime (libcudart.so.13), cuBLAS 13 (libcublas.so.13, libcublasLt.so.13),
cuRAND (libcurand.so.10), cuDNN 9 (libcudnn.so.9 and its sub-libraries),
and the NVIDIA driver's libcuda.so.1 (driver >= 580 for CUDA 13). A PyTorch
CUDA 13 environment has all but the driver; to use its copies:

  export LD_LIBRARY_PATH="\$(tools/setup_cuda.sh --ld-path)"
EOF
if ld=$(ld_path 2>/dev/null); then
  echo
  echo "Found on this machine: LD_LIBRARY_PATH=$ld"
fi
