package graph

import pb "github.com/critlab/critlab/models/onnxpb"

// Int makes an INT attribute.
func Int(name string, v int64) *pb.AttributeProto {
	t := pb.AttributeProto_INT
	return &pb.AttributeProto{Name: &name, Type: &t, I: &v}
}

// Ints makes an INTS attribute.
func Ints(name string, v ...int64) *pb.AttributeProto {
	t := pb.AttributeProto_INTS
	return &pb.AttributeProto{Name: &name, Type: &t, Ints: append([]int64{}, v...)}
}

// Flt makes a FLOAT attribute.
func Flt(name string, v float32) *pb.AttributeProto {
	t := pb.AttributeProto_FLOAT
	return &pb.AttributeProto{Name: &name, Type: &t, F: &v}
}

// Str makes a STRING attribute.
func Str(name, v string) *pb.AttributeProto {
	t := pb.AttributeProto_STRING
	return &pb.AttributeProto{Name: &name, Type: &t, S: []byte(v)}
}

// TensorAttr makes a TENSOR attribute.
func TensorAttr(name string, v *pb.TensorProto) *pb.AttributeProto {
	t := pb.AttributeProto_TENSOR
	return &pb.AttributeProto{Name: &name, Type: &t, T: v}
}

// Attr finds a node attribute by name, or nil.
func Attr(n *pb.NodeProto, name string) *pb.AttributeProto {
	for _, a := range n.Attribute {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// AttrInt returns an INT attribute or def when absent.
func AttrInt(n *pb.NodeProto, name string, def int64) int64 {
	if a := Attr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

// AttrFloat returns a FLOAT attribute or def when absent.
func AttrFloat(n *pb.NodeProto, name string, def float32) float32 {
	if a := Attr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// AttrInts returns an INTS attribute or def when absent.
func AttrInts(n *pb.NodeProto, name string, def []int64) []int64 {
	if a := Attr(n, name); a != nil {
		return a.GetInts()
	}
	return def
}

// AttrString returns a STRING attribute or def when absent.
func AttrString(n *pb.NodeProto, name string, def string) string {
	if a := Attr(n, name); a != nil {
		return string(a.GetS())
	}
	return def
}
