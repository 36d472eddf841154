package runs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/critlab/critlab/harness/device"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/zoo"
	"github.com/critlab/critlab/preprocessing"

	"gopkg.in/yaml.v3"
)

// Config is one training run, resolved from defaults < config file < flags.
// The YAML keys are the snake_case names shown in the struct tags; zero
// values mean what each field's comment says, so a config file need only
// name what differs from Default.
type Config struct {
	// Model is a zoo name (allcnn, resnet18, small) or the path of an .onnx
	// forward model (N×3×H×W float32 in, N×classes logits out).
	Model string `yaml:"model"`
	// Width multiplies a zoo model's channel counts; 0 means 1. A model
	// file has its own channels: width must then be 1 (or 0) in new runs
	// (see checkEffect).
	Width float64 `yaml:"width"`
	// Data is the data set spec for preprocessing.Open: "cifar10",
	// "synthetic", or the path of a data set archive.
	Data string `yaml:"data"`
	// TrainSubset trains on the first N training images; 0 means all.
	// Written subset; train_subset, its old name, is still read (and
	// hashed, see Hash).
	TrainSubset int `yaml:"subset"`
	// Epochs is the total number of epochs, counted from 0.
	Epochs int `yaml:"epochs"`
	// BatchSize is the training batch size (the last partial batch is
	// dropped, so every step sees the same number of images).
	BatchSize int `yaml:"batch_size"`

	// LR is the initial learning rate lr0.
	LR float64 `yaml:"lr"`
	// LRSchedule is constant (the zero value ""), step, exp or cosine; see
	// LearningRate.
	LRSchedule string `yaml:"lr_schedule"`
	// LRDecay is the factor of exp (per epoch, lr0 × decay^epoch) and step
	// (per LRStep epochs) schedules; 0 means 0.97 for exp, 0.1 for step.
	// Default's 0.97 is exp's: a config that switches to step must set it
	// (see ParseConfig). New runs of constant and cosine take no other value
	// than 0 or Default's (see checkEffect).
	LRDecay float64 `yaml:"lr_decay"`
	// LRStep is the step schedule's period in epochs (step only).
	LRStep int `yaml:"lr_step"`
	// RestartAtDeficitEnd restarts the schedule (epoch counter back to 0)
	// at the end of each deficit window. Allowed without windows (a
	// sweep's arms share it, the no-deficit arm included); Notes says so.
	RestartAtDeficitEnd bool `yaml:"restart_at_deficit_end"`

	// Momentum is SGD momentum (PyTorch semantics); 0 means plain SGD.
	Momentum float64 `yaml:"momentum"`
	// Nesterov selects Nesterov momentum.
	Nesterov bool `yaml:"nesterov"`
	// WeightDecay is the L2 coefficient added to gradients.
	WeightDecay float64 `yaml:"weight_decay"`
	// NoDecayOnBiasAndNorm exempts biases and BatchNorm parameters from
	// weight decay.
	NoDecayOnBiasAndNorm bool `yaml:"no_decay_bias_norm"`
	// LabelSmoothing is torch.nn.CrossEntropyLoss's label_smoothing.
	LabelSmoothing float64 `yaml:"label_smoothing"`
	// Optimizer is sgd (the zero value ""), adam or adamw, with PyTorch's
	// semantics; Adam's betas and eps are PyTorch's defaults (0.9, 0.999,
	// 1e-8) and momentum and nesterov apply to SGD only. weight_decay is
	// L2 for sgd and adam, decoupled for adamw.
	Optimizer string `yaml:"optimizer,omitempty"`
	// WarmupEpochs ramps the learning rate of any schedule up linearly
	// over the first W epochs (W < Epochs in new runs, see checkEffect):
	// epoch e < W trains at (e+1)/(W+1) of it.
	WarmupEpochs int `yaml:"warmup_epochs,omitempty"`
	// GradClip, when positive, clips the gradients to this global L2 norm
	// before each step (torch.nn.utils.clip_grad_norm_).
	GradClip float64 `yaml:"grad_clip,omitempty"`
	// ParamGroups give parameters matching a pattern their own lr factor
	// and weight decay (a fine-tuned head beside the backbone); the first
	// matching group applies.
	ParamGroups []ParamGroup `yaml:"param_groups,omitempty"`

	// Seed drives initialisation, shuffling, augmentation and deficits;
	// every random choice is a function of (seed, epoch, sample).
	Seed int64 `yaml:"seed"`
	// Device is cpu (the zero value "") or cuda / cuda:N.
	Device string `yaml:"device"`
	// CUDA pins the CUDA provider's settings that change speed and
	// reproducibility (cuDNN algorithm search, TF32, memory limit,
	// deterministic compute); ignored on the CPU.
	CUDA device.CUDAOptions `yaml:"cuda,omitempty"`
	// Threads is ONNX Runtime's intra-op thread count; 0 means one per
	// core. Not part of the config hash, but part of the arithmetic (CPU
	// kernels split sums by thread): config.yaml records the count a run
	// started with, and a resume keeps it (see Run).
	Threads int `yaml:"threads"`
	// Workers is the number of data-loader goroutines; 0 means 1. Batches
	// are identical for any value. Not part of the config hash.
	Workers int `yaml:"workers"`

	// Deficits are the windows during which training images are
	// corrupted; outside them the clean training set is used. Windows
	// must lie inside [0, Epochs] and must not overlap.
	Deficits []Window `yaml:"deficits"`

	// InitFrom starts training from the parameters and BatchNorm
	// statistics (not the optimizer state) of a run directory (its
	// model.onnx, else its latest checkpoint), a checkpoint file or an
	// .onnx model; empty means random initialisation. A relative path is
	// relative to Options.Root (a sweep's runs name their parents relative
	// to the sweep directory).
	InitFrom string `yaml:"init_from"`
	// Freeze lists parameter-name patterns (path.Match globs such as
	// "conv1.*" or "fc.bias") whose parameters are not trained.
	Freeze []string `yaml:"freeze"`

	// Augment selects training-time augmentation.
	Augment Augment `yaml:"augment"`

	// KeepCheckpoints lists epochs E whose checkpoint (the state after
	// epochs 0..E-1, i.e. at the start of epoch E) is kept beside the
	// latest one; sweeps that branch from a run use them.
	KeepCheckpoints []int `yaml:"keep_checkpoints"`

	// Fisher configures the Fisher-information trace estimate; off when
	// Every is 0.
	Fisher FisherConfig `yaml:"fisher"`

	// EvalEvery evaluates on the test set at the end of every EvalEvery-th
	// epoch and of the last one; the other epochs log no test metrics
	// (null). 0 means every epoch. Test evaluation changes no training
	// state, so it changes no other metric.
	EvalEvery int `yaml:"eval_every,omitempty"`

	// BranchFrom, with BranchEpoch E > 0, starts this run from the parent
	// run directory's checkpoint at epoch E (full state, optimizer
	// included) and its metrics for epochs < E, instead of training those
	// epochs again. The parent must have trained epochs < E exactly as
	// this config would (same data, deficits, schedule). Sweeps set it,
	// relative to the sweep directory (see InitFrom).
	BranchFrom  string `yaml:"branch_from"`
	BranchEpoch int    `yaml:"branch_epoch"`
}

// ParamGroup is one entry of param_groups.
type ParamGroup struct {
	// Match is a path.Match glob over parameter names, e.g. "fc.*".
	Match string `yaml:"match"`
	// LRScale multiplies the learning rate of the group; unset means 1.
	LRScale *float64 `yaml:"lr_scale,omitempty"`
	// WeightDecay replaces weight_decay for the group when set
	// (no_decay_bias_norm still exempts its biases and norms).
	WeightDecay *float64 `yaml:"weight_decay,omitempty"`
}

// Window is a deficit applied during epochs [Start, End).
type Window struct {
	// Deficit is a preprocessing deficit spec (e.g. "blur", "vflip").
	Deficit string `yaml:"deficit"`
	// Start is the first epoch of the window.
	Start int `yaml:"start"`
	// End is the first epoch after the window (exclusive).
	End int `yaml:"end"`
}

// String formats the window as in the deficit_windows column: blur:0-40.
func (w Window) String() string { return fmt.Sprintf("%s:%d-%d", w.Deficit, w.Start, w.End) }

// Augment selects training-time augmentation; both off is no augmentation.
type Augment struct {
	// HFlip flips images horizontally with probability 1/2.
	HFlip bool `yaml:"hflip"`
	// Crop pads images by 4 pixels and crops them back at random.
	Crop bool `yaml:"crop"`
}

// FisherConfig sets up the Fisher-information estimate at the end of every
// Every-th epoch, the last, and the epochs before a deficit window starts or
// ends.
type FisherConfig struct {
	// Images is how many clean training images (the first ones, the same
	// every epoch) the estimate averages over.
	Images int `yaml:"images"`
	// Samples is how many labels are sampled from the model's output per
	// image.
	Samples int `yaml:"samples"`
	// Every is the period in epochs; 0 disables the estimate (and then
	// images and samples must be 0 too in new runs, see checkEffect).
	Every int `yaml:"every"`
}

// Schedules the LRSchedule field accepts.
var schedules = []string{"constant", "step", "exp", "cosine"}

// Default is the recipe of Achille et al. (2019): All-CNN on CIFAR-10,
// SGD with momentum 0.9, lr 0.075 decayed by 0.97 per epoch, weight decay
// 5e-4, batch 128, random crops and flips, 160 epochs.
func Default() Config {
	return Config{
		Model:       "allcnn",
		Width:       1,
		Data:        "cifar10",
		Epochs:      160,
		BatchSize:   128,
		LR:          0.075,
		LRSchedule:  "exp",
		LRDecay:     0.97,
		Momentum:    0.9,
		WeightDecay: 5e-4,
		Device:      "cpu",
		Augment:     Augment{HFlip: true, Crop: true},
	}
}

// LoadConfig reads a YAML config file over base (normally Default()).
// Unknown keys are errors, so a typo cannot silently fall back to a default.
func LoadConfig(path string, base Config) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return base, fmt.Errorf("load config: %w", err)
	}
	cfg, err := ParseConfig(data, base)
	if err != nil {
		return base, fmt.Errorf("load config %s: %w", path, err)
	}
	return cfg, nil
}

// configAliases are the old spellings of config keys, still read.
var configAliases = map[string]string{"train_subset": "subset"}

// ParseConfig decodes YAML over base. A document that switches the schedule
// to step without lr_decay is refused when it would inherit another
// schedule's factor (CheckStepDecay).
func ParseConfig(data []byte, base Config) (Config, error) {
	cfg := base
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	// Lists replace rather than extend the base's lists.
	cfg.Deficits, cfg.Freeze, cfg.KeepCheckpoints, cfg.ParamGroups = nil, nil, nil, nil
	if err := decodeStrict(data, &cfg, nil, configAliases); err != nil {
		return base, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if err := CheckStepDecay(base, cfg, mentions(data, "lr_decay"), "lr_decay"); err != nil {
		return base, err
	}
	if !mentions(data, "deficits") {
		cfg.Deficits = base.Deficits
	}
	if !mentions(data, "freeze") {
		cfg.Freeze = base.Freeze
	}
	if !mentions(data, "keep_checkpoints") {
		cfg.KeepCheckpoints = base.KeepCheckpoints
	}
	if !mentions(data, "param_groups") {
		cfg.ParamGroups = base.ParamGroups
	}
	// Empty lists are nil, so that a config survives a YAML round trip.
	if len(cfg.Deficits) == 0 {
		cfg.Deficits = nil
	}
	if len(cfg.Freeze) == 0 {
		cfg.Freeze = nil
	}
	if len(cfg.KeepCheckpoints) == 0 {
		cfg.KeepCheckpoints = nil
	}
	if len(cfg.ParamGroups) == 0 {
		cfg.ParamGroups = nil
	}
	return cfg, nil
}

// CheckStepDecay refuses a switch from another schedule in from to step in
// to that leaves lr_decay as it was (decaySet false): that factor belongs to
// the other schedule (Default's 0.97 is exp's) while step's documented
// default is 0.1, PyTorch's StepLR gamma. key is how the user sets it
// (lr_decay, --lr-decay). Configs that set lr_decay, as every step preset
// does, and resolved configs (step already, or lr_decay written out) pass.
func CheckStepDecay(from, to Config, decaySet bool, key string) error {
	if to.LRSchedule != "step" || from.LRSchedule == "step" || decaySet || to.LRDecay == 0 {
		return nil
	}
	return fmt.Errorf("%w: lr_schedule step would keep lr_decay %v, the factor of the %s schedule it replaces: set %s (0.1 is PyTorch's StepLR gamma, also what 0 means)",
		ErrInvalidConfig, to.LRDecay, orDefault(from.LRSchedule, "constant"), key)
}

// mentions reports whether the YAML document has a top-level key.
func mentions(data []byte, key string) bool {
	var m map[string]any
	if yaml.Unmarshal(data, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}

// YAML is the config as written to config.yaml.
func (c Config) YAML() []byte {
	out, err := yaml.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("runs: marshal config: %v", err)) // plain data: cannot fail
	}
	return out
}

// EvalDue reports whether the run evaluates on the test set at the end of
// epoch (see EvalEvery).
func (c Config) EvalDue(epoch int) bool {
	return c.EvalEvery <= 1 || (epoch+1)%c.EvalEvery == 0 || epoch == c.Epochs-1
}

// Hash is the first 16 hex digits of the SHA-256 of the config's YAML with
// the fields that do not change results (Threads, Workers) cleared, and
// renamed keys under their old names (hashKeys), so a hash never changes
// for settings that did not.
func (c Config) Hash() string {
	c.Threads, c.Workers = 0, 0
	sum := sha256.Sum256(legacyYAML(c.YAML()))
	return hex.EncodeToString(sum[:])[:16]
}

// Validate checks the config on its own, without opening models or data
// (see Check for that). Errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.TrimSpace(c.Model) == "":
		return bad("model is empty (a zoo name such as allcnn, or an .onnx path)")
	case strings.TrimSpace(c.Data) == "":
		return bad("data is empty (cifar10, synthetic or an archive path)")
	case c.Width < 0 || math.IsNaN(c.Width) || math.IsInf(c.Width, 0):
		return bad("width %v must be positive (0 means 1)", c.Width)
	case c.TrainSubset < 0:
		return bad("subset %d is negative (0 means the whole training set)", c.TrainSubset)
	case c.Epochs <= 0:
		return bad("epochs %d must be at least 1", c.Epochs)
	case c.BatchSize <= 0:
		return bad("batch_size %d must be at least 1", c.BatchSize)
	case c.TrainSubset > 0 && c.TrainSubset < c.BatchSize:
		return bad("subset %d is smaller than batch_size %d: no full batch to train on", c.TrainSubset, c.BatchSize)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return bad("lr %v must be positive", c.LR)
	case c.LRDecay < 0 || c.LRDecay > 1 || math.IsNaN(c.LRDecay):
		return bad("lr_decay %v must be in (0, 1] (0 means the schedule's default)", c.LRDecay)
	case !(c.Momentum >= 0 && c.Momentum < 1):
		return bad("momentum %v must be in [0, 1)", c.Momentum)
	case c.Nesterov && c.Momentum == 0:
		return bad("nesterov needs momentum > 0")
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return bad("weight_decay %v must be >= 0", c.WeightDecay)
	case !(c.LabelSmoothing >= 0 && c.LabelSmoothing < 1):
		return bad("label_smoothing %v must be in [0, 1)", c.LabelSmoothing)
	case c.WarmupEpochs < 0:
		return bad("warmup_epochs %d is negative", c.WarmupEpochs)
	case !(c.GradClip >= 0) || math.IsInf(c.GradClip, 0):
		return bad("grad_clip %v must be >= 0 (0: no clipping)", c.GradClip)
	case c.Threads < 0:
		return bad("threads %d is negative (0 means one per core)", c.Threads)
	case c.Workers < 0:
		return bad("workers %d is negative", c.Workers)
	}
	switch c.LRSchedule {
	case "", "constant", "exp", "cosine":
	case "step":
		if c.LRStep <= 0 {
			return bad("lr_schedule step needs lr_step > 0 (epochs between decays)")
		}
	default:
		return bad("lr_schedule %q: want one of %s", c.LRSchedule, strings.Join(schedules, ", "))
	}
	if _, err := device.Parse(c.Device); err != nil {
		return bad("%v", err)
	}
	if err := c.validateWindows(); err != nil {
		return bad("%v", err)
	}
	opt, err := compiler.ParseOptimizer(c.Optimizer)
	if err != nil {
		return bad("%v", err)
	}
	// Momentum keeps its SGD default under Adam; any other value would be
	// silently unused.
	if opt != compiler.SGD && (c.Nesterov || (c.Momentum != 0 && c.Momentum != Default().Momentum)) {
		return bad("momentum %v and nesterov are SGD's; optimizer %s uses PyTorch's betas (0.9, 0.999): remove them", c.Momentum, opt)
	}
	for i, g := range c.ParamGroups {
		if _, err := path.Match(g.Match, ""); err != nil || g.Match == "" {
			return bad("param_groups[%d]: match %q must be a glob over parameter names such as \"fc.*\"", i, g.Match)
		}
		if s := g.LRScale; s != nil && !(*s > 0 && !math.IsInf(*s, 0)) {
			return bad("param_groups[%d] %s: lr_scale %v must be positive (use freeze not to train)", i, g.Match, *s)
		}
		if wd := g.WeightDecay; wd != nil && !(*wd >= 0 && !math.IsInf(*wd, 0)) {
			return bad("param_groups[%d] %s: weight_decay %v must be >= 0", i, g.Match, *wd)
		}
	}
	for _, p := range c.Freeze {
		if _, err := path.Match(p, ""); err != nil {
			return bad("freeze pattern %q: %v", p, err)
		}
	}
	if len(c.Freeze) > 0 && c.InitFrom == "" {
		return bad("freeze needs init_from: frozen random weights are never trained")
	}
	for _, e := range c.KeepCheckpoints {
		if e < 0 || e > c.Epochs {
			return bad("keep_checkpoints: epoch %d is outside [0, %d]", e, c.Epochs)
		}
	}
	if c.EvalEvery < 0 {
		return bad("eval_every %d is negative (0 means every epoch)", c.EvalEvery)
	}
	f := c.Fisher
	if f.Every < 0 || f.Images < 0 || f.Samples < 0 {
		return bad("fisher: images, samples and every must be >= 0")
	}
	if f.Every > 0 && (f.Images == 0 || f.Samples == 0) {
		return bad("fisher.every %d needs fisher.images and fisher.samples > 0", f.Every)
	}
	if c.InitFrom != "" {
		if _, err := os.Stat(c.InitFrom); err != nil {
			return bad("init_from: %v", err)
		}
	}
	if (c.BranchFrom == "") != (c.BranchEpoch == 0) {
		return bad("branch_from and branch_epoch go together (branch_from %q, branch_epoch %d)", c.BranchFrom, c.BranchEpoch)
	}
	if c.BranchFrom != "" && (c.BranchEpoch < 1 || c.BranchEpoch > c.Epochs) {
		return bad("branch_epoch %d must be in [1, %d]", c.BranchEpoch, c.Epochs)
	}
	if c.BranchFrom != "" && c.InitFrom != "" {
		return bad("branch_from and init_from exclude each other")
	}
	return nil
}

func (c Config) validateWindows() error {
	ws := append([]Window(nil), c.Deficits...)
	for i, w := range ws {
		d, err := preprocessing.ParseDeficit(w.Deficit)
		if errors.Is(err, preprocessing.ErrUnknownDeficit) {
			return fmt.Errorf("deficits[%d]: %w", i, err) // the error lists the deficits
		}
		if err != nil {
			return fmt.Errorf("deficits[%d]: %w (known: %s)", i, err, preprocessing.DeficitUsage)
		}
		if d.Kind == "none" { // also "", "none:", " none"
			return fmt.Errorf("deficits[%d]: empty deficit %q (leave the window out for none; sham is a window that changes nothing)", i, w.Deficit)
		}
		if w.Start < 0 || w.End > c.Epochs || w.Start >= w.End {
			return fmt.Errorf("deficits[%d] %s: window must satisfy 0 <= start < end <= epochs (%d)", i, w, c.Epochs)
		}
	}
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].Start < ws[j].Start })
	for i := 1; i < len(ws); i++ {
		if ws[i].Start < ws[i-1].End {
			return fmt.Errorf("deficits %s and %s overlap", ws[i-1], ws[i])
		}
	}
	return nil
}

// checkEffect refuses the settings of c that have no effect, rather than
// record them as if they mattered. It applies to runs not on disk yet
// (CheckNew, CheckPlan): these refusals came after runs were written with
// such settings, which keep resuming under the hash they started with (see
// Run). span is the length the warmup must end within: the run's epochs, or
// for a run that other runs of a sweep continue (a trunk, a pretraining run)
// the longest of those, which it is the start of.
func (c Config) checkEffect(span int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	// Default's lr_decay is in every resolved config.
	sched := orDefault(c.LRSchedule, "constant")
	f := c.Fisher
	switch {
	case c.LRStep != 0 && sched != "step":
		return bad("lr_step %d: only the step schedule reads it, not %s: remove it", c.LRStep, sched)
	case (sched == "constant" || sched == "cosine") && c.LRDecay != 0 && c.LRDecay != Default().LRDecay:
		return bad("lr_decay %v: the %s schedule has no decay factor (exp and step do): set lr_decay: 0 (--lr-decay 0), which every schedule reads as its default", c.LRDecay, sched)
	case c.WarmupEpochs > 0 && c.WarmupEpochs >= span:
		return bad("warmup_epochs %d is not below epochs %d: the warmup would never end (lower it)", c.WarmupEpochs, span)
	case f.Every == 0 && (f.Images > 0 || f.Samples > 0):
		return bad("fisher.images %d and fisher.samples %d with fisher.every 0 estimate nothing: set fisher.every (1: every epoch, as --fisher does) or remove fisher (--fisher 0)", f.Images, f.Samples)
	case c.Width != 0 && c.Width != 1 && !slices.Contains(zoo.Names(), c.Model):
		return bad("width %v: model %s is not a zoo model (%s) and a model file has channels of its own: remove width or set it to 1",
			c.Width, c.Model, strings.Join(zoo.Names(), ", "))
	}
	return nil
}

// Notes lists the settings of a valid config that have no effect in it but
// are allowed, for the train command to print.
func (c Config) Notes() []string {
	var notes []string
	if c.RestartAtDeficitEnd && len(c.Deficits) == 0 {
		notes = append(notes, "restart_at_deficit_end has no effect: there is no deficit window to restart the lr schedule at")
	}
	return notes
}

// ActiveWindow returns the deficit window containing epoch, if any.
func (c Config) ActiveWindow(epoch int) (Window, bool) {
	for _, w := range c.Deficits {
		if epoch >= w.Start && epoch < w.End {
			return w, true
		}
	}
	return Window{}, false
}

// DeficitWindows formats all windows in start order, e.g.
// "blur:0-40,vflip:60-80", or "none".
func (c Config) DeficitWindows() string {
	if len(c.Deficits) == 0 {
		return "none"
	}
	ws := c.sortedWindows()
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return strings.Join(parts, ",")
}

func (c Config) sortedWindows() []Window {
	ws := append([]Window(nil), c.Deficits...)
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].Start < ws[j].Start })
	return ws
}

// ParseEpochs parses a window's epochs as "start-end" (end exclusive),
// the form logs and files write (blur:0-40); "start:end" is accepted too.
func ParseEpochs(s string) (start, end int, err error) {
	sep := "-"
	if strings.Contains(s, ":") {
		sep = ":"
	}
	a, b, ok := strings.Cut(strings.TrimSpace(s), sep)
	if ok {
		start, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			end, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("%w: deficit epochs %q: want START-END (end exclusive), e.g. 0-40", ErrInvalidConfig, s)
	}
	return start, end, nil
}

// CompileOptions are the loss and optimizer settings of the config as the
// compiler takes them.
func (c Config) CompileOptions() compiler.Options {
	opt, _ := compiler.ParseOptimizer(c.Optimizer) // checked by Validate
	o := compiler.Options{
		Optimizer:            opt,
		LabelSmoothing:       float32(c.LabelSmoothing),
		WeightDecay:          float32(c.WeightDecay),
		NoDecayOnBiasAndNorm: c.NoDecayOnBiasAndNorm,
		GradClip:             float32(c.GradClip),
		Freeze:               c.Freeze,
	}
	if opt == compiler.SGD {
		o.Momentum, o.Nesterov = float32(c.Momentum), c.Nesterov
	}
	for _, g := range c.ParamGroups {
		pg := compiler.ParamGroup{Match: g.Match, LRScale: 1}
		if g.LRScale != nil {
			pg.LRScale = float32(*g.LRScale)
		}
		if g.WeightDecay != nil {
			pg.WeightDecay = new(float32(*g.WeightDecay))
		}
		o.Groups = append(o.Groups, pg)
	}
	return o
}
