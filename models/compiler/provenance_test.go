package compiler

import (
	"regexp"
	"testing"
)

// TestProvenance: every node of a compiled train-step graph carries a
// label of the documented grammar, and the nodes that make each
// parameter's gradient and update are labelled by the rule and input, and
// the optimizer, that emitted them.
func TestProvenance(t *testing.T) {
	valid := regexp.MustCompile(`^(fwd:[A-Za-z]+|loss|grad:[A-Za-z]+(/d[A-Za-z0-9]+)?|grad:sum|grad:out|opt:(sgd|adam|adamw)|stats)$`)
	// The gradient of each parameter of tinyNet comes from this rule.
	gradOf := map[string]string{
		"c1.w": "grad:Conv/dW", "c1.b": "grad:Conv/dB", "c2.w": "grad:Conv/dW",
		"bn.w": "grad:BatchNormalization/dscale", "bn.b": "grad:BatchNormalization/dB",
		"fc.w": "grad:Gemm/dB", "fc.b": "grad:Gemm/dC",
	}
	adam := DefaultOptions()
	adam.Optimizer, adam.Momentum, adam.GradClip = Adam, 0, 1
	for _, tc := range []struct {
		name    string
		opts    Options
		grad    bool
		updates string // label of the node writing p.next / p.grad
	}{
		{"sgd", DefaultOptions(), false, "opt:sgd"},
		{"adam+clip", adam, false, "opt:adam"},
		{"grad", DefaultOptions(), true, "grad:out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			compile := CompileTrain
			if tc.grad {
				compile = CompileGrad
			}
			tg, err := compile(tinyNet(t), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			nodes := tg.Model.Graph.Node
			if len(tg.Provenance) != len(nodes) {
				t.Fatalf("%d labels for %d nodes", len(tg.Provenance), len(nodes))
			}
			labelOf := map[string]string{} // output value -> label of its producer
			seen := map[string]bool{}
			for i, n := range nodes {
				l := tg.Provenance[i]
				if !valid.MatchString(l) {
					t.Errorf("node %d %q (%s): label %q", i, n.GetName(), n.GetOpType(), l)
				}
				seen[l] = true
				for _, o := range n.Output {
					labelOf[o] = l
				}
			}
			for _, l := range []string{"fwd:Conv", "fwd:BatchNormalization", "fwd:Gemm", "loss", "grad:Conv/dX", "grad:Relu/d0"} {
				if !seen[l] {
					t.Errorf("no node labelled %s (labels: %v)", l, seen)
				}
			}
			for _, p := range tg.Params {
				if got := labelOf[p.Next]; got != tc.updates {
					t.Errorf("%s is written by %q, want %q", p.Next, got, tc.updates)
				}
			}
			if !tc.grad {
				return
			}
			for _, n := range nodes {
				if len(n.Output) == 1 && n.GetOpType() == "Identity" && labelOf[n.Output[0]] == ProvGradOut {
					p := n.Output[0][:len(n.Output[0])-len(".grad")]
					if want, got := gradOf[p], labelOf[n.Input[0]]; got != want {
						t.Errorf("gradient of %s is made by %q, want %q", p, got, want)
					}
				}
			}
		})
	}
}
