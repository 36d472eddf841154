package compiler

import (
	"fmt"
	"math"
	"path"
)

// Options configures the training step CompileTrain builds. The zero value is
// plain SGD: no momentum (and so no state tensors), no weight decay, no label
// smoothing, nothing frozen.
type Options struct {
	// LabelSmoothing ε in [0, 1): the target is (1-ε)·onehot + ε/K, as in
	// torch.nn.CrossEntropyLoss(label_smoothing=ε). 0 means none.
	LabelSmoothing float32
	// Momentum of SGD in [0, 1); 0 means plain SGD and no momentum buffers.
	Momentum float32
	// Nesterov selects Nesterov momentum (needs Momentum > 0).
	Nesterov bool
	// WeightDecay is the L2 coefficient added to the gradient (g + wd·p,
	// PyTorch's SGD weight_decay); 0 means none.
	WeightDecay float32
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
	case o.WeightGrad < WeightGradAuto || o.WeightGrad > WeightGradOffsets:
		return fmt.Errorf("compile options: unknown weight-gradient method %d", o.WeightGrad)
	}
	for _, p := range o.Freeze {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("compile options: freeze pattern %q: %w", p, err)
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
