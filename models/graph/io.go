package graph

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/critlab/critlab/internal/atomicfile"

	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Load reads an ONNX model file. Tensors stored as external data (the
// MODEL.onnx.data file torch.onnx.export writes by default) are read from
// their files next to the model and kept inline from then on, so the model
// critlab saves is one self-contained file.
func Load(path string) (*pb.ModelProto, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	m, err := Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	if err := inlineExternal(m.Graph, filepath.Dir(path), map[string][]byte{}); err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

// inlineExternal replaces the external data of g's initializers and
// Constant tensors by raw_data read from files under dir (files caches
// them by location).
func inlineExternal(g *pb.GraphProto, dir string, files map[string][]byte) error {
	tensors := append([]*pb.TensorProto{}, g.Initializer...)
	for _, n := range g.Node {
		for _, a := range n.Attribute {
			if a.T != nil {
				tensors = append(tensors, a.T)
			}
			tensors = append(tensors, a.Tensors...)
			if a.G != nil {
				if err := inlineExternal(a.G, dir, files); err != nil {
					return err
				}
			}
			for _, sg := range a.Graphs {
				if err := inlineExternal(sg, dir, files); err != nil {
					return err
				}
			}
		}
	}
	for _, t := range tensors {
		if t.GetDataLocation() != pb.TensorProto_EXTERNAL {
			continue
		}
		if err := inlineTensor(t, dir, files); err != nil {
			return fmt.Errorf("tensor %q: external data: %w", t.GetName(), err)
		}
	}
	return nil
}

func inlineTensor(t *pb.TensorProto, dir string, files map[string][]byte) error {
	var loc string
	offset, length := int64(0), int64(-1)
	for _, kv := range t.ExternalData {
		var err error
		switch kv.GetKey() {
		case "location":
			loc = kv.GetValue()
		case "offset":
			offset, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		}
		if err != nil {
			return fmt.Errorf("%s %q: %w", kv.GetKey(), kv.GetValue(), err)
		}
	}
	if loc == "" {
		return fmt.Errorf("no location")
	}
	if !filepath.IsLocal(filepath.FromSlash(loc)) {
		return fmt.Errorf("location %q is outside the model's folder", loc)
	}
	data, ok := files[loc]
	if !ok {
		var err error
		if data, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(loc))); err != nil {
			return fmt.Errorf("%w (keep the data file next to the model)", err)
		}
		files[loc] = data
	}
	if length < 0 {
		length = int64(len(data)) - offset
	}
	if offset < 0 || length < 0 || offset+length > int64(len(data)) {
		return fmt.Errorf("bytes %d..%d are outside %s (%d bytes)", offset, offset+length, loc, len(data))
	}
	t.RawData = append([]byte{}, data[offset:offset+length]...)
	t.ExternalData = nil
	t.DataLocation = nil
	return nil
}

// Unmarshal decodes a serialized ModelProto and checks it has a graph.
func Unmarshal(data []byte) (*pb.ModelProto, error) {
	m := &pb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	if m.Graph == nil {
		return nil, fmt.Errorf("not an ONNX model: no graph")
	}
	return m, nil
}

// Marshal serializes a model deterministically.
func Marshal(m *pb.ModelProto) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// Save writes a model atomically: to a temporary file in the same folder,
// synced, then renamed over path, so a crash never leaves half a model.
func Save(path string, m *pb.ModelProto) error {
	data, err := Marshal(m)
	if err != nil {
		return fmt.Errorf("save model %s: %w", path, err)
	}
	return atomicfile.Write(path, data)
}

// ModelOpset returns the default-domain opset a model imports (0 if none).
func ModelOpset(m *pb.ModelProto) int64 {
	for _, o := range m.OpsetImport {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			return o.GetVersion()
		}
	}
	return 0
}
