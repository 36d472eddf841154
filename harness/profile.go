package harness

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// ProfileEntry is the time one kind of node takes per train step: the
// compiler's provenance label of the nodes (models/compiler provenance.go)
// and the op type ORT ran them as.
type ProfileEntry struct {
	Label     string  `json:"label"`
	Op        string  `json:"op"`
	Nodes     int     `json:"nodes"`
	MsPerStep float64 `json:"ms_per_step"`
	// Share is MsPerStep over the mean step time.
	Share float64 `json:"share_of_step"`
}

// Profile is ONNX Runtime's profile of train steps, attributed to the
// compiler's provenance labels.
type Profile struct {
	Steps  int     `json:"steps"`
	StepMs float64 `json:"step_ms"`
	// KernelMs is the nodes' kernel time per step (ORT's sequential
	// executor runs one node at a time); the rest of StepMs is ORT's own
	// work between kernels.
	KernelMs float64 `json:"kernel_ms"`
	// Entries are by label and op type, the largest first. Nodes ORT made
	// itself (layout reorders, fusions) that could not be traced to a
	// compiled node have the label Unattributed.
	Entries []ProfileEntry `json:"entries"`
	// UnattributedMs is the kernel time per step of those nodes.
	UnattributedMs float64 `json:"unattributed_ms"`
	// Categories sums the entries by the label's part before ':' (fwd,
	// grad, opt, loss, stats, ORT).
	Categories map[string]float64 `json:"ms_per_step_by_category"`
	// Labels sums the entries by label (all op types of a rule).
	Labels map[string]float64 `json:"ms_per_step_by_label"`
	// Memory is the compiler's static estimate of the step's live
	// activation bytes (compiler.EstimateMemory), by label at its peak.
	Memory *compiler.MemoryEstimate `json:"memory_estimate"`
}

// Unattributed labels nodes of ORT's optimized graph that no compiled node
// accounts for.
const Unattributed = "ORT:unattributed"

// traceEvent is one event of ORT's profile (Chrome trace format).
type traceEvent struct {
	Cat  string  `json:"cat"`
	Name string  `json:"name"`
	Ts   float64 `json:"ts"`
	Dur  float64 `json:"dur"`
	Args struct {
		OpName string `json:"op_name"`
	} `json:"args"`
}

// NodeLabels resolves ORT's node names to provenance labels.
type NodeLabels struct {
	// byName maps a node name of the compiled graph to its label.
	byName map[string]string
	// optimized maps node names of ORT's optimized graph that are not in
	// the compiled one to a label, found through the values they write.
	optimized map[string]string
}

// NewNodeLabels pairs the compiled graph's nodes with their labels; the
// optimized graph (ORT's, may be nil) lets fused and inserted nodes be
// traced back through the values they read and write.
func NewNodeLabels(compiled *pb.GraphProto, labels []string, optimized *pb.GraphProto) (*NodeLabels, error) {
	if len(labels) != len(compiled.GetNode()) {
		return nil, fmt.Errorf("profile: %d provenance labels for %d nodes", len(labels), len(compiled.GetNode()))
	}
	nl := &NodeLabels{byName: map[string]string{}, optimized: map[string]string{}}
	byValue := map[string]string{} // value -> label of the compiled node writing it
	for i, n := range compiled.GetNode() {
		nl.byName[n.GetName()] = labels[i]
		for _, o := range n.Output {
			byValue[o] = labels[i]
		}
	}
	// A node ORT made writes either a compiled value (a fusion keeps the
	// last fused node's output) or a value of its own that a later node
	// reads (a layout reorder feeding a Conv): follow those readers.
	readers := map[string][]*pb.NodeProto{}
	for _, n := range optimized.GetNode() {
		for _, in := range n.Input {
			readers[in] = append(readers[in], n)
		}
	}
	var resolve func(n *pb.NodeProto, depth int) string
	resolve = func(n *pb.NodeProto, depth int) string {
		if l, ok := nl.byName[n.GetName()]; ok {
			return l
		}
		for _, o := range n.Output {
			if l, ok := byValue[o]; ok {
				return l
			}
		}
		if depth > 0 {
			for _, o := range n.Output {
				for _, r := range readers[o] {
					if l := resolve(r, depth-1); l != "" {
						return l
					}
				}
			}
		}
		return ""
	}
	for _, n := range optimized.GetNode() {
		if _, ok := nl.byName[n.GetName()]; ok {
			continue
		}
		if l := resolve(n, 4); l != "" {
			nl.optimized[n.GetName()] = l
		}
	}
	return nl, nil
}

func (nl *NodeLabels) label(node string) string {
	if l, ok := nl.byName[node]; ok {
		return l
	}
	if l, ok := nl.optimized[node]; ok {
		return l
	}
	return Unattributed
}

// ParseProfile reads ORT's profile JSON and attributes the kernel time of
// every run after the first skip (warm-up) to labels.
func ParseProfile(r io.Reader, labels *NodeLabels, skip int) (*Profile, error) {
	var events []traceEvent
	if err := json.NewDecoder(r).Decode(&events); err != nil {
		return nil, fmt.Errorf("profile: read ORT trace: %w", err)
	}
	var runs []traceEvent
	for _, e := range events {
		if e.Cat == "Session" && e.Name == "model_run" {
			runs = append(runs, e)
		}
	}
	slices.SortFunc(runs, func(a, b traceEvent) int { return cmp.Compare(a.Ts, b.Ts) })
	if len(runs) <= skip {
		return nil, fmt.Errorf("profile: the trace has %d runs, want more than the %d warm-up runs", len(runs), skip)
	}
	runs = runs[skip:]
	p := &Profile{Steps: len(runs), Categories: map[string]float64{}, Labels: map[string]float64{}}
	start := runs[0].Ts
	for _, r := range runs {
		p.StepMs += r.Dur / 1e3
	}
	p.StepMs /= float64(p.Steps)
	type key struct{ label, op string }
	total := map[key]float64{}
	nodes := map[key]map[string]bool{}
	for _, e := range events {
		node, ok := strings.CutSuffix(e.Name, "_kernel_time")
		if e.Cat != "Node" || !ok || e.Ts < start {
			continue
		}
		k := key{labels.label(node), e.Args.OpName}
		total[k] += e.Dur
		if nodes[k] == nil {
			nodes[k] = map[string]bool{}
		}
		nodes[k][node] = true
	}
	for k, us := range total {
		ms := us / 1e3 / float64(p.Steps)
		p.Entries = append(p.Entries, ProfileEntry{Label: k.label, Op: k.op, Nodes: len(nodes[k]), MsPerStep: ms, Share: ms / p.StepMs})
		p.KernelMs += ms
		cat, _, _ := strings.Cut(k.label, ":")
		p.Categories[cat] += ms
		p.Labels[k.label] += ms
		if k.label == Unattributed {
			p.UnattributedMs += ms
		}
	}
	slices.SortFunc(p.Entries, func(a, b ProfileEntry) int {
		return cmp.Or(cmp.Compare(b.MsPerStep, a.MsPerStep), cmp.Compare(a.Label, b.Label), cmp.Compare(a.Op, b.Op))
	})
	return p, nil
}

// ProfileTrain runs warm+steps train steps of forward on random data with
// ORT's profiler on the train-step session and attributes the last steps'
// time to the compiler's provenance labels. The trace and ORT's optimized
// graph are written under dir.
func ProfileTrain(rt *Runtime, forward *pb.ModelProto, opts TrainerOptions, warm, steps int, dir string) (*Profile, error) {
	if steps < 1 || warm < 0 {
		return nil, fmt.Errorf("profile: %d steps after %d warm-up steps: want at least one step", steps, warm)
	}
	opts.profileDir = dir
	tr, err := NewTrainer(rt, forward, opts)
	if err != nil {
		return nil, err
	}
	images, labels := randomBatch(forward, opts.BatchSize, tr.inDims)
	for i := 0; i < warm+steps; i++ {
		if _, _, err := tr.Step(images, labels, 0.01); err != nil {
			tr.Close()
			return nil, err
		}
	}
	compiled, prov := tr.train.Model.Graph, tr.train.Provenance
	mem, err := compiler.EstimateMemory(tr.train, int64(opts.BatchSize))
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("profile: %w", err)
	}
	// ORT writes the trace when the session ends.
	tr.Close()
	opt, err := graph.Load(filepath.Join(dir, optimizedName))
	if err != nil {
		return nil, fmt.Errorf("profile: ORT's optimized graph: %w", err)
	}
	nl, err := NewNodeLabels(compiled, prov, opt.GetGraph())
	if err != nil {
		return nil, err
	}
	traces, err := filepath.Glob(filepath.Join(dir, profilePrefix+"*.json"))
	if err != nil || len(traces) != 1 {
		return nil, fmt.Errorf("profile: want one ORT trace in %s, found %v (%v)", dir, traces, err)
	}
	f, err := os.Open(traces[0])
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer f.Close()
	p, err := ParseProfile(f, nl, warm)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", traces[0], err)
	}
	p.Memory = mem
	return p, nil
}

// Names of the files a profiled train session writes in its folder.
const (
	profilePrefix = "train_profile"
	optimizedName = "train_optimized.onnx"
)

// nameNodes gives nodes without a name, or with one an earlier node has,
// a fresh one, so that ORT's profile names each node once.
func nameNodes(g *pb.GraphProto) {
	used := map[string]bool{}
	for _, n := range g.Node {
		used[n.GetName()] = true
	}
	seen := map[string]bool{}
	for i, n := range g.Node {
		name := n.GetName()
		if name != "" && !seen[name] {
			seen[name] = true
			continue
		}
		for k := 0; ; k++ {
			fresh := fmt.Sprintf("node%d_%d", i, k)
			if !used[fresh] {
				used[fresh], seen[fresh] = true, true
				n.Name = &fresh
				break
			}
		}
	}
}
