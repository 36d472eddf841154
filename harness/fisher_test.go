package harness_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// softmaxRegression is logits = W·flatten(x) + b on 2×3×3 images, 5 classes,
// with parameters fc.weight and fc.bias (one layer, "fc").
func softmaxRegression(seed uint64) (m *pb.ModelProto, w, b []float32) {
	const k, d = 5, 18
	rng := rand.New(rand.NewPCG(seed, 1))
	w, b = make([]float32, k*d), make([]float32, k)
	for i := range w {
		w[i] = float32(0.4 * rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(0.5 * rng.NormFloat64())
	}
	bl := graph.NewBuilder("softmax")
	x := bl.Input("input", graph.Float, -1, 2, 3, 3)
	f := bl.Op("Flatten", []string{x}, graph.Int("axis", 1))
	y := bl.Op("Gemm", []string{f, bl.Param("fc.weight", []int64{k, d}, w), bl.Param("fc.bias", []int64{k}, b)}, graph.Int("transB", 1))
	bl.NodeNamed("Identity", []string{y}, []string{"out"})
	bl.Output("out", graph.Float, -1, k)
	return bl.Model(), w, b
}

func randImages(seed uint64, n int, per int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	x := make([]float32, n*per)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// TestFisherSoftmaxRegression checks Trainer.Fisher against the closed form
// of softmax regression: ∇_W log p(y|x) = (e_y - p)xᵀ and ∇_b = e_y - p, so
// ‖∇ log p(y|x)‖² = ‖e_y - p‖²(‖x‖² + 1), whose expectation over y ~ p is
// (1 - ‖p‖²)(‖x‖² + 1).
func TestFisherSoftmaxRegression(t *testing.T) {
	rt := openRuntime(t)
	const n, k, d, batch, samples = 96, 5, 18, 32, 300
	m, w, b := softmaxRegression(4)
	tr := newTrainer(t, rt, m, batch)
	images := randImages(5, n, d)
	labels := make([]int64, n)

	// The predictive distribution and the closed form, in float64.
	p := make([]float64, n*k)
	exact := make([]float64, n) // E_y ‖∇ log p(y|x)‖²
	perLabel := make([]float64, n*k)
	var mean, variance float64 // of the estimator
	for i := range n {
		x := images[i*d : (i+1)*d]
		z := make([]float64, k)
		var xx float64
		for _, v := range x {
			xx += float64(v) * float64(v)
		}
		for c := range k {
			z[c] = float64(b[c])
			for j, v := range x {
				z[c] += float64(w[c*d+j]) * float64(v)
			}
		}
		var pp float64
		for c := range k {
			p[i*k+c] = math.Exp(-crossEntropy(z, int64(c), 0))
			pp += p[i*k+c] * p[i*k+c]
		}
		var second float64
		for c := range k {
			q := p[i*k+c]
			v := (1 - 2*q + pp) * (xx + 1) // ‖e_c - p‖²(‖x‖²+1)
			perLabel[c*n+i] = v
			second += q * v * v
		}
		exact[i] = (1 - pp) * (xx + 1)
		mean += exact[i] / n
		variance += (second - exact[i]*exact[i]) / (n * n * samples)
	}

	t.Run("predictive", func(t *testing.T) {
		got, classes, err := tr.Predictive(images[:batch*d], labels[:batch])
		if err != nil {
			t.Fatal(err)
		}
		if classes != k {
			t.Fatalf("%d classes, want %d", classes, k)
		}
		for i, v := range got {
			if math.Abs(v-p[i]) > 1e-5 {
				t.Fatalf("p[%d] = %.7g, want %.7g", i, v, p[i])
			}
		}
	})

	// Exact: the graph's per-example norms for every label, weighted by p,
	// against the closed form; the per-label norms are per example, not
	// batch-mean scaled.
	t.Run("exact", func(t *testing.T) {
		expect := make([]float64, batch)
		for c := range k {
			lc := slices.Repeat([]int64{int64(c)}, batch)
			norms, layers, err := tr.FisherNorms(images[:batch*d], lc)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(layers, []string{"fc"}) {
				t.Fatalf("layers %v, want [fc]", layers)
			}
			for i := range batch {
				if want := perLabel[c*n+i]; math.Abs(norms[i]-want) > 1e-4*want {
					t.Errorf("label %d image %d: ‖∇ log p‖² = %.6g, closed form %.6g", c, i, norms[i], want)
				}
				expect[i] += p[i*k+c] * norms[i]
			}
		}
		for i := range batch {
			if math.Abs(expect[i]-exact[i]) > 1e-4*exact[i] {
				t.Errorf("image %d: Σ_y p_y‖∇ log p(y|x)‖² = %.6g, (1-‖p‖²)(‖x‖²+1) = %.6g", i, expect[i], exact[i])
			}
		}
	})

	// Sampled: the estimator averages n·samples independent draws whose
	// exact mean and variance are known, so it is within 4σ of the mean
	// except with probability 6e-5 (the seed is fixed, so the test is
	// deterministic; 4σ makes a seed that fails by chance unlikely while a
	// biased estimator, e.g. off by a factor of the batch size or with the
	// labels drawn from the wrong distribution, misses by many σ).
	t.Run("sampled", func(t *testing.T) {
		res, err := tr.Fisher(batches(images, labels, batch), samples, 7)
		if err != nil {
			t.Fatal(err)
		}
		sigma := math.Sqrt(variance)
		t.Logf("Tr F estimate %.5f, exact %.5f, σ %.5f (z = %.2f)", res.Total, mean, sigma, (res.Total-mean)/sigma)
		if math.Abs(res.Total-mean) > 4*sigma {
			t.Errorf("Tr F estimate %.5f, exact %.5f: off by %.1fσ", res.Total, mean, math.Abs(res.Total-mean)/sigma)
		}
		if res.Images != n || res.Samples != samples || len(res.Layers) != 1 || res.Layers[0] != (harness.LayerTrace{Layer: "fc", Trace: res.Total}) {
			t.Errorf("result %+v", res)
		}
	})
}

// tinyCNN is Conv(bias)+BatchNorm (non-trivial running statistics)+Relu+
// GlobalAveragePool+Gemm on 2×5×5 images, 4 classes.
func tinyCNN(seed uint64) *pb.ModelProto {
	n := newNet(seed, 1, 2, 5, 5)
	b := n.b
	x := b.Op("Conv", []string{n.x, n.param("conv1.weight", 0.4, 3, 2, 3, 3), n.param("conv1.bias", 0.2, 3)}, graph.Ints("pads", 1, 1, 1, 1))
	x = b.Op("BatchNormalization", []string{x, n.paramPos("bn1.weight", 0.5, 3), n.param("bn1.bias", 0.3, 3),
		n.param("bn1.running_mean", 0.2, 3), n.paramPos("bn1.running_var", 0.5, 3)})
	x = b.Op("Relu", []string{x})
	x = b.Op("GlobalAveragePool", []string{x})
	x = b.Op("Flatten", []string{x})
	y := b.Op("Gemm", []string{x, n.param("fc.weight", 0.8, 4, 3), n.param("fc.bias", 0.3, 4)}, graph.Int("transB", 1))
	b.NodeNamed("Identity", []string{y}, []string{"out"})
	b.Output("out", graph.Float, -1, 4)
	return b.Model()
}

// TestFisherTinyCNN compares the trainer's per-example, per-layer squared
// norms of ∇ log p(y|x) for fixed labels with central differences of
// log p computed from the eval graph's logits (BatchNorm on the running
// statistics), for both forms of the Fisher graph.
// fdSquaredGrads is the oracle of the Fisher tests: for each trainable
// parameter of m, per example i, Σ_k (∂ log p(labels[i] | images[i]) / ∂θ_k)²
// by central differences through the eval graph run in ORT.
func fdSquaredGrads(t *testing.T, rt *harness.Runtime, m *pb.ModelProto, vals map[string][]float32, images harness.Tensor, labels []int64) map[string][]float64 {
	t.Helper()
	eg, err := compiler.CompileEval(m)
	if err != nil {
		t.Fatal(err)
	}
	data, err := graph.Marshal(eg.Model)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(data, eg.InputNames(), []string{compiler.Logits})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := len(labels)
	logp := func() []float64 {
		var in []harness.Tensor
		for _, c := range eg.Inputs {
			in = append(in, harness.Tensor{Shape: c.Dims, F32: vals[c.Name]})
		}
		in = append(in, images, harness.Tensor{Shape: []int64{int64(n)}, I64: labels})
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		classes := len(out[0].F32) / n
		lp := make([]float64, n)
		for i := range n {
			z := make([]float64, classes)
			for j := range z {
				z[j] = float64(out[0].F32[i*classes+j])
			}
			lp[i] = -crossEntropy(z, labels[i], 0)
		}
		return lp
	}
	const h = 1e-3
	out := map[string][]float64{}
	for _, c := range eg.Params {
		sq := make([]float64, n)
		orig := vals[c.Name]
		for k := range orig {
			pert := slices.Clone(orig)
			vals[c.Name] = pert
			pert[k] = orig[k] + h
			up := logp()
			pert[k] = orig[k] - h
			down := logp()
			for i := range n {
				g := (up[i] - down[i]) / (2 * h)
				sq[i] += g * g
			}
		}
		vals[c.Name] = orig
		out[c.Name] = sq
	}
	return out
}

func TestFisherTinyCNN(t *testing.T) {
	rt := openRuntime(t)
	const n, per = 4, 50
	m := tinyCNN(9)
	images := randImages(6, n, per)
	labels := []int64{3, 0, 2, 1}

	layers := []string{"conv1", "bn1", "fc"}
	fd := fdSquaredGrads(t, rt, m, modelValues(t, m), harness.Tensor{Shape: []int64{n, 2, 5, 5}, F32: images}, labels)
	want := make([]float64, len(layers)*n)
	for name, sq := range fd {
		l := slices.Index(layers, harness.LayerOf(name))
		if l < 0 {
			t.Fatalf("parameter %s: unexpected layer %q", name, harness.LayerOf(name))
		}
		for i, v := range sq {
			want[l*n+i] += v
		}
	}

	var perExample []float64
	for _, form := range []string{"per-example", "batch-of-one"} {
		t.Run(form, func(t *testing.T) {
			tr := newTrainer(t, rt, m, n)
			if form == "batch-of-one" {
				tr.ForceFisherBatched()
			}
			got, names, err := tr.FisherNorms(images, labels)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names, layers) {
				t.Fatalf("layers %v, want %v", names, layers)
			}
			for l, name := range layers {
				for i := range n {
					g, w := got[l*n+i], want[l*n+i]
					if math.Abs(g-w) > 1e-2*w+1e-5 {
						t.Errorf("%s image %d: ‖∇ log p‖² = %.6g, finite differences %.6g", name, i, g, w)
					}
				}
			}
			if perExample == nil {
				perExample = got
			} else {
				for i := range got {
					if math.Abs(got[i]-perExample[i]) > 1e-4*perExample[i]+1e-7 {
						t.Errorf("value %d: batch-of-one %.7g, per-example %.7g", i, got[i], perExample[i])
					}
				}
			}
		})
	}
}

// TestFisherDeterministic: the estimate is a function of the seed and the
// images, not of the batching; another seed draws other labels.
func TestFisherDeterministic(t *testing.T) {
	rt := openRuntime(t)
	const n, per, samples = 24, 50, 2
	m := tinyCNN(10)
	images := randImages(7, n, per)
	labels := make([]int64, n)
	tr := newTrainer(t, rt, m, 8)
	est := func(batch int, seed uint64) harness.FisherResult {
		t.Helper()
		r, err := tr.Fisher(batches(images, labels, batch), samples, seed)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := est(8, 3), est(8, 3)
	if a.Total != b.Total || !slices.Equal(a.Layers, b.Layers) {
		t.Errorf("same seed, same batches: %+v then %+v", a, b)
	}
	var sum float64
	for _, l := range a.Layers {
		sum += l.Trace
	}
	if math.Abs(sum-a.Total) > 1e-12*a.Total || a.Images != n || a.Samples != samples {
		t.Errorf("layers sum to %v, total %v; %d images, %d samples", sum, a.Total, a.Images, a.Samples)
	}
	if c := est(5, 3); math.Abs(c.Total-a.Total) > 1e-5*a.Total {
		t.Errorf("batches of 5: %.7g, batches of 8: %.7g", c.Total, a.Total)
	}
	if d := est(8, 4); d.Total == a.Total {
		t.Errorf("seeds 3 and 4 give the same estimate %v", a.Total)
	}
	if _, err := tr.Fisher(batches(images, labels, 8), 0, 3); err == nil {
		t.Error("0 samples: no error")
	}
}
