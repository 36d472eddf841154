package harness_test

import (
	"math"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
)

// dropoutNet is images N×1×side×side, flattened, through Dropout(ratio),
// times a side²×2 weight of ones: logits.
func dropoutNet(side int64, ratio float32) *graph.Builder {
	b := graph.NewBuilder("dropout")
	x := b.Input("images", graph.Float, -1, 1, side, side)
	f := b.Op("Flatten", []string{x}, graph.Int("axis", 1))
	d := b.Op("Dropout", []string{f, b.ConstFloat(ratio)})
	w := make([]float32, side*side*2)
	for i := range w {
		w[i] = 1
	}
	b.NodeNamed("MatMul", []string{d, b.Param("w", []int64{side * side, 2}, w)}, []string{"logits"})
	b.Output("logits", graph.Float, -1, 2)
	return b
}

// TestDropout: a train step drops each input with the node's ratio and
// scales the kept ones by 1/(1-ratio) (read from the weight update of one
// all-ones image with plain SGD at lr 1); the masks differ from step to
// step, SeedDropout repeats them exactly, and evaluation has no dropout.
func TestDropout(t *testing.T) {
	const side, ratio = 100, 0.3
	rt := openRuntime(t)
	m := dropoutNet(side, ratio).Model()
	newTrainer := func() *harness.Trainer {
		tr, err := harness.NewTrainer(rt, m, harness.TrainerOptions{BatchSize: 1, Compile: compiler.Options{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	images := make([]float32, side*side)
	for i := range images {
		images[i] = 1
	}
	labels := []int64{0}
	// step returns the update of w's first column, row by row.
	step := func(tr *harness.Trainer) []float32 {
		before := append([]float32{}, tr.Params()["w"]...)
		if _, _, err := tr.Step(images, labels, 1); err != nil {
			t.Fatal(err)
		}
		after := tr.Params()["w"]
		d := make([]float32, side*side)
		for i := range d {
			d[i] = after[2*i] - before[2*i]
		}
		return d
	}
	a := newTrainer()
	d1 := step(a)
	// All-equal logits: dloss/dlogit0 = p0 - 1 = -0.5, so a kept row's
	// weight grows by 0.5/(1-ratio).
	dropped, want := 0, float32(0.5/(1-ratio))
	for i, v := range d1 {
		switch {
		case v == 0:
			dropped++
		case math.Abs(float64(v-want)) > 1e-5:
			t.Fatalf("row %d: update %v, want 0 or %v", i, v, want)
		}
	}
	rate := float64(dropped) / float64(len(d1))
	if sd := math.Sqrt(ratio * (1 - ratio) / float64(len(d1))); math.Abs(rate-ratio) > 4*sd {
		t.Errorf("dropped %.4f of the inputs, want %.2f ± %.4f", rate, ratio, 4*sd)
	}
	d2 := step(a)
	same := 0
	for i := range d1 {
		if (d1[i] == 0) == (d2[i] == 0) {
			same++
		}
	}
	if same == len(d1) {
		t.Error("the second step drew the first step's mask")
	}
	b := newTrainer()
	b.SeedDropout(0, 0)
	if e1 := step(b); !slicesEqual(e1, d1) {
		t.Error("a new trainer at stream (0, 0) drew other masks")
	}
	a.SeedDropout(7, 3)
	b.SeedDropout(7, 3)
	if da, db := step(a), step(b); !sameZeros(da, db) {
		t.Error("SeedDropout(7, 3) drew different masks in two trainers")
	}
	// Evaluation: logit k is the plain sum of column k, no mask.
	w := a.Params()["w"]
	var l0, l1 float64
	for i := 0; i < len(w); i += 2 {
		l0, l1 = l0+float64(w[i]), l1+float64(w[i+1])
	}
	want0 := math.Log(math.Exp(l0)+math.Exp(l1)) - l0
	done := false
	res, err := a.Evaluate(func() ([]float32, []int64, bool, error) {
		if done {
			return nil, nil, false, nil
		}
		done = true
		return images, labels, true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.Loss-want0) > 1e-3*math.Max(1, want0) {
		t.Errorf("eval loss %v, want %v (no dropout)", res.Loss, want0)
	}
}

func slicesEqual(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func sameZeros(a, b []float32) bool {
	for i := range a {
		if (a[i] == 0) != (b[i] == 0) {
			return false
		}
	}
	return len(a) == len(b)
}
