package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"

	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	ort "github.com/yalue/onnxruntime_go"
)

// TrainerOptions configure a Trainer.
type TrainerOptions struct {
	// Compile holds the loss and optimizer settings of the train-step graph.
	Compile compiler.Options
	// BatchSize is the fixed training batch size (batches of another size
	// still work, at the cost of temporary input tensors).
	BatchSize int
	// profileDir, when set, has ORT profile the train-step session into
	// this folder (ProfileTrain).
	profileDir string
}

// Trainer owns a compiled train-step graph and eval graph with their
// sessions and the training state (parameters, optimizer state, BatchNorm
// statistics) held in ORT tensors.
type Trainer struct {
	rt      *Runtime
	opts    TrainerOptions
	forward *pb.ModelProto
	train   *compiler.TrainGraph
	eval    *compiler.EvalGraph
	trainS  *Session
	evalS   *Session
	inDims  []int64 // image dims without the batch dimension
	// graphHash identifies the compiled graphs' arithmetic (GraphHash).
	graphHash string

	// state[cur] is read by the next step and state[1-cur] written by it.
	state [2][]*ort.Tensor[float32]
	cur   int
	names []string // state tensor names, aligned with state[i]
	index map[string]int
	// fixed holds eval-graph inputs that training does not change (frozen
	// parameters), made from the forward model.
	fixed map[string]*ort.Tensor[float32]

	images  *ort.Tensor[float32]
	labels  *ort.Tensor[int64]
	loss    *ort.Scalar[float32]
	correct *ort.Scalar[int64]
	steps   int64
	// dropout draws the uniform inputs of the train graph's Dropouts
	// (SeedDropout).
	dropout *rand.Rand

	// fisher holds the Fisher graph's sessions (fisher.go), opened on the
	// first Fisher call; fisherBatched forces its batch-of-one form.
	fisher        *fisherState
	fisherBatched bool
}

// NewTrainer compiles forward into train-step and eval graphs and opens
// their sessions on the runtime's device.
func NewTrainer(rt *Runtime, forward *pb.ModelProto, o TrainerOptions) (*Trainer, error) {
	if o.BatchSize <= 0 {
		return nil, fmt.Errorf("trainer: batch size %d must be positive", o.BatchSize)
	}
	t := &Trainer{rt: rt, opts: o, forward: forward}
	if err := t.build(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// build compiles the graphs from t.forward and (re)creates sessions and
// state tensors initialised from the forward model's initializers.
func (t *Trainer) build() error {
	t.closeSessions()
	train, err := compiler.CompileTrain(t.forward, t.opts.Compile)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	eval, err := compiler.CompileEval(t.forward)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	t.train, t.eval = train, eval
	if t.graphHash, err = graphHash(train.Model, eval.Model); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	in := t.forward.GetGraph().GetInput()
	if len(in) == 0 {
		return fmt.Errorf("trainer: model has no input")
	}
	dims, _ := graph.Dims(realInput(t.forward))
	if len(dims) != 4 {
		return fmt.Errorf("trainer: model input %v: want N×C×H×W", dims)
	}
	t.inDims = dims[1:]

	init := map[string]*pb.TensorProto{}
	for _, x := range t.forward.GetGraph().GetInitializer() {
		init[x.GetName()] = x
	}
	var ins, outs []string
	t.names, t.index = nil, map[string]int{}
	var values [][]float32
	add := func(c compiler.Tensor, data []float32) {
		t.index[c.Name] = len(t.names)
		t.names = append(t.names, c.Name)
		values = append(values, data)
		ins = append(ins, c.Name)
		outs = append(outs, c.Next)
	}
	for _, group := range [][]compiler.Tensor{train.Params, train.States, train.Stats} {
		for _, c := range group {
			var data []float32
			if x, ok := init[c.Name]; ok {
				if data, err = graph.Floats(x); err != nil {
					return fmt.Errorf("trainer: %w", err)
				}
			} else {
				data = make([]float32, graph.NumElements(c.Dims)) // optimizer state starts at zero
			}
			add(c, data)
		}
	}
	// state[0] takes the decoded values; state[1] is written by the first
	// step before any read. Tensors the step may update in place (see
	// TrainGraph.InPlace: momentum, running statistics) have one buffer in
	// both, which saves a copy of the optimizer state.
	inPlace := train.InPlace()
	for i := range t.state {
		t.state[i] = make([]*ort.Tensor[float32], len(t.names))
		for j, name := range t.names {
			shape := ort.NewShape(t.dimsOf(name)...)
			var x *ort.Tensor[float32]
			switch {
			case i == 0:
				x, err = ort.NewTensor(shape, values[j])
			case inPlace[name]:
				x = t.state[0][j]
			default:
				x, err = ort.NewEmptyTensor[float32](shape)
			}
			if err != nil {
				return fmt.Errorf("trainer: tensor %s: %w", name, err)
			}
			t.state[i][j] = x
		}
	}
	t.cur = 0

	if t.opts.profileDir != "" {
		nameNodes(train.Model.Graph)
	}
	trainModel, err := graph.Marshal(train.Model)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	ins = append(ins, "images", "labels", "lr")
	for _, d := range train.Dropouts {
		ins = append(ins, d.Input)
	}
	t.SeedDropout(0, 0)
	outs = append(outs, "loss", "correct")
	if t.trainS, err = t.rt.newSession(trainModel, ins, outs, t.opts.profileDir); err != nil {
		return fmt.Errorf("trainer: train-step graph: %w", err)
	}
	evalModel, err := graph.Marshal(eval.Model)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	var evalIns []string
	t.fixed = map[string]*ort.Tensor[float32]{}
	for _, c := range eval.Inputs {
		evalIns = append(evalIns, c.Name)
		if _, ok := t.index[c.Name]; ok {
			continue
		}
		x, ok := init[c.Name]
		if !ok {
			return fmt.Errorf("trainer: eval input %q is neither trained nor an initializer", c.Name)
		}
		data, err := graph.Floats(x)
		if err != nil {
			return fmt.Errorf("trainer: %w", err)
		}
		if t.fixed[c.Name], err = ort.NewTensor(ort.NewShape(c.Dims...), data); err != nil {
			return fmt.Errorf("trainer: tensor %s: %w", c.Name, err)
		}
	}
	evalIns = append(evalIns, "images", "labels")
	if t.evalS, err = t.rt.NewSession(evalModel, evalIns, []string{"loss", "correct"}); err != nil {
		return fmt.Errorf("trainer: eval graph: %w", err)
	}
	if t.images, t.labels, err = newBatch(int64(t.opts.BatchSize), t.inDims); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if t.loss, err = ort.NewEmptyScalar[float32](); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if t.correct, err = ort.NewEmptyScalar[int64](); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	// The trained values now live in the state tensors: keep the forward
	// model without them (Export and InitFrom put them back), and hand the
	// decoded model and the old state back to the system before ORT's
	// first step allocates its own: vgg11_bn at 224 px holds 0.5 GiB of
	// weights, and Go's collector would otherwise keep a model's worth of
	// garbage resident through training.
	t.forward = graph.WithoutValues(t.forward, func(name string) bool { _, ok := t.index[name]; return ok })
	debug.FreeOSMemory()
	return nil
}

// GraphHash is the SHA-256 (hex) of the compiled train-step and eval
// graphs, node names aside: two trainers with equal hashes compute the same
// floats from the same state, so a run records it in its checkpoints and
// refuses to resume under a compiler whose formulation differs.
func (t *Trainer) GraphHash() string { return t.graphHash }

// graphHash hashes models with their node names (labels for profiles, not
// arithmetic) left out.
func graphHash(models ...*pb.ModelProto) (string, error) {
	h := sha256.New()
	for _, m := range models {
		nodes := m.GetGraph().GetNode()
		names := make([]*string, len(nodes))
		for i, n := range nodes {
			names[i], n.Name = n.Name, nil
		}
		data, err := graph.Marshal(m)
		for i, n := range nodes {
			n.Name = names[i]
		}
		if err != nil {
			return "", fmt.Errorf("graph hash: %w", err)
		}
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// realInput is the first graph input that is not an initializer.
func realInput(m *pb.ModelProto) *pb.ValueInfoProto {
	init := map[string]bool{}
	for _, x := range m.GetGraph().GetInitializer() {
		init[x.GetName()] = true
	}
	for _, v := range m.GetGraph().GetInput() {
		if !init[v.GetName()] {
			return v
		}
	}
	return nil
}

func (t *Trainer) dimsOf(name string) []int64 {
	for _, group := range [][]compiler.Tensor{t.train.Params, t.train.States, t.train.Stats} {
		for _, c := range group {
			if c.Name == name {
				return c.Dims
			}
		}
	}
	return nil
}

func newBatch(n int64, dims []int64) (*ort.Tensor[float32], *ort.Tensor[int64], error) {
	shape := append([]int64{n}, dims...)
	images, err := ort.NewEmptyTensor[float32](ort.NewShape(shape...))
	if err != nil {
		return nil, nil, fmt.Errorf("images tensor %v: %w", shape, err)
	}
	labels, err := ort.NewEmptyTensor[int64](ort.NewShape(n))
	if err != nil {
		images.Destroy()
		return nil, nil, fmt.Errorf("labels tensor: %w", err)
	}
	return images, labels, nil
}

// fill copies a batch into (possibly temporary) input tensors.
func (t *Trainer) fill(images []float32, labels []int64) (*ort.Tensor[float32], *ort.Tensor[int64], func(), error) {
	n := int64(len(labels))
	per := graph.NumElements(t.inDims)
	if n == 0 || int64(len(images)) != n*per {
		return nil, nil, nil, fmt.Errorf("batch of %d labels has %d image values, want %d (%d×%v)", n, len(images), n*per, n, t.inDims)
	}
	im, lb, done := t.images, t.labels, func() {}
	if n != int64(t.opts.BatchSize) {
		var err error
		if im, lb, err = newBatch(n, t.inDims); err != nil {
			return nil, nil, nil, err
		}
		done = func() { im.Destroy(); lb.Destroy() }
	}
	copy(im.GetData(), images)
	copy(lb.GetData(), labels)
	return im, lb, done, nil
}

// Step runs one training step on a batch and returns the batch's mean loss
// and number of correct predictions. A non-finite loss is an error naming the
// step; the parameters are then left as they were before the step, but the
// state updated in place (momentum, running statistics) is not: load a
// checkpoint to go on training.
func (t *Trainer) Step(images []float32, labels []int64, lr float32) (float32, int64, error) {
	im, lb, done, err := t.fill(images, labels)
	if err != nil {
		return 0, 0, fmt.Errorf("step %d: %w", t.steps, err)
	}
	defer done()
	lrv, err := ort.NewScalar(lr)
	if err != nil {
		return 0, 0, fmt.Errorf("step %d: %w", t.steps, err)
	}
	defer lrv.Destroy()
	in := make([]ort.Value, 0, len(t.names)+3)
	out := make([]ort.Value, 0, len(t.names)+2)
	for j := range t.names {
		in = append(in, t.state[t.cur][j])
		out = append(out, t.state[1-t.cur][j])
	}
	in = append(in, im, lb, lrv)
	for _, d := range t.train.Dropouts {
		u, err := t.uniform(append([]int64{int64(len(labels))}, d.Dims[1:]...))
		if err != nil {
			return 0, 0, fmt.Errorf("step %d: dropout: %w", t.steps, err)
		}
		defer u.Destroy()
		in = append(in, u)
	}
	out = append(out, t.loss, t.correct)
	if err := t.trainS.RunValues(in, out); err != nil {
		return 0, 0, fmt.Errorf("step %d: %w", t.steps, err)
	}
	loss := t.loss.GetData()
	if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
		return loss, 0, fmt.Errorf("step %d: loss is %v (learning rate %g too high?); parameters kept from before the step", t.steps, loss, lr)
	}
	t.cur = 1 - t.cur
	t.steps++
	return loss, t.correct.GetData(), nil
}

// SeedDropout restarts the stream of dropout masks: the steps after it
// draw their masks from a PCG seeded with (seed, stream). Runs seed it with
// (run seed, epoch) at each epoch's start, so a run resumed at an epoch
// draws the masks of an uninterrupted one. A new Trainer starts at (0, 0).
func (t *Trainer) SeedDropout(seed, stream uint64) {
	t.dropout = rand.New(rand.NewPCG(seed, stream))
}

// uniform is a tensor of dims filled with uniform [0, 1) float32 draws of
// the dropout stream (24 random bits each, so 1-ratio compares exactly).
func (t *Trainer) uniform(dims []int64) (*ort.Tensor[float32], error) {
	u, err := ort.NewEmptyTensor[float32](ort.NewShape(dims...))
	if err != nil {
		return nil, err
	}
	data := u.GetData()
	for i := range data {
		data[i] = float32(t.dropout.Uint64()>>40) / (1 << 24)
	}
	return u, nil
}

// Steps is the number of successful steps since the trainer was built or
// its checkpoint was loaded.
func (t *Trainer) Steps() int64 { return t.steps }

// EvalResult summarises an evaluation pass.
type EvalResult struct {
	Loss     float64 // mean cross-entropy per image
	Accuracy float64 // fraction correct
	N        int     // images seen
}

// Evaluate runs the eval graph (running statistics, no dropout) over the
// batches next yields until it reports ok == false.
func (t *Trainer) Evaluate(next func() (images []float32, labels []int64, ok bool, err error)) (EvalResult, error) {
	var res EvalResult
	var lossSum float64
	var correct int64
	ins := t.evalInputs()
	for {
		images, labels, ok, err := next()
		if err != nil {
			return res, fmt.Errorf("evaluate: %w", err)
		}
		if !ok {
			break
		}
		im, lb, done, err := t.fill(images, labels)
		if err != nil {
			return res, fmt.Errorf("evaluate: %w", err)
		}
		err = t.evalS.RunValues(append(ins, im, lb), []ort.Value{t.loss, t.correct})
		done()
		if err != nil {
			return res, fmt.Errorf("evaluate: %w", err)
		}
		lossSum += float64(t.loss.GetData()) * float64(len(labels))
		correct += t.correct.GetData()
		res.N += len(labels)
	}
	if res.N == 0 {
		return res, fmt.Errorf("evaluate: no images")
	}
	res.Loss = lossSum / float64(res.N)
	res.Accuracy = float64(correct) / float64(res.N)
	return res, nil
}

// evalInputs lists the eval graph's state inputs: the current value of each
// trained tensor, or the fixed value of a frozen one.
func (t *Trainer) evalInputs() []ort.Value {
	ins := make([]ort.Value, 0, len(t.eval.Inputs)+2)
	for _, c := range t.eval.Inputs {
		if j, ok := t.index[c.Name]; ok {
			ins = append(ins, t.state[t.cur][j])
		} else {
			ins = append(ins, t.fixed[c.Name])
		}
	}
	return ins
}

// Close releases sessions and tensors.
func (t *Trainer) Close() error {
	t.closeSessions()
	return nil
}

func (t *Trainer) closeSessions() {
	t.closeFisher()
	t.trainS.Close()
	t.evalS.Close()
	t.trainS, t.evalS = nil, nil
	for i := range t.state {
		for j, x := range t.state[i] {
			if x != nil && (i == 0 || x != t.state[0][j]) {
				x.Destroy()
			}
		}
	}
	t.state = [2][]*ort.Tensor[float32]{}
	for _, x := range t.fixed {
		x.Destroy()
	}
	t.fixed = nil
	if t.images != nil {
		t.images.Destroy()
		t.labels.Destroy()
	}
	if t.loss != nil {
		t.loss.Destroy()
	}
	if t.correct != nil {
		t.correct.Destroy()
	}
	t.images, t.labels, t.loss, t.correct = nil, nil, nil, nil
}
