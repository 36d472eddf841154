package harness

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/critlab/critlab/internal/atomicfile"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Checkpoints are ONNX ModelProto files with no nodes: the training state
// is the graph's initializers by name (parameters, optimizer state: SGD's
// momentum buffers `p.mom` or Adam's `p.exp_avg`, `p.exp_avg_sq` and step
// count `optimizer.step`; BatchNorm statistics) and metadata_props carry the format tag, the step count and the
// caller's metadata, and the content checksum (checksum.go). The `onnx`
// Python package reads them as they are.
const (
	checkpointFormat  = "critlab.checkpoint"
	checkpointVersion = "1"
	keyFormat         = "critlab.format"
	keySteps          = "critlab.steps"
)

// Params returns a copy of the current training state by name: parameters,
// optimizer state (`NAME.mom`, `NAME.exp_avg`, ...) and BatchNorm running
// statistics.
func (t *Trainer) Params() map[string][]float32 {
	out := make(map[string][]float32, len(t.names))
	for j, name := range t.names {
		out[name] = append([]float32{}, t.state[t.cur][j].GetData()...)
	}
	return out
}

// SaveCheckpoint writes the training state and meta atomically to path.
func (t *Trainer) SaveCheckpoint(path string, meta map[string]string) error {
	g := &pb.GraphProto{Name: proto.String("checkpoint")}
	for j, name := range t.names {
		x := t.state[t.cur][j]
		g.Initializer = append(g.Initializer, graph.FloatTensor(name, x.GetShape(), x.GetData()))
	}
	m := graph.NewModel(g, graph.Opset)
	m.ProducerName = proto.String(checkpointFormat)
	props := map[string]string{keyFormat: checkpointVersion, keySteps: strconv.FormatInt(t.steps, 10)}
	for k, v := range meta {
		if k == keyFormat || k == keySteps || k == keyChecksum {
			return fmt.Errorf("save checkpoint %s: metadata key %q is reserved", path, k)
		}
		props[k] = v
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.MetadataProps = append(m.MetadataProps, &pb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(props[k])})
	}
	data, err := seal(m)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// LoadCheckpoint restores the training state saved by SaveCheckpoint and
// returns its metadata (without critlab's reserved keys).
// A file that does not match its content checksum is refused with an error
// wrapping ErrCorrupt.
func (t *Trainer) LoadCheckpoint(path string) (map[string]string, error) {
	m, err := loadVerified(path)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	meta := map[string]string{}
	for _, p := range m.MetadataProps {
		meta[p.GetKey()] = p.GetValue()
	}
	if m.GetProducerName() != checkpointFormat || meta[keyFormat] != checkpointVersion {
		return nil, fmt.Errorf("load checkpoint %s: not a critlab checkpoint (format %q version %q, want %q version %s)", path, m.GetProducerName(), meta[keyFormat], checkpointFormat, checkpointVersion)
	}
	steps, err := strconv.ParseInt(meta[keySteps], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: bad step count %q", path, meta[keySteps])
	}
	vals, err := tensorsByName(m)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	for j, name := range t.names {
		v, ok := vals[name]
		if !ok {
			return nil, fmt.Errorf("load checkpoint %s: no tensor %q (was it saved from another model or optimizer?)", path, name)
		}
		dst := t.state[t.cur][j]
		if !sameDims(v.dims, dst.GetShape()) {
			return nil, fmt.Errorf("load checkpoint %s: tensor %q has shape %v, model wants %v", path, name, v.dims, dst.GetShape())
		}
		copy(dst.GetData(), v.data)
	}
	t.steps = steps
	delete(meta, keyFormat)
	delete(meta, keySteps)
	return meta, nil
}

// InitFrom loads parameters and BatchNorm statistics (not optimizer state)
// from a checkpoint or an ONNX model, matching tensors by name, for
// fine-tuning. Every parameter and statistic of the model must be found with
// the same shape. The graphs are rebuilt so frozen parameters take the new
// values too; optimizer state restarts at zero and the step count at 0.
func (t *Trainer) InitFrom(path string) error {
	src, err := loadVerified(path)
	if err != nil {
		return fmt.Errorf("init from: %w", err)
	}
	vals, err := tensorsByName(src)
	if err != nil {
		return fmt.Errorf("init from %s: %w", path, err)
	}
	fwd := proto.Clone(t.forward).(*pb.ModelProto)
	n := 0
	for i, x := range fwd.Graph.Initializer {
		if pb.TensorProto_DataType(x.GetDataType()) != graph.Float || !t.isState(x.GetName()) {
			continue
		}
		v, ok := vals[x.GetName()]
		if !ok {
			return fmt.Errorf("init from %s: no tensor %q; the source must be a run or model of the same architecture", path, x.GetName())
		}
		if !sameDims(v.dims, x.Dims) {
			return fmt.Errorf("init from %s: tensor %q has shape %v, model wants %v", path, x.GetName(), v.dims, x.Dims)
		}
		fwd.Graph.Initializer[i] = graph.FloatTensor(x.GetName(), x.Dims, v.data)
		n++
	}
	if n == 0 {
		return fmt.Errorf("init from %s: no parameter of the model found in it", path)
	}
	t.forward = fwd
	t.steps = 0
	return t.build()
}

// isState reports whether name is a parameter or statistic of the eval graph.
func (t *Trainer) isState(name string) bool {
	for _, c := range t.eval.Inputs {
		if c.Name == name {
			return true
		}
	}
	return false
}

// Export writes the forward model with the trained parameters and running
// statistics, ready for inference in ORT or any ONNX runtime, with a
// content checksum in its metadata (see VerifyFile).
func (t *Trainer) Export(path string) error {
	m := proto.Clone(t.forward).(*pb.ModelProto)
	for i, x := range m.Graph.Initializer {
		if j, ok := t.index[x.GetName()]; ok {
			m.Graph.Initializer[i] = graph.FloatTensor(x.GetName(), x.Dims, t.state[t.cur][j].GetData())
		}
	}
	data, err := seal(m)
	if err == nil {
		err = atomicfile.Write(path, data)
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	return nil
}

type namedValues struct {
	dims []int64
	data []float32
}

func tensorsByName(m *pb.ModelProto) (map[string]namedValues, error) {
	out := map[string]namedValues{}
	for _, x := range m.GetGraph().GetInitializer() {
		if pb.TensorProto_DataType(x.GetDataType()) != graph.Float {
			continue
		}
		data, err := graph.Floats(x)
		if err != nil {
			return nil, err
		}
		out[x.GetName()] = namedValues{dims: x.Dims, data: data}
	}
	return out, nil
}

func sameDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
