package harness_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/compiler"
	pb "github.com/critlab/critlab/models/onnxpb"
)

func node(name string, ins, outs []string) *pb.NodeProto {
	return &pb.NodeProto{Name: &name, Input: ins, Output: outs}
}

// TestParseProfile attributes a small hand-made ORT trace
// (testdata/profile/trace.json, in ORT's event format): the warm-up run is
// skipped, fence events are ignored, a node ORT inserted (a layout
// reorder) is traced through its reader and a fused one through the value
// it writes, and a node of neither graph is unattributed.
func TestParseProfile(t *testing.T) {
	compiled := &pb.GraphProto{Node: []*pb.NodeProto{
		node("conv1", []string{"images", "w"}, []string{"c1"}),
		node("relu", []string{"c1"}, []string{"r"}),
		node("n_Conv_2", []string{"images", "r"}, []string{"dw"}),
		node("n_Mul_3", []string{"dw", "lr"}, []string{"step"}),
		node("n_Sub_4", []string{"w", "step"}, []string{"w.next"}),
	}}
	labels := []string{"fwd:Conv", "fwd:Relu", "grad:Conv/dW", "opt:sgd", "opt:sgd"}
	optimized := &pb.GraphProto{Node: []*pb.NodeProto{
		node("reorder", []string{"images"}, []string{"xr"}),
		node("conv1_nchwc", []string{"xr", "w"}, []string{"c1"}),
		node("relu", []string{"c1"}, []string{"r"}),
		node("n_Conv_2", []string{"images", "r"}, []string{"dw"}),
		node("fused_update", []string{"w", "dw", "lr"}, []string{"w.next"}),
	}}
	nl, err := harness.NewNodeLabels(compiled, labels, optimized)
	if err != nil {
		t.Fatal(err)
	}
	trace, err := os.ReadFile(filepath.Join("testdata", "profile", "trace.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := harness.ParseProfile(bytes.NewReader(trace), nl, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Two counted runs of 400 and 600 µs; kernel times in µs summed over
	// both, halved.
	want := []harness.ProfileEntry{
		{Label: "grad:Conv/dW", Op: "Conv", Nodes: 1, MsPerStep: 0.2},
		{Label: "fwd:Conv", Op: "Conv", Nodes: 1, MsPerStep: 0.12},
		{Label: "opt:sgd", Op: "Add", Nodes: 1, MsPerStep: 0.04},
		{Label: "fwd:Relu", Op: "Relu", Nodes: 1, MsPerStep: 0.02},
		{Label: "fwd:Conv", Op: "ReorderInput", Nodes: 1, MsPerStep: 0.015},
		{Label: harness.Unattributed, Op: "MemcpyToHost", Nodes: 1, MsPerStep: 0.01},
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if p.Steps != 2 || !near(p.StepMs, 0.5) || !near(p.KernelMs, 0.405) || !near(p.UnattributedMs, 0.01) {
		t.Errorf("steps %d, step %v ms, kernels %v ms, unattributed %v ms; want 2, 0.5, 0.405, 0.01", p.Steps, p.StepMs, p.KernelMs, p.UnattributedMs)
	}
	if len(p.Entries) != len(want) {
		t.Fatalf("entries %+v, want %+v", p.Entries, want)
	}
	for i, w := range want {
		g := p.Entries[i]
		if g.Label != w.Label || g.Op != w.Op || g.Nodes != w.Nodes || !near(g.MsPerStep, w.MsPerStep) || !near(g.Share, w.MsPerStep/0.5) {
			t.Errorf("entry %d: %+v, want %+v (share %v)", i, g, w, w.MsPerStep/0.5)
		}
	}
	for cat, ms := range map[string]float64{"grad": 0.2, "fwd": 0.155, "opt": 0.04, "ORT": 0.01} {
		if !near(p.Categories[cat], ms) {
			t.Errorf("category %s: %v ms, want %v", cat, p.Categories[cat], ms)
		}
	}
	for label, ms := range map[string]float64{"grad:Conv/dW": 0.2, "fwd:Conv": 0.135, "fwd:Relu": 0.02, "opt:sgd": 0.04, harness.Unattributed: 0.01} {
		if !near(p.Labels[label], ms) {
			t.Errorf("label %s: %v ms, want %v", label, p.Labels[label], ms)
		}
	}
	if len(p.Labels) != 5 {
		t.Errorf("labels %v, want 5", p.Labels)
	}
	if _, err := harness.ParseProfile(bytes.NewReader(trace), nl, 3); err == nil || !strings.Contains(err.Error(), "3 runs") {
		t.Errorf("a trace with no run after the warm-up ones: %v", err)
	}
}

// TestProfileTrain profiles real train steps of a small model: every
// kernel ORT ran is attributed to a compiled node's label here (no
// fusions on this graph), and the train-step nodes all appear.
func TestProfileTrain(t *testing.T) {
	rt := openRuntime(t)
	p, err := harness.ProfileTrain(rt, smallModel(t), harness.TrainerOptions{Compile: compiler.DefaultOptions(), BatchSize: 4}, 1, 2, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if p.Steps != 2 || p.StepMs <= 0 || p.KernelMs <= 0 || p.KernelMs > p.StepMs {
		t.Errorf("steps %d, step %v ms, kernels %v ms", p.Steps, p.StepMs, p.KernelMs)
	}
	var labels []string
	for _, e := range p.Entries {
		labels = append(labels, e.Label)
	}
	for _, l := range []string{"fwd:Conv", "grad:Conv/dW", "grad:Conv/dX", "loss", "opt:sgd"} {
		if !slices.Contains(labels, l) {
			t.Errorf("no time attributed to %s (labels %v)", l, labels)
		}
	}
	if p.UnattributedMs != 0 {
		t.Errorf("%v ms per step unattributed", p.UnattributedMs)
	}
	if m := p.Memory; m == nil || m.Batch != 4 || m.PeakBytes <= 0 || len(m.AtPeak) == 0 {
		t.Errorf("memory estimate %+v: want one at batch 4 with a peak", m)
	}
}
