package graph

import (
	"fmt"
	"slices"

	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// The dynamo exporter writes torch.split and chunk (shufflenet v2's
// channel split) as SplitToSequence and SequenceAt nodes. Shape inference
// follows the sequence chunk by chunk, and Normalize rewrites it into a
// Split, since the compiler has no sequences; both need static split
// sizes, a static size of the split axis and constant SequenceAt indices,
// and refuse with the re-export otherwise.

// sequenceRefusal is an error about a sequence critlab cannot turn into
// tensors, with the re-export that avoids it.
func sequenceRefusal(format string, args ...any) error {
	return fmt.Errorf("%s; critlab reads SplitToSequence only as a Split: static sizes and split axis, read by SequenceAt at constant indices\n---> FIX: %s",
		fmt.Sprintf(format, args...), ReexportHint)
}

// splitToSequenceSizes returns the chunk sizes of SplitToSequence node n
// with input dims x, the split axis and whether the chunks drop it
// (keepdims 0 without split). split holds the split input's values when
// known (known), splitRank its rank: a scalar is one chunk size with a
// smaller last chunk, a vector the sizes.
func splitToSequenceSizes(n *pb.NodeProto, x []int64, split []int64, known bool, splitRank int) (sizes []int64, axis int, squeeze bool, err error) {
	axis, err = normAxis(AttrInt(n, "axis", 0), len(x))
	if err != nil {
		return nil, 0, false, err
	}
	d := x[axis]
	if d < 0 {
		return nil, 0, false, sequenceRefusal("axis %d has no static size", axis)
	}
	hasSplit := len(n.Input) > 1 && n.Input[1] != ""
	switch {
	case !hasSplit:
		for range d {
			sizes = append(sizes, 1)
		}
		return sizes, axis, AttrInt(n, "keepdims", 1) == 0, nil
	case !known:
		return nil, 0, false, sequenceRefusal("split %q is computed at run time", n.Input[1])
	case splitRank == 0:
		if split[0] <= 0 {
			return nil, 0, false, fmt.Errorf("chunk size %d", split[0])
		}
		for at := int64(0); at < d; at += split[0] {
			sizes = append(sizes, min(split[0], d-at))
		}
		return sizes, axis, false, nil
	}
	sum := int64(0)
	for _, s := range split {
		if s < 0 {
			return nil, 0, false, fmt.Errorf("negative size in split %v", split)
		}
		sum += s
	}
	if sum != d {
		return nil, 0, false, fmt.Errorf("split %v sums to %d, axis %d has length %d", split, sum, axis, d)
	}
	return split, axis, false, nil
}

// sequenceIndex returns SequenceAt index idx into k chunks as 0..k-1.
func sequenceIndex(idx []int64, known bool, name string, k int) (int, error) {
	if !known || len(idx) != 1 {
		return 0, sequenceRefusal("index %q is computed at run time", name)
	}
	j := idx[0]
	if j < 0 {
		j += int64(k)
	}
	if j < 0 || j >= int64(k) {
		return 0, fmt.Errorf("index %d out of range for %d chunks", idx[0], k)
	}
	return int(j), nil
}

// splitSequences rewrites every SplitToSequence node of g into a Split
// whose outputs are named as the SequenceAt nodes reading them: the first
// reader of a chunk is dropped, later readers become Identity (with
// keepdims 0 and no split, every reader a Squeeze). types and consts are
// g's InferValues.
func splitSequences(g *pb.GraphProto, types map[string]ValueType, consts map[string][]int64) error {
	b := Wrap(g)
	drop := map[*pb.NodeProto]bool{}
	readers := map[string][]*pb.NodeProto{}
	for _, n := range g.Node {
		for _, in := range n.Input {
			readers[in] = append(readers[in], n)
		}
	}
	outputs := map[string]bool{}
	for _, o := range g.Output {
		outputs[o.GetName()] = true
	}
	for _, n := range g.Node {
		if n.GetOpType() != "SplitToSequence" {
			continue
		}
		bad := func(err error) error { return fmt.Errorf("node %q (SplitToSequence): %w", n.GetName(), err) }
		var split []int64
		known, rank := false, 0
		if len(n.Input) > 1 && n.Input[1] != "" {
			split, known = consts[n.Input[1]]
			rank = len(types[n.Input[1]].Dims)
		}
		sizes, axis, squeeze, err := splitToSequenceSizes(n, types[n.Input[0]].Dims, split, known, rank)
		if err != nil {
			return bad(err)
		}
		seq := n.Output[0]
		if outputs[seq] {
			return bad(sequenceRefusal("its sequence %q is a graph output", seq))
		}
		outs := make([]string, len(sizes))
		for _, r := range readers[seq] {
			if r.GetOpType() != "SequenceAt" || r.Input[0] != seq || slices.Contains(r.Input[1:], seq) {
				return bad(sequenceRefusal("node %q (%s) reads its sequence", r.GetName(), r.GetOpType()))
			}
			idx, ok := consts[r.Input[1]]
			j, err := sequenceIndex(idx, ok, r.Input[1], len(sizes))
			if err != nil {
				return bad(fmt.Errorf("node %q (SequenceAt): %w", r.GetName(), err))
			}
			switch {
			case squeeze:
				if outs[j] == "" {
					outs[j] = b.Fresh(fmt.Sprintf("%s_%d", seq, j))
				}
				r.OpType, r.Input, r.Attribute = proto.String("Squeeze"), []string{outs[j], b.ConstInt64s(int64(axis))}, nil
			case outs[j] == "":
				outs[j] = r.Output[0]
				drop[r] = true
			default:
				r.OpType, r.Input, r.Attribute = proto.String("Identity"), []string{outs[j]}, nil
			}
		}
		for j := range outs {
			if outs[j] == "" {
				outs[j] = b.Fresh(fmt.Sprintf("%s_%d", seq, j))
			}
		}
		n.OpType = proto.String("Split")
		n.Input = []string{n.Input[0], b.ConstInt64s(sizes...)}
		n.Output = outs
		n.Attribute = []*pb.AttributeProto{Int("axis", int64(axis))}
	}
	g.Node = slices.DeleteFunc(g.Node, func(r *pb.NodeProto) bool { return drop[r] })
	return nil
}
