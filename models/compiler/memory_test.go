package compiler

import (
	"reflect"
	"testing"

	"github.com/critlab/critlab/models/graph"
)

// TestEstimateMemory: on a five-node graph at batch 2 (every [N,4] float
// value 32 bytes), the live bytes while each node runs are 32, 64, 64
// (Identity aliases its input), 96 (then a dies), 64 (the output y is the
// caller's buffer): the peak is 96 at node 3.
func TestEstimateMemory(t *testing.T) {
	b := graph.NewBuilder("live")
	x := b.Input("x", graph.Float, -1, 4)
	w := b.Param("w", []int64{4}, make([]float32, 4))
	a := b.Op("Relu", []string{x})
	n := b.Op("Neg", []string{a})
	r := b.Op("Identity", []string{n})
	c := b.Op("Mul", []string{a, w})
	y := b.Op("Add", []string{r, c})
	b.Output(y, graph.Float, -1, 4)
	labels := []string{"fwd:Relu", "fwd:Neg", "fwd:Identity", "grad:Relu/dX", ProvGradSum}

	est, err := estimateMemory(b.G, labels, 2)
	if err != nil {
		t.Fatal(err)
	}
	if est.InputBytes != 32+16 || est.OutputBytes != 32 || est.PeakBytes != 96 || est.PeakNode != 3 || est.Unknown != 0 {
		t.Errorf("inputs %d, outputs %d, peak %d at node %d, %d unknown: want 48, 32, 96 at node 3, 0", est.InputBytes, est.OutputBytes, est.PeakBytes, est.PeakNode, est.Unknown)
	}
	if est.PeakLabel != "grad:Relu/dX Mul" {
		t.Errorf("peak at %q, want grad:Relu/dX Mul", est.PeakLabel)
	}
	want := []MemoryShare{{"fwd:Neg", 32, 1}, {"fwd:Relu", 32, 1}, {"grad:Relu/dX", 32, 1}}
	if !reflect.DeepEqual(est.AtPeak, want) {
		t.Errorf("at peak %v, want %v", est.AtPeak, want)
	}
	if _, err := estimateMemory(b.G, labels[1:], 2); err == nil {
		t.Error("labels for 4 of 5 nodes: no error")
	}
}

// TestEstimateMemoryTrainGraph: a compiled train step's peak holds the
// forward activations kept for the backward and scales with the batch.
func TestEstimateMemoryTrainGraph(t *testing.T) {
	tg, err := CompileTrain(tinyNet(t), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	one, err := EstimateMemory(tg, 1)
	if err != nil {
		t.Fatal(err)
	}
	four, err := EstimateMemory(tg, 4)
	if err != nil {
		t.Fatal(err)
	}
	if one.Unknown != 0 || one.PeakBytes <= 0 || four.PeakBytes <= 3*one.PeakBytes {
		t.Errorf("peak %d at batch 1, %d at batch 4, %d unknown: want a positive peak growing with the batch, none unknown", one.PeakBytes, four.PeakBytes, one.Unknown)
	}
	var sum int64
	for _, s := range four.AtPeak {
		sum += s.Bytes
	}
	if sum != four.PeakBytes {
		t.Errorf("shares sum to %d, peak is %d", sum, four.PeakBytes)
	}
}
