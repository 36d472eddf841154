package zoo

import "fmt"

// buildResNet18 is the CIFAR ResNet-18 (He et al. 2016 as adapted for 32×32
// images): a 3×3 stride-1 stem without max-pool, BasicBlocks 2-2-2-2 at
// 64/128/256/512 channels (stride 2 in the first block of stages 2-4, with a
// 1×1 conv + BatchNorm projection shortcut when the shape changes), global
// average pooling and Linear(512, classes). Convolutions have no bias.
// Names follow torchvision: conv1, bn1, layer1.0.conv1, layer2.0.downsample.0,
// fc.
func buildResNet18(n *net, o Options) {
	stem := n.ch(64)
	x := n.convBNReLU("", "1", "images", 3, stem, 3, 1, 1, false)
	cin := stem
	for s, c := range []int{64, 128, 256, 512} {
		cout := n.ch(c)
		for blk := 0; blk < 2; blk++ {
			stride := int64(1)
			if s > 0 && blk == 0 {
				stride = 2
			}
			x = n.basicBlock(fmt.Sprintf("layer%d.%d.", s+1, blk), x, cin, cout, stride)
			cin = cout
		}
	}
	n.head(x, cin, o.Classes)
}

// basicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
func (n *net) basicBlock(p, x string, cin, cout, stride int64) string {
	y := n.convBNReLU(p, "1", x, cin, cout, 3, stride, 1, false)
	y = n.conv(p+"conv2", y, cout, cout, 3, 1, 1, false)
	y = n.bn(p+"bn2", y, cout)
	short := x
	if stride != 1 || cin != cout {
		short = n.conv(p+"downsample.0", x, cin, cout, 1, stride, 0, false)
		short = n.bn(p+"downsample.1", short, cout)
	}
	y = n.node(p+"add", "Add", []string{y, short})
	return n.relu(p+"relu2", y)
}
