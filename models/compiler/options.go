package compiler

import (
	"fmt"
	"math"
	"path"
)

// Options configures the training step CompileTrain builds. The zero value is
// plain SGD: no momentum (and so no state tensors), no weight decay, no label
// smoothing, no clipping, nothing frozen.
type Options struct {
	// Optimizer is the update rule; the zero value is SGD.
	Optimizer Optimizer
	// LabelSmoothing ε in [0, 1): the target is (1-ε)·onehot + ε/K, as in
	// torch.nn.CrossEntropyLoss(label_smoothing=ε). 0 means none.
	LabelSmoothing float32
	// Momentum of SGD in [0, 1); 0 means plain SGD and no momentum buffers.
	// Adam and AdamW take Beta1 instead and need Momentum 0.
	Momentum float32
	// Nesterov selects Nesterov momentum (needs Momentum > 0).
	Nesterov bool
	// Beta1, Beta2 and Eps are Adam's β₁, β₂ in (0, 1) and ε > 0; 0 means
	// PyTorch's defaults 0.9, 0.999 and 1e-8.
	Beta1, Beta2, Eps float32
	// WeightDecay is the optimizer's weight_decay: for SGD and Adam the L2
	// coefficient added to the gradient (g + wd·p), for AdamW the
	// decoupled decay p·(1 - lr·wd); 0 means none.
	WeightDecay float32
	// GradClip, when positive, scales the gradients so that their global
	// L2 norm is at most GradClip (torch.nn.utils.clip_grad_norm_) before
	// the optimizer sees them.
	GradClip float32
	// Groups set the learning-rate factor and weight decay of parameters
	// by name pattern (first match wins); each must match some trained
	// parameter.
	Groups []ParamGroup
	// NoDecayOnBiasAndNorm exempts parameters of rank <= 1 (biases and
	// BatchNorm scales and shifts) from weight decay.
	NoDecayOnBiasAndNorm bool
	// Freeze lists path.Match glob patterns over initializer names
	// ("conv1.*", "fc.bias"); matching parameters get no update and stay
	// initializers of the compiled graph. Empty means train everything.
	Freeze []string
	// WeightGrad selects the Conv weight-gradient formulation; the zero
	// value WeightGradAuto picks per layer (see doc.go). Results
	// agree to float32 rounding whichever is chosen.
	WeightGrad WeightGradMethod
}

// DefaultOptions is the setting critlab's experiments start from: SGD with
// momentum 0.9 and weight decay 5e-4, not on biases and norms.
func DefaultOptions() Options {
	return Options{Momentum: 0.9, WeightDecay: 5e-4, NoDecayOnBiasAndNorm: true}
}

// Validate reports the first invalid field.
func (o Options) Validate() error {
	bad := func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }
	switch {
	case bad(o.LabelSmoothing) || o.LabelSmoothing < 0 || o.LabelSmoothing >= 1:
		return fmt.Errorf("compile options: label smoothing %v outside [0, 1)", o.LabelSmoothing)
	case bad(o.Momentum) || o.Momentum < 0 || o.Momentum >= 1:
		return fmt.Errorf("compile options: momentum %v outside [0, 1)", o.Momentum)
	case o.Nesterov && o.Momentum == 0:
		return fmt.Errorf("compile options: Nesterov needs momentum > 0")
	case bad(o.WeightDecay) || o.WeightDecay < 0:
		return fmt.Errorf("compile options: weight decay %v is negative or not finite", o.WeightDecay)
	case o.Optimizer < SGD || o.Optimizer > AdamW:
		return fmt.Errorf("compile options: unknown optimizer %d", o.Optimizer)
	case o.Optimizer != SGD && (o.Momentum != 0 || o.Nesterov):
		return fmt.Errorf("compile options: momentum and Nesterov are SGD's; %v takes Beta1", o.Optimizer)
	case bad(o.Beta1) || bad(o.Beta2) || o.Beta1 < 0 || o.Beta1 >= 1 || o.Beta2 < 0 || o.Beta2 >= 1:
		return fmt.Errorf("compile options: Adam betas (%v, %v) outside [0, 1)", o.Beta1, o.Beta2)
	case bad(o.Eps) || o.Eps < 0:
		return fmt.Errorf("compile options: Adam eps %v is negative or not finite", o.Eps)
	case bad(o.GradClip) || o.GradClip < 0:
		return fmt.Errorf("compile options: gradient clip %v is negative or not finite", o.GradClip)
	case o.WeightGrad < WeightGradAuto || o.WeightGrad > WeightGradOffsets:
		return fmt.Errorf("compile options: unknown weight-gradient method %d", o.WeightGrad)
	}
	for _, p := range o.Freeze {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("compile options: freeze pattern %q: %w", p, err)
		}
	}
	for _, g := range o.Groups {
		if _, err := path.Match(g.Match, ""); err != nil {
			return fmt.Errorf("compile options: param group pattern %q: %w", g.Match, err)
		}
		if bad(g.LRScale) || g.LRScale <= 0 {
			return fmt.Errorf("compile options: param group %q: lr scale %v must be positive (freeze a group instead of scaling it by 0)", g.Match, g.LRScale)
		}
		if wd := g.WeightDecay; wd != nil && (bad(*wd) || *wd < 0) {
			return fmt.Errorf("compile options: param group %q: weight decay %v is negative or not finite", g.Match, *wd)
		}
	}
	return nil
}

// frozen reports whether name matches a Freeze pattern.
func (o Options) frozen(name string) bool {
	for _, p := range o.Freeze {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
