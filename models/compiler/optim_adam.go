package compiler

// Adam and AdamW share this file as they share torch.optim's code: AdamW
// is Adam with the weight decay decoupled from the gradient.

// Defaults of torch.optim.Adam and AdamW, used where Options leave 0.
const (
	defaultBeta1 = 0.9
	defaultBeta2 = 0.999
	defaultEps   = 1e-8
)

func orDefault(v, def float32) float32 {
	if v == 0 {
		return def
	}
	return v
}

// adamUpdate emits the Adam or AdamW step of every trained parameter,
// following torch.optim.Adam's single-tensor implementation:
//
//	t = step + 1
//	AdamW: p ← p·(1 - lr·wd)      Adam: g ← g + wd·p
//	m ← m + (1-β₁)(g - m);  v ← β₂·v + (1-β₂)·g²
//	p ← p - lr/(1-β₁ᵗ) · m / (√v / √(1-β₂ᵗ) + ε)
//
// The step count is the state tensor StepCount, so bias correction resumes
// exactly from a checkpoint. A parameter no gradient reaches keeps its
// value and moments, as PyTorch skips parameters whose grad is None.
func adamUpdate(e *emitter, o Options, params []Tensor, grads map[string]string) {
	b1 := orDefault(o.Beta1, defaultBeta1)
	b2 := orDefault(o.Beta2, defaultBeta2)
	eps := orDefault(o.Eps, defaultEps)
	step := e.add(StepCount, e.f32(1))
	e.b.NodeNamed("Identity", []string{step}, []string{StepCount + ".next"})
	// 1-β₁ᵗ and √(1-β₂ᵗ), shared by every parameter.
	bc1 := e.sub(e.f32(1), e.op("Pow", []string{e.f32(b1), step}))
	bc2 := e.op("Sqrt", []string{e.sub(e.f32(1), e.op("Pow", []string{e.f32(b2), step}))})
	bc2r := map[int]string{} // bc2 shaped [1]×rank (see f32r)
	for _, t := range params {
		m, v := t.Name+".exp_avg", t.Name+".exp_avg_sq"
		g := grads[t.Name]
		if g == "" {
			e.b.NodeNamed("Identity", []string{t.Name}, []string{t.Next})
			e.b.NodeNamed("Identity", []string{m}, []string{m + ".next"})
			e.b.NodeNamed("Identity", []string{v}, []string{v + ".next"})
			continue
		}
		lr, r := e.lrOf(o, t), len(t.Dims)
		p := t.Name
		if wd := o.decayOf(t); wd != 0 {
			if o.Optimizer == AdamW {
				p = e.mul(p, e.sub(e.f32r(1, r), e.scaleR(lr, wd, r)))
			} else {
				g = e.add(g, e.scaleR(p, wd, r))
			}
		}
		e.b.NodeNamed("Add", []string{m, e.scaleR(e.sub(g, m), 1-b1, r)}, []string{m + ".next"})
		e.b.NodeNamed("Add", []string{e.scaleR(v, b2, r), e.scaleR(e.mul(g, g), 1-b2, r)}, []string{v + ".next"})
		if bc2r[r] == "" {
			bc2r[r] = bc2
			if r > 1 {
				bc2r[r] = e.reshape(bc2, e.i64(ones(r)...))
			}
		}
		denom := e.add(e.div(e.op("Sqrt", []string{v + ".next"}), bc2r[r]), e.f32r(eps, r))
		stepSize := e.div(lr, bc1)
		e.b.NodeNamed("Sub", []string{p, e.mul(e.div(m+".next", denom), stepSize)}, []string{t.Next})
	}
}
