package graph

import (
	"slices"
	"testing"
)

func TestStats(t *testing.T) {
	tests := []struct {
		name    string
		batch   int64
		flops   int64
		params  int64
		buffers int64
	}{
		// conv 2·(4·8·8)·27 = 13824, BN 256, Relu 256, GAP 256 (inputs),
		// Gemm 2·10·4 = 80.
		{"symbolic batch", -1, 14672, 108 + 8 + 50, 8},
		{"static batch", 4, 14672, 108 + 8 + 50, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTB()
			x := b.in("images", tc.batch, 3, 8, 8)
			b.node("Conv", []string{x, b.w("conv1.weight", 4, 3, 3, 3)}, []string{"c"}, Ints("pads", 1, 1, 1, 1))
			b.node("BatchNormalization", []string{"c", b.w("bn1.weight", 4), b.w("bn1.bias", 4), b.w("bn1.running_mean", 4), b.w("bn1.running_var", 4)}, []string{"bn"})
			b.node("Relu", []string{"bn"}, []string{"r"})
			b.node("GlobalAveragePool", []string{"r"}, []string{"gap"})
			b.node("Flatten", []string{"gap"}, []string{"flat"})
			b.node("Gemm", []string{"flat", b.w("fc.weight", 10, 4), b.w("fc.bias", 10)}, []string{"logits"}, Int("transB", 1))
			b.Output("logits", Float, tc.batch, 10)
			s, err := Stats(b.Model())
			if err != nil {
				t.Fatal(err)
			}
			if s.FLOPs != tc.flops {
				t.Errorf("FLOPs = %d, want %d (by op: %+v)", s.FLOPs, tc.flops, s.Ops)
			}
			if s.Params != tc.params || s.ParamTensors != 5 {
				t.Errorf("Params = %d in %d tensors, want %d in 5", s.Params, s.ParamTensors, tc.params)
			}
			if s.Buffers != tc.buffers || s.BufferTensors != 2 {
				t.Errorf("Buffers = %d in %d tensors, want %d in 2", s.Buffers, s.BufferTensors, tc.buffers)
			}
			if len(s.Inputs) != 1 || s.Inputs[0].Name != "images" || !slices.Equal(s.Inputs[0].Dims, []int64{tc.batch, 3, 8, 8}) {
				t.Errorf("Inputs = %+v", s.Inputs)
			}
			if len(s.Outputs) != 1 || !slices.Equal(s.Outputs[0].Dims, []int64{tc.batch, 10}) {
				t.Errorf("Outputs = %+v", s.Outputs)
			}
			if len(s.Ops) != 6 || s.Ops[0].Op != "BatchNormalization" || s.Ops[1].Op != "Conv" || s.Ops[1].FLOPs != 13824 {
				t.Errorf("Ops = %+v", s.Ops)
			}
			if len(s.Unknown) != 0 {
				t.Errorf("Unknown = %v", s.Unknown)
			}
		})
	}
}

func TestStatsConvTransposeAndMatMul(t *testing.T) {
	b := newTB()
	x := b.in("x", -1, 4, 5, 5)
	b.node("ConvTranspose", []string{x, b.w("w", 4, 2, 3, 3)}, []string{"ct"}, Ints("strides", 2, 2))
	b.node("MatMul", []string{b.in("a", -1, 3, 6), b.w("m", 6, 7)}, []string{"mm"})
	b.Output("ct", Float, -1, 2, 11, 11)
	b.Output("mm", Float, -1, 3, 7)
	s, err := Stats(b.Model())
	if err != nil {
		t.Fatal(err)
	}
	// ConvTranspose: 2·(4·25)·(2·9) = 3600; MatMul: 2·21·6 = 252.
	if s.FLOPs != 3600+252 {
		t.Errorf("FLOPs = %d, want %d (%+v)", s.FLOPs, 3600+252, s.Ops)
	}
}
