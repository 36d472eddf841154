package graph

import (
	"errors"
	"fmt"
	"strings"

	pb "github.com/critlab/critlab/models/onnxpb"
)

// Opset range critlab accepts for imported models (see docs/design.md).
const (
	MinOpset = 13
	MaxOpset = 22
)

// NodeError is a validation error about one node, with a hint on the fix.
type NodeError struct {
	Index int    // position in graph.node
	Name  string // node name, may be empty
	Op    string
	Err   error
	Hint  string
}

func (e *NodeError) Error() string {
	name := e.Name
	if name == "" {
		name = fmt.Sprintf("#%d", e.Index)
	}
	msg := fmt.Sprintf("validate: node %q (%s): %v", name, e.Op, e.Err)
	if e.Hint != "" {
		msg += "\n---> HINT: " + e.Hint
	}
	return msg
}

func (e *NodeError) Unwrap() error { return e.Err }

// Sentinel causes wrapped by validation errors.
var (
	ErrUndefinedInput = errors.New("input is not defined before use")
	ErrDuplicateName  = errors.New("name defined twice")
	ErrUnsupportedOp  = errors.New("op is not supported")
)

// SupportedOps lists the op types critlab understands in a graph (shape
// inference, folding, statistics). Whether an op can be trained depends on
// the compiler's gradient rules as well (compiler.HasRule).
func SupportedOps() []string { return ShapeOps() }

var supportedOps = func() map[string]bool {
	m := map[string]bool{}
	for _, op := range ShapeOps() {
		m[op] = true
	}
	return m
}()

// Validate checks that m is a graph critlab can work with:
//
//   - it imports the default ONNX domain at an opset in [MinOpset, MaxOpset];
//   - graph inputs, initializers and node outputs have unique names
//     (an initializer may also be declared as an input, as older exporters do);
//   - nodes are in topological order: every input is a graph input, an
//     initializer or the output of an earlier node;
//   - every op is a standard ONNX op critlab supports (SupportedOps);
//   - every graph output is defined;
//   - shapes are consistent (InferShapes succeeds).
//
// Errors name the node and suggest the fix.
func Validate(m *pb.ModelProto) error {
	if m == nil || m.Graph == nil {
		return fmt.Errorf("validate: model has no graph")
	}
	opset := ModelOpset(m)
	if opset == 0 {
		return fmt.Errorf("validate: model imports no default-domain opset\n---> HINT: set opset_import to {domain: \"\", version: %d}", Opset)
	}
	if opset < MinOpset || opset > MaxOpset {
		return fmt.Errorf("validate: opset %d is outside the supported range %d..%d\n---> HINT: re-export with torch.onnx.export(..., opset_version=%d)", opset, MinOpset, MaxOpset, Opset)
	}
	g := m.Graph
	defined := map[string]string{} // name -> what defined it
	isInput := map[string]bool{}
	for _, in := range g.Input {
		name := in.GetName()
		if name == "" {
			return fmt.Errorf("validate: a graph input has no name")
		}
		if _, dup := defined[name]; dup {
			return fmt.Errorf("validate: graph input %q declared twice: %w", name, ErrDuplicateName)
		}
		if in.GetType().GetTensorType() == nil {
			return fmt.Errorf("validate: graph input %q is not a tensor; critlab handles tensor inputs only", name)
		}
		defined[name] = "graph input"
		isInput[name] = true
	}
	inits := map[string]bool{}
	for _, t := range g.Initializer {
		name := t.GetName()
		if name == "" {
			return fmt.Errorf("validate: an initializer has no name")
		}
		if inits[name] {
			return fmt.Errorf("validate: initializer %q defined twice: %w\n---> HINT: rename or drop one of them", name, ErrDuplicateName)
		}
		inits[name] = true
		if !isInput[name] {
			defined[name] = "initializer"
		}
	}
	for i, n := range g.Node {
		ne := func(err error, hint string) error {
			return &NodeError{Index: i, Name: n.GetName(), Op: n.GetOpType(), Err: err, Hint: hint}
		}
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return ne(fmt.Errorf("domain %q: %w", d, ErrUnsupportedOp),
				"critlab runs standard ONNX ops only; export without custom or contrib ops (torch.onnx.export with operator_export_type=ONNX)")
		}
		if !supportedOps[n.GetOpType()] {
			return ne(fmt.Errorf("%w by critlab", ErrUnsupportedOp),
				"replace it with supported ops or extend models/graph; supported: "+strings.Join(SupportedOps(), ", "))
		}
		for _, a := range n.Attribute {
			if a.G != nil || len(a.Graphs) > 0 {
				return ne(fmt.Errorf("attribute %q holds a subgraph: %w", a.GetName(), ErrUnsupportedOp),
					"control flow (If, Loop, Scan) is not supported; export a graph without data-dependent control flow")
			}
		}
		for j, in := range n.Input {
			if in == "" {
				continue // an omitted optional input
			}
			if _, ok := defined[in]; !ok {
				hint := fmt.Sprintf("add an initializer or input named %q, or fix the name", in)
				for _, later := range g.Node[i+1:] {
					if contains(later.Output, in) {
						hint = fmt.Sprintf("it is produced by the later node %q (%s): sort the nodes topologically (onnx.utils or re-export)", later.GetName(), later.GetOpType())
						break
					}
				}
				return ne(fmt.Errorf("input %d %q: %w", j, in, ErrUndefinedInput), hint)
			}
		}
		for _, o := range n.Output {
			if o == "" {
				continue
			}
			if what, dup := defined[o]; dup {
				return ne(fmt.Errorf("output %q is already defined by %s: %w", o, what, ErrDuplicateName),
					"give every value a unique name (SSA form)")
			}
			defined[o] = fmt.Sprintf("node %q", n.GetName())
		}
	}
	for _, o := range g.Output {
		if _, ok := defined[o.GetName()]; !ok {
			return fmt.Errorf("validate: graph output %q is not produced by any node, input or initializer\n---> HINT: fix the output name or add the node that computes it", o.GetName())
		}
	}
	if _, err := InferShapes(g, nil); err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
