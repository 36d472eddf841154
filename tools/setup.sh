#!/usr/bin/env bash
# Installs what critlab needs into the ignored folder .deps/ of the repo:
# Go modules, the ONNX Runtime CPU library (from the npm package
# onnxruntime-node, which carries the official Linux x64 build), and a Python
# virtual environment with the packages the tests use (onnx, pyarrow, pandas,
# polars), and staticcheck (make lint). Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=${ORT_VERSION:-1.29.0}
DEPS=.deps
ORT_DIR=$DEPS/onnxruntime-$ORT_VERSION
mkdir -p "$DEPS"

echo "setup: go modules"
go mod download

# staticcheck, pinned (make lint runs it).
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}
if ! "$DEPS/bin/staticcheck" -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION#v})"; then
  echo "setup: staticcheck $STATICCHECK_VERSION"
  GOBIN="$(cd "$DEPS" && pwd -P)/bin" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

if [ ! -f "$ORT_DIR/libonnxruntime.so" ]; then
  command -v npm >/dev/null || { echo "setup: npm is needed to fetch onnxruntime-node@$ORT_VERSION (apt-get install npm)" >&2; exit 1; }
  echo "setup: ONNX Runtime $ORT_VERSION (npm onnxruntime-node)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
  tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  mkdir -p "$tmp/out"
  mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$tmp/out/libonnxruntime.so"
  rm -rf "$ORT_DIR.partial"
  mv "$tmp/out" "$ORT_DIR.partial"
  mv "$ORT_DIR.partial" "$ORT_DIR"
fi
ln -sfn "onnxruntime-$ORT_VERSION" "$DEPS/onnxruntime"

# The venv keeps a copy of the requirements it was built from, so a package
# added to tools/requirements.txt later is installed into an existing venv.
if [ ! -x "$DEPS/py/bin/python" ] || ! cmp -s tools/requirements.txt "$DEPS/py/requirements.txt"; then
  echo "setup: python venv (tools/requirements.txt)"
  python3 -m venv "$DEPS/py"
  "$DEPS/py/bin/pip" install -q --disable-pip-version-check -r tools/requirements.txt
  cp tools/requirements.txt "$DEPS/py/requirements.txt"
fi
echo "setup: done (ONNX Runtime at $ORT_DIR/libonnxruntime.so, staticcheck at $DEPS/bin)"
