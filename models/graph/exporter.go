package graph

import (
	"errors"
	"fmt"
	"strings"

	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Finding is something an exporter did to a model that changes how it
// trains: Refuse findings make the model untrainable as it is (critlab
// train refuses it), the others are notices. Fix is the re-export that
// avoids it, empty when nothing needs doing.
type Finding struct {
	Refuse bool
	What   string
	Fix    string
}

func (f Finding) String() string {
	if f.Fix == "" {
		return f.What
	}
	return f.What + "\n---> FIX: " + f.Fix
}

// ReexportHint is the PyTorch export that keeps everything critlab trains
// (BatchNorm, distinct parameters, a symbolic batch).
const ReexportHint = `python tools/export_torch.py --module FILE.py:build -o model.onnx (or torch.onnx.export(model.eval(), (x,), "model.onnx", dynamo=True, optimize=False, external_data=False, input_names=["images"], dynamic_axes={"images": {0: "N"}}))`

// ExportFindings reports what the exporter of m did that changes training:
// BatchNorm folded into convolutions, parameters tied through Identity
// nodes, dropout absent, inert or drawn by unseeded random nodes, a batch
// size fixed in the graph.
func ExportFindings(m *pb.ModelProto) []Finding {
	g := m.GetGraph()
	var out []Finding
	pytorch := strings.EqualFold(m.GetProducerName(), "pytorch")
	count := map[string]int{}
	for _, n := range g.GetNode() {
		count[n.GetOpType()]++
	}
	if folded := foldedConvs(g); len(folded) > 0 && count["BatchNormalization"] == 0 {
		out = append(out, Finding{Refuse: true,
			What: fmt.Sprintf("BatchNorm was folded into the convolutions by the exporter: no BatchNormalization node, and %d of %d Conv nodes carry a folded BatchNorm (%s); critlab would train the network without BatchNorm", len(folded), count["Conv"], strings.Join(folded[:min(3, len(folded))], ", ")),
			Fix:  ReexportHint})
	}
	if shared := sharedStats(g); len(shared) > 0 {
		out = append(out, Finding{Refuse: true,
			What: fmt.Sprintf("%d BatchNorm running statistics are also read as parameters (%s): the exporter merged initializers of equal value (a fresh BatchNorm's zero bias and running mean, its unit weight and running variance), so training one would change the other", len(shared), strings.Join(shared[:min(3, len(shared))], ", ")),
			Fix:  ReexportHint})
	}
	if tied := TiedInitializers(g); len(tied) > 0 {
		out = append(out, Finding{
			What: fmt.Sprintf("%d initializers are tied to others of equal value through Identity nodes (%s); critlab unties them, so each trains on its own as in PyTorch", len(tied), strings.Join(tied[:min(3, len(tied))], ", ")),
		})
	}
	random := 0
	for _, op := range randomOps {
		random += count[op]
	}
	switch {
	case random > 0:
		out = append(out, Finding{Refuse: true,
			What: fmt.Sprintf("%d random nodes (RandomUniformLike, Bernoulli, ...) draw masks in the graph: the model was exported in train mode with StochasticDepth or dropout, whose masks ONNX Runtime draws unseeded, so the run could not be reproduced or resumed exactly", random),
			Fix:  ReexportHint})
	case count["Dropout"] > 0:
		out = append(out, Finding{What: fmt.Sprintf("%d Dropout nodes: critlab trains with dropout, masks drawn from the run's seed (evaluation without)", count["Dropout"])})
	case pytorch:
		out = append(out, Finding{What: "no Dropout node: an eval-mode export drops nn.Dropout and StochasticDepth, so if the PyTorch model has dropout, critlab trains it without (tools/export_torch.py --dropout keeps nn.Dropout and StochasticDepth)"})
	}
	if in := imageInput(g); in != nil {
		if dims, _ := Dims(in); len(dims) > 0 && dims[0] > 0 {
			c := proto.Clone(g).(*pb.GraphProto)
			if rewritten, err := FreeBatch(c, in.GetName(), dims); err != nil {
				out = append(out, Finding{Refuse: true, What: err.Error(), Fix: ReexportHint})
			} else {
				out = append(out, Finding{What: fmt.Sprintf("the export fixed the batch size at %d; critlab makes it symbolic (%d Reshape nodes now copy the batch dimension)", dims[0], len(rewritten))})
			}
		}
	}
	return out
}

// CheckExport returns the first finding of ExportFindings that refuses m,
// as an error, or nil when m can train.
func CheckExport(m *pb.ModelProto) error {
	for _, f := range ExportFindings(m) {
		if f.Refuse {
			return errors.New(f.String())
		}
	}
	return nil
}

// randomOps draw random numbers in ONNX Runtime.
var randomOps = []string{"RandomUniformLike", "RandomNormalLike", "RandomUniform", "RandomNormal", "Bernoulli", "Multinomial"}

// sharedStats names the BatchNorm running statistics that some node also
// reads as something else (a BatchNorm scale or bias, any other input).
func sharedStats(g *pb.GraphProto) []string {
	stat := map[string]bool{}
	for _, n := range g.GetNode() {
		if n.GetOpType() == "BatchNormalization" && len(n.Input) == 5 {
			stat[n.Input[3]], stat[n.Input[4]] = true, true
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range g.GetNode() {
		for i, in := range n.Input {
			if n.GetOpType() == "BatchNormalization" && i >= 3 {
				continue
			}
			if stat[in] && !seen[in] {
				seen[in] = true
				out = append(out, in)
			}
		}
	}
	return out
}

// foldedConvs names the Conv nodes whose weight or bias is an initializer
// an exporter made when it folded a BatchNorm (TorchScript's constant
// folding names them onnx::Conv_K, the dynamo exporter's optimizer
// NAME.weight_bias), or that the dynamo exporter's rewriter marks as
// FuseBatchNormIntoConv in their metadata: a fresh model in train mode
// keeps its weight names, and its zero biases are dropped.
func foldedConvs(g *pb.GraphProto) []string {
	init := map[string]bool{}
	for _, t := range g.GetInitializer() {
		init[t.GetName()] = true
	}
	var out []string
	for _, n := range g.GetNode() {
		if n.GetOpType() != "Conv" {
			continue
		}
		if fusedBatchNorm(n) {
			out = append(out, n.GetName())
			continue
		}
		for _, in := range n.Input[1:] {
			if init[in] && (strings.HasPrefix(in, "onnx::Conv_") || strings.HasSuffix(in, ".weight_bias")) {
				out = append(out, n.GetName())
				break
			}
		}
	}
	return out
}

// fusedBatchNorm reports whether the dynamo exporter's rewriter fused a
// BatchNorm into n.
func fusedBatchNorm(n *pb.NodeProto) bool {
	for _, p := range n.GetMetadataProps() {
		if p.GetKey() == "pkg.onnxscript.rewriter.rule_name" && strings.Contains(p.GetValue(), "FuseBatchNorm") {
			return true
		}
	}
	return false
}

// TiedInitializers names the outputs of Identity nodes that copy a float
// initializer: TorchScript's exporter stores initializers of equal value
// once and ties the others to it that way (a fresh BatchNorm's bias and
// running mean are both zero).
func TiedInitializers(g *pb.GraphProto) []string {
	floats := map[string]bool{}
	for _, t := range g.GetInitializer() {
		if pb.TensorProto_DataType(t.GetDataType()) == Float && len(t.Dims) > 0 {
			floats[t.GetName()] = true
		}
	}
	var out []string
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Identity" && len(n.Input) == 1 && floats[n.Input[0]] && len(n.Output) == 1 {
			out = append(out, n.Output[0])
		}
	}
	return out
}

// Untie replaces each Identity node of TiedInitializers by its own copy of
// the initializer under the Identity's output name, and returns the names.
func Untie(g *pb.GraphProto) []string {
	tied := TiedInitializers(g)
	if len(tied) == 0 {
		return nil
	}
	byName := map[string]*pb.TensorProto{}
	for _, t := range g.Initializer {
		byName[t.GetName()] = t
	}
	isTied := map[string]bool{}
	for _, name := range tied {
		isTied[name] = true
	}
	var nodes []*pb.NodeProto
	for _, n := range g.Node {
		if n.GetOpType() == "Identity" && len(n.Output) == 1 && isTied[n.Output[0]] {
			t := proto.Clone(byName[n.Input[0]]).(*pb.TensorProto)
			t.Name = proto.String(n.Output[0])
			g.Initializer = append(g.Initializer, t)
			continue
		}
		nodes = append(nodes, n)
	}
	g.Node = nodes
	return tied
}

// imageInput is g's one graph input that is not an initializer.
func imageInput(g *pb.GraphProto) *pb.ValueInfoProto {
	init := map[string]bool{}
	for _, t := range g.GetInitializer() {
		init[t.GetName()] = true
	}
	for _, in := range g.GetInput() {
		if !init[in.GetName()] {
			return in
		}
	}
	return nil
}
