package graph

import (
	"errors"
	"strings"
	"testing"

	pb "github.com/critlab/critlab/models/onnxpb"
)

func TestValidate(t *testing.T) {
	base := func() tb {
		b := newTB()
		b.node("Conv", []string{b.in("x", -1, 3, 8, 8), b.w("w", 4, 3, 3, 3)}, []string{"conv"}, Ints("pads", 1, 1, 1, 1))
		b.node("Relu", []string{"conv"}, []string{"relu"})
		b.Output("relu", Float, -1, 4, 8, 8)
		return b
	}
	tests := []struct {
		name   string
		mutate func(t tb, m *pb.ModelProto)
		err    string
		is     error
	}{
		{name: "ok", mutate: func(tb, *pb.ModelProto) {}},
		{
			name: "not topological",
			mutate: func(t tb, _ *pb.ModelProto) {
				t.G.Node[0], t.G.Node[1] = t.G.Node[1], t.G.Node[0]
			},
			err: `node "relu" (Relu): input 0 "conv": input is not defined before use` + "\n---> HINT: it is produced by the later node \"conv\" (Conv): sort the nodes topologically",
			is:  ErrUndefinedInput,
		},
		{
			name:   "missing initializer",
			mutate: func(t tb, _ *pb.ModelProto) { t.G.Node[0].Input[1] = "conv1.weight" },
			err:    `add an initializer or input named "conv1.weight"`,
			is:     ErrUndefinedInput,
		},
		{
			name: "duplicate output",
			mutate: func(t tb, _ *pb.ModelProto) {
				t.node("Relu", []string{"conv"}, []string{"relu"})
			},
			err: `output "relu" is already defined by node "relu"`,
			is:  ErrDuplicateName,
		},
		{
			name:   "output shadows initializer",
			mutate: func(t tb, _ *pb.ModelProto) { t.G.Node[1].Output[0] = "w"; t.G.Output[0].Name = ptr("w") },
			err:    `output "w" is already defined by initializer`,
			is:     ErrDuplicateName,
		},
		{
			name:   "unsupported op",
			mutate: func(t tb, _ *pb.ModelProto) { t.G.Node[1].OpType = ptr("LSTM") },
			err:    `node "relu" (LSTM): op is not supported by critlab`,
			is:     ErrUnsupportedOp,
		},
		{
			name:   "custom domain",
			mutate: func(t tb, _ *pb.ModelProto) { t.G.Node[1].Domain = ptr("com.microsoft") },
			err:    `domain "com.microsoft"`,
			is:     ErrUnsupportedOp,
		},
		{
			name:   "undefined graph output",
			mutate: func(t tb, _ *pb.ModelProto) { t.G.Output[0].Name = ptr("logits") },
			err:    `graph output "logits" is not produced`,
		},
		{
			name:   "old opset",
			mutate: func(_ tb, m *pb.ModelProto) { m.OpsetImport[0].Version = ptr(int64(9)) },
			err:    `opset 9 is outside the supported range 13..22`,
		},
		{
			name: "shape mismatch",
			mutate: func(t tb, _ *pb.ModelProto) {
				t.node("Add", []string{"relu", t.w("b", 5, 1, 1)}, []string{"bad"})
			},
			err: `shape: node "bad" (Add): cannot broadcast`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			m := b.Model()
			tc.mutate(b, m)
			err := Validate(m)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want containing %q", err, tc.err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(err, %v) = false", tc.is)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
