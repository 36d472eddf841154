package zoo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// Options configure a zoo model. The zero value builds the reference model:
// width 1, 10 classes, 32×32 images, seed 0.
type Options struct {
	// Width multiplies hidden channel counts; 0 means 1.
	Width float64
	// Seed seeds the parameter initialisation (PCG).
	Seed uint64
	// Classes is the number of logits; 0 means 10.
	Classes int
	// ImageSize is the height and width of the input images; 0 means 32.
	ImageSize int
}

// DefaultOptions returns the reference options.
func DefaultOptions() Options { return Options{Width: 1, Classes: 10, ImageSize: 32} }

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	if o.Width == 0 {
		o.Width = 1
	}
	if o.Classes == 0 {
		o.Classes = 10
	}
	if o.ImageSize == 0 {
		o.ImageSize = 32
	}
	return o
}

// Validate checks the options (after defaults are applied).
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case !(o.Width > 0) || math.IsInf(o.Width, 0) || o.Width > 64:
		return fmt.Errorf("width %v must be in (0, 64]", o.Width)
	case o.Classes < 1 || o.Classes > 1<<20:
		return fmt.Errorf("classes %d must be in [1, %d]", o.Classes, 1<<20)
	case o.ImageSize < 4 || o.ImageSize > 4096:
		return fmt.Errorf("image size %d must be in [4, 4096]", o.ImageSize)
	}
	return nil
}

type builder func(n *net, o Options)

var models = map[string]builder{
	"allcnn":   buildAllCNN,
	"resnet18": buildResNet18,
	"small":    buildSmall,
}

// Names lists the zoo's models, sorted.
func Names() []string {
	names := make([]string, 0, len(models))
	for name := range models {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Build returns the forward graph of the named model with freshly
// initialised parameters.
func Build(name string, opts Options) (*pb.ModelProto, error) {
	build, ok := models[name]
	if !ok {
		return nil, fmt.Errorf("zoo: unknown model %q (have %v)", name, Names())
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("zoo: %s: %w", name, err)
	}
	opts = opts.withDefaults()
	n := newNet(name, opts)
	build(n, opts)
	m := n.b.Model()
	doc := fmt.Sprintf("critlab zoo model %s (width %g, %d classes, %dx%d images, seed %d)",
		name, opts.Width, opts.Classes, opts.ImageSize, opts.ImageSize, opts.Seed)
	m.DocString = &doc
	for _, kv := range [][2]string{
		{"critlab.model", name},
		{"critlab.width", strconv.FormatFloat(opts.Width, 'g', -1, 64)},
		{"critlab.classes", strconv.Itoa(opts.Classes)},
		{"critlab.image_size", strconv.Itoa(opts.ImageSize)},
		{"critlab.seed", strconv.FormatUint(opts.Seed, 10)},
	} {
		k, v := kv[0], kv[1]
		m.MetadataProps = append(m.MetadataProps, &pb.StringStringEntryProto{Key: &k, Value: &v})
	}
	if err := graph.Validate(m); err != nil {
		return nil, fmt.Errorf("zoo: %s: built an invalid graph (a bug): %w", name, err)
	}
	return m, nil
}

// net appends layers to a graph, naming nodes and values after PyTorch
// module paths and initialising parameters from one PCG stream.
type net struct {
	b     *graph.Builder
	rng   *rand.Rand
	width float64
}

// pcgStream distinguishes critlab's parameter stream from other uses of a seed.
const pcgStream = 0x636c2d7a6f6f // "cl-zoo"

func newNet(name string, o Options) *net {
	b := graph.NewBuilder(name)
	s := int64(o.ImageSize)
	b.Input("images", graph.Float, -1, 3, s, s)
	return &net{b: b, rng: rand.New(rand.NewPCG(o.Seed, pcgStream)), width: o.Width}
}

// ch scales a hidden channel count by the width multiplier.
func (n *net) ch(c int) int64 {
	return int64(max(1, int(math.Round(float64(c)*n.width))))
}

// uniform draws count values from U(-bound, bound).
func (n *net) uniform(count int64, bound float64) []float32 {
	v := make([]float32, count)
	for i := range v {
		v[i] = float32((2*n.rng.Float64() - 1) * bound)
	}
	return v
}

func fill(count int64, x float32) []float32 {
	v := make([]float32, count)
	for i := range v {
		v[i] = x
	}
	return v
}

// node appends a node named name whose single output is also called name.
func (n *net) node(name, op string, inputs []string, attrs ...*pb.AttributeProto) string {
	return n.nodeOut(name, name, op, inputs, attrs...)
}

func (n *net) nodeOut(name, out, op string, inputs []string, attrs ...*pb.AttributeProto) string {
	n.b.Reserve(out)
	nd := n.b.NodeNamed(op, inputs, []string{out}, attrs...)
	nd.Name = &name
	return out
}

// conv appends Conv2d(cin, cout, k, stride, pad, bias) with PyTorch's default
// initialisation.
func (n *net) conv(name, x string, cin, cout, k, stride, pad int64, bias bool) string {
	fanIn := cin * k * k
	bound := 1 / math.Sqrt(float64(fanIn))
	w := n.b.Param(name+".weight", []int64{cout, cin, k, k}, n.uniform(cout*fanIn, bound))
	inputs := []string{x, w}
	if bias {
		inputs = append(inputs, n.b.Param(name+".bias", []int64{cout}, n.uniform(cout, bound)))
	}
	return n.node(name, "Conv", inputs,
		graph.Ints("kernel_shape", k, k), graph.Ints("strides", stride, stride),
		graph.Ints("pads", pad, pad, pad, pad), graph.Ints("dilations", 1, 1), graph.Int("group", 1))
}

// bn appends BatchNorm2d(c) in inference form.
func (n *net) bn(name, x string, c int64) string {
	inputs := []string{
		x,
		n.b.Param(name+".weight", []int64{c}, fill(c, 1)),
		n.b.Param(name+".bias", []int64{c}, fill(c, 0)),
		n.b.Param(name+".running_mean", []int64{c}, fill(c, 0)),
		n.b.Param(name+".running_var", []int64{c}, fill(c, 1)),
	}
	return n.node(name, "BatchNormalization", inputs, graph.Flt("epsilon", 1e-5), graph.Flt("momentum", 0.9))
}

func (n *net) relu(name, x string) string { return n.node(name, "Relu", []string{x}) }

// convBNReLU is conv (no bias unless asked) -> bn -> relu, named
// conv<i>, bn<i>, relu<i> under prefix.
func (n *net) convBNReLU(prefix, suffix, x string, cin, cout, k, stride, pad int64, bias bool) string {
	y := n.conv(prefix+"conv"+suffix, x, cin, cout, k, stride, pad, bias)
	y = n.bn(prefix+"bn"+suffix, y, cout)
	return n.relu(prefix+"relu"+suffix, y)
}

// head appends global average pooling, flatten and, when fcIn > 0, a
// Linear(fcIn, classes) named fc producing logits.
func (n *net) head(x string, fcIn int64, classes int) {
	y := n.node("avgpool", "GlobalAveragePool", []string{x})
	c := int64(classes)
	if fcIn == 0 {
		n.nodeOut("flatten", "logits", "Flatten", []string{y}, graph.Int("axis", 1))
	} else {
		y = n.node("flatten", "Flatten", []string{y}, graph.Int("axis", 1))
		bound := 1 / math.Sqrt(float64(fcIn))
		w := n.b.Param("fc.weight", []int64{c, fcIn}, n.uniform(c*fcIn, bound))
		b := n.b.Param("fc.bias", []int64{c}, n.uniform(c, bound))
		n.nodeOut("fc", "logits", "Gemm", []string{y, w, b},
			graph.Flt("alpha", 1), graph.Flt("beta", 1), graph.Int("transB", 1))
	}
	n.b.Output("logits", graph.Float, -1, c)
}
