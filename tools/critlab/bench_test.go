package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/internal/pyenv"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"github.com/critlab/critlab/models/zoo"
)

func TestParseBenchSpecs(t *testing.T) {
	for _, tc := range []struct {
		in    string
		arena bool // the default
		want  []benchSpec
		err   string
	}{
		{in: "allcnn,resnet18", want: []benchSpec{{Name: "allcnn", Batch: 128}, {Name: "resnet18", Batch: 128}}},
		{in: "allcnn/b32/arena, tv:vgg11_bn/224px/b8", want: []benchSpec{{Name: "allcnn", Batch: 32, Arena: true}, {Name: "tv:vgg11_bn", Batch: 8, ImageSize: 224}}},
		{in: "allcnn/noarena", arena: true, want: []benchSpec{{Name: "allcnn", Batch: 128}}},
		{in: "dir/b2/m.onnx/b4", want: []benchSpec{{Name: "dir/b2/m.onnx", Batch: 4}}},
		{in: "small/b0", want: []benchSpec{{Name: "small/b0", Batch: 128}}}, // not a batch: zoo.Build refuses the name
		{in: "/b4", err: `"/b4" names no model`},
		{in: "m.onnx/64px", err: "has its own image size"},
	} {
		got, err := parseBenchSpecs(tc.in, 128, tc.arena)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// fakePython writes a script standing in for the PyTorch interpreter: it
// appends its arguments to calls.txt, and answers torch_bench.py with a
// JSON result (threads as asked, or 1 when FAKE_THREADS=1) and
// export_torch.py by writing "onnx" to its -o file.
func fakePython(t *testing.T) (py, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls.txt")
	py = filepath.Join(dir, "python")
	script := `#!/bin/sh
echo "OMP_WAIT_POLICY=$OMP_WAIT_POLICY $@" >> ` + calls + `
case "$1" in
*torch_bench.py)
	threads=""; out=""
	while [ $# -gt 0 ]; do
		case "$1" in --threads) threads=$2;; --json) out=$2;; esac
		shift
	done
	[ -n "$FAKE_THREADS" ] && threads=$FAKE_THREADS
	printf '{"torch": "2.99", "threads": %s, "results": [{"model": "m", "images_per_sec": 50, "step_ms": 20, "steps": 3, "seconds": 0.06, "cpu_seconds": 0.12, "params": 1000, "peak_rss_bytes": 2097152, "loss_first": 2.3, "loss_last": 2.2}]}' "$threads" > "$out";;
*export_torch.py)
	while [ "$1" != "-o" ]; do shift; done
	echo onnx > "$2";;
*) exit 3;;
esac
`
	if err := os.WriteFile(py, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return py, calls
}

// TestBenchTorchFake: the PyTorch column from a stand-in interpreter: the
// arguments torch_bench.py gets (model, batch, image side, threads, critlab's
// weight decay), the ratios (per wall and per CPU second: critlab 10 steps
// in 0.2 CPU-s against 3 in 0.12), the architecture warning, and the refusal of
// a run on other threads.
func TestBenchTorchFake(t *testing.T) {
	py, calls := fakePython(t)
	tools, err := findTools()
	if err != nil {
		t.Fatal(err)
	}
	row := benchModel{Model: "tv:resnet18", Batch: 8, Params: 1000, PeakRSSBytes: 1 << 20, Train: harness.Throughput{ImagesPerSec: 100, Iterations: 10, CPUSeconds: 0.2}}
	var errw bytes.Buffer
	sp := benchSpec{Name: "tv:resnet18", Batch: 8}
	run := torchRun{Py: py, Tools: tools, Width: 1, Threads: 2, MinTime: time.Second}
	if err := benchTorch(context.Background(), &errw, run, sp, &row); err != nil {
		t.Fatal(err)
	}
	if row.Torch == nil || row.Torch.ImagesPerSec != 50 || row.TorchRatio != 2 || math.Abs(row.TorchCPURatio-2) > 1e-12 || row.TorchRSSRatio != 0.5 || row.Torch.Torch != "2.99" || row.Torch.Threads != 2 || row.Torch.OMPWaitPolicy != "PASSIVE" {
		t.Errorf("row %+v, torch %+v", row, row.Torch)
	}
	if strings.Contains(errw.String(), "WARNING") {
		t.Errorf("warned with equal parameter counts: %s", errw.String())
	}
	data, _ := os.ReadFile(calls)
	for _, arg := range []string{"OMP_WAIT_POLICY=PASSIVE ", "--models tv:resnet18 ", "--batch 8 ", "--image-size 32 ", "--threads 2 ", "--min-time 1 ", "--no-decay-bias-norm"} {
		if !strings.Contains(string(data), arg) {
			t.Errorf("torch_bench.py called as %q, want %q in it", data, arg)
		}
	}
	row.Params = 999
	errw.Reset()
	if err := benchTorch(context.Background(), &errw, run, sp, &row); err != nil || !strings.Contains(errw.String(), "not the same architecture") {
		t.Errorf("parameter counts 999 vs 1000: %v, %q", err, errw.String())
	}
	// With --spin PyTorch keeps its own wait policy.
	run.Spin = true
	if err := benchTorch(context.Background(), &errw, run, sp, &row); err != nil || row.Torch.OMPWaitPolicy != "" {
		t.Errorf("--spin: %v, policy %q", err, row.Torch.OMPWaitPolicy)
	}
	if data, _ := os.ReadFile(calls); !strings.HasPrefix(strings.Split(strings.TrimSpace(string(data)), "\n")[2], "OMP_WAIT_POLICY= ") {
		t.Errorf("with --spin torch_bench.py ran as %q", data)
	}
	t.Setenv("FAKE_THREADS", "1")
	if err := benchTorch(context.Background(), &errw, run, sp, &row); err == nil || !strings.Contains(err.Error(), "ran on 1 threads, asked for 2") {
		t.Errorf("PyTorch on 1 thread of 2: %v", err)
	}
}

// TestExportTorchvisionCache: a tv: model is exported once per image side
// and then read from the cache.
func TestExportTorchvisionCache(t *testing.T) {
	py, calls := fakePython(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	tools, err := findTools()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, sp := range []benchSpec{{Name: "tv:resnet18"}, {Name: "tv:resnet18", ImageSize: 32}, {Name: "tv:resnet18", ImageSize: 64}} {
		p, err := exportTorchvision(context.Background(), io.Discard, py, tools, sp)
		if err != nil {
			t.Fatal(err)
		}
		if data, err := os.ReadFile(p); err != nil || string(data) != "onnx\n" {
			t.Errorf("%s: %q, %v", p, data, err)
		}
		paths = append(paths, p)
	}
	if paths[0] != paths[1] || paths[0] == paths[2] {
		t.Errorf("cache paths %v: want the first two equal, the third apart", paths)
	}
	data, _ := os.ReadFile(calls)
	if n := strings.Count(string(data), "export_torch.py tv:resnet18 --image-size"); n != 2 {
		t.Errorf("%d exports, want 2:\n%s", n, data)
	}
}

// TestTorchBenchSameArchitecture runs the real PyTorch side when
// CRITLAB_TORCH_PYTHON names a Python with torch and torchvision (CI has
// none: it skips): torch_bench.py's zoo models have the zoo's parameter
// counts, and a torchvision export has its PyTorch model's.
func TestTorchBenchSameArchitecture(t *testing.T) {
	py := os.Getenv("CRITLAB_TORCH_PYTHON")
	if py == "" {
		t.Skip("set CRITLAB_TORCH_PYTHON to a Python with tools/requirements-torch.txt to run the PyTorch side")
	}
	if err := pyenv.Has(py, "torch", "torchvision", "onnx"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	tools, err := findTools()
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range []benchSpec{{Name: "small", Batch: 2}, {Name: "allcnn", Batch: 2}, {Name: "resnet18", Batch: 2}, {Name: "tv:mobilenet_v2", Batch: 2}} {
		tb, err := runTorchBench(context.Background(), torchRun{Py: py, Tools: tools, Width: 1, Threads: 1}, sp)
		if err != nil {
			t.Fatal(err)
		}
		var m *pb.ModelProto
		if strings.HasPrefix(sp.Name, torchvisionPrefix) {
			path, err := exportTorchvision(context.Background(), io.Discard, py, tools, sp)
			if err != nil {
				t.Fatal(err)
			}
			m, err = graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
		} else if m, err = zoo.Build(sp.Name, zoo.Options{Width: 1}); err != nil {
			t.Fatal(err)
		}
		st, err := graph.Stats(m)
		if err != nil {
			t.Fatal(err)
		}
		if params := st.Params; tb.Params != params || tb.ImagesPerSec <= 0 || tb.PeakRSSBytes <= 0 {
			t.Errorf("%s: PyTorch %+v; critlab %d parameters", sp.Name, tb, params)
		}
	}
}

func TestMedianRow(t *testing.T) {
	row := func(img, ratio float64) benchModel {
		m := benchModel{Train: harness.Throughput{ImagesPerSec: img}}
		if ratio > 0 {
			m.Torch, m.TorchRatio = &torchBench{ImagesPerSec: img / ratio}, ratio
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		rows    []benchModel
		wantImg float64
		reps    int
		rng     string
	}{
		{"one run, no repeats listed", []benchModel{row(10, 0.5)}, 10, 0, "-"},
		{"median by ratio, not by speed", []benchModel{row(10, 0.9), row(30, 0.5), row(20, 0.7)}, 20, 3, "0.50-0.90"},
		{"even count takes the lower middle", []benchModel{row(10, 0.9), row(30, 0.5)}, 30, 2, "0.50-0.90"},
		{"without PyTorch by train images/s", []benchModel{row(10, 0), row(30, 0), row(20, 0)}, 20, 3, "0.00-0.00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := medianRow(tc.rows)
			if m.Train.ImagesPerSec != tc.wantImg || len(m.Repeats) != tc.reps {
				t.Errorf("median row %v img/s with %d repeats, want %v and %d", m.Train.ImagesPerSec, len(m.Repeats), tc.wantImg, tc.reps)
			}
			if tc.reps > 0 && m.Repeats[0].TrainImagesPerSec != tc.rows[0].Train.ImagesPerSec {
				t.Errorf("repeats not in measurement order: %+v", m.Repeats)
			}
			if got := ratioRange(m.Repeats); got != tc.rng {
				t.Errorf("ratio range %q, want %q", got, tc.rng)
			}
		})
	}
}
