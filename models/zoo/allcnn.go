package zoo

import "fmt"

// buildAllCNN is All-CNN-C with BatchNorm, as used by Achille et al. (2019):
// every conv (with bias, as nn.Conv2d's default) is followed by BatchNorm and
// ReLU, the final 1×1 classes-channel conv included, then global average
// pooling gives the logits.
func buildAllCNN(n *net, o Options) {
	type layer struct {
		c              int
		k, stride, pad int64
	}
	layers := []layer{
		{96, 3, 1, 1}, {96, 3, 1, 1}, {192, 3, 2, 1},
		{192, 3, 1, 1}, {192, 3, 1, 1}, {192, 3, 2, 1},
		{192, 3, 1, 1}, {192, 1, 1, 0}, {0, 1, 1, 0}, // 0: classes
	}
	x, cin := "images", int64(3)
	for i, l := range layers {
		cout := n.ch(l.c)
		if l.c == 0 {
			cout = int64(o.Classes)
		}
		x = n.convBNReLU("", fmt.Sprint(i+1), x, cin, cout, l.k, l.stride, l.pad, true)
		cin = cout
	}
	n.head(x, 0, o.Classes)
}
