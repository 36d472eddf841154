package runs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/critlab/critlab/internal/atomicfile"
)

// SweepOptions are the knobs of RunSweep that are not part of the
// experiment.
type SweepOptions struct {
	// Backend builds trainers and data; nil means NewBackend(BackendOptions{}).
	Backend Backend
	// Workers overrides the spec's workers when > 0.
	Workers int
	// Cores is the number of cores the runs share; 0 means all.
	Cores int
	// Force retrains finished runs.
	Force bool
	// Progress receives the sweep's progress; nil means none.
	Progress *SweepProgress
}

// SweepResult is a finished sweep.
type SweepResult struct {
	Plan    Plan
	Results map[string]*Result
	// Rows are the rows of sweep.parquet.
	Rows []SweepRow
	// Workers and Threads are the parallelism used.
	Workers, Threads int
}

// RunSweep trains the plan of spec in dir: it validates every run before
// any trains, then runs them under a worker limit (threads per run =
// cores / workers), skipping finished runs and resuming unfinished ones,
// and writes the combined sweep.parquet. A failed run does not stop the
// others; RunSweep then returns the failures joined, after writing
// sweep.parquet with the runs that finished.
func RunSweep(ctx context.Context, spec SweepSpec, dir string, opts SweepOptions) (*SweepResult, error) {
	plan, err := spec.Plan(dir)
	if err != nil {
		return nil, err
	}
	backend := opts.Backend
	if backend == nil {
		backend = NewBackend(BackendOptions{})
	}
	if err := checkPlan(plan, backend); err != nil {
		return nil, err
	}
	cores := opts.Cores
	if cores <= 0 {
		cores = runtime.NumCPU()
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = spec.Workers
	}
	if workers <= 0 {
		workers = cores
		if spec.Base.Device != "" && spec.Base.Device != "cpu" {
			workers = 1
		}
	}
	workers = max(1, min(workers, len(plan.Runs)))
	threads := max(1, cores/workers)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sweep %s: %w", plan.Name, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, "sweep.yaml"), spec.YAML()); err != nil {
		return nil, err
	}

	res := &SweepResult{Plan: plan, Results: map[string]*Result{}, Workers: workers, Threads: threads}
	var prog Progress = NopProgress()
	if opts.Progress != nil {
		prog = opts.Progress
		prog.Logf("", "sweep %s: %d runs, %d at a time with %d threads each", plan.Name, len(plan.Runs), workers, threads)
	}

	type done struct {
		id  string
		res *Result
		err error
	}
	var (
		finished = map[string]error{}
		started  = map[string]bool{}
		out      = make(chan done)
		running  int
		errs     []error
	)
	ready := func(r PlannedRun) (bool, error) {
		for _, dep := range r.After {
			err, ok := finished[dep]
			if !ok {
				return false, nil
			}
			if err != nil {
				return true, fmt.Errorf("run %s: needs %s, which failed", r.ID, dep)
			}
		}
		return true, nil
	}
	for len(finished) < len(plan.Runs) {
		for _, r := range plan.Runs {
			if started[r.ID] || running >= workers || ctx.Err() != nil {
				continue
			}
			ok, depErr := ready(r)
			if !ok {
				continue
			}
			started[r.ID] = true
			if depErr != nil {
				finished[r.ID] = depErr
				errs = append(errs, depErr)
				if opts.Progress != nil {
					opts.Progress.RunDone(r.ID, depErr)
				}
				continue
			}
			running++
			go func(r PlannedRun) {
				cfg := r.Config
				if cfg.Threads == 0 {
					cfg.Threads = threads
				}
				rr, err := Run(ctx, cfg, filepath.Join(dir, r.ID), Options{Backend: backend, Progress: prog, Force: opts.Force, RunID: r.ID})
				out <- done{r.ID, rr, err}
			}(r)
		}
		if running == 0 {
			break // cancelled, or nothing left that can start
		}
		d := <-out
		running--
		finished[d.id] = d.err
		stopped := d.err != nil && ctx.Err() != nil && errors.Is(d.err, ctx.Err())
		switch {
		case stopped:
			// Reported once below, for the whole sweep.
			if opts.Progress != nil {
				opts.Progress.Logf(d.id, "%s: stopped, finished epochs kept", d.id)
			}
		case d.err != nil:
			errs = append(errs, d.err)
			if opts.Progress != nil {
				opts.Progress.Logf(d.id, "%s: FAILED: %v", d.id, d.err)
			}
		default:
			res.Results[d.id] = d.res
		}
		if opts.Progress != nil && !stopped {
			opts.Progress.RunDone(d.id, d.err)
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("sweep %s stopped with %d of %d runs finished: %w\n---> HINT: run the same command again to resume", plan.Name, len(res.Results), len(plan.Runs), err))
	}

	res.Rows = sweepRows(plan, res.Results)
	if len(res.Rows) > 0 {
		if err := WriteSweep(filepath.Join(dir, SweepFile), res.Rows, spec.YAML()); err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// checkPlan validates every run of a plan before any trains. A run that
// initialises from another run of the sweep is checked without that path,
// which does not exist yet.
func checkPlan(plan Plan, backend Backend) error {
	var errs []error
	checked := map[string]bool{}
	for _, r := range plan.Runs {
		cfg := r.Config
		if len(r.After) > 0 {
			cfg.InitFrom, cfg.BranchFrom, cfg.BranchEpoch = "", "", 0
		}
		if err := cfg.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", r.ID, err))
			continue
		}
		// The backend's checks depend on model, data and deficits only.
		key := fmt.Sprintf("%s|%g|%s|%s", cfg.Model, cfg.Width, cfg.Data, cfg.DeficitWindows())
		if checked[key] {
			continue
		}
		checked[key] = true
		if err := backend.Check(cfg); err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

// sweepRows labels the rows of the finished runs, in plan order.
func sweepRows(plan Plan, results map[string]*Result) []SweepRow {
	var rows []SweepRow
	for _, r := range plan.Runs {
		res, ok := results[r.ID]
		if !ok {
			continue
		}
		for _, l := range r.Labels {
			for _, m := range res.Rows {
				rows = append(rows, sweepRow(m, plan.Name, l.Variant, l.Point))
			}
		}
	}
	return rows
}
