package graph

import (
	"strings"
	"testing"
)

// TestSharedStatsRefused: a BatchNorm whose running mean is its own bias
// (the dynamo optimizer merges a fresh BatchNorm's equal zero tensors) is
// refused; one with statistics of its own is not.
func TestSharedStatsRefused(t *testing.T) {
	for _, shared := range []bool{false, true} {
		b := NewBuilder("bn")
		x := b.Input("images", Float, -1, 2, 4, 4)
		w := b.Param("bn.weight", []int64{2}, []float32{1, 1})
		bias := b.Param("bn.bias", []int64{2}, []float32{0, 0})
		mean, v := bias, w
		if !shared {
			mean = b.Param("bn.running_mean", []int64{2}, []float32{0, 0})
			v = b.Param("bn.running_var", []int64{2}, []float32{1, 1})
		}
		y := b.Op("BatchNormalization", []string{x, w, bias, mean, v})
		b.NodeNamed("ReduceMean", []string{y, b.ConstInt64s(2, 3)}, []string{"logits"}, Int("keepdims", 0))
		b.Output("logits", Float, -1, 2)
		var refused []string
		for _, f := range ExportFindings(b.Model()) {
			if f.Refuse {
				refused = append(refused, f.String())
			}
		}
		if got := len(refused) == 1 && strings.Contains(refused[0], "2 BatchNorm running statistics are also read as parameters"); got != shared {
			t.Errorf("shared %v: refusals %q", shared, refused)
		}
	}
}
