package graph

import (
	"fmt"
	"os"

	"github.com/critlab/critlab/internal/atomicfile"

	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Load reads an ONNX model file.
func Load(path string) (*pb.ModelProto, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	m, err := Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
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
