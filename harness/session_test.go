package harness_test

import (
	"errors"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/graph"
)

// openRuntime opens the runtime or skips the test when no library is set up.
func openRuntime(t testing.TB) *harness.Runtime {
	t.Helper()
	rt, err := harness.Open(harness.RuntimeOptions{Threads: 2})
	if errors.Is(err, harness.ErrNoLibrary) {
		t.Skipf("ONNX Runtime missing (run `make setup`): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func TestSessionRun(t *testing.T) {
	rt := openRuntime(t)
	b := graph.NewBuilder("add")
	x := b.Input("x", graph.Float, -1, 3)
	y := b.Op("Mul", []string{x, b.ConstFloat(2)})
	b.NodeNamed("Identity", []string{y}, []string{"y"})
	b.Output("y", graph.Float, -1, 3)
	data, err := graph.Marshal(b.Model())
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(data, []string{"x"}, []string{"y"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run([]harness.Tensor{{Shape: []int64{2, 3}, F32: []float32{1, 2, 3, 4, 5, 6}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{2, 4, 6, 8, 10, 12}
	for i, v := range out[0].F32 {
		if v != want[i] {
			t.Fatalf("y = %v, want %v", out[0].F32, want)
		}
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

func TestParseDevice(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"", "cpu", true}, {"cpu", "cpu", true}, {"cuda", "cuda:0", true},
		{"cuda:1", "cuda:1", true}, {"cuda:x", "", false}, {"tpu", "", false},
	}
	for _, tc := range tests {
		d, err := harness.ParseDevice(tc.in)
		if (err == nil) != tc.ok || (tc.ok && d.String() != tc.want) {
			t.Errorf("ParseDevice(%q) = %v, %v; want %q ok=%v", tc.in, d, err, tc.want, tc.ok)
		}
	}
}

// TestSessionScalars feeds and reads rank-0 tensors (the train graph's lr,
// loss and correct are scalars).
func TestSessionScalars(t *testing.T) {
	rt := openRuntime(t)
	b := graph.NewBuilder("scalar")
	x := b.Input("x", graph.Float)
	b.NodeNamed("Mul", []string{x, b.ConstFloat(3)}, []string{"y"})
	b.Output("y", graph.Float)
	data, err := graph.Marshal(b.Model())
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(data, []string{"x"}, []string{"y"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run([]harness.Tensor{{Shape: []int64{}, F32: []float32{2}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out[0].Shape) != 0 || len(out[0].F32) != 1 || out[0].F32[0] != 6 {
		t.Fatalf("y = %+v, want scalar 6", out[0])
	}
}
