package runs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tiny() Config {
	c := Default()
	c.Model, c.Data, c.Epochs, c.BatchSize = "small", "synthetic", 10, 16
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" means valid
	}{
		{"default", func(c *Config) {}, ""},
		{"window", func(c *Config) { c.Deficits = []Window{{"blur", 0, 4}} }, ""},
		{"two windows", func(c *Config) { c.Deficits = []Window{{"vflip", 6, 10}, {"blur", 0, 6}} }, ""},
		{"window past end", func(c *Config) { c.Deficits = []Window{{"blur", 0, 11}} }, "0 <= start < end <= epochs (10)"},
		{"negative start", func(c *Config) { c.Deficits = []Window{{"blur", -1, 4}} }, "0 <= start"},
		{"empty window", func(c *Config) { c.Deficits = []Window{{"blur", 4, 4}} }, "start < end"},
		{"overlap", func(c *Config) { c.Deficits = []Window{{"blur", 0, 5}, {"vflip", 4, 8}} }, "blur:0-5 and vflip:4-8 overlap"},
		{"no deficit name", func(c *Config) { c.Deficits = []Window{{"", 0, 4}} }, "empty deficit"},
		{"epochs", func(c *Config) { c.Epochs = 0 }, "epochs 0"},
		{"batch", func(c *Config) { c.BatchSize = 0 }, "batch_size 0"},
		{"subset < batch", func(c *Config) { c.TrainSubset = 8 }, "subset 8 is smaller"},
		{"lr", func(c *Config) { c.LR = 0 }, "lr 0 must be positive"},
		{"lr nan", func(c *Config) { c.LR = math.NaN() }, "must be positive"},
		{"schedule", func(c *Config) { c.LRSchedule = "poly" }, `lr_schedule "poly"`},
		{"step needs period", func(c *Config) { c.LRSchedule = "step" }, "lr_step > 0"},
		{"momentum", func(c *Config) { c.Momentum = 1 }, "momentum 1"},
		{"nesterov", func(c *Config) { c.Momentum, c.Nesterov = 0, true }, "nesterov needs momentum"},
		{"smoothing", func(c *Config) { c.LabelSmoothing = 1 }, "label_smoothing"},
		{"device", func(c *Config) { c.Device = "tpu" }, `device "tpu"`},
		{"cuda:1", func(c *Config) { c.Device = "cuda:1" }, ""},
		{"cuda:x", func(c *Config) { c.Device = "cuda:x" }, `device "cuda:x"`},
		{"freeze regexp", func(c *Config) { c.InitFrom, c.Freeze = ".", []string{"["} }, `freeze pattern "["`},
		{"freeze without init", func(c *Config) { c.Freeze = []string{"conv0.*"} }, "freeze needs init_from"},
		{"init missing", func(c *Config) { c.InitFrom = "/nonexistent/run" }, "init_from"},
		{"keep", func(c *Config) { c.KeepCheckpoints = []int{11} }, "keep_checkpoints: epoch 11"},
		{"fisher", func(c *Config) { c.Fisher.Every = 2 }, "fisher.every 2 needs"},
		{"branch half", func(c *Config) { c.BranchFrom = "x" }, "branch_from and branch_epoch go together"},
		{"branch epoch", func(c *Config) { c.BranchFrom, c.BranchEpoch = "x", 11 }, "branch_epoch 11 must be in [1, 10]"},
		{"model", func(c *Config) { c.Model = " " }, "model is empty"},
		{"adamw", func(c *Config) { c.Optimizer, c.WarmupEpochs, c.GradClip = "adamw", 2, 1 }, ""},
		{"optimizer", func(c *Config) { c.Optimizer = "lion" }, `optimizer "lion"`},
		{"adam momentum", func(c *Config) { c.Optimizer, c.Momentum = "adam", 0.95 }, "momentum 0.95 and nesterov are SGD's"},
		{"adam nesterov", func(c *Config) { c.Optimizer, c.Nesterov = "adam", true }, "are SGD's"},
		{"warmup", func(c *Config) { c.WarmupEpochs = -1 }, "warmup_epochs -1"},
		{"grad clip", func(c *Config) { c.GradClip = math.NaN() }, "grad_clip"},
		{"group", func(c *Config) {
			c.ParamGroups = []ParamGroup{{Match: "fc.*", LRScale: new(10.0), WeightDecay: new(0.0)}}
		}, ""},
		{"group match", func(c *Config) { c.ParamGroups = []ParamGroup{{Match: "["}} }, "param_groups[0]: match"},
		{"group scale", func(c *Config) { c.ParamGroups = []ParamGroup{{Match: "fc.*", LRScale: new(0.0)}} }, "lr_scale 0 must be positive"},
		{"group decay", func(c *Config) { c.ParamGroups = []ParamGroup{{Match: "fc.*", WeightDecay: new(-1.0)}} }, "weight_decay -1"},
		{"restart without windows", func(c *Config) { c.RestartAtDeficitEnd = true }, ""}, // a note, see TestNotes
		// Deficits are parsed: none in any spelling is no window.
		{"none window", func(c *Config) { c.Deficits = []Window{{"none", 0, 4}} }, "empty deficit"},
		{"none: window", func(c *Config) { c.Deficits = []Window{{"none:", 0, 4}} }, `empty deficit "none:"`},
		{"spaced none window", func(c *Config) { c.Deficits = []Window{{" none", 0, 4}} }, `empty deficit " none"`},
		{"unknown deficit", func(c *Config) { c.Deficits = []Window{{"sharpen", 0, 4}} }, `deficits[0]: parse deficit "sharpen"`},
		{"bad sigma", func(c *Config) { c.Deficits = []Window{{"gauss:sigma=0", 0, 4}} }, "gauss sigma 0"},
		{"blur size", func(c *Config) { c.Deficits = []Window{{"blur:size=4,up=lanczos", 0, 4}} }, ""},
		// A malformed parameter lists the deficits, as an unknown one does.
		{"blur size x", func(c *Config) { c.Deficits = []Window{{"blur:size=x", 0, 4}} }, "not an integer (known: none, blur"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tiny()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig containing %q", err, tc.want)
			}
		})
	}
}

// CheckNew refuses the settings that have no effect, unless at the value
// every resolved config holds (lr_decay 0.97, width 1, lr_step 0); Check,
// which runs on disk pass, accepts them (see TestResumeSettingsWithoutEffect).
func TestCheckNew(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" means valid
	}{
		{"fisher without every", func(c *Config) { c.Fisher = FisherConfig{Images: 500, Samples: 1} }, "set fisher.every (1: every epoch, as --fisher does) or remove fisher (--fisher 0)"},
		{"fisher samples only", func(c *Config) { c.Fisher.Samples = 1 }, "fisher.every 0 estimate nothing"},
		{"decay of cosine", func(c *Config) { c.LRSchedule, c.LRDecay = "cosine", 0.5 }, "lr_decay 0.5: the cosine schedule has no decay factor (exp and step do): set lr_decay: 0 (--lr-decay 0)"},
		{"decay of constant", func(c *Config) { c.LRSchedule, c.LRDecay = "", 0.9 }, "the constant schedule has no decay factor"},
		{"default decay of cosine", func(c *Config) { c.LRSchedule = "cosine" }, ""},
		{"default decay of constant", func(c *Config) { c.LRSchedule = "constant" }, ""},
		{"no decay of cosine", func(c *Config) { c.LRSchedule, c.LRDecay = "cosine", 0 }, ""},
		{"step of exp", func(c *Config) { c.LRStep = 30 }, "lr_step 30: only the step schedule reads it, not exp"},
		{"step of constant", func(c *Config) { c.LRSchedule, c.LRStep = "", 3 }, "not constant"},
		{"step", func(c *Config) { c.LRSchedule, c.LRStep, c.LRDecay = "step", 3, 0.1 }, ""},
		{"warmup of all epochs", func(c *Config) { c.WarmupEpochs = 10 }, "warmup_epochs 10 is not below epochs 10"},
		{"warmup", func(c *Config) { c.WarmupEpochs = 9 }, ""},
		{"width of a file", func(c *Config) { c.Model, c.Width = "m.onnx", 0.5 }, "width 0.5: model m.onnx is not a zoo model (allcnn, "},
		{"width of a path", func(c *Config) { c.Model, c.Width = "models/net", 2 }, "a model file has channels of its own: remove width or set it to 1"},
		{"width 1 of a file", func(c *Config) { c.Model, c.Width = "m.onnx", 1 }, ""},
		{"width 0 of a file", func(c *Config) { c.Model, c.Width = "m.onnx", 0 }, ""},
		{"width of a zoo model", func(c *Config) { c.Width = 0.5 }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tiny()
			tc.edit(&c)
			if err := Check(c, nil); err != nil {
				t.Fatalf("Check: %v", err)
			}
			err := CheckNew(c, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckNew: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("CheckNew = %v, want ErrInvalidConfig containing %q", err, tc.want)
			}
		})
	}
}

func TestNotes(t *testing.T) {
	c := tiny()
	c.RestartAtDeficitEnd = true
	if n := c.Notes(); len(n) != 1 || !strings.Contains(n[0], "restart_at_deficit_end has no effect") {
		t.Errorf("notes %q", n)
	}
	c.Deficits = []Window{{"blur", 0, 4}}
	if n := c.Notes(); len(n) != 0 {
		t.Errorf("notes %q, want none", n)
	}
}

// Default's lr_decay 0.97 is exp's; the help promises 0.1 for step. A
// document that switches to step without lr_decay is refused rather than
// decaying by 0.97; resolved configs and those that set it pass.
func TestStepScheduleNeedsItsDecay(t *testing.T) {
	tests := []struct {
		name, yaml string
		base       Config
		want       string // error substring; "" means accepted
		decay      float64
	}{
		{"step over exp", "lr_schedule: step\nlr_step: 30\n", Default(), "lr_schedule step would keep lr_decay 0.97, the factor of the exp schedule it replaces: set lr_decay", 0},
		{"step over constant", "lr_schedule: step\nlr_step: 30\n", Config{LRSchedule: "constant", LRDecay: 0.5}, "factor of the constant schedule", 0},
		{"step with decay", "lr_schedule: step\nlr_step: 30\nlr_decay: 0.1\n", Default(), "", 0.1},
		{"step with decay 0.97", "lr_schedule: step\nlr_step: 30\nlr_decay: 0.97\n", Default(), "", 0.97},
		{"step with decay 0", "lr_schedule: step\nlr_step: 30\nlr_decay: 0\n", Default(), "", 0},
		{"step over zero config", "lr_schedule: step\nlr_step: 30\n", Config{}, "", 0},
		{"step over step", "lr_step: 10\n", Config{LRSchedule: "step", LRStep: 30, LRDecay: 0.5}, "", 0.5},
		{"exp", "lr_schedule: exp\n", Default(), "", 0.97},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.yaml), tc.base)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil || c.LRDecay != tc.decay {
				t.Fatalf("lr_decay %v (%v), want %v", c.LRDecay, err, tc.decay)
			}
		})
	}
	// With lr_decay 0, step decays by 0.1 as the help says.
	c := Config{LR: 1, LRSchedule: "step", LRStep: 2}
	if got := c.LearningRate(2); got != 0.1 {
		t.Errorf("step lr at epoch 2 = %v, want 0.1", got)
	}
}

func TestParseConfig(t *testing.T) {
	base := tiny()
	base.Deficits = []Window{{"blur", 0, 2}}
	tests := []struct {
		name, yaml string
		check      func(t *testing.T, c Config)
		wantErr    string
	}{
		{"empty keeps base", "", func(t *testing.T, c Config) {
			if c.Hash() != base.Hash() {
				t.Errorf("config changed: %s", diffConfigs(base, c))
			}
		}, ""},
		{"override", "epochs: 20\nlr: 0.1\ndeficits:\n  - {deficit: vflip, start: 3, end: 5}\n", func(t *testing.T, c Config) {
			if c.Epochs != 20 || c.LR != 0.1 || len(c.Deficits) != 1 || c.Deficits[0] != (Window{"vflip", 3, 5}) {
				t.Errorf("got %+v", c)
			}
			if c.BatchSize != base.BatchSize {
				t.Errorf("batch size %d, want base %d", c.BatchSize, base.BatchSize)
			}
		}, ""},
		{"keeps lists not named", "epochs: 20\n", func(t *testing.T, c Config) {
			if len(c.Deficits) != 1 {
				t.Errorf("deficits %v, want base's", c.Deficits)
			}
		}, ""},
		{"clears list", "deficits: []\n", func(t *testing.T, c Config) {
			if len(c.Deficits) != 0 {
				t.Errorf("deficits %v, want none", c.Deficits)
			}
		}, ""},
		{"nested", "augment: {hflip: false}\nfisher: {images: 64, samples: 1, every: 2}\n", func(t *testing.T, c Config) {
			if c.Augment.HFlip || !c.Augment.Crop || c.Fisher.Every != 2 {
				t.Errorf("got %+v %+v", c.Augment, c.Fisher)
			}
		}, ""},
		{"typo", "epoch: 20\n", nil, `unknown key "epoch": did you mean "epochs"?`},
		{"type", "epochs: many\n", nil, "cannot unmarshal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.yaml), base)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestConfigRoundTripAndHash(t *testing.T) {
	c := tiny()
	c.Deficits = []Window{{"blur", 0, 4}}
	c.Freeze = []string{"conv.*"}
	c.InitFrom = "x"
	c.KeepCheckpoints = []int{2, 4}
	c.Optimizer, c.WarmupEpochs, c.GradClip = "adamw", 2, 1.5
	c.ParamGroups = []ParamGroup{{Match: "fc.*", LRScale: new(10.0), WeightDecay: new(0.0)}, {Match: "conv1.*"}}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, c.YAML(), 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := LoadConfig(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if d := diffConfigs(c, back); d != "" {
		t.Fatalf("round trip differs: %s", d)
	}
	if len(c.Hash()) != 16 || c.Hash() != back.Hash() {
		t.Fatalf("hash %q vs %q", c.Hash(), back.Hash())
	}
	d := c
	d.Threads, d.Workers = 7, 3
	if d.Hash() != c.Hash() {
		t.Error("threads/workers change the hash")
	}
	d.Seed = 1
	if d.Hash() == c.Hash() {
		t.Error("seed does not change the hash")
	}
}

func TestLearningRate(t *testing.T) {
	base := tiny()
	base.LR = 0.1
	tests := []struct {
		name string
		edit func(*Config)
		lrs  map[int]float64
	}{
		{"constant", func(c *Config) { c.LRSchedule = "" }, map[int]float64{0: 0.1, 9: 0.1}},
		{"exp", func(c *Config) { c.LRSchedule, c.LRDecay = "exp", 0 }, map[int]float64{0: 0.1, 1: 0.097, 2: 0.1 * 0.97 * 0.97}},
		{"step", func(c *Config) { c.LRSchedule, c.LRStep, c.LRDecay = "step", 3, 0 }, map[int]float64{2: 0.1, 3: 0.01, 6: 0.001}},
		{"cosine", func(c *Config) { c.LRSchedule = "cosine" }, map[int]float64{0: 0.1, 5: 0.05}},
		{"exp restart", func(c *Config) {
			c.LRSchedule, c.RestartAtDeficitEnd, c.Deficits = "exp", true, []Window{{"blur", 0, 4}}
		}, map[int]float64{3: 0.1 * math.Pow(0.97, 3), 4: 0.1, 5: 0.097}},
		{"step restart", func(c *Config) {
			c.LRSchedule, c.LRStep, c.LRDecay, c.RestartAtDeficitEnd, c.Deficits = "step", 3, 0, true, []Window{{"blur", 0, 4}}
		}, map[int]float64{2: 0.1, 3: 0.01, 4: 0.1, 6: 0.1, 7: 0.01, 10: 0.001}},
		{"constant restart", func(c *Config) {
			c.LRSchedule, c.RestartAtDeficitEnd, c.Deficits = "constant", true, []Window{{"blur", 0, 4}}
		}, map[int]float64{0: 0.1, 4: 0.1, 9: 0.1}},
		{"sham restart", func(c *Config) {
			c.LRSchedule, c.LRDecay, c.RestartAtDeficitEnd, c.Deficits = "exp", 0, true, []Window{{"sham", 0, 4}}
		}, map[int]float64{3: 0.1 * math.Pow(0.97, 3), 4: 0.1}},
		{"restart at the latest window's end", func(c *Config) {
			c.LRSchedule, c.LRStep, c.LRDecay, c.RestartAtDeficitEnd, c.Deficits = "step", 2, 0, true, []Window{{"blur", 0, 2}, {"vflip", 5, 6}}
		}, map[int]float64{1: 0.1, 2: 0.1, 4: 0.01, 5: 0.01, 6: 0.1, 8: 0.01}},
		{"cosine restart", func(c *Config) {
			c.LRSchedule, c.RestartAtDeficitEnd, c.Deficits = "cosine", true, []Window{{"blur", 0, 4}}
		}, map[int]float64{4: 0.1, 7: 0.05}},
		{"warmup constant", func(c *Config) { c.LRSchedule, c.WarmupEpochs = "", 3 }, map[int]float64{0: 0.025, 1: 0.05, 2: 0.075, 3: 0.1, 9: 0.1}},
		{"warmup exp", func(c *Config) { c.LRSchedule, c.LRDecay, c.WarmupEpochs = "exp", 0, 1 }, map[int]float64{0: 0.05, 1: 0.097}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			for e, want := range tc.lrs {
				if got := c.LearningRate(e); math.Abs(got-want) > 1e-12 {
					t.Errorf("epoch %d: lr %v, want %v", e, got, want)
				}
			}
		})
	}
}

func TestParseEpochs(t *testing.T) {
	for in, want := range map[string][2]int{"0-40": {0, 40}, " 3 - 5": {3, 5}, "0:40": {0, 40}, " 3 : 5": {3, 5}} {
		s, e, err := ParseEpochs(in)
		if err != nil || s != want[0] || e != want[1] {
			t.Errorf("ParseEpochs(%q) = %d, %d, %v", in, s, e, err)
		}
	}
	for _, in := range []string{"", "40", "a:b", "a-b", "-1-3", "0:4-0"} {
		if _, _, err := ParseEpochs(in); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseEpochs(%q) err = %v", in, err)
		}
	}
}

func TestDeficitWindows(t *testing.T) {
	c := tiny()
	if got := c.DeficitWindows(); got != "none" {
		t.Errorf("got %q", got)
	}
	c.Deficits = []Window{{"vflip", 6, 8}, {"blur", 0, 4}}
	if got := c.DeficitWindows(); got != "blur:0-4,vflip:6-8" {
		t.Errorf("got %q", got)
	}
	if w, ok := c.ActiveWindow(7); !ok || w.Deficit != "vflip" {
		t.Errorf("epoch 7: %v %v", w, ok)
	}
	if _, ok := c.ActiveWindow(5); ok {
		t.Error("epoch 5 has a deficit")
	}
}

func TestFisherDue(t *testing.T) {
	cfg := Config{Epochs: 12, Fisher: FisherConfig{Images: 10, Samples: 1, Every: 5},
		Deficits: []Window{{Deficit: "blur", Start: 2, End: 7}}}
	var due []int
	for e := 0; e < cfg.Epochs; e++ {
		if fisherDue(cfg, e) {
			due = append(due, e)
		}
	}
	// every 5th (4, 9), the last (11), before the window starts (1) and ends (6)
	want := []int{1, 4, 6, 9, 11}
	if fmt.Sprint(due) != fmt.Sprint(want) {
		t.Fatalf("Fisher epochs %v, want %v", due, want)
	}
}
