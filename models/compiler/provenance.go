package compiler

import (
	"fmt"

	pb "github.com/critlab/critlab/models/onnxpb"
)

// Provenance labels say which part of the compiler emitted each node of a
// train-step graph, so that a profile can attribute time to it (critlab
// bench --profile). They are kept beside the graph (TrainGraph.Provenance),
// not in it, so that labelling changes no graph bytes. The labels:
//
//	fwd:OP        the forward node OP, as re-emitted or replaced by its rule's hook
//	loss          the loss, correct count and seed gradient
//	grad:OP/dIN   OP's gradient rule, for input IN only (dX, dW, dB, ...)
//	grad:OP       OP's gradient rule, nodes shared by several inputs' gradients
//	grad:sum      sums of gradient contributions (a value read several times)
//	grad:out      CompileGrad's gradient outputs
//	opt:NAME      the optimizer (sgd, adam, adamw), gradient clipping included
//	stats         running statistics passed through unchanged
const (
	ProvLoss    = "loss"
	ProvGradSum = "grad:sum"
	ProvGradOut = "grad:out"
	ProvStats   = "stats"
)

// slotNames are the ONNX input names of the ops whose gradient rules are
// worth telling apart per input; other ops' inputs are numbered.
var slotNames = map[string][]string{
	"Conv":               {"X", "W", "B"},
	"ConvTranspose":      {"X", "W", "B"},
	"Gemm":               {"A", "B", "C"},
	"MatMul":             {"A", "B"},
	"BatchNormalization": {"X", "scale", "B"},
}

func slotName(op string, i int) string {
	if s := slotNames[op]; i < len(s) {
		return s[i]
	}
	return fmt.Sprint(i)
}

// label gives every node appended since index from that has no label yet
// the label l.
func (e *emitter) label(from int, l string) {
	for _, n := range e.b.G.Node[from:] {
		if _, ok := e.prov[n]; !ok {
			e.prov[n] = l
		}
	}
}

// labelGrad labels the nodes appended since index from by op's gradient
// rule: a node that only the gradient of input i depends on gets
// grad:op/d<i's name>, a node several inputs' gradients share grad:op.
func (e *emitter) labelGrad(from int, op string, dx []string) {
	nodes := e.b.G.Node[from:]
	producer := map[string]int{}
	for i, n := range nodes {
		for _, o := range n.Output {
			producer[o] = i
		}
	}
	// users[i] is the set of inputs whose gradient node i feeds: -1 none
	// yet, -2 several.
	users := make([]int, len(nodes))
	for i := range users {
		users[i] = -1
	}
	for j, g := range dx {
		if g == "" {
			continue
		}
		stack := []string{g}
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			i, ok := producer[v]
			if !ok || users[i] == j || users[i] == -2 {
				continue
			}
			if users[i] == -1 {
				users[i] = j
			} else {
				users[i] = -2
			}
			stack = append(stack, nodes[i].Input...)
		}
	}
	for i, n := range nodes {
		if _, ok := e.prov[n]; ok {
			continue
		}
		if users[i] >= 0 {
			e.prov[n] = "grad:" + op + "/d" + slotName(op, users[i])
		} else {
			e.prov[n] = "grad:" + op
		}
	}
}

// provenanceOf lists the labels of g's nodes in order.
func (e *emitter) provenanceOf(g *pb.GraphProto) []string {
	out := make([]string, len(g.Node))
	for i, n := range g.Node {
		out[i] = e.prov[n]
	}
	return out
}
