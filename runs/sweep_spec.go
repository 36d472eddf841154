package runs

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// SweepSpec describes a critical-period experiment: a base run config and
// the families of runs derived from it. Presets live in configs/*.yaml.
type SweepSpec struct {
	// Name labels the sweep (the sweep column); empty means the sweep
	// directory's name.
	Name string `yaml:"name"`
	// Base is the run config every run starts from (over Default()).
	Base Config `yaml:"base"`
	// Seeds lists the seeds of every point; empty means [base.seed].
	Seeds []int64 `yaml:"seeds"`
	// Jobs is how many runs train at once (workers, its old name, is still
	// read); 0 means one per core (one for cuda), capped at the number of
	// runs. Threads per run are base.threads, else cores / jobs when the
	// sweep first starts, pinned in sweep.yaml for every later resume.
	Jobs int `yaml:"jobs"`

	Removal  *RemovalSpec  `yaml:"removal"`
	Window   *WindowSpec   `yaml:"window"`
	Finetune *FinetuneSpec `yaml:"finetune"`

	// Slurm holds the scheduler settings of `--executor slurm`.
	Slurm *SlurmSpec `yaml:"slurm,omitempty"`
}

// RemovalSpec: the deficit from epoch 0 to T for each T in Points, then
// sharp images (Achille et al., Fig. 1).
type RemovalSpec struct {
	// Deficit is the deficit spec (e.g. blur).
	Deficit string `yaml:"deficit"`
	// Points are the removal epochs T (0 is the no-deficit run).
	Points []int `yaml:"points"`
	// After is the number of sharp epochs after removal: a run lasts
	// T + After epochs (the papers use 160, with no lr restart).
	After int `yaml:"after"`
	// Total, when > 0, fixes every run's length instead of After.
	Total int `yaml:"total"`
	// Restart restarts the lr schedule at the removal point in every run
	// (restart_at_deficit_end), so that all arms share the schedule after
	// removal.
	Restart bool `yaml:"restart,omitempty"`
	// Branch trains each deficit once per seed (a "trunk" run of
	// max(Points) deficit epochs that keeps checkpoints at every point)
	// and starts each point, and the lr-restart control, from the trunk's
	// checkpoint at T instead of repeating the deficit epochs. Controls
	// planned at several points get a trunk of their own deficit
	// (trunk-vflip, trunk-noise, trunk-sham). Results are identical
	// either way.
	Branch bool `yaml:"branch"`
	// Controls adds control runs at the latest point, or at every point
	// (at: all).
	Controls Controls `yaml:"controls"`
}

// Controls are the control runs of a removal or window sweep. Each is
// planned at one point (the latest removal point, the earliest window
// onset) or, with At "all", at every point (removal points > 0, every
// onset).
type Controls struct {
	// At is "one" (the default, also "") or "all".
	At string `yaml:"at,omitempty"`
	// VFlip replaces the deficit by vertical flips (no critical period
	// expected): variant control-vflip (window-control-vflip).
	VFlip bool `yaml:"vflip"`
	// Noise replaces the deficit by Gaussian noise images: variant
	// control-noise (window-control-noise).
	Noise bool `yaml:"noise,omitempty"`
	// Sham replaces the deficit by sham, which changes no image but is a
	// deficit window for the lr schedule: variant control-sham
	// (window-control-sham), the reference of the arms at its point.
	Sham bool `yaml:"sham,omitempty"`
	// LRRestart restarts the lr schedule when the deficit ends: variant
	// control-lr-restart (window-control-lr-restart); with Sham also the
	// sham with the same restart, control-sham-lr-restart
	// (window-control-sham-lr-restart), its reference.
	LRRestart bool `yaml:"lr_restart"`
	// SameEpochs adds, for removal sweeps with after, a no-deficit run of
	// T + after epochs at each point T: variant reference-same-epochs.
	SameEpochs bool `yaml:"same_epochs,omitempty"`
}

// points returns the points controls run at: the one given by default, or
// all of them with At "all".
func (c Controls) points(one int, all []int) ([]int, error) {
	switch c.At {
	case "", "one":
		return []int{one}, nil
	case "all":
		return all, nil
	}
	return nil, fmt.Errorf("controls at %q: want one (the default) or all", c.At)
}

// WindowSpec: a deficit of Length epochs starting at each onset, within
// runs of Total epochs, plus a no-deficit baseline (Achille et al., Fig. 3).
type WindowSpec struct {
	Deficit string `yaml:"deficit"`
	Length  int    `yaml:"length"`
	Onsets  []int  `yaml:"onsets"`
	// Total is every run's length; 0 means base.epochs.
	Total int `yaml:"total"`
	// Branch starts each window from the baseline's checkpoint at its
	// onset instead of repeating the sharp epochs before it (the baseline
	// keeps checkpoints at every onset). Results are identical either way.
	Branch bool `yaml:"branch"`
	// Controls adds runs at the earliest onset, or at every onset (at:
	// all), each starting from the baseline like the windows: the window
	// with another deficit (window-control-vflip, -noise, -sham), and the
	// window with the lr schedule restarted at its end
	// (window-control-lr-restart, and window-control-sham-lr-restart with
	// sham). same_epochs does not apply: every window run has Total epochs.
	Controls Controls `yaml:"controls"`
}

// FinetuneSpec: pretrain on the deficit for P epochs, then fine-tune on
// sharp images for Epochs epochs (a new run: fresh optimizer and
// schedule), against training from scratch for the same Epochs.
type FinetuneSpec struct {
	Deficit  string `yaml:"deficit"`
	Pretrain []int  `yaml:"pretrain"`
	Epochs   int    `yaml:"epochs"`
}

// Variants of sweep runs.
const (
	VariantRemoval   = "removal"
	VariantTrunk     = "trunk"
	VariantWindow    = "window"
	VariantBaseline  = "baseline"
	VariantPretrain  = "pretrain"
	VariantFinetune  = "finetune"
	VariantScratch   = "scratch"
	VariantVFlip     = "control-vflip"
	VariantLRRestart = "control-lr-restart"

	VariantNoise         = "control-noise"
	VariantSham          = "control-sham"
	VariantShamLRRestart = "control-sham-lr-restart"
	VariantSameEpochs    = "reference-same-epochs"

	VariantWindowVFlip     = "window-control-vflip"
	VariantWindowLRRestart = "window-control-lr-restart"

	VariantWindowNoise         = "window-control-noise"
	VariantWindowSham          = "window-control-sham"
	VariantWindowShamLRRestart = "window-control-sham-lr-restart"
)

// Label places a run in a sweep: a variant and a point (removal epoch,
// window onset, pretraining epochs; -1 for the baseline).
type Label struct {
	Variant string
	Point   int
}

// PlannedRun is one run of a sweep.
type PlannedRun struct {
	// ID is the run's folder name inside the sweep directory.
	ID     string
	Config Config
	// Labels: one run may serve several variants (the no-deficit run is
	// both removal point 0 and the window baseline); none for the trunks
	// of controls, whose epochs are in the rows of every run that
	// branches from them.
	Labels []Label
	// After lists runs that must finish first (a trunk, a pretraining).
	After []string
}

// Plan is the runs of a sweep in a deterministic order.
type Plan struct {
	Name string
	Dir  string
	Runs []PlannedRun
}

// LoadSweep reads a sweep spec; its base config is decoded over Default().
func LoadSweep(path string) (SweepSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SweepSpec{}, fmt.Errorf("load sweep: %w", err)
	}
	s, err := ParseSweep(data)
	if err != nil {
		return s, fmt.Errorf("load sweep %s: %w", path, err)
	}
	return s, nil
}

// sweepAliases are the old spellings of sweep spec keys, still read: the
// spec's own and those of its base config.
func sweepAliases() map[string]string {
	m := map[string]string{"workers": "jobs"}
	for old, now := range configAliases {
		m["base."+old] = now
	}
	return m
}

// ParseSweep decodes a sweep spec from YAML.
func ParseSweep(data []byte) (SweepSpec, error) {
	var raw struct {
		Name     string        `yaml:"name"`
		Base     yaml.Node     `yaml:"base"`
		Seeds    []int64       `yaml:"seeds"`
		Jobs     int           `yaml:"jobs"`
		Removal  *RemovalSpec  `yaml:"removal"`
		Window   *WindowSpec   `yaml:"window"`
		Finetune *FinetuneSpec `yaml:"finetune"`
		Slurm    *SlurmSpec    `yaml:"slurm"`
	}
	if err := decodeStrict(data, &raw, reflect.TypeOf(SweepSpec{}), sweepAliases()); err != nil {
		return SweepSpec{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	s := SweepSpec{Name: raw.Name, Base: Default(), Seeds: raw.Seeds, Jobs: raw.Jobs,
		Removal: raw.Removal, Window: raw.Window, Finetune: raw.Finetune, Slurm: raw.Slurm}
	if raw.Base.Kind != 0 {
		base, err := yaml.Marshal(&raw.Base)
		if err != nil {
			return s, fmt.Errorf("%w: base: %v", ErrInvalidConfig, err)
		}
		if s.Base, err = ParseConfig(base, Default()); err != nil {
			return s, fmt.Errorf("base: %w", err)
		}
	}
	return s, nil
}

// YAML is the resolved spec as written to sweep.yaml. A relative
// init_from is written absolute, as Plan resolves it: sweep.yaml is read
// again by commands run from other directories.
func (s SweepSpec) YAML() []byte {
	if abs, err := filepath.Abs(s.Base.InitFrom); s.Base.InitFrom != "" && err == nil {
		s.Base.InitFrom = abs
	}
	out, err := yaml.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("runs: marshal sweep: %v", err))
	}
	return out
}

// Plan expands the spec into runs placed in dir. It checks the spec's own
// arithmetic; run configs are validated by RunSweep.
func (s SweepSpec) Plan(dir string) (Plan, error) {
	bad := func(format string, args ...any) (Plan, error) {
		return Plan{}, fmt.Errorf("%w: sweep: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	name := s.Name
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	if s.Removal == nil && s.Window == nil && s.Finetune == nil {
		return bad("no removal, window or finetune section: nothing to run")
	}
	if s.Jobs < 0 {
		return bad("jobs %d is negative", s.Jobs)
	}
	seeds := s.Seeds
	if len(seeds) == 0 {
		seeds = []int64{s.Base.Seed}
	}
	if d, ok := duplicate(seeds); ok {
		return bad("seeds %v: seed %d twice (each seed is one set of runs)", seeds, d)
	}
	base, err := s.planBase()
	if err != nil {
		return Plan{}, err
	}
	p := &planner{plan: Plan{Name: name, Dir: dir}, index: map[string]int{}}

	for _, seed := range seeds {
		b := base
		b.Seed = seed
		sfx := fmt.Sprintf("-s%d", seed)
		if r := s.Removal; r != nil {
			if err := r.plan(p, b, dir, sfx); err != nil {
				return Plan{}, err
			}
		}
		if w := s.Window; w != nil {
			if err := w.plan(p, b, dir, sfx); err != nil {
				return Plan{}, err
			}
		}
		if f := s.Finetune; f != nil {
			if err := f.plan(p, b, dir, sfx); err != nil {
				return Plan{}, err
			}
		}
	}
	return p.plan, nil
}

// planBase returns the base config every run of the sweep starts from.
// The sweep sets each run's deficits, branches and kept checkpoints, so
// base ones are refused rather than dropped. init_from and freeze apply to
// every run (a fine-tuning sweep); a relative init_from is made absolute,
// since the runs resolve relative paths against the sweep directory.
func (s SweepSpec) planBase() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: sweep base: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	b := s.Base
	switch {
	case len(b.Deficits) > 0:
		return bad("deficits %s: the sweep sets every run's deficit windows; give the deficit as removal.deficit, window.deficit or finetune.deficit and drop base.deficits", b.DeficitWindows())
	case len(b.KeepCheckpoints) > 0:
		return bad("keep_checkpoints %v: the sweep keeps the checkpoints its branches need (branch: true); drop base.keep_checkpoints", b.KeepCheckpoints)
	case b.BranchFrom != "" || b.BranchEpoch != 0:
		return bad("branch_from %q, branch_epoch %d: the sweep sets them for its branches (branch: true); drop them", b.BranchFrom, b.BranchEpoch)
	case b.InitFrom == "":
		return b, nil
	case s.Finetune != nil:
		return bad("init_from %s: finetune runs initialise from their pretraining runs and scratch from random weights; drop base.init_from (and freeze)", b.InitFrom)
	case s.Removal != nil && s.Removal.Branch, s.Window != nil && s.Window.Branch:
		return bad("init_from %s with branch: true: branched runs start from a parent's checkpoint, not from init_from; set branch: false", b.InitFrom)
	}
	abs, err := filepath.Abs(b.InitFrom)
	if err != nil {
		return bad("init_from: %v", err)
	}
	b.InitFrom = abs
	return b, nil
}

type planner struct {
	plan  Plan
	index map[string]int // hash of the config without kept checkpoints -> run
}

// add plans a run, or adds the label (and the checkpoints to keep) to an
// identical run already planned, and returns the id of the run that will
// train it. The zero Label adds none.
func (p *planner) add(id string, cfg Config, l Label, after ...string) string {
	key := cfg
	key.KeepCheckpoints = nil
	if i, ok := p.index[key.Hash()]; ok {
		r := &p.plan.Runs[i]
		if l != (Label{}) && !slices.Contains(r.Labels, l) {
			r.Labels = append(r.Labels, l)
		}
		keep := append(slices.Clone(r.Config.KeepCheckpoints), cfg.KeepCheckpoints...)
		slices.Sort(keep)
		r.Config.KeepCheckpoints = slices.Compact(keep)
		return r.ID
	}
	var labels []Label
	if l != (Label{}) {
		labels = []Label{l}
	}
	p.index[key.Hash()] = len(p.plan.Runs)
	p.plan.Runs = append(p.plan.Runs, PlannedRun{ID: id, Config: cfg, Labels: labels, After: after})
	return id
}

// addFrom plans a run that starts from the checkpoint at epoch of the
// planned run parent (see Config.BranchFrom), or from scratch when parent
// is "" or epoch is 0. The parent is named relative to the sweep directory
// (Options.Root), so the sweep can move.
func (p *planner) addFrom(parent, _ string, epoch int, id string, cfg Config, l Label) string {
	if parent == "" || epoch == 0 {
		return p.add(id, cfg, l)
	}
	cfg.BranchFrom, cfg.BranchEpoch = parent, epoch
	return p.add(id, cfg, l, parent)
}

func (r *RemovalSpec) plan(p *planner, b Config, dir, sfx string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: sweep removal: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if r.Deficit == "" || len(r.Points) == 0 {
		return bad("needs deficit and points")
	}
	if r.After < 0 || r.Total < 0 {
		return bad("after %d and total %d must not be negative", r.After, r.Total)
	}
	if (r.After > 0) == (r.Total > 0) {
		return bad("set exactly one of after (sharp epochs after removal) and total (epochs of every run)")
	}
	points := slices.Clone(r.Points)
	sort.Ints(points)
	for i, t := range points {
		if t < 0 || i > 0 && t == points[i-1] {
			return bad("points %v must be distinct and >= 0", r.Points)
		}
	}
	last := points[len(points)-1]
	epochs := func(t int) int {
		if r.Total > 0 {
			return r.Total
		}
		return t + r.After
	}
	if r.Total > 0 && last >= r.Total {
		return bad("point %d leaves no sharp epoch in total %d", last, r.Total)
	}
	if r.Restart {
		b.RestartAtDeficitEnd = true
	}
	ctl := r.Controls
	var deficitPoints []int // the points > 0
	for _, t := range points {
		if t > 0 {
			deficitPoints = append(deficitPoints, t)
		}
	}
	cps, err := ctl.points(last, deficitPoints)
	if err != nil {
		return bad("%v", err)
	}
	if last == 0 {
		if ctl.VFlip || ctl.Noise || ctl.Sham || ctl.LRRestart || ctl.SameEpochs {
			return bad("controls run at a removal point > 0 and points %v has none: add a point or drop the controls", r.Points)
		}
		cps = nil
	}
	if ctl.LRRestart && b.RestartAtDeficitEnd {
		return bad("controls.lr_restart: every run already restarts the lr at removal (restart); drop one")
	}
	if ctl.SameEpochs && r.Total > 0 {
		return bad("controls.same_epochs needs after: with total, every run has total epochs and removal@0 is the same-epochs reference")
	}
	run := func(t int, deficit string) Config {
		c := b
		c.Epochs = epochs(t)
		if t > 0 {
			c.Deficits = []Window{{Deficit: deficit, Start: 0, End: t}}
		}
		return c
	}
	// trunk plans the deficit epochs once: a run of the latest point's
	// deficit epochs that keeps its checkpoints at ts for the runs that
	// branch from it.
	trunk := func(id, deficit string, ts []int, l Label) (string, error) {
		c := run(last, deficit)
		c.Epochs = last
		for _, t := range ts {
			if t > 0 {
				c.KeepCheckpoints = append(c.KeepCheckpoints, t)
			}
		}
		for _, t := range ts {
			if err := BranchCompatible(c, run(t, deficit), t); t > 0 && err != nil {
				return "", bad("branch: point %d cannot start from the trunk of %s: %v (use branch: false)", t, deficit, err)
			}
		}
		return p.add(id+sfx, c, l), nil
	}
	// parents maps a deficit to the trunk its runs branch from ("": none).
	parents := map[string]string{}
	if r.Branch && last > 0 {
		if parents[r.Deficit], err = trunk("trunk", r.Deficit, points, Label{VariantTrunk, last}); err != nil {
			return err
		}
	}
	for _, t := range points {
		p.addFrom(parents[r.Deficit], dir, t, fmt.Sprintf("removal-T%03d%s", t, sfx), run(t, r.Deficit), Label{VariantRemoval, t})
	}
	for _, k := range []struct {
		on               bool
		variant, deficit string
	}{{ctl.VFlip, VariantVFlip, "vflip"}, {ctl.Noise, VariantNoise, "noise"}, {ctl.Sham, VariantSham, "sham"}} {
		if !k.on {
			continue
		}
		// A trunk of its own pays when two runs or more start from it.
		branches := len(cps)
		if k.deficit == "sham" && ctl.LRRestart {
			branches *= 2
		}
		if r.Branch && branches > 1 {
			if parents[k.deficit], err = trunk("trunk-"+k.deficit, k.deficit, cps, Label{}); err != nil {
				return err
			}
		}
		for _, t := range cps {
			p.addFrom(parents[k.deficit], dir, t, fmt.Sprintf("%s-T%03d%s", k.variant, t, sfx), run(t, k.deficit), Label{k.variant, t})
		}
	}
	if ctl.LRRestart {
		restarts := [][2]string{{VariantLRRestart, r.Deficit}}
		if ctl.Sham {
			restarts = append(restarts, [2]string{VariantShamLRRestart, "sham"})
		}
		for _, k := range restarts {
			for _, t := range cps {
				c := run(t, k[1])
				c.RestartAtDeficitEnd = true
				p.addFrom(parents[k[1]], dir, t, fmt.Sprintf("%s-T%03d%s", k[0], t, sfx), c, Label{k[0], t})
			}
		}
	}
	if ctl.SameEpochs && len(cps) > 0 {
		return r.planSameEpochs(p, b, dir, sfx, cps)
	}
	return nil
}

// planSameEpochs plans the no-deficit runs of T + After epochs for each
// point T of ts. With branching, only the longest trains in full: the
// others are its prefixes (where the lr schedule does not depend on the
// run's length), each branching from its checkpoint one epoch before its
// end.
func (r *RemovalSpec) planSameEpochs(p *planner, b Config, dir, sfx string, ts []int) error {
	ref := func(t int) Config {
		c := b
		c.Epochs = t + r.After
		return c
	}
	longest := ts[len(ts)-1]
	long := ref(longest)
	parent := ""
	if r.Branch && len(ts) > 1 {
		for _, t := range ts[:len(ts)-1] {
			e := t + r.After - 1
			if err := BranchCompatible(long, ref(t), e); err != nil {
				return fmt.Errorf("%w: sweep removal: branch: the same-epochs reference at %d cannot start from the one at %d: %v (use branch: false)",
					ErrInvalidConfig, t, longest, err)
			}
			long.KeepCheckpoints = append(long.KeepCheckpoints, e)
		}
	}
	id := p.add(fmt.Sprintf("%s-T%03d%s", VariantSameEpochs, longest, sfx), long, Label{VariantSameEpochs, longest})
	if len(long.KeepCheckpoints) > 0 {
		parent = id
	}
	for _, t := range ts[:len(ts)-1] {
		p.addFrom(parent, dir, t+r.After-1, fmt.Sprintf("%s-T%03d%s", VariantSameEpochs, t, sfx), ref(t), Label{VariantSameEpochs, t})
	}
	return nil
}

func (w *WindowSpec) plan(p *planner, b Config, dir, sfx string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: sweep window: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if w.Deficit == "" || w.Length <= 0 || len(w.Onsets) == 0 {
		return bad("needs deficit, length > 0 and onsets")
	}
	if w.Total < 0 {
		return bad("total %d is negative (0 means base epochs, %d)", w.Total, b.Epochs)
	}
	if w.Total > 0 {
		b.Epochs = w.Total
	}
	onsets := slices.Clone(w.Onsets)
	sort.Ints(onsets)
	if d, ok := duplicate(onsets); ok {
		return bad("onsets %v: onset %d twice", w.Onsets, d)
	}
	window := func(s int, deficit string) Config {
		c := b
		c.Deficits = []Window{{Deficit: deficit, Start: s, End: s + w.Length}}
		return c
	}
	baseline := b
	for _, s := range onsets {
		if s < 0 || s+w.Length > b.Epochs {
			return bad("window %d-%d does not fit in %d epochs", s, s+w.Length, b.Epochs)
		}
		if w.Branch && s > 0 {
			if err := BranchCompatible(b, window(s, w.Deficit), s); err != nil {
				return bad("branch: onset %d cannot start from the baseline: %v (use branch: false)", s, err)
			}
			baseline.KeepCheckpoints = append(baseline.KeepCheckpoints, s)
		}
	}
	baseID := p.add("baseline"+sfx, baseline, Label{VariantBaseline, -1})
	parent := ""
	if w.Branch {
		parent = baseID
	}
	add := func(id string, c Config, l Label) {
		p.addFrom(parent, dir, l.Point, fmt.Sprintf("%s-S%03d%s", id, l.Point, sfx), c, l)
	}
	for _, s := range onsets {
		add("window", window(s, w.Deficit), Label{VariantWindow, s})
	}
	ctl := w.Controls
	cps, err := ctl.points(onsets[0], onsets)
	if err != nil {
		return bad("%v", err)
	}
	if ctl.SameEpochs {
		return bad("controls.same_epochs is for removal sweeps: every window run has total epochs, as the baseline")
	}
	if ctl.LRRestart && b.RestartAtDeficitEnd {
		return bad("controls.lr_restart: every run already restarts the lr at the window's end (base restart_at_deficit_end); drop one")
	}
	type control struct {
		on               bool
		variant, deficit string
		restart          bool
	}
	for _, k := range []control{
		{ctl.VFlip, VariantWindowVFlip, "vflip", false},
		{ctl.Noise, VariantWindowNoise, "noise", false},
		{ctl.Sham, VariantWindowSham, "sham", false},
		{ctl.LRRestart, VariantWindowLRRestart, w.Deficit, true},
		{ctl.LRRestart && ctl.Sham, VariantWindowShamLRRestart, "sham", true},
	} {
		for _, s := range cps {
			if k.on {
				c := window(s, k.deficit)
				c.RestartAtDeficitEnd = k.restart
				add(k.variant, c, Label{k.variant, s})
			}
		}
	}
	return nil
}

func (f *FinetuneSpec) plan(p *planner, b Config, dir, sfx string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: sweep finetune: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if f.Deficit == "" || f.Epochs <= 0 || len(f.Pretrain) == 0 {
		return bad("needs deficit, pretrain epochs and epochs > 0")
	}
	scratch := b
	scratch.Epochs = f.Epochs
	p.add("scratch"+sfx, scratch, Label{VariantScratch, 0})
	pre := slices.Clone(f.Pretrain)
	sort.Ints(pre)
	if d, ok := duplicate(pre); ok {
		return bad("pretrain %v: %d epochs twice", f.Pretrain, d)
	}
	for _, n := range pre {
		if n <= 0 {
			return bad("pretrain epochs %d must be > 0", n)
		}
		c := b
		c.Epochs = n
		c.Deficits = []Window{{Deficit: f.Deficit, Start: 0, End: n}}
		preID := p.add(fmt.Sprintf("pretrain-P%03d%s", n, sfx), c, Label{VariantPretrain, n})
		ft := scratch
		ft.InitFrom = preID // relative to the sweep directory, like branch_from
		p.add(fmt.Sprintf("finetune-P%03d%s", n, sfx), ft, Label{VariantFinetune, n}, preID)
	}
	return nil
}

// duplicate returns a value that xs holds twice.
func duplicate[T comparable](xs []T) (T, bool) {
	seen := map[T]bool{}
	for _, x := range xs {
		if seen[x] {
			return x, true
		}
		seen[x] = true
	}
	var zero T
	return zero, false
}

// Describe lists the plan, one run a line, then what each variant is
// compared with (see ReferenceFor; P stands for the arm's point).
func (p Plan) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sweep %s: %d runs in %s\n", p.Name, len(p.Runs), p.Dir)
	labels := make([]string, len(p.Runs))
	planned := map[Label]bool{}
	idWidth, labelWidth := 0, 0
	for i, r := range p.Runs {
		var ls []string
		for _, l := range r.Labels {
			ls = append(ls, fmt.Sprintf("%s@%d", l.Variant, l.Point))
			planned[l] = true
		}
		labels[i] = strings.Join(ls, " ")
		if labels[i] == "" {
			labels[i] = "-"
		}
		idWidth, labelWidth = max(idWidth, len(r.ID)), max(labelWidth, len(labels[i]))
	}
	for i, r := range p.Runs {
		extra := ""
		if len(r.After) > 0 {
			extra = " after " + strings.Join(r.After, ",")
		}
		fmt.Fprintf(&b, "  %-*s %-*s epochs %3d deficits %s%s\n", idWidth, r.ID, labelWidth, labels[i], r.Config.Epochs, r.Config.DeficitWindows(), extra)
	}
	var refs []string
	for _, r := range p.Runs {
		for _, l := range r.Labels {
			ref, why := ReferenceFor(l, func(l Label) bool { return planned[l] })
			if ref == l || l.Variant == VariantTrunk {
				continue
			}
			line := fmt.Sprintf("%s vs %s: %s", l.Variant, ref, why)
			switch {
			case ref == (Label{}):
				line = l.Variant + ": no reference planned"
			case ref.Point == l.Point:
				line = fmt.Sprintf("%s@P vs %s@P: %s", l.Variant, ref.Variant, why)
			}
			if !slices.Contains(refs, line) {
				refs = append(refs, line)
			}
		}
	}
	if len(refs) > 0 {
		fmt.Fprintf(&b, "compared with (critlab report):\n  %s\n", strings.Join(refs, "\n  "))
	}
	return b.String()
}
