package harness_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/internal/oracle"
	"github.com/critlab/critlab/models/graph"
)

// openRuntime opens the runtime or skips the test when no library is set up.
func openRuntime(t testing.TB) *harness.Runtime {
	t.Helper()
	rt, err := harness.Open(harness.RuntimeOptions{Threads: 2})
	if errors.Is(err, harness.ErrNoLibrary) {
		oracle.Missing(t, "ONNX Runtime missing (run `make setup`): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// TestSessionRun doubles a tensor through a one-node model, including a
// rank-0 one (the train graph's lr, loss and correct are scalars).
func TestSessionRun(t *testing.T) {
	rt := openRuntime(t)
	tests := []struct {
		name  string
		dims  []int64 // graph dims; -1 is the symbolic batch
		shape []int64
		in    []float32
	}{
		{"matrix", []int64{-1, 3}, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}},
		{"scalar", nil, []int64{}, []float32{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := graph.NewBuilder(tc.name)
			x := b.Input("x", graph.Float, tc.dims...)
			b.NodeNamed("Mul", []string{x, b.ConstFloat(2)}, []string{"y"})
			b.Output("y", graph.Float, tc.dims...)
			data, err := graph.Marshal(b.Model())
			if err != nil {
				t.Fatal(err)
			}
			s, err := rt.NewSession(data, []string{"x"}, []string{"y"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			out, err := s.Run([]harness.Tensor{{Shape: tc.shape, F32: tc.in}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out[0].Shape, tc.shape) || len(out[0].F32) != len(tc.in) {
				t.Fatalf("y = %+v, want shape %v", out[0], tc.shape)
			}
			for i, v := range out[0].F32 {
				if v != 2*tc.in[i] {
					t.Fatalf("y = %v, want twice %v", out[0].F32, tc.in)
				}
			}
		})
	}
}

func TestFindLibraryErrors(t *testing.T) {
	tests := []struct {
		name, path string
	}{
		{"missing", "/nonexistent/libonnxruntime.so"},
		{"folder", t.TempDir()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := harness.FindLibrary(tc.path)
			if !errors.Is(err, harness.ErrNoLibrary) {
				t.Fatalf("FindLibrary(%q) = %v, want ErrNoLibrary", tc.path, err)
			}
		})
	}
}
