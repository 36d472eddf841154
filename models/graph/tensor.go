package graph

import (
	"encoding/binary"
	"fmt"
	"math"

	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// FloatTensor makes a float32 TensorProto stored as little-endian raw_data.
func FloatTensor(name string, dims []int64, data []float32) *pb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	dt := int32(Float)
	return &pb.TensorProto{Name: &name, Dims: append([]int64{}, dims...), DataType: &dt, RawData: raw}
}

// Int64Tensor makes an int64 TensorProto stored as little-endian raw_data.
func Int64Tensor(name string, dims []int64, data []int64) *pb.TensorProto {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	dt := int32(Int64)
	return &pb.TensorProto{Name: &name, Dims: append([]int64{}, dims...), DataType: &dt, RawData: raw}
}

// NumElements is the product of dims (1 for a scalar).
func NumElements(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

// Floats decodes a float32 tensor from raw_data or float_data.
func Floats(t *pb.TensorProto) ([]float32, error) {
	if pb.TensorProto_DataType(t.GetDataType()) != Float {
		return nil, fmt.Errorf("tensor %q: data type %v, want FLOAT", t.GetName(), pb.TensorProto_DataType(t.GetDataType()))
	}
	if t.GetDataLocation() == pb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %q: external data not loaded; read the model with graph.Load from its file", t.GetName())
	}
	n := NumElements(t.Dims)
	if len(t.RawData) > 0 {
		if int64(len(t.RawData)) != 4*n {
			return nil, fmt.Errorf("tensor %q: %d raw bytes for %d float32 values", t.GetName(), len(t.RawData), n)
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:]))
		}
		return out, nil
	}
	if int64(len(t.FloatData)) != n {
		return nil, fmt.Errorf("tensor %q: %d float values for shape %v", t.GetName(), len(t.FloatData), t.Dims)
	}
	return append([]float32{}, t.FloatData...), nil
}

// Int64s decodes an int64 (or int32) tensor from raw_data or typed fields.
func Int64s(t *pb.TensorProto) ([]int64, error) {
	n := NumElements(t.Dims)
	switch pb.TensorProto_DataType(t.GetDataType()) {
	case Int64:
		if len(t.RawData) > 0 {
			if int64(len(t.RawData)) != 8*n {
				return nil, fmt.Errorf("tensor %q: %d raw bytes for %d int64 values", t.GetName(), len(t.RawData), n)
			}
			out := make([]int64, n)
			for i := range out {
				out[i] = int64(binary.LittleEndian.Uint64(t.RawData[8*i:]))
			}
			return out, nil
		}
		if int64(len(t.Int64Data)) != n {
			return nil, fmt.Errorf("tensor %q: %d int64 values for shape %v", t.GetName(), len(t.Int64Data), t.Dims)
		}
		return append([]int64{}, t.Int64Data...), nil
	case pb.TensorProto_INT32:
		if len(t.RawData) > 0 {
			if int64(len(t.RawData)) != 4*n {
				return nil, fmt.Errorf("tensor %q: %d raw bytes for %d int32 values", t.GetName(), len(t.RawData), n)
			}
			out := make([]int64, n)
			for i := range out {
				out[i] = int64(int32(binary.LittleEndian.Uint32(t.RawData[4*i:])))
			}
			return out, nil
		}
		out := make([]int64, len(t.Int32Data))
		for i, v := range t.Int32Data {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor %q: data type %v, want INT64", t.GetName(), pb.TensorProto_DataType(t.GetDataType()))
}

// WithoutValues returns a copy of m in which the initializers named by drop
// keep their name, data type and dims but hold no values (Floats then
// fails on them), for a holder that keeps the values elsewhere and needs
// only the model's structure: the Trainer, whose parameters live in its
// state tensors. The other initializers are shared with m, not copied.
func WithoutValues(m *pb.ModelProto, drop func(name string) bool) *pb.ModelProto {
	out := proto.Clone(shallowWithout(m, "graph")).(*pb.ModelProto)
	g := m.GetGraph()
	if g == nil {
		return out
	}
	out.Graph = proto.Clone(shallowWithout(g, "initializer")).(*pb.GraphProto)
	for _, x := range g.Initializer {
		if drop(x.GetName()) {
			x = &pb.TensorProto{Name: proto.String(x.GetName()), DataType: proto.Int32(x.GetDataType()), Dims: append([]int64{}, x.Dims...)}
		}
		out.Graph.Initializer = append(out.Graph.Initializer, x)
	}
	return out
}

// shallowWithout is a new message holding src's fields but the one named
// skip, sharing their values with src.
func shallowWithout(src proto.Message, skip protoreflect.Name) proto.Message {
	s := src.ProtoReflect()
	d := s.New()
	s.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() != skip {
			d.Set(fd, v)
		}
		return true
	})
	return d.Interface()
}
