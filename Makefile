# critlab: critical-learning-period experiments on CNNs through ONNX Runtime.
GO      ?= go
BIN     := bin/critlab
ORT_LIB := $(CURDIR)/.deps/onnxruntime/libonnxruntime.so
export CRITLAB_ORT_LIB ?= $(ORT_LIB)
export CRITLAB_PYTHON  ?= $(CURDIR)/.deps/py/bin/python

.PHONY: FORCE setup setup-cuda device-prepare build lint test test-long acceptance torch-fixtures test-slurm run results results-v2 bench proto vet clean

setup: .deps/.setup-done
.deps/.setup-done: tools/setup.sh tools/requirements.txt go.mod
	tools/setup.sh
	touch $@

# The version stamp (critlab --version, every run's provenance) comes from
# git; the binary is relinked each time so the stamp follows the worktree
# (Go's build cache keeps that cheap).
VERSION_PKG := github.com/critlab/critlab/internal/version
LDFLAGS     := -X $(VERSION_PKG).Version=$(shell git describe --tags --always --dirty 2>/dev/null) \
               -X $(VERSION_PKG).Commit=$(shell git rev-parse HEAD 2>/dev/null) \
               -X $(VERSION_PKG).Dirty=$(shell test -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" && echo true)

build: $(BIN)
$(BIN): FORCE
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./tools/critlab
FORCE:

vet:
	$(GO) vet ./...

# House rules: gofmt, go vet, staticcheck (pinned in tools/setup.sh), and
# runs/... building without cgo (its tests use a pure-Go fake backend).
STATICCHECK := $(CURDIR)/.deps/bin/staticcheck
lint: setup
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./runs/... && CGO_ENABLED=0 $(GO) vet ./runs/...
	$(STATICCHECK) ./...

test: setup lint
	$(GO) test -short -count=1 ./...

# Longer checks (full-width gradient checks, real CIFAR-10 when present).
test-long: setup
	$(GO) test -count=1 -timeout 60m ./...

# The torchvision acceptance set: compile and train a few steps of every
# export in ACCEPTANCE_DIR, made (with PyTorch) by
#   /work/torchenv/bin/python tools/acceptance_models.py --out DIR
# (make test-long runs the same test when CRITLAB_ACCEPTANCE_DIR is set).
ACCEPTANCE_DIR ?=
acceptance: setup
	@test -n "$(ACCEPTANCE_DIR)" || { echo "make acceptance: set ACCEPTANCE_DIR to a folder of tools/acceptance_models.py"; exit 2; }
	CRITLAB_ACCEPTANCE_DIR=$(abspath $(ACCEPTANCE_DIR)) $(GO) test -count=1 -timeout 60m -run '^TestAcceptanceModels$$' -v ./harness

# Remake the PyTorch reference fixtures in harness/testdata/torch
# (tools/make_reference.py: seeded and deterministic, so an unchanged model
# gives the same bytes) and check critlab against them and export_torch.py;
# TORCH is a Python with tools/requirements-torch.txt (about a minute).
torch-fixtures: setup
	@test -n "$(TORCH)" || { echo "make torch-fixtures: set TORCH to a python with tools/requirements-torch.txt"; exit 2; }
	$(TORCH) tools/make_reference.py --check-ort
	CRITLAB_TORCH_PYTHON=$(TORCH) $(GO) test -count=1 -run '^(TestTorchReference|TestExportTorchErrors)$$' -v ./harness

# The demo sweep (seed 0) through a throwaway single-node Slurm cluster
# (tools/slurm-local.sh; installs slurm-wlm and munge when missing, as root)
# against the local executor, with a scancel and a resubmission. About 3
# minutes on 2 cores; SEEDS=0,1 runs the whole demo.
SEEDS ?= 0
test-slurm: setup build
	tools/slurm-local.sh install
	@dir=$$(mktemp -d /tmp/critlab-slurm.XXXXXX); \
	trap 'tools/slurm-local.sh stop '$$dir EXIT; \
	eval "$$(tools/slurm-local.sh start $$dir)" && \
	CRITLAB_TEST_SLURM=1 CRITLAB_TEST_SLURM_SEEDS=$(SEEDS) CRITLAB_BIN=$(CURDIR)/$(BIN) \
		$(GO) test -count=1 -timeout 40m -run '^TestSlurmSweep$$' -v ./tools/critlab

# The main job: a small critical-period sweep (configs/demo.yaml) on the
# generated data set; DATA=cifar10 (or an archive path) runs it on CIFAR-10.
DATA ?=
run: setup build
	./$(BIN) sweep --config demo $(if $(DATA),--data $(DATA)) --out runs-out/demo$(if $(DATA),-$(notdir $(basename $(basename $(DATA)))))

# The CPU-scale CIFAR-10 protocol of docs/results.md (configs/cifar-cpu.yaml,
# about 100 minutes on 2 cores; resumes where it stopped). The preset reads
# ../shared/data/cifar-10-binary.tar.gz; DATA=cifar10 (the copy `critlab
# data fetch` downloads) or DATA=PATH uses another copy.
results: setup build
	./$(BIN) sweep --config cifar-cpu -q $(if $(DATA),--data $(DATA))

# Protocol v2 of docs/results.md (configs/cifar-cpu-v2-*.yaml): both
# families side by side, one run each on one thread, about 5 hours on 2
# cores; resumes where it stopped, then writes both reports (margin ±1
# point) and prints the pre-registered tests and verdict
# (tools/protocol_v2.py). V2_OUT=DIR keeps the sweeps elsewhere.
V2_OUT ?= runs-out
results-v2: setup build
	./$(BIN) sweep --config cifar-cpu-v2-window -q $(if $(DATA),--data $(DATA)) --out $(V2_OUT)/cifar-cpu-v2-window & w=$$!; \
	./$(BIN) sweep --config cifar-cpu-v2-removal -q $(if $(DATA),--data $(DATA)) --out $(V2_OUT)/cifar-cpu-v2-removal; r=$$?; \
	wait $$w && [ $$r = 0 ]
	./$(BIN) report --margin 1 $(V2_OUT)/cifar-cpu-v2-removal
	./$(BIN) report --margin 1 $(V2_OUT)/cifar-cpu-v2-window
	$(CRITLAB_PYTHON) tools/protocol_v2.py $(V2_OUT)/cifar-cpu-v2-removal $(V2_OUT)/cifar-cpu-v2-window --csv $(V2_OUT)/protocol-v2.csv

# Throughput table (and bench.json): train step, eval, Conv ceiling, pipeline.
# TORCH=/path/to/python (a venv with tools/requirements-torch.txt) adds
# PyTorch's train step on the same models, batch and threads, and the
# ratio; BENCH_MODELS picks the models (NAME[/bN][/Npx][/arena|/noarena], tv:NAME
# needs TORCH); BENCH_FLAGS passes more flags (--profile, --min-time 3s).
# The table of issue 18 (docs/performance.md):
#   make bench TORCH=/work/torchenv/bin/python BENCH_MODELS='$(BENCH_ISSUE18)' BENCH_FLAGS='--fisher-images 0 --no-pipeline --repeat 3'
TORCH        ?=
BENCH_MODELS ?= allcnn,resnet18,small
BENCH_FLAGS  ?=
BENCH_ISSUE18 := allcnn/b128/noarena,allcnn/b128,resnet18/b128,tv:resnet18/b32,tv:resnet18/b128,tv:mobilenet_v2/b32,tv:vgg11_bn/224px/b8
bench: setup build
	./$(BIN) bench --models '$(BENCH_MODELS)' $(if $(TORCH),--torch $(TORCH)) $(BENCH_FLAGS) --json bench.json

# The CUDA build of ONNX Runtime (needs a network; see docs/cuda.md).
setup-cuda:
	tools/setup_cuda.sh

# The bundle for a GPU device check, in .device/ (docs/cuda.md, "Device check").
device-prepare: setup
	tools/device_prepare.sh

proto:
	cd models/onnxpb && protoc --go_out=. --go_opt=paths=source_relative onnx.proto

clean:
	rm -rf bin bench.json
