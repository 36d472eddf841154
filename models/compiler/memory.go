package compiler

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// MemoryEstimate is a static estimate of a train step's activation memory:
// the graph's nodes run one at a time in the graph's order, each node's
// outputs are allocated when it runs and freed after their last reader.
// ONNX Runtime reorders nodes, fuses them, reuses freed buffers and runs
// some kernels in place, and its arena rounds allocations up, so this is
// an estimate of what the graph keeps alive, not of the process's RSS.
type MemoryEstimate struct {
	Batch int64
	// InputBytes are the graph's inputs and initializers (parameters,
	// optimizer states, running statistics, the batch), alive all step.
	InputBytes int64
	// OutputBytes are the graph's outputs (next parameters, states and
	// statistics, loss): the Trainer binds them to buffers of its own, so
	// they are not counted in PeakBytes either.
	OutputBytes int64
	// PeakBytes is the most node-output bytes alive at once, reached
	// while node PeakNode runs (its inputs and outputs both alive).
	PeakBytes int64
	PeakNode  int
	PeakLabel string // PeakNode's label and op type: "opt:sgd Add"
	// AtPeak splits PeakBytes by the provenance label of the node that
	// produced each value (provenance.go), the largest first.
	AtPeak []MemoryShare
	// Unknown counts node outputs whose size is not static; they count 0.
	Unknown int
}

// MemoryShare is the live bytes at the peak produced by one label's nodes.
type MemoryShare struct {
	Label  string
	Bytes  int64
	Values int
}

// aliasOps return their input's buffer reshaped: ORT runs them in place,
// so their output adds no bytes and keeps the input's buffer alive.
var aliasOps = map[string]bool{"Reshape": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true, "Identity": true}

// EstimateMemory walks tg's graph at the given batch size (see
// MemoryEstimate).
func EstimateMemory(tg *TrainGraph, batch int64) (*MemoryEstimate, error) {
	return estimateMemory(tg.Model.GetGraph(), tg.Provenance, batch)
}

func estimateMemory(g *pb.GraphProto, labels []string, batch int64) (*MemoryEstimate, error) {
	if batch < 1 {
		return nil, fmt.Errorf("memory estimate: batch %d: want at least 1", batch)
	}
	if len(labels) != len(g.Node) {
		return nil, fmt.Errorf("memory estimate: %d provenance labels for %d nodes", len(labels), len(g.Node))
	}
	inputs := map[string][]int64{}
	for _, in := range g.Input {
		dims, _ := graph.Dims(in)
		for i, d := range dims {
			if d < 0 {
				dims[i] = batch
			}
		}
		inputs[in.GetName()] = dims
	}
	types, err := graph.InferShapes(g, inputs)
	if err != nil {
		return nil, fmt.Errorf("memory estimate: %w", err)
	}
	est := &MemoryEstimate{Batch: batch, PeakNode: -1}
	size := func(name string) int64 {
		vt, ok := types[name]
		if !ok || !vt.Static() {
			est.Unknown++
			return 0
		}
		return graph.NumElements(vt.Dims) * elemBytes(vt.Elem)
	}
	external := map[string]bool{}
	for _, in := range g.Input {
		external[in.GetName()] = true
		est.InputBytes += size(in.GetName())
	}
	for _, t := range g.Initializer {
		if !external[t.GetName()] {
			external[t.GetName()] = true
			est.InputBytes += size(t.GetName())
		}
	}
	// A buffer is a node output that is not an alias; root maps every
	// value to its buffer. A buffer dies after the last node reading it or
	// one of its aliases.
	root := map[string]string{}
	last := map[string]int{}
	for i, n := range g.Node {
		for _, in := range n.Input {
			if r, ok := root[in]; ok {
				last[r] = i
			}
		}
		for k, out := range n.Output {
			root[out] = out
			if k == 0 && aliasOps[n.GetOpType()] {
				if r, ok := root[n.Input[0]]; ok {
					root[out] = r
				}
			}
			if _, ok := last[root[out]]; !ok {
				last[root[out]] = i
			}
		}
	}
	bound := map[string]bool{}
	for _, out := range g.Output {
		bound[out.GetName()] = true
		est.OutputBytes += size(out.GetName())
	}
	live := map[string]int64{}   // buffer -> bytes
	producer := map[string]int{} // buffer -> node index
	var liveBytes int64
	dying := make([][]string, len(g.Node))
	for i, n := range g.Node {
		for _, out := range n.Output {
			if out == "" || root[out] != out || bound[out] {
				continue
			}
			b := size(out)
			live[out], producer[out] = b, i
			liveBytes += b
			dying[last[out]] = append(dying[last[out]], out)
		}
		if liveBytes > est.PeakBytes {
			est.PeakBytes, est.PeakNode = liveBytes, i
			est.PeakLabel = labels[i] + " " + n.GetOpType()
			est.AtPeak = shares(live, producer, labels)
		}
		for _, b := range dying[i] {
			liveBytes -= live[b]
			delete(live, b)
		}
	}
	return est, nil
}

// shares groups the live buffers by their producer's label.
func shares(live map[string]int64, producer map[string]int, labels []string) []MemoryShare {
	by := map[string]*MemoryShare{}
	for b, bytes := range live {
		l := labels[producer[b]]
		if by[l] == nil {
			by[l] = &MemoryShare{Label: l}
		}
		by[l].Bytes += bytes
		by[l].Values++
	}
	var out []MemoryShare
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b MemoryShare) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Label, b.Label))
	})
	return out
}

// elemBytes is the size of one element of type t (1 for bool and 8-bit
// types).
func elemBytes(t pb.TensorProto_DataType) int64 {
	switch t {
	case pb.TensorProto_DOUBLE, pb.TensorProto_INT64, pb.TensorProto_UINT64:
		return 8
	case pb.TensorProto_FLOAT, pb.TensorProto_INT32, pb.TensorProto_UINT32:
		return 4
	case pb.TensorProto_FLOAT16, pb.TensorProto_BFLOAT16, pb.TensorProto_INT16, pb.TensorProto_UINT16:
		return 2
	default:
		return 1
	}
}
