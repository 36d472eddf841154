package compiler

import (
	"errors"
	"strings"
	"testing"

	"github.com/critlab/critlab/models/graph"
)

// TestFisherWithoutPerExampleRule: a parameter use the per-example rules do
// not cover makes the per-example form fail with ErrNoRule naming the node,
// the op and the parameter, and CompileFisher fall back to the batch-of-one
// form.
func TestFisherWithoutPerExampleRule(t *testing.T) {
	for _, c := range []struct {
		name  string
		build func(b *graph.Builder, x string) string // returns [N, 4, ...]
		want  []string
	}{
		{"op without a rule", func(b *graph.Builder, x string) string {
			return b.Op("ConvTranspose", []string{x, b.Param("ct.w", []int64{2, 4, 3, 3}, make([]float32, 72))})
		}, []string{`(ConvTranspose)`, `no per-example rule for op type ConvTranspose (parameter "ct.w"`}},
		{"rule refuses", func(b *graph.Builder, x string) string {
			return b.Op("Conv", []string{x, b.Param("gc.w", []int64{4, 1, 3, 3}, make([]float32, 36))}, graph.Int("group", 2))
		}, []string{`(Conv)`, "grouped Conv weight"}},
		{"two uses", func(b *graph.Builder, x string) string {
			w := b.Param("w", []int64{4, 2, 1, 1}, make([]float32, 8))
			y := b.Op("Conv", []string{x, w})
			return b.Op("Conv", []string{b.Op("Conv", []string{y, b.Param("back", []int64{2, 4, 1, 1}, make([]float32, 8))}), w})
		}, []string{`"w" is used by several nodes`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := graph.NewBuilder("t")
			x := b.Input("input", graph.Float, -1, 2, 5, 5)
			y := b.Op("Flatten", []string{b.Op("GlobalAveragePool", []string{c.build(b, x)})})
			b.Output(b.Op("Gemm", []string{y, b.Param("fc.w", []int64{4, 3}, make([]float32, 12))}), graph.Float, -1, 3)
			m := b.Model()
			_, err := compileFisher(m, true)
			if !errors.Is(err, ErrNoRule) {
				t.Fatalf("per-example form: err = %v, want ErrNoRule", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to say %s", err, w)
				}
			}
			fg, err := CompileFisher(m)
			if err != nil || fg.PerExample {
				t.Fatalf("CompileFisher: %v (per-example %v), want the batch-of-one form", err, fg != nil && fg.PerExample)
			}
		})
	}
}
