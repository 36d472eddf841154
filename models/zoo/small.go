package zoo

import "fmt"

// buildSmall is a compact CNN in the style of the others, sized to train in
// minutes on two CPU cores: five 3×3 convs (32, 32 stride 2, 64, 64 stride 2,
// 128; no bias) each with BatchNorm and ReLU, global average pooling and
// Linear(128, classes).
func buildSmall(n *net, o Options) {
	type layer struct {
		c      int
		stride int64
	}
	x, cin := "images", int64(3)
	for i, l := range []layer{{32, 1}, {32, 2}, {64, 1}, {64, 2}, {128, 1}} {
		cout := n.ch(l.c)
		x = n.convBNReLU("", fmt.Sprint(i+1), x, cin, cout, 3, l.stride, 1, false)
		cin = cout
	}
	n.head(x, cin, o.Classes)
}
