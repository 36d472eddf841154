package compiler

import (
	"fmt"
	"path"
	"slices"

	"github.com/critlab/critlab/models/graph"
)

// Optimizer selects the update rule of a train-step graph. Each rule lives
// in its own file (optim_sgd.go, optim_adam.go) and follows PyTorch's
// torch.optim implementation step for step.
type Optimizer int

const (
	// SGD is torch.optim.SGD (momentum, dampening 0, Nesterov, L2 decay).
	SGD Optimizer = iota
	// Adam is torch.optim.Adam: bias-corrected moments, weight decay
	// added to the gradient (L2).
	Adam
	// AdamW is torch.optim.AdamW: Adam with decoupled weight decay
	// (p ← p·(1 - lr·wd) before the Adam step).
	AdamW
)

var optimizerNames = []string{"sgd", "adam", "adamw"}

func (o Optimizer) String() string {
	if o >= 0 && int(o) < len(optimizerNames) {
		return optimizerNames[o]
	}
	return fmt.Sprintf("Optimizer(%d)", int(o))
}

// ParseOptimizer maps "sgd", "adam", "adamw" (or "" for SGD) to an Optimizer.
func ParseOptimizer(s string) (Optimizer, error) {
	if s == "" {
		return SGD, nil
	}
	if i := slices.Index(optimizerNames, s); i >= 0 {
		return Optimizer(i), nil
	}
	return SGD, fmt.Errorf("optimizer %q: want one of sgd, adam, adamw", s)
}

// ParamGroup gives the parameters whose names match a pattern their own
// learning-rate factor and weight decay, like a torch.optim param group
// (backbone and head at different rates when fine-tuning). The first group
// that matches a parameter applies; parameters matching none use lr and
// Options.WeightDecay.
type ParamGroup struct {
	// Match is a path.Match glob over parameter names ("fc.*").
	Match string
	// LRScale multiplies the step's lr for the group; it must be positive
	// (Freeze is the way not to train).
	LRScale float32
	// WeightDecay replaces Options.WeightDecay for the group when set;
	// NoDecayOnBiasAndNorm still exempts the group's biases and norms.
	WeightDecay *float32
}

// group returns the first group matching name, or nil.
func (o Options) group(name string) *ParamGroup {
	for i := range o.Groups {
		if ok, _ := path.Match(o.Groups[i].Match, name); ok {
			return &o.Groups[i]
		}
	}
	return nil
}

// decayOf is the weight decay applied to parameter t.
func (o Options) decayOf(t Tensor) float32 {
	if o.NoDecayOnBiasAndNorm && len(t.Dims) <= 1 {
		return 0
	}
	if g := o.group(t.Name); g != nil && g.WeightDecay != nil {
		return *g.WeightDecay
	}
	return o.WeightDecay
}

// lrOf returns the learning rate of parameter t: the lr input, scaled by
// its group's LRScale. Graphs without groups read lr directly.
func (e *emitter) lrOf(o Options, t Tensor) string {
	lr := LR
	if r := len(t.Dims); r > 1 {
		// The learning rate shaped like t (see f32r), once per rank.
		key := fmt.Sprintf("lr/%d", r)
		if lr = e.ranked[key]; lr == "" {
			lr = e.reshape(LR, e.i64(ones(r)...))
			e.ranked[key] = lr
		}
	}
	if g := o.group(t.Name); g != nil && g.LRScale != 1 {
		return e.scaleR(lr, g.LRScale, len(t.Dims))
	}
	return lr
}

// Names of optimizer state: per-parameter suffixes and the shared step count.
const (
	// StepCount is Adam's step counter: a float32 [1] state tensor holding
	// the number of steps taken, so that bias correction resumes exactly.
	StepCount = "optimizer.step"
)

// stateSuffixes are the per-parameter state tensors of an optimizer.
func (o Options) stateSuffixes() []string {
	switch {
	case o.Optimizer == Adam || o.Optimizer == AdamW:
		return []string{".exp_avg", ".exp_avg_sq"}
	case o.Momentum != 0:
		return []string{".mom"}
	}
	return nil
}

// allStateSuffixes are every optimizer's per-parameter names, kept free in
// any graph so that checkpoints of one model name the same tensors.
var allStateSuffixes = []string{".next", ".grad", ".mom", ".mom.next", ".exp_avg", ".exp_avg.next", ".exp_avg_sq", ".exp_avg_sq.next"}

// optimizerStates lists the state tensors of the trained params: for each
// parameter its suffixes in order, then the step count where one is kept.
func optimizerStates(o Options, params []Tensor) []Tensor {
	var out []Tensor
	for _, suffix := range o.stateSuffixes() {
		for _, t := range params {
			out = append(out, Tensor{Name: t.Name + suffix, Next: t.Name + suffix + ".next", Dims: t.Dims})
		}
	}
	if o.Optimizer == Adam || o.Optimizer == AdamW {
		out = append(out, Tensor{Name: StepCount, Next: StepCount + ".next", Dims: []int64{1}})
	}
	return out
}

// optimize emits the update of every trained parameter from its gradient
// (grads[name], "" where none reaches it): clipping by global norm, then
// the selected optimizer.
func optimize(e *emitter, o Options, params []Tensor, grads map[string]string) {
	if o.GradClip > 0 {
		grads = clipGlobalNorm(e, o.GradClip, params, grads)
	}
	switch o.Optimizer {
	case Adam, AdamW:
		adamUpdate(e, o, params, grads)
	default:
		for _, t := range params {
			mom := ""
			if o.Momentum != 0 {
				mom = t.Name + ".mom"
			}
			sgdUpdate(e, o, t, mom, grads[t.Name])
		}
	}
}

// clipGlobalNorm scales every gradient by min(1, max/(‖g‖ + 1e-6)), where
// ‖g‖ is the L2 norm of all gradients together, as
// torch.nn.utils.clip_grad_norm_ does (parameters without a gradient do
// not count).
func clipGlobalNorm(e *emitter, maxNorm float32, params []Tensor, grads map[string]string) map[string]string {
	var sq []string
	for _, t := range params {
		if g := grads[t.Name]; g != "" {
			n := e.op("ReduceL2", []string{g}, graph.Int("keepdims", 0))
			sq = append(sq, e.mul(n, n))
		}
	}
	if len(sq) == 0 {
		return grads
	}
	norm := e.op("Sqrt", []string{e.sumAll(sq)})
	coef := e.op("Min", []string{e.div(e.f32(maxNorm), e.add(norm, e.f32(1e-6))), e.f32(1)})
	out := make(map[string]string, len(grads))
	for _, t := range params {
		if g := grads[t.Name]; g != "" {
			out[t.Name] = e.mul(g, coef)
		}
	}
	return out
}
