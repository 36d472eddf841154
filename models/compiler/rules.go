package compiler

import (
	"slices"
	"sort"

	"github.com/critlab/critlab/models/graph"
)

// rules maps op types to their gradient rules; see rules_*.go.
var rules = map[string]*rule{}

// none marks ops that never carry a gradient: their outputs are integers,
// booleans or piecewise constant.
var none = []int{}

func init() {
	for _, op := range []string{
		"Constant", "Shape", "Size", "ArgMax", "ArgMin", "Equal", "Greater", "Less",
		"GreaterOrEqual", "LessOrEqual", "Not", "And", "Or", "Xor", "ConstantOfShape",
		"Range", "NonZero", "OneHot", "Floor", "Ceil", "Round", "Sign", "IsNaN", "IsInf",
		"RandomUniformLike", "RandomNormalLike", "RandomUniform", "RandomNormal", "EyeLike",
	} {
		rules[op] = &rule{diff: none}
	}
}

// HasRule reports whether the compiler can differentiate through opType (or
// knows it carries no gradient).
func HasRule(opType string) bool {
	if slices.Contains(graph.RewrittenOps, opType) {
		return true // written out in ops with rules (graph.Normalize)
	}
	r := rules[opType]
	return r != nil && (r.bwd != nil || (r.diff != nil && len(r.diff) == 0))
}

// Supported lists the op types HasRule accepts, sorted.
func Supported() []string {
	ops := slices.Clone(graph.RewrittenOps)
	for op := range rules {
		if HasRule(op) {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	return ops
}

// Differentiable lists the Supported op types with a gradient rule, sorted;
// the others carry no gradient. Each has a finite-difference check in
// harness/gradcheck_test.go.
func Differentiable() []string {
	var ops []string
	for op, r := range rules {
		if r.bwd != nil {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	return ops
}
