package harness_test

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// The fixtures in testdata/torch/ were made by tools/make_reference.py: for
// each model NAME (allcnn, resnet18, simplecnn, and torchvision's
// mobilenet_v3_small and efficientnet_b0, at reduced width) the forward
// graph NAME.onnx exported from PyTorch by tools/export_torch.py, and for
// each optimizer variant NAME.VARIANT.ref.onnx holding the batches and what
// PyTorch computed in K optimizer steps on them (losses, correct counts, the
// parameters, optimizer state and BatchNorm running statistics after the
// last step, an eval-mode loss). The Adam and AdamW variants add warmup,
// gradient clipping, a head param group and a frozen parameter. Remake them
// with `make torch-fixtures TORCH=PYTHON`, or (--variants adds variants to
// the committed forward graphs)
//
//	/tmp/torchenv/bin/python tools/make_reference.py --check-ort
const torchRefFormat = "critlab-torchref-1"

// Tolerances. Each fixture records f32err_X: how far PyTorch's own float32
// result is from a float64 rerun, as max|x32-x64| / max(max|x64|, 1e-3)
// over the tensors of class X (about 1e-7 for losses, 6e-7 for parameters
// and statistics, up to 1e-5 for momentum buffers, which are raw gradient
// sums). ORT runs different kernels in float32 and so differs from PyTorch
// by the same order, but not by more. The test measures critlab's result
// the same way (per tensor, relative to the tensor's largest value) and
// allows the larger of a floor and ten times the recorded noise: 1e-5 for
// parameters and statistics (an update of lr·g with g off by 0.1% already
// exceeds it) and 1e-4 for momentum buffers. Losses are relative to the
// loss; correct counts must match exactly.
const (
	tolLoss   = 1e-5
	tolParams = 1e-5
	tolStats  = 1e-5
	tolMom    = 1e-4
	noiseMult = 10
)

// torchRef is a decoded .ref.onnx fixture.
type torchRef struct {
	meta    map[string]string
	floats  map[string][]float32
	int64s  map[string][]int64
	dims    map[string][]int64
	steps   int
	batch   int
	lr      float32
	lrs     []float32 // lr of each step (warmup)
	options compiler.Options
}

func loadTorchRef(t *testing.T, path string) *torchRef {
	t.Helper()
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &torchRef{meta: map[string]string{}, floats: map[string][]float32{}, int64s: map[string][]int64{}, dims: map[string][]int64{}}
	for _, p := range m.GetMetadataProps() {
		r.meta[p.GetKey()] = p.GetValue()
	}
	if got := r.meta["format"]; got != torchRefFormat {
		t.Fatalf("%s: format %q, want %q (remake with tools/make_reference.py)", path, got, torchRefFormat)
	}
	for _, x := range m.GetGraph().GetInitializer() {
		r.dims[x.GetName()] = x.GetDims()
		switch pb.TensorProto_DataType(x.GetDataType()) {
		case graph.Float:
			v, err := graph.Floats(x)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			r.floats[x.GetName()] = v
		case graph.Int64:
			v, err := graph.Int64s(x)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			r.int64s[x.GetName()] = v
		default:
			t.Fatalf("%s: tensor %s has data type %v", path, x.GetName(), x.GetDataType())
		}
	}
	num := func(key string) float64 {
		v, err := strconv.ParseFloat(r.meta[key], 64)
		if err != nil {
			t.Fatalf("%s: metadata %s=%q: %v", path, key, r.meta[key], err)
		}
		return v
	}
	r.steps = int(num("steps"))
	r.batch = int(num("batch_size"))
	r.lr = float32(num("lr"))
	r.options = compiler.Options{
		Momentum:             float32(num("momentum")),
		Nesterov:             r.meta["nesterov"] == "true",
		WeightDecay:          float32(num("weight_decay")),
		NoDecayOnBiasAndNorm: r.meta["decay_bias_bn"] != "true",
		LabelSmoothing:       float32(num("label_smoothing")),
	}
	r.lrs = make([]float32, r.steps)
	for k := range r.lrs {
		r.lrs[k] = r.lr
	}
	if r.meta["optimizer"] == "" {
		return r
	}
	// Adam variants: optimizer, warmup (lrs), clipping, groups, frozen.
	if r.options.Optimizer, err = compiler.ParseOptimizer(r.meta["optimizer"]); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r.options.GradClip = float32(num("grad_clip"))
	r.options.Eps = float32(num("eps"))
	if f := r.meta["freeze"]; f != "" {
		r.options.Freeze = strings.Split(f, ",")
	}
	for _, g := range strings.Split(r.meta["groups"], ";") {
		if g == "" {
			continue
		}
		f := strings.Split(g, ":")
		scale, err1 := strconv.ParseFloat(f[1], 32)
		wd, err2 := strconv.ParseFloat(f[2], 32)
		if len(f) != 3 || err1 != nil || err2 != nil {
			t.Fatalf("%s: group %q: want PATTERN:LR_SCALE:WEIGHT_DECAY", path, g)
		}
		wd32 := float32(wd)
		r.options.Groups = append(r.options.Groups, compiler.ParamGroup{Match: f[0], LRScale: float32(scale), WeightDecay: &wd32})
	}
	// PyTorch's LinearLR(start_factor 1/(W+1), total_iters W), one step
	// per epoch, must be the warmup critlab documents: lr·min(e+1, W+1)/(W+1).
	warm := num("warmup_epochs")
	lrs := strings.Split(r.meta["lrs"], ",")
	if len(lrs) != r.steps {
		t.Fatalf("%s: %d lrs for %d steps", path, len(lrs), r.steps)
	}
	for k, s := range lrs {
		v, err := strconv.ParseFloat(s, 64)
		want := num("lr") * min(float64(k+1), warm+1) / (warm + 1)
		if err != nil || math.Abs(v-want) > 1e-12*want {
			t.Fatalf("%s: step %d: PyTorch lr %s, want warmup lr %v", path, k+1, s, want)
		}
		r.lrs[k] = float32(v)
	}
	return r
}

// noise is the fixture's recorded float32 noise for a tensor class.
func (r *torchRef) noise(class string) float64 {
	v, err := strconv.ParseFloat(r.meta["f32err_"+class], 64)
	if err != nil {
		return 0
	}
	return v
}

// isRefScalarOrInput reports whether a fixture tensor is a step input or a
// scalar result rather than an expected training-state tensor.
func isRefScalarOrInput(name string) bool {
	for _, p := range []string{"images_", "labels_", "loss_", "correct_", "eval_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func stateClass(name string) string {
	switch {
	case strings.HasSuffix(name, ".mom"), strings.HasSuffix(name, ".exp_avg"), strings.HasSuffix(name, ".exp_avg_sq"), name == compiler.StepCount:
		return "mom"
	case strings.HasSuffix(name, "running_mean"), strings.HasSuffix(name, "running_var"):
		return "stats"
	}
	return "params"
}

// scaledErr is max|got-want| / max(max|want|, 1e-3), the measure the
// fixture's f32err values use.
func scaledErr(got, want []float32) (err float64, at int) {
	var diff, scale float64
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > diff || math.IsNaN(d) {
			diff, at = d, i
		}
		scale = max(scale, math.Abs(float64(want[i])))
	}
	return diff / max(scale, 1e-3), at
}

func TestTorchReference(t *testing.T) {
	refs, err := filepath.Glob(filepath.Join("testdata", "torch", "*.ref.onnx"))
	if err != nil || len(refs) == 0 {
		t.Fatalf("no fixtures in testdata/torch (%v); make them with tools/make_reference.py", err)
	}
	sort.Strings(refs)
	rt := openRuntime(t)
	for _, path := range refs {
		name := strings.TrimSuffix(filepath.Base(path), ".ref.onnx")
		t.Run(name, func(t *testing.T) {
			checkTorchRef(t, rt, path)
		})
	}
}

func checkTorchRef(t *testing.T, rt *harness.Runtime, path string) {
	ref := loadTorchRef(t, path)
	forward, err := graph.Load(filepath.Join(filepath.Dir(path), ref.meta["forward"]))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := harness.NewTrainer(rt, forward, harness.TrainerOptions{Compile: ref.options, BatchSize: ref.batch})
	if err != nil {
		t.Fatalf("NewTrainer(%+v): %v", ref.options, err)
	}
	defer tr.Close()
	initial := map[string][]float32{}
	for _, x := range forward.GetGraph().GetInitializer() {
		if v, err := graph.Floats(x); err == nil {
			initial[x.GetName()] = v
		}
	}

	for k := 1; k <= ref.steps; k++ {
		images, labels := ref.floats[fmt.Sprintf("images_%d", k)], ref.int64s[fmt.Sprintf("labels_%d", k)]
		if images == nil || labels == nil {
			t.Fatalf("fixture lacks images_%d or labels_%d", k, k)
		}
		loss, correct, err := tr.Step(images, labels, ref.lrs[k-1])
		if err != nil {
			t.Fatalf("step %d: %v", k, err)
		}
		wantLoss := ref.floats[fmt.Sprintf("loss_%d", k)][0]
		wantCorrect := ref.int64s[fmt.Sprintf("correct_%d", k)][0]
		lossErr := math.Abs(float64(loss)-float64(wantLoss)) / max(math.Abs(float64(wantLoss)), 1e-3)
		if lossErr > max(tolLoss, noiseMult*ref.noise("loss")) {
			t.Errorf("step %d: loss %.8g, PyTorch %.8g (relative error %.2g)", k, loss, wantLoss, lossErr)
		}
		if correct != wantCorrect {
			t.Errorf("step %d: correct %d, PyTorch %d", k, correct, wantCorrect)
		}
	}

	got := tr.Params()
	tol := map[string]float64{"params": tolParams, "stats": tolStats, "mom": tolMom}
	worst := map[string]float64{}
	var names []string
	for name := range ref.floats {
		if !isRefScalarOrInput(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		want := ref.floats[name]
		class := stateClass(name)
		g, ok := got[name]
		if !ok && slices.ContainsFunc(ref.options.Freeze, func(p string) bool { m, _ := filepath.Match(p, name); return m }) {
			if !slices.Equal(want, initial[name]) {
				t.Errorf("%s: frozen, yet PyTorch changed it", name)
			}
			continue
		}
		if !ok {
			t.Errorf("%s (%s): not in the trainer's state", name, class)
			continue
		}
		if len(g) != len(want) {
			t.Errorf("%s: %d values, PyTorch %d (dims %v)", name, len(g), len(want), ref.dims[name])
			continue
		}
		e, at := scaledErr(g, want)
		worst[class] = max(worst[class], e)
		if limit := max(tol[class], noiseMult*ref.noise(class)); !(e <= limit) {
			t.Errorf("%s: scaled error %.3g > %.3g: element %d is %.8g, PyTorch %.8g", name, e, limit, at, g[at], want[at])
		}
	}
	for name := range got {
		if _, ok := ref.floats[name]; !ok {
			if stateClass(name) == "mom" && ref.options.Momentum == 0 {
				continue // PyTorch keeps no buffer without momentum
			}
			t.Errorf("trainer state %s: not in the PyTorch reference", name)
		}
	}

	// Eval graph: running statistics, no label smoothing, on the first batch.
	done := false
	res, err := tr.Evaluate(func() ([]float32, []int64, bool, error) {
		if done {
			return nil, nil, false, nil
		}
		done = true
		return ref.floats["images_1"], ref.int64s["labels_1"], true, nil
	})
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	wantEval := float64(ref.floats["eval_loss"][0])
	if e := math.Abs(res.Loss-wantEval) / max(math.Abs(wantEval), 1e-3); e > max(tolLoss, noiseMult*ref.noise("loss")) {
		t.Errorf("eval loss %.8g, PyTorch %.8g (relative error %.2g)", res.Loss, wantEval, e)
	}
	if wantAcc := float64(ref.int64s["eval_correct"][0]) / float64(res.N); res.Accuracy != wantAcc {
		t.Errorf("eval accuracy %v, PyTorch %v", res.Accuracy, wantAcc)
	}
	t.Logf("%d steps, %d tensors; worst scaled error params %.2g (PyTorch f32 noise %s), stats %.2g (%s), mom %.2g (%s)",
		ref.steps, len(names), worst["params"], ref.meta["f32err_params"], worst["stats"], ref.meta["f32err_stats"],
		worst["mom"], ref.meta["f32err_mom"])
}
