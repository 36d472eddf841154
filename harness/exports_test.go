package harness_test

import (
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
)

// TestExportsMatchPyTorch: the eval graph of every exporter fixture
// (models/compiler/testdata/exports, tools/make_exports.py) computes
// PyTorch's eval-mode logits, and where the model trains, two training
// steps lower the eval loss. Exports whose BatchNorm was folded are checked
// too: their forward is right, they only cannot train BatchNorm.
func TestExportsMatchPyTorch(t *testing.T) {
	refs, err := filepath.Glob(filepath.Join("..", "models", "compiler", "testdata", "exports", "*.ref.onnx"))
	if err != nil || len(refs) == 0 {
		t.Fatalf("no fixtures (%v); make them with tools/make_exports.py", err)
	}
	sort.Strings(refs)
	rt := openRuntime(t)
	for _, ref := range refs {
		name := strings.TrimSuffix(filepath.Base(ref), ".ref.onnx")
		t.Run(name, func(t *testing.T) {
			r, err := graph.Load(ref)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]float32{}
			dims := map[string][]int64{}
			for _, x := range r.Graph.Initializer {
				if want[x.GetName()], err = graph.Floats(x); err != nil {
					t.Fatal(err)
				}
				dims[x.GetName()] = x.Dims
			}
			m, err := graph.Load(strings.TrimSuffix(ref, ".ref.onnx") + ".onnx")
			if err != nil {
				t.Fatal(err)
			}
			eg, err := compiler.CompileEval(m)
			if err != nil {
				t.Fatal(err)
			}
			init := map[string][]float32{}
			m2, err := graph.Load(strings.TrimSuffix(ref, ".ref.onnx") + ".onnx")
			if err != nil {
				t.Fatal(err)
			}
			graph.Untie(m2.Graph)
			for _, x := range m2.Graph.Initializer {
				if v, err := graph.Floats(x); err == nil {
					init[x.GetName()] = v
				}
			}
			var ins []harness.Tensor
			for _, p := range eg.Inputs {
				ins = append(ins, harness.Tensor{Shape: p.Dims, F32: init[p.Name]})
			}
			n := dims["images"][0]
			ins = append(ins, harness.Tensor{Shape: dims["images"], F32: want["images"]},
				harness.Tensor{Shape: []int64{n}, I64: make([]int64, n)})
			data, err := graph.Marshal(eg.Model)
			if err != nil {
				t.Fatal(err)
			}
			s, err := rt.NewSession(data, eg.InputNames(), eg.OutputNames())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			out, err := s.Run(ins)
			if err != nil {
				t.Fatal(err)
			}
			got, wantL := out[2].F32, want["logits"]
			scale := 1e-3
			for _, v := range wantL {
				scale = max(scale, math.Abs(float64(v)))
			}
			for i := range wantL {
				if e := math.Abs(float64(got[i]-wantL[i])) / scale; e > 1e-5 {
					t.Fatalf("logit %d: %.7g, PyTorch %.7g", i, got[i], wantL[i])
				}
			}
			tr, err := harness.NewTrainer(rt, m, harness.TrainerOptions{BatchSize: int(n)})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			labels := []int64{0, 1, 2, 3}
			// The eval loss, as step losses vary with the dropout masks.
			evalLoss := func() float64 {
				done := false
				r, err := tr.Evaluate(func() ([]float32, []int64, bool, error) {
					if done {
						return nil, nil, false, nil
					}
					done = true
					return want["images"], labels, true, nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return r.Loss
			}
			l1 := evalLoss()
			for range 2 {
				if _, _, err := tr.Step(want["images"], labels, 0.1); err != nil {
					t.Fatal(err)
				}
			}
			if l2 := evalLoss(); !(l2 < l1) {
				t.Fatalf("eval loss %v after two steps, %v before", l2, l1)
			}
		})
	}
}
