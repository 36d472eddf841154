#!/usr/bin/env bash
# Prepares, on this machine, everything a GPU device call needs, in the
# ignored folder .device/ (listed in .git/info/exclude, never committed):
#
#   .device/one/bundle.tar.xz + MANIFEST   when it all fits one call (the usual case)
#   .device/partK/bundle.tar.xz.partK + MANIFEST, K = 1..N   when it does not
#   .device/cache/   downloads, the trimmed provider, stubs (never carried)
#
# The bundle holds bin/critlab and bin/harness.test (built here, stripped),
# ort/ (ONNX Runtime 1.29.0 with the CUDA provider, from tools/setup_cuda.sh)
# and fallback/libcurand.so.10 (an empty library: the provider links cuRAND
# but calls nothing in it, and recent PyTorch environments lack it).
#
# The CUDA provider is ~230 MB: its .nv_fatbin section holds cubins for
# sm_75, 80, 86, 89, 90a and 120a. The device machines are H100/H200
# (sm_90), so by default each fatbin container is rewritten in place to hold
# only its sm_90a cubin (offsets and sizes of the ELF sections unchanged, the
# freed bytes zeroed), which brings the bundle under 60 MiB: one call. --full
# keeps the provider as shipped (~164 MB of xz, three calls).
#
# Usage: tools/device_prepare.sh [--full] [--fast] [--no-preflight] [--no-test-binary]
#   --full            do not trim the provider (bundle split into parts)
#   --fast            xz -6 on all cores instead of xz -9e (bigger, quicker)
#   --no-preflight    skip the check that the bundle loads against stub CUDA libraries
#   --no-test-binary  do not build bin/harness.test
# Then run tools/device_check.sh on the device as printed at the end
# (docs/cuda.md, "Device check").
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=90                       # keep sm_90a cubins (H100, H200)
LIMIT=$((64 * 1024 * 1024))   # what one device call may carry, tree included
MARGIN=$((1024 * 1024))
trim=1 fast=0 preflight=1 testbin=1
for a in "$@"; do
  case $a in
    --full) trim=0 ;;
    --fast) fast=1 ;;
    --no-preflight) preflight=0 ;;
    --no-test-binary) testbin=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "device_prepare: unknown option $a (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "device_prepare: $*"; }
warn() { echo "device_prepare: WARNING: $*" >&2; }

# .device must never travel as an untracked file or be committed.
mkdir -p .git/info
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >>.git/info/exclude
git check-ignore -q .device/x || { echo "device_prepare: .device/ is not ignored" >&2; exit 1; }

D=.device
STAGE=$D/stage
CACHE=$D/cache
rm -rf "$STAGE"
mkdir -p "$STAGE/bin" "$STAGE/ort" "$STAGE/fallback" "$CACHE"
status=()

# 1. Binaries: stripped, so they compress well.
export CGO_ENABLED=1
if go build -trimpath -ldflags='-s -w' -o "$STAGE/bin/critlab" ./tools/critlab 2>"$CACHE/build-critlab.log"; then
  status+=("critlab=built")
else
  warn "bin/critlab does not build yet; the bundle goes without it ($CACHE/build-critlab.log):"
  sed 's/^/    /' "$CACHE/build-critlab.log" | head -n 20 >&2
  status+=("critlab=missing")
fi
if [ $testbin = 1 ]; then
  if go test -c -trimpath -ldflags='-s -w' -o "$STAGE/bin/harness.test" ./harness 2>"$CACHE/build-harness-test.log"; then
    status+=("harness.test=built")
  else
    warn "bin/harness.test does not build yet ($CACHE/build-harness-test.log)"
    sed 's/^/    /' "$CACHE/build-harness-test.log" | head -n 10 >&2
    status+=("harness.test=missing")
  fi
fi

# 2. ONNX Runtime with the CUDA provider (downloads once into .deps/).
tools/setup_cuda.sh >/dev/null
SRC=.deps/onnxruntime-cuda
cp "$SRC/libonnxruntime.so" "$SRC/libonnxruntime_providers_shared.so" "$STAGE/ort/"

# 3. The provider, trimmed to sm_90a unless --full.
prov=$SRC/libonnxruntime_providers_cuda.so
if [ $trim = 1 ]; then
  sum=$(sha256sum "$prov" | cut -c1-16)
  trimmed=$CACHE/libonnxruntime_providers_cuda.$sum.sm${ARCH}.so
  if [ ! -s "$trimmed" ]; then
    say "trimming the CUDA provider's fatbins to sm_${ARCH}"
    python3 - "$prov" "$trimmed.tmp" "$ARCH" <<'EOF'
# Rewrites each fatbin container of .nv_fatbin in place so that it holds only
# its cubin for one SM architecture: the container keeps its address (the
# __fatBinC_Wrapper_t records in .nvFatBinSegment point at it), its header's
# size field shrinks to that one entry, and the freed bytes become zeros.
# Containers with no cubin for the architecture are left as they are.
# Container header: u32 magic 0xBA55ED50, u16 version, u16 header size,
# u64 size of the entries. Entry header: u16 kind (1 PTX, 2 ELF), u16,
# u32 header size, u64 payload size, ..., u32 arch at offset 28.
import struct, sys
src, dst, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = bytearray(open(src, "rb").read())
shoff, = struct.unpack_from("<Q", data, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
secs = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
strtab = secs[shstrndx][4]
name = lambda n: bytes(data[strtab + n:data.index(b"\0", strtab + n)]).decode()
off, size = next((s[4], s[5]) for s in secs if name(s[0]) == ".nv_fatbin")
pos, end = off, off + size
kept = trimmed = 0
arches = {}
while pos < end:
    magic, _, hsz, fsz = struct.unpack_from("<IHHQ", data, pos)
    if magic != 0xBA55ED50:
        pos += 8          # containers are 8-byte aligned; padding between them
        continue
    body, cend = pos + hsz, pos + hsz + fsz
    p, hit = body, None
    while p < cend:
        kind, _, ehsz, psize = struct.unpack_from("<HHIQ", data, p)
        arch, = struct.unpack_from("<I", data, p + 28)
        arches[(kind, arch)] = arches.get((kind, arch), 0) + 1
        if kind == 2 and arch == keep:
            hit = (p, ehsz + psize)
        p += ehsz + psize
    if p != cend:
        sys.exit(f"fatbin container at {pos:#x}: entries overrun its size")
    if hit is None:
        kept += 1
    else:
        entry = bytes(data[hit[0]:hit[0] + hit[1]])
        data[body:body + len(entry)] = entry
        data[body + len(entry):cend] = bytes(cend - body - len(entry))
        struct.pack_into("<Q", data, pos + 8, len(entry))
        trimmed += 1
    pos = cend
if trimmed == 0:
    sys.exit(f"no sm_{keep} cubins found; entries: {arches}")
open(dst, "wb").write(data)
kinds = ", ".join(f"{'elf' if k == 2 else 'ptx'} sm_{a}: {n}" for (k, a), n in sorted(arches.items()))
print(f"  containers trimmed to sm_{keep}: {trimmed}; left as they were (no sm_{keep} cubin): {kept}")
print(f"  entries before: {kinds}")
EOF
    mv "$trimmed.tmp" "$trimmed"
    if command -v cuobjdump >/dev/null; then
      say "cuobjdump -lelf of the trimmed provider:"
      cuobjdump -lelf "$trimmed" | awk '{print $NF}' | sed 's/.*\.\(sm_[0-9a-z]*\)\.cubin/\1/' | sort | uniq -c
    fi
  fi
  cp "$trimmed" "$STAGE/ort/libonnxruntime_providers_cuda.so"
  status+=("provider=sm_${ARCH}-only")
else
  cp "$prov" "$STAGE/ort/"
  status+=("provider=full")
fi

# 4. An empty libcurand.so.10 for machines without cuRAND (used last).
if command -v cc >/dev/null; then
  echo 'int critlab_curand_stub;' >"$CACHE/empty.c"
  cc -shared -fPIC -Wl,-soname,libcurand.so.10 -o "$STAGE/fallback/libcurand.so.10" "$CACHE/empty.c"
else
  warn "no C compiler: no fallback libcurand.so.10 in the bundle"
fi

# 5. Preflight: the library must load the provider and reach CUDA. With stub
# CUDA libraries whose calls fail with error 100, ONNX Runtime must report
# "CUDA failure 100", not "not enabled in this build" or a loader error.
if [ $preflight = 1 ] && command -v cc >/dev/null && command -v readelf >/dev/null; then
  stubs=$CACHE/stubs
  rm -rf "$stubs"; mkdir -p "$stubs"
  p=$STAGE/ort/libonnxruntime_providers_cuda.so
  for lib in libcudart.so.13:1:100 libcublas.so.13:1:1 libcublasLt.so.13:1:1 libcurand.so.10:0:0 libcuda.so.1:0:100; do
    IFS=: read -r so versioned code <<<"$lib"
    {
      echo 'static void *h[4];'
      readelf --dyn-syms -W "$p" | awk -v so="$so" '$7 == "UND" && $8 ~ ("@" so "$") {sub(/@.*/, "", $8); print $8}' | sort -u |
        while read -r s; do
          case $s in
            *GetErrorString|*GetErrorName|*GetStatusString|*GetStatusName) echo "const char *$s(void){return \"critlab stub: no CUDA here\";}" ;;
            __cudaRegisterFatBinary) echo "void **$s(void *f){return h;}" ;;
            cudaGetDeviceCount) echo "int $s(int *n){if(n)*n=0;return $code;}" ;;
            __cuda*) echo "int $s(void){return 0;}" ;;
            *) echo "int $s(void){return $code;}" ;;
          esac
        done
    } >"$stubs/$so.c"
    vs=()
    if [ "$versioned" = 1 ]; then echo "$so { global: *; };" >"$stubs/$so.map"; vs=("-Wl,--version-script=$stubs/$so.map"); fi
    cc -shared -fPIC -Wl,-soname,"$so" "${vs[@]}" -o "$stubs/$so" "$stubs/$so.c"
  done
  probe=$CACHE/probe
  mkdir -p "$probe"
  ortv=$(awk '$1 == "github.com/yalue/onnxruntime_go" {print $2}' go.mod)
  printf 'module probe\ngo 1.24\nrequire github.com/yalue/onnxruntime_go %s\n' "$ortv" >"$probe/go.mod"
  grep 'github.com/yalue/onnxruntime_go' go.sum >"$probe/go.sum"
  cat >"$probe/main.go" <<'EOF'
// Loads an ONNX Runtime library and appends the CUDA provider.
package main

import (
	"fmt"
	"os"

	ort "github.com/yalue/onnxruntime_go"
)

func main() {
	ort.SetSharedLibraryPath(os.Args[1])
	if err := ort.InitializeEnvironment(); err != nil {
		fmt.Println("init:", err)
		os.Exit(1)
	}
	fmt.Println("ONNX Runtime", ort.GetVersion())
	co, err := ort.NewCUDAProviderOptions()
	if err == nil {
		err = co.Update(map[string]string{"device_id": "0"})
	}
	fmt.Println("CUDA provider:", err)
}
EOF
  if (cd "$probe" && GOFLAGS=-mod=mod go build -o probe . 2>build.log); then
    out=$(LD_LIBRARY_PATH=$stubs "$probe/probe" "$PWD/$STAGE/ort/libonnxruntime.so" 2>&1 || true)
    if grep -q 'CUDA failure 100: critlab stub' <<<"$out"; then
      say "preflight ok: $(head -n1 <<<"$out"), the provider loads and calls CUDA (stubbed: error 100)"
      status+=("preflight=ok")
    else
      warn "preflight failed: the bundle's library does not reach CUDA through the provider:"
      sed 's/^/    /' <<<"$out" | cut -c1-400 >&2
      status+=("preflight=FAILED")
    fi
  else
    warn "preflight skipped: the probe does not build ($probe/build.log)"
    status+=("preflight=skipped")
  fi
fi

# 6. Archive, measure, and place for one call or for several.
say "compressing the bundle (xz $([ $fast = 1 ] && echo -6 || echo -9e))"
(cd "$STAGE" && find . -type f | LC_ALL=C sort | sed 's|^\./||') >"$CACHE/files"
if [ $fast = 1 ]; then xzopt=(-6 -T0); else xzopt=(-9e -T1); fi
tar -C "$STAGE" --owner=0 --group=0 -cf - -T "$CACHE/files" | xz "${xzopt[@]}" >"$CACHE/bundle.tar.xz"
size=$(stat -c %s "$CACHE/bundle.tar.xz")
bundle_sha=$(sha256sum "$CACHE/bundle.tar.xz" | cut -d' ' -f1)
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | sort -zu | du -cb --files0-from=- 2>/dev/null | tail -n1 | cut -f1 )
[ -d shared ] && tree=$((tree + $(du -sb shared | cut -f1)))
budget=$((LIMIT - tree - MARGIN))
rm -rf "$D/one" "$D"/part*
manifest() { # parts
  {
    echo "format=critlab-device-bundle-1"
    echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo +dirty)"
    echo "parts=$1"
    echo "bytes=$size"
    echo "sha256=$bundle_sha"
    for s in "${status[@]}"; do echo "$s"; done
    echo "# files (bytes before compression, sha256):"
    (cd "$STAGE" && while read -r f; do echo "# $f $(stat -c %s "$f") $(sha256sum "$f" | cut -c1-16)"; done <"$OLDPWD/$CACHE/files")
  }
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo
say "files in the bundle, before compression:"
(cd "$STAGE" && tr '\n' '\0' <"$OLDPWD/$CACHE/files" | du -b --files0-from=- | awk '{printf "    %-45s %s\n", $2, $1}')
say "bundle $(mib "$size") (xz), working tree $(mib "$tree"), one call carries $(mib "$LIMIT") in all"
if [ "$size" -le "$budget" ]; then
  mkdir -p "$D/one"
  mv "$CACHE/bundle.tar.xz" "$D/one/bundle.tar.xz"
  manifest 1 >"$D/one/MANIFEST"
  cat <<EOF

Fits one device call ($(mib $((size + tree))) of $(mib "$LIMIT")). Run it with the device tool:
  run  carry=[".device/one"]  timeout_s=540
       command="bash tools/device_check.sh"
Override the lead's commands in the same command line, for example
       command="CRITLAB_CHECK_CMD='...' bash tools/device_check.sh"
EOF
else
  chunk=$(( budget < 60 * 1048576 ? budget : 60 * 1048576 ))
  n=$(( (size + chunk - 1) / chunk ))
  per=$(( (size + n - 1) / n ))
  split -b "$per" -d -a 1 "$CACHE/bundle.tar.xz" "$CACHE/bundle.tar.xz.part"
  for ((k = 1; k <= n; k++)); do
    mkdir -p "$D/part$k"
    mv "$CACHE/bundle.tar.xz.part$((k - 1))" "$D/part$k/bundle.tar.xz.part$k"
    manifest "$n" >"$D/part$k/MANIFEST"
  done
  rm -f "$CACHE/bundle.tar.xz"
  echo
  echo "Needs $n device calls, one part each ($(mib "$per") per part). Files left on the machine"
  echo "stay only while it is warm (30 s after a call), so make the calls back to back:"
  for ((k = 1; k < n; k++)); do
    echo "  run  carry=[\".device/part$k\"]  timeout_s=60   command=\"ls -l .device/part*\""
  done
  echo "  run  carry=[\".device/part$n\"]  timeout_s=540  command=\"bash tools/device_check.sh\""
fi
say "status: ${status[*]}"
