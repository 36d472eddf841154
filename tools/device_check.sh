#!/usr/bin/env bash
# The CUDA device check: runs ON the GPU machine, in the repository root, from
# a bundle that tools/device_prepare.sh made here (docs/cuda.md, "Device
# check"). In about 8 minutes at most it
#
#   1. unpack   reassembles and verifies .device/one (or .device/part*), unpacks
#               it to .device/run and puts bin/critlab, bin/harness.test in bin/
#   2. env      finds the CUDA 13 and cuDNN 9 libraries of the PyTorch
#               environment (tools/setup_cuda.sh --ld-path), sets LD_LIBRARY_PATH
#               and CRITLAB_ORT_LIB, checks that the provider's libraries resolve
#   3. doctor   ./bin/critlab doctor --device cuda
#   4. check    $CRITLAB_CHECK_CMD: the same training steps on CPU and CUDA agree
#   5. torch    $TORCH_BENCH_CMD: PyTorch eager throughput on the same GPU
#   6. bench    $CRITLAB_BENCH_CMD: critlab's throughput on CUDA
#   7. ratio    a table of both, critlab / PyTorch
#
# Every stage runs under a time limit taken from what is left of the budget;
# a failed stage is reported with the end of its output and the next stage
# runs all the same. The summary comes last on stdout and in $OUT/summary.txt;
# $OUT also gets log.txt (every stage's full output), env.txt,
# critlab_cuda.json, torch_cuda.json and throughput.md.
#
# Usage (device tool: carry .device/one, timeout_s 540):
#   bash tools/device_check.sh
#   CRITLAB_CHECK_CMD='...' CRITLAB_DEVICE_BUDGET_S=420 bash tools/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

# ======================================================================
# Commands the lead sets. Each runs with bash -c in the repository root,
# with OUT, CRITLAB_ORT_LIB and LD_LIBRARY_PATH exported; the environment
# overrides these defaults.
# ----------------------------------------------------------------------
# Correctness: CPU and CUDA agree on a few training steps (harness test
# TestCUDAMatchesCPU, run from harness/ so that testdata/ resolves).
: "${CRITLAB_CHECK_CMD:=cd harness && CRITLAB_TEST_CUDA=1 ../bin/harness.test -test.run '^TestCUDAMatchesCPU\$' -test.v -test.count=1}"
# critlab's throughput on CUDA (JSON: .models[].model, .models[].train_step.images_per_sec).
: "${CRITLAB_BENCH_CMD:=./bin/critlab bench --device cuda --models allcnn,resnet18 --batch-size 128 --min-time 3s --no-pipeline --json \"\$OUT/critlab_cuda.json\"}"
# PyTorch eager on the same GPU (JSON: .results[].model, .results[].images_per_sec).
: "${TORCH_BENCH_CMD:=python3 tools/torch_bench.py --device cuda --models allcnn,resnet18 --batch 128 --json \"\$OUT/torch_cuda.json\"}"
# Seconds for the whole script, and the most each stage may take.
: "${CRITLAB_DEVICE_BUDGET_S:=470}"
: "${CAP_DOCTOR:=90}" "${CAP_CHECK:=150}" "${CAP_TORCH:=120}" "${CAP_BENCH:=300}"
# ======================================================================

START=$(date +%s)
OUT=${OUT:-$PWD/.device/out}
mkdir -p "$OUT"
export OUT
LOG=$OUT/log.txt
: >"$LOG"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
SUMMARY=()
FAILS=0

log() { echo "$*" | tee -a "$LOG"; }
now() { echo $(($(date +%s) - START)); }
left() { echo $((CRITLAB_DEVICE_BUDGET_S - $(now))); }

# record NAME STATUS SECONDS [DETAIL FILE]
record() {
  local line
  line=$(printf '%-7s %-6s %5ss' "$1" "$2" "$3")
  SUMMARY+=("$line")
  if [ -n "${4:-}" ] && [ -s "$4" ]; then
    SUMMARY+=("$(tail -n 25 "$4" | cut -c1-300 | sed 's/^/        | /')")
  fi
  [ "$2" = FAIL ] && FAILS=$((FAILS + 1))
}

# stage NAME CAP RESERVE COMMAND: runs COMMAND with bash -c under a time limit
# of min(CAP, time left - RESERVE), output to the log and to $TMP/NAME.out.
stage() {
  local name=$1 cap=$2 reserve=$3 cmd=$4 limit t0 rc
  limit=$(($(left) - reserve))
  [ "$limit" -gt "$cap" ] && limit=$cap
  if [ "$limit" -lt 10 ]; then
    log "=== $name: skipped, no time left"
    record "$name" SKIP 0
    return 1
  fi
  log ""
  log "=== $name (limit ${limit}s, at $(now)s): $cmd"
  t0=$(date +%s)
  timeout -k 10 "$limit" bash -c "$cmd" >"$TMP/$name.out" 2>&1 </dev/null
  rc=$?
  cat "$TMP/$name.out" >>"$LOG"
  tail -n 40 "$TMP/$name.out"
  local dt=$(($(date +%s) - t0))
  if [ $rc = 0 ] && grep -q 'no tests to run' "$TMP/$name.out"; then
    echo "(the test binary ran no test: is the test named in the command in this build?)" >>"$TMP/$name.out"
    rc=1
  fi
  case $rc in
    0) log "=== $name: ok (${dt}s)"; record "$name" ok "$dt" ;;
    124 | 137) log "=== $name: TIMEOUT after ${limit}s"; record "$name" FAIL "$dt" "$TMP/$name.out"; SUMMARY[-1]+=$'\n'"        | (killed at the ${limit}s limit)" ;;
    *) log "=== $name: FAILED, exit $rc (${dt}s)"; record "$name" FAIL "$dt" "$TMP/$name.out" ;;
  esac
  return $rc
}

log "device_check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), budget ${CRITLAB_DEVICE_BUDGET_S}s, OUT=$OUT"

# ---------------------------------------------------------------- 1. unpack
unpack() {
  local manifest parts want have k
  if [ -s .device/one/bundle.tar.xz ]; then
    manifest=.device/one/MANIFEST
    cp .device/one/bundle.tar.xz "$TMP/bundle.tar.xz"
  else
    manifest=$(ls .device/part*/MANIFEST 2>/dev/null | head -n1)
    [ -n "$manifest" ] || { echo "no bundle: neither .device/one nor .device/part*; run tools/device_prepare.sh here and carry its folder"; return 1; }
    parts=$(sed -n 's/^parts=//p' "$manifest")
    : >"$TMP/bundle.tar.xz"
    for ((k = 1; k <= parts; k++)); do
      if [ ! -s ".device/part$k/bundle.tar.xz.part$k" ]; then
        echo "part $k of $parts is not on this machine (present: $(ls -d .device/part* | tr '\n' ' '))"
        echo "the parts must arrive in calls of one warm lease; start again from part 1"
        return 1
      fi
      cat ".device/part$k/bundle.tar.xz.part$k" >>"$TMP/bundle.tar.xz"
    done
  fi
  cat "$manifest"
  want=$(sed -n 's/^sha256=//p' "$manifest")
  have=$(sha256sum "$TMP/bundle.tar.xz" | cut -d' ' -f1)
  if [ -n "$want" ] && [ "$want" != "$have" ]; then
    echo "bundle checksum $have, MANIFEST says $want"
    return 1
  fi
  rm -rf .device/run
  mkdir -p .device/run bin
  if command -v xz >/dev/null; then
    xz -dc "$TMP/bundle.tar.xz" | tar -C .device/run -xf - || return 1
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$TMP/bundle.tar.xz" |
      tar -C .device/run -xf - || return 1
  fi
  rm -f "$TMP/bundle.tar.xz"
  for f in .device/run/bin/*; do
    [ -e "$f" ] && cp "$f" bin/ && chmod +x "bin/$(basename "$f")"
  done
  ls -l .device/run/* bin/
}
t0=$(date +%s)
if unpack >"$TMP/unpack.out" 2>&1; then
  cat "$TMP/unpack.out" >>"$LOG"
  record unpack ok $(($(date +%s) - t0))
  HAVE_BUNDLE=1
else
  cat "$TMP/unpack.out" | tee -a "$LOG"
  record unpack FAIL $(($(date +%s) - t0)) "$TMP/unpack.out"
  HAVE_BUNDLE=0
fi

# ---------------------------------------------------------------- 2. env
envcheck() {
  echo "## GPU"
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm --format=csv 2>&1 || echo "nvidia-smi failed"
  echo "## PyTorch"
  python3 - <<'EOF' 2>&1 || true
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NONE",
      "capability", torch.cuda.get_device_capability(0) if torch.cuda.is_available() else None)
EOF
  echo "## CUDA libraries (tools/setup_cuda.sh --find)"
  bash tools/setup_cuda.sh --find
  local ld rc
  ld=$(bash tools/setup_cuda.sh --ld-path 2>"$TMP/ld.err")
  rc=$?
  cat "$TMP/ld.err"
  if grep -q 'libcurand.so.10 not found' "$TMP/ld.err" && [ -e .device/run/fallback/libcurand.so.10 ]; then
    echo "using the bundle's empty libcurand.so.10 (the provider calls nothing in it)"
    ld=${ld:+$ld:}$PWD/.device/run/fallback
    grep -v 'libcurand' "$TMP/ld.err" | grep -q 'not found' || rc=0
  fi
  echo "LD_LIBRARY_PATH=$ld"
  echo "$ld" >"$TMP/ld_path"
  echo "## ldd libonnxruntime_providers_cuda.so"
  LD_LIBRARY_PATH=$ld ldd .device/run/ort/libonnxruntime_providers_cuda.so | grep -E 'cuda|cublas|curand|not found'
  if LD_LIBRARY_PATH=$ld ldd .device/run/ort/libonnxruntime_providers_cuda.so | grep -q 'not found'; then
    echo "the provider's libraries do not all resolve"
    return 1
  fi
  # cuDNN is opened at run time, not linked: check it opens.
  LD_LIBRARY_PATH=$ld python3 -c 'import ctypes; l = ctypes.CDLL("libcudnn.so.9"); print("cuDNN", l.cudnnGetVersion())' || return 1
  return $rc
}
t0=$(date +%s)
if [ $HAVE_BUNDLE = 1 ]; then
  envcheck >"$TMP/env.out" 2>&1
  rc=$?
else
  { echo "(no bundle: only the GPU and PyTorch are described)"; nvidia-smi 2>&1 | head -n 15; } >"$TMP/env.out"
  rc=1
fi
cp "$TMP/env.out" "$OUT/env.txt"
cat "$TMP/env.out" | tee -a "$LOG"
if [ $rc = 0 ]; then record env ok $(($(date +%s) - t0)); else record env FAIL $(($(date +%s) - t0)) "$TMP/env.out"; fi
if [ -s "$TMP/ld_path" ]; then
  export LD_LIBRARY_PATH
  LD_LIBRARY_PATH=$(cat "$TMP/ld_path")
fi
export CRITLAB_ORT_LIB=$PWD/.device/run/ort/libonnxruntime.so

# ---------------------------------------------------------------- 3-6
if [ $HAVE_BUNDLE = 1 ] && [ -x bin/critlab ]; then
  stage doctor "$CAP_DOCTOR" 240 "./bin/critlab doctor --device cuda"
else
  record doctor SKIP 0
fi
if [ $HAVE_BUNDLE = 1 ]; then
  stage check "$CAP_CHECK" 200 "$CRITLAB_CHECK_CMD"
else
  record check SKIP 0
fi
stage torch "$CAP_TORCH" 120 "$TORCH_BENCH_CMD"
if [ $HAVE_BUNDLE = 1 ] && [ -x bin/critlab ]; then
  stage bench "$CAP_BENCH" 5 "$CRITLAB_BENCH_CMD"
else
  record bench SKIP 0
fi

# ---------------------------------------------------------------- 7. ratio
python3 - "$OUT/critlab_cuda.json" "$OUT/torch_cuda.json" "$OUT/throughput.md" >"$TMP/ratio.out" 2>&1 <<'EOF'
# Reads critlab's and torch_bench's JSON (either may be missing) and writes a
# markdown table of train-step throughput with critlab / PyTorch.
import json, os, sys

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def rates(doc):
    """model -> (batch, images/s) from any object with a model name and a rate."""
    out = {}
    def walk(x):
        if isinstance(x, dict):
            m = x.get("model")
            if isinstance(m, str):
                r = x.get("images_per_sec")
                for k in ("train_step", "train"):
                    if r is None and isinstance(x.get(k), dict):
                        r = x[k].get("images_per_sec")
                if isinstance(r, (int, float)):
                    out[m] = (x.get("batch"), float(r))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(doc)
    return out

c, t = load(sys.argv[1]), load(sys.argv[2])
cr, tr = rates(c) if c else {}, rates(t) if t else {}
lines = ["| model | batch | critlab CUDA img/s | PyTorch eager img/s | critlab / PyTorch |",
         "| --- | ---: | ---: | ---: | ---: |"]
for m in sorted(set(cr) | set(tr)):
    b = (cr.get(m) or tr.get(m))[0]
    a = cr.get(m, (None, None))[1]
    p = tr.get(m, (None, None))[1]
    ratio = f"{a / p:.2f}" if a and p else "n/a"
    fmt = lambda v: f"{v:.0f}" if v else "n/a"
    lines.append(f"| {m} | {b} | {fmt(a)} | {fmt(p)} | {ratio} |")
if t:
    lines.append("")
    lines.append(f"PyTorch {t.get('torch')} on {t.get('device_name')}, cuDNN {t.get('cudnn')}, "
                 f"tf32={t.get('tf32')}, cudnn.benchmark={t.get('cudnn_benchmark')}, data={t.get('data')}")
if c:
    lines.append(f"critlab: ONNX Runtime {c.get('onnxruntime')} on {c.get('device')}")
text = "\n".join(lines) + "\n"
open(sys.argv[3], "w").write(text)
print(text, end="")
sys.exit(0 if cr and tr else 1)
EOF
rc=$?
cat "$TMP/ratio.out" | tee -a "$LOG"
if [ $rc = 0 ]; then record ratio ok 0; else record ratio FAIL 0 "$TMP/ratio.out"; fi

# ---------------------------------------------------------------- summary
{
  echo "device_check summary ($(now)s of ${CRITLAB_DEVICE_BUDGET_S}s; $FAILS failed)"
  printf '%s\n' "${SUMMARY[@]}"
  echo
  [ -s "$OUT/throughput.md" ] && cat "$OUT/throughput.md"
  echo "files in \$OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
} >"$OUT/summary.txt"
echo
echo "=================================================================="
cat "$OUT/summary.txt"
exit 0
