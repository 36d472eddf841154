package harness

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"

	ort "github.com/yalue/onnxruntime_go"
)

// Tensor is a host tensor exchanged with a Session: float32 or int64 data
// (exactly one of F32 and I64 is set) with its shape.
type Tensor struct {
	Shape []int64
	F32   []float32
	I64   []int64
}

// Session runs one ONNX model with fixed input and output names.
type Session struct {
	s       *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
	// scalars maps rank-0 outputs to their element type: onnxruntime_go
	// cannot allocate those itself, so Run preallocates them.
	scalars map[int]pb.TensorProto_DataType
}

// NewSession creates a session from a serialized model.
func (r *Runtime) NewSession(model []byte, inputs, outputs []string) (*Session, error) {
	return r.newSession(model, inputs, outputs, "")
}

// newSession creates a session; with profileDir set, ORT writes its
// optimized graph there and, when the session ends, its profile.
func (r *Runtime) newSession(model []byte, inputs, outputs []string, profileDir string) (*Session, error) {
	so, err := r.sessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if profileDir != "" {
		if err := so.EnableProfiling(filepath.Join(profileDir, profilePrefix)); err != nil {
			return nil, fmt.Errorf("create session: enable profiling: %w", err)
		}
		if err := so.SetOptimizedModelFilePath(filepath.Join(profileDir, optimizedName)); err != nil {
			return nil, fmt.Errorf("create session: optimized model path: %w", err)
		}
	}
	m, err := graph.Unmarshal(model)
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	scalars := map[int]pb.TensorProto_DataType{}
	for _, v := range m.Graph.Output {
		dims, et := graph.Dims(v)
		if i := slices.Index(outputs, v.GetName()); i >= 0 && len(dims) == 0 && v.GetType().GetTensorType().GetShape() != nil {
			scalars[i] = et
		}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("create %s session: %w", r.device, err)
	}
	return &Session{s: s, inputs: inputs, outputs: outputs, scalars: scalars}, nil
}

// Close releases the session.
func (s *Session) Close() error {
	if s == nil || s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	return err
}

// Run feeds ins (in input-name order) and returns copies of the outputs. It
// allocates on every call; the Trainer uses RunValues with reused tensors.
func (s *Session) Run(ins []Tensor) ([]Tensor, error) {
	if len(ins) != len(s.inputs) {
		return nil, fmt.Errorf("run: %d inputs given, session takes %d (%v)", len(ins), len(s.inputs), s.inputs)
	}
	vals := make([]ort.Value, len(ins))
	defer func() {
		for _, v := range vals {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, t := range ins {
		v, err := t.value()
		if err != nil {
			return nil, fmt.Errorf("run: input %q: %w", s.inputs[i], err)
		}
		vals[i] = v
	}
	outs := make([]ort.Value, len(s.outputs))
	for i, et := range s.scalars {
		var err error
		switch et {
		case graph.Float:
			outs[i], err = ort.NewEmptyScalar[float32]()
		case graph.Int64:
			outs[i], err = ort.NewEmptyScalar[int64]()
		default:
			err = fmt.Errorf("scalar output %q of type %v is not supported", s.outputs[i], et)
		}
		if err != nil {
			for _, o := range outs {
				if o != nil {
					o.Destroy()
				}
			}
			return nil, fmt.Errorf("run: %w", err)
		}
	}
	if err := s.s.Run(vals, outs); err != nil {
		for _, o := range outs {
			if o != nil {
				o.Destroy()
			}
		}
		return nil, fmt.Errorf("run: %w", err)
	}
	res := make([]Tensor, len(outs))
	for i, o := range outs {
		t, err := fromValue(o)
		o.Destroy()
		if err != nil {
			return nil, fmt.Errorf("run: output %q: %w", s.outputs[i], err)
		}
		res[i] = t
	}
	return res, nil
}

// RunValues runs with caller-owned ORT values; nil outputs are allocated by
// ORT and must be destroyed by the caller.
func (s *Session) RunValues(ins, outs []ort.Value) error {
	if err := s.s.Run(ins, outs); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// value makes an ORT value; an empty Shape is a scalar (rank 0), which
// onnxruntime_go only builds as a Scalar.
func (t Tensor) value() (ort.Value, error) {
	shape := ort.NewShape(t.Shape...)
	switch {
	case t.F32 != nil && t.I64 == nil && len(t.Shape) == 0 && len(t.F32) == 1:
		return ort.NewScalar(t.F32[0])
	case t.I64 != nil && t.F32 == nil && len(t.Shape) == 0 && len(t.I64) == 1:
		return ort.NewScalar(t.I64[0])
	case t.F32 != nil && t.I64 == nil:
		return ort.NewTensor(shape, t.F32)
	case t.I64 != nil && t.F32 == nil:
		return ort.NewTensor(shape, t.I64)
	}
	return nil, fmt.Errorf("tensor needs exactly one of F32 and I64")
}

func fromValue(v ort.Value) (Tensor, error) {
	shape := append([]int64{}, v.GetShape()...)
	switch x := v.(type) {
	case *ort.Tensor[float32]:
		return Tensor{Shape: shape, F32: append([]float32{}, x.GetData()...)}, nil
	case *ort.Tensor[int64]:
		return Tensor{Shape: shape, I64: append([]int64{}, x.GetData()...)}, nil
	case *ort.Scalar[float32]:
		return Tensor{Shape: []int64{}, F32: []float32{x.GetData()}}, nil
	case *ort.Scalar[int64]:
		return Tensor{Shape: []int64{}, I64: []int64{x.GetData()}}, nil
	}
	return Tensor{}, fmt.Errorf("unsupported output type %T", v)
}
