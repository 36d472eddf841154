package graph

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestWithoutValues(t *testing.T) {
	b := NewBuilder("m")
	x := b.Input("x", Float, -1, 3)
	w := b.Param("w", []int64{3, 2}, []float32{1, 2, 3, 4, 5, 6})
	k := b.Param("k", []int64{2}, []float32{7, 8})
	b.Output(b.Op("Add", []string{b.Op("MatMul", []string{x, w}), k}), Float, -1, 2)
	m := b.Model()
	before := proto.Clone(m)

	out := WithoutValues(m, func(name string) bool { return name == "w" })
	if !proto.Equal(m, before) {
		t.Fatal("WithoutValues changed its input")
	}
	if !proto.Equal(out.Graph.Node[0], m.Graph.Node[0]) || out.Graph.Node[0] == m.Graph.Node[0] {
		t.Error("nodes must be equal copies")
	}
	byName := map[string]int{}
	for i, x := range out.Graph.Initializer {
		byName[x.GetName()] = i
	}
	sw := out.Graph.Initializer[byName["w"]]
	if !slices.Equal(sw.Dims, []int64{3, 2}) || sw.GetDataType() != int32(Float) {
		t.Errorf("w lost its dims or type: %v", sw)
	}
	if _, err := Floats(sw); err == nil {
		t.Error("Floats of a value-less initializer must fail")
	}
	if v, err := Floats(out.Graph.Initializer[byName["k"]]); err != nil || !slices.Equal(v, []float32{7, 8}) {
		t.Errorf("k = %v, %v; want its values", v, err)
	}
	if out.GetOpsetImport()[0].GetVersion() != m.GetOpsetImport()[0].GetVersion() || out.GetIrVersion() != m.GetIrVersion() {
		t.Error("model fields not copied")
	}
}
