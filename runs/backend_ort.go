package runs

// This file wires the runs package to harness, models/zoo and
// preprocessing. It is the only file of the package that imports them.

import (
	"context"
	"fmt"
)

// BackendOptions configure the ONNX Runtime backend.
type BackendOptions struct {
	// Library is the ONNX Runtime library; empty means harness's search
	// ($CRITLAB_ORT_LIB, then .deps/onnxruntime).
	Library string
}

// NewBackend returns the backend that trains with ONNX Runtime.
func NewBackend(o BackendOptions) Backend { return ortBackend{o} }

type ortBackend struct{ o BackendOptions }

func (ortBackend) Check(cfg Config) error { return nil }

func (ortBackend) Open(ctx context.Context, cfg Config) (Trainer, Data, error) {
	return nil, nil, fmt.Errorf("%w: harness, zoo and preprocessing are not wired yet", ErrNoBackend)
}
