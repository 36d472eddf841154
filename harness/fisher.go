package harness

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	ort "github.com/yalue/onnxruntime_go"
)

// LayerTrace is one layer's part of a Fisher trace estimate.
type LayerTrace struct {
	Layer string
	Trace float64
}

// FisherResult is an estimate of the trace of the Fisher information of
// the weights, Tr F = E_x E_{ŷ~p_w(·|x)} ‖∇_w log p_w(ŷ|x)‖², over a set of
// images, in total and per layer.
type FisherResult struct {
	Total float64
	// Layers are the traces of each layer's parameter tensors (a layer is
	// a tensor name without its final ".weight" or ".bias"), in the order
	// of the model's parameters; they sum to Total.
	Layers  []LayerTrace
	Images  int // images averaged over
	Samples int // labels sampled per image
}

// fisherState is the Fisher graph and the sessions of Trainer.Fisher,
// made on first use and kept until the trainer is rebuilt or closed.
type fisherState struct {
	graph  *compiler.FisherGraph
	s      *Session // Fisher graph: squared norms per parameter
	logits *Session // eval graph: logits, for the predictive distribution
	ins    []ort.Value
	layer  []int    // layer index of each Fisher-graph parameter
	layers []string // layer names
}

// LayerOf is the layer a parameter tensor belongs to: its name without a
// final ".weight" or ".bias" component.
func LayerOf(param string) string {
	for _, s := range []string{".weight", ".bias"} {
		if l, ok := strings.CutSuffix(param, s); ok && l != "" {
			return l
		}
	}
	return param
}

// Fisher estimates the trace of the Fisher information of the weights over
// the images next yields (their labels are ignored): for every image x and
// each of samples labels ŷ drawn from the model's predictive distribution
// (the softmax of the eval graph's logits, BatchNorm on the running
// statistics), the squared norm ‖∇_w log p_w(ŷ|x)‖², averaged over images
// and samples. The labels of image i (counted from 0 across batches) are a
// function of seed, i and the model only, so the same seed on the same
// images draws the same labels whatever the batching.
//
// The graph is compiler.CompileFisher's: one pass per batch and sample in
// the per-example form, one pass per image and sample in the batch-of-one
// form. Its sessions are created on the first call and reused.
func (t *Trainer) Fisher(next func() (images []float32, labels []int64, ok bool, err error), samples int, seed uint64) (FisherResult, error) {
	res := FisherResult{Samples: samples}
	if samples <= 0 {
		return res, fmt.Errorf("fisher: %d label samples per image; need at least 1", samples)
	}
	if err := t.openFisher(); err != nil {
		return res, err
	}
	f := t.fisher
	sums := make([]float64, len(f.layers))
	for {
		images, labels, ok, err := next()
		if err != nil {
			return res, fmt.Errorf("fisher: %w", err)
		}
		if !ok {
			break
		}
		n := len(labels)
		probs, classes, err := t.predictive(images, labels)
		if err != nil {
			return res, fmt.Errorf("fisher: %w", err)
		}
		drawn := make([]int64, samples*n) // sample-major
		for i := range n {
			rng := rand.New(rand.NewPCG(seed, uint64(res.Images+i)))
			for s := range samples {
				drawn[s*n+i] = drawLabel(probs[i*classes:(i+1)*classes], rng.Float64())
			}
		}
		for s := range samples {
			norms, err := t.fisherNorms(images, drawn[s*n:(s+1)*n])
			if err != nil {
				return res, fmt.Errorf("fisher: images %d-%d, sample %d: %w", res.Images, res.Images+n-1, s, err)
			}
			for l := range sums {
				for _, v := range norms[l*n : (l+1)*n] {
					sums[l] += v
				}
			}
		}
		res.Images += n
	}
	if res.Images == 0 {
		return res, fmt.Errorf("fisher: no images")
	}
	div := float64(res.Images) * float64(samples)
	for l, name := range f.layers {
		tr := sums[l] / div
		res.Layers = append(res.Layers, LayerTrace{Layer: name, Trace: tr})
		res.Total += tr
	}
	if math.IsNaN(res.Total) || math.IsInf(res.Total, 0) {
		return res, fmt.Errorf("fisher: trace is %v after %d steps", res.Total, t.steps)
	}
	return res, nil
}

// drawLabel returns the class whose cumulative probability first exceeds u
// (inverse-CDF sampling), the last class if rounding leaves u above all.
func drawLabel(p []float64, u float64) int64 {
	c := 0.0
	for k, v := range p {
		c += v
		if u < c {
			return int64(k)
		}
	}
	return int64(len(p) - 1)
}

// predictive returns the softmax of the eval graph's logits, row-major
// [n, classes], computed in float64.
func (t *Trainer) predictive(images []float32, labels []int64) ([]float64, int, error) {
	im, lb, done, err := t.fill(images, labels)
	if err != nil {
		return nil, 0, err
	}
	defer done()
	out := []ort.Value{nil}
	if err := t.fisher.logits.RunValues(append(t.evalInputs(), im, lb), out); err != nil {
		return nil, 0, fmt.Errorf("logits: %w", err)
	}
	defer out[0].Destroy()
	z, ok := out[0].(*ort.Tensor[float32])
	if !ok || len(z.GetShape()) != 2 || z.GetShape()[0] != int64(len(labels)) {
		return nil, 0, fmt.Errorf("logits: got %T of shape %v, want %d×classes float32", out[0], out[0].GetShape(), len(labels))
	}
	classes := int(z.GetShape()[1])
	data := z.GetData()
	p := make([]float64, len(data))
	for i := range len(labels) {
		row, q := data[i*classes:(i+1)*classes], p[i*classes:(i+1)*classes]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		var s float64
		for k, v := range row {
			q[k] = math.Exp(float64(v) - m)
			s += q[k]
		}
		for k := range q {
			q[k] /= s
		}
	}
	return p, classes, nil
}

// fisherNorms returns ‖∇ log p(labels[i] | image i)‖² restricted to each
// layer, layer-major ([layers][n]), summing the parameter tensors of a
// layer.
func (t *Trainer) fisherNorms(images []float32, labels []int64) ([]float64, error) {
	f := t.fisher
	n := len(labels)
	norms := make([]float64, len(f.layers)*n)
	run := func(images []float32, labels []int64, at int) error {
		im, lb, done, err := t.fill(images, labels)
		if err != nil {
			return err
		}
		defer done()
		f.setInputs(t, im, lb)
		outs := make([]ort.Value, len(f.graph.Params))
		if err := f.s.RunValues(f.ins, outs); err != nil {
			return err
		}
		defer func() {
			for _, o := range outs {
				o.Destroy()
			}
		}()
		for j, o := range outs {
			x, ok := o.(*ort.Tensor[float32])
			if !ok || len(x.GetData()) != len(labels) {
				return fmt.Errorf("%s: got %T of shape %v, want %d values", f.graph.Params[j].Next, o, o.GetShape(), len(labels))
			}
			l := f.layer[j]
			for i, v := range x.GetData() {
				norms[l*n+at+i] += float64(v)
			}
		}
		return nil
	}
	if f.graph.PerExample {
		return norms, run(images, labels, 0)
	}
	per := len(images) / max(n, 1)
	for i := range n {
		if err := run(images[i*per:(i+1)*per], labels[i:i+1], i); err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
	}
	return norms, nil
}

// setInputs points the Fisher graph's inputs at the current state and the
// batch.
func (f *fisherState) setInputs(t *Trainer, im, lb ort.Value) {
	f.ins = f.ins[:0]
	for _, group := range [][]compiler.Tensor{f.graph.Params, f.graph.Stats} {
		for _, c := range group {
			if j, ok := t.index[c.Name]; ok {
				f.ins = append(f.ins, t.state[t.cur][j])
			} else {
				f.ins = append(f.ins, t.fixed[c.Name])
			}
		}
	}
	f.ins = append(f.ins, im, lb)
}

// openFisher compiles the Fisher graph and opens its sessions once.
func (t *Trainer) openFisher() error {
	if t.fisher != nil {
		return nil
	}
	compile := compiler.CompileFisher
	if t.fisherBatched {
		compile = compiler.CompileFisherBatched
	}
	fg, err := compile(t.forward)
	if err != nil {
		return fmt.Errorf("fisher: %w", err)
	}
	f := &fisherState{graph: fg}
	index := map[string]int{}
	for _, p := range fg.Params {
		l := LayerOf(p.Name)
		if _, ok := index[l]; !ok {
			index[l] = len(f.layers)
			f.layers = append(f.layers, l)
		}
		f.layer = append(f.layer, index[l])
	}
	for _, group := range [][]compiler.Tensor{fg.Params, fg.Stats} {
		for _, c := range group {
			_, trained := t.index[c.Name]
			if _, fixed := t.fixed[c.Name]; !trained && !fixed {
				return fmt.Errorf("fisher: graph input %q is neither trained nor an eval-graph input", c.Name)
			}
		}
	}
	data, err := graph.Marshal(fg.Model)
	if err != nil {
		return fmt.Errorf("fisher: %w", err)
	}
	if f.s, err = t.rt.NewSession(data, fg.InputNames(), fg.OutputNames()); err != nil {
		return fmt.Errorf("fisher: Fisher graph: %w", err)
	}
	evalModel, err := graph.Marshal(t.eval.Model)
	if err != nil {
		f.s.Close()
		return fmt.Errorf("fisher: %w", err)
	}
	var evalIns []string
	for _, c := range t.eval.Inputs {
		evalIns = append(evalIns, c.Name)
	}
	evalIns = append(evalIns, compiler.Images, compiler.Labels)
	if f.logits, err = t.rt.NewSession(evalModel, evalIns, []string{compiler.Logits}); err != nil {
		f.s.Close()
		return fmt.Errorf("fisher: eval graph: %w", err)
	}
	t.fisher = f
	return nil
}

func (t *Trainer) closeFisher() {
	if t.fisher == nil {
		return
	}
	t.fisher.s.Close()
	t.fisher.logits.Close()
	t.fisher = nil
}

// BenchFisher times Trainer.Fisher on n random images (in batches of the
// trainer's batch size) with samples labels each. A first, untimed call
// opens the sessions (once per run in training); then estimates repeat
// until minTime has passed, at least twice. It returns the mean seconds of
// one estimate.
func BenchFisher(rt *Runtime, forward *pb.ModelProto, opts TrainerOptions, n, samples int, minTime time.Duration) (float64, error) {
	tr, err := NewTrainer(rt, forward, opts)
	if err != nil {
		return 0, err
	}
	defer tr.Close()
	per := int(graph.NumElements(tr.inDims))
	images := make([]float32, n*per)
	rng := rand.New(rand.NewPCG(1, 3))
	for i := range images {
		images[i] = float32(rng.NormFloat64())
	}
	labels := make([]int64, n)
	estimate := func() error {
		at := 0
		_, err := tr.Fisher(func() ([]float32, []int64, bool, error) {
			if at >= n {
				return nil, nil, false, nil
			}
			k := min(opts.BatchSize, n-at)
			im, lb := images[at*per:(at+k)*per], labels[at:at+k]
			at += k
			return im, lb, true, nil
		}, samples, 1)
		return err
	}
	if err := estimate(); err != nil {
		return 0, err
	}
	start := time.Now()
	k := 0
	for k < 2 || time.Since(start) < minTime {
		if err := estimate(); err != nil {
			return 0, err
		}
		k++
	}
	return time.Since(start).Seconds() / float64(k), nil
}
