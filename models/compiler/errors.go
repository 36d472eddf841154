package compiler

import "errors"

// Sentinel errors; compile errors wrap them with the node they concern:
// errors.Is(err, compiler.ErrNoRule).
var (
	// ErrNoRule: an op on a path from a trained parameter to the loss has
	// no gradient rule (or none for the attributes it uses).
	ErrNoRule = errors.New("compile: no gradient rule")
	// ErrUnsupported: the forward graph does not meet the compiler's
	// conventions (inputs, outputs, opset, BatchNormalization form).
	ErrUnsupported = errors.New("compile: unsupported forward graph")
	// ErrShape: a rule needs a static shape that could not be inferred.
	ErrShape = errors.New("compile: shape unknown")
	// ErrInternal wraps a compiler bug met while compiling (a recovered
	// panic), so a malformed model never crashes the caller.
	ErrInternal = errors.New("compile: internal error")
)
