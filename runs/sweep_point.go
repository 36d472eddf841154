package runs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/critlab/critlab/internal/atomicfile"
	"github.com/critlab/critlab/internal/dirlock"
)

// LoadPlan plans the sweep of dir again from its sweep.yaml: the runs, ids
// and configs every executor and RunPoint agree on.
func LoadPlan(dir string) (SweepSpec, Plan, error) {
	path := filepath.Join(dir, SweepSpecFile)
	spec, err := LoadSweep(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%s is not a sweep directory (no %s)\n---> HINT: start the sweep with `critlab sweep --config SPEC --out %s` first", dir, SweepSpecFile, dir)
		}
		return SweepSpec{}, Plan{}, err
	}
	plan, err := spec.Plan(dir)
	if err != nil {
		return SweepSpec{}, Plan{}, fmt.Errorf("%s: %w", path, err)
	}
	return spec, plan, nil
}

// PrepareSweep readies the sweep in dir for executors that run its points
// in other processes (`critlab sweep run-point`): under the sweep's lock it
// pins the thread count (the spec's, else the one an earlier start pinned,
// else threads), plans and checks every run, and writes sweep.yaml and each
// new run's config.yaml.
func PrepareSweep(spec SweepSpec, dir string, backend Backend, threads int) (Plan, error) {
	lock, err := lockSweep(dir)
	if err != nil {
		return Plan{}, err
	}
	defer lock.Release()
	return prepareSweep(spec, dir, backend, threads)
}

// lockSweep creates and locks a sweep directory.
func lockSweep(dir string) (*dirlock.Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sweep %s: %w", dir, err)
	}
	lock, err := dirlock.Acquire(dir)
	if err != nil {
		return nil, fmt.Errorf("sweep %s: %w", dir, err)
	}
	return lock, nil
}

// prepareSweep is PrepareSweep under a lock the caller holds.
func prepareSweep(spec SweepSpec, dir string, backend Backend, threads int) (Plan, error) {
	if backend == nil {
		return Plan{}, ErrNoBackend
	}
	if spec.Base.Threads <= 0 {
		spec.Base.Threads = pinnedThreads(dir)
	}
	if spec.Base.Threads <= 0 {
		spec.Base.Threads = max(1, threads)
	}
	plan, err := spec.Plan(dir)
	if err != nil {
		return Plan{}, err
	}
	if err := CheckPlan(plan, backend); err != nil {
		return Plan{}, err
	}
	if err := atomicfile.Write(filepath.Join(dir, SweepSpecFile), spec.YAML()); err != nil {
		return Plan{}, err
	}
	for _, r := range plan.Runs {
		rdir := filepath.Join(dir, r.ID)
		state, _, err := Inspect(rdir)
		if err != nil {
			return Plan{}, err
		}
		if state != StateEmpty {
			continue // Run checks it against the plan
		}
		if err := os.MkdirAll(rdir, 0o755); err != nil {
			return Plan{}, fmt.Errorf("run %s: %w", r.ID, err)
		}
		if err := atomicfile.Write(filepath.Join(rdir, ConfigFile), r.Config.YAML()); err != nil {
			return Plan{}, err
		}
	}
	return plan, nil
}

// PointOptions are the knobs of RunPoint.
type PointOptions struct {
	// Backend builds trainers and data (ortbackend.New, or a fake in tests);
	// required.
	Backend Backend
	// Threads per run when neither the sweep nor the run's config.yaml
	// fixes them; 0 means one per core.
	Threads int
	// Wait is how long to wait for the runs this one starts from to
	// finish (for engines without job dependencies); 0 fails at once.
	Wait time.Duration
	// Progress receives progress and log lines; nil means none.
	Progress Progress
}

// pollParents is how often RunPoint looks at the parents' directories
// while it waits for them.
const pollParents = 5 * time.Second

// RunPoint trains run index (0-based, in plan order, as `critlab sweep
// --dry-run` lists them) of the sweep in dir: what a scheduler's job runs.
// It is idempotent (a finished run is skipped) and resumes an unfinished
// run from its latest checkpoint, like RunSweep. The runs it starts from
// must have finished (or finish within opts.Wait).
func RunPoint(ctx context.Context, dir string, index int, opts PointOptions) (*Result, error) {
	_, plan, err := LoadPlan(dir)
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= len(plan.Runs) {
		return nil, fmt.Errorf("%w: sweep %s has runs 0 to %d, not %d", ErrInvalidConfig, dir, len(plan.Runs)-1, index)
	}
	r := plan.Runs[index]
	deadline := time.Now().Add(opts.Wait)
	for {
		missing := unfinished(dir, r.After)
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("run %s: starts from %s, not finished yet\n---> HINT: run that point first (a scheduler: make this job depend on it), or pass --wait", r.ID, strings.Join(missing, ", "))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("run %s: waiting for %s: %w", r.ID, strings.Join(missing, ", "), ctx.Err())
		case <-time.After(min(pollParents, time.Until(deadline)+time.Millisecond)):
		}
	}
	return Run(ctx, r.Config, filepath.Join(dir, r.ID), Options{Backend: opts.Backend, Progress: opts.Progress, RunID: r.ID, Root: dir, Threads: opts.Threads, Planned: true})
}

// unfinished lists the runs among ids whose directory in dir holds no
// finished run.
func unfinished(dir string, ids []string) []string {
	var out []string
	for _, id := range ids {
		if state, _, err := Inspect(filepath.Join(dir, id)); err != nil || state != StateFinished {
			out = append(out, id)
		}
	}
	return out
}

// CollectSweep writes dir/sweep.parquet from the finished runs of the
// sweep in dir, as RunSweep does at its end: what the last job of a
// scheduled sweep runs. It fails, after writing what finished, when runs
// are missing.
func CollectSweep(dir string) (*SweepResult, error) {
	spec, plan, err := LoadPlan(dir)
	if err != nil {
		return nil, err
	}
	lock, err := lockSweep(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	res := &SweepResult{Plan: plan, Results: map[string]*Result{}}
	var missing []string
	for _, r := range plan.Runs {
		rdir := filepath.Join(dir, r.ID)
		state, cfg, err := Inspect(rdir)
		if err != nil {
			return nil, err
		}
		if state != StateFinished {
			missing = append(missing, r.ID)
			continue
		}
		hash := r.Config.Hash()
		if cfg.Hash() != hash && !sameRun(cfg, r.Config, dir) {
			return nil, fmt.Errorf("%w: %s holds config %s, the sweep plans %s (differs in %s)", ErrConfigChanged, rdir, cfg.Hash(), hash, diffConfigs(cfg, r.Config))
		}
		rows, err := ReadMetrics(filepath.Join(rdir, MetricsFile))
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", r.ID, err)
		}
		for i := range rows {
			rows[i].ConfigHash = hash // as Run returns a finished run
		}
		res.Results[r.ID] = &Result{Dir: rdir, RunID: r.ID, Status: Skipped, Rows: rows}
	}
	if res.Rows, err = writeSweepFiles(dir, spec, plan, res.Results); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return res, fmt.Errorf("sweep %s: %d of %d runs not finished: %s\n---> HINT: `critlab sweep status %s` says why; submit the sweep again to run them",
			plan.Name, len(missing), len(plan.Runs), strings.Join(missing, ", "), dir)
	}
	return res, nil
}
