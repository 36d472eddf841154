package runs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/critlab/critlab/internal/atomicfile"
	"github.com/critlab/critlab/internal/dirlock"
	"github.com/critlab/critlab/internal/failpoint"
)

// Checkpoint meta keys the loop stores beside the trainer's state.
const (
	metaVersion    = "critlab.checkpoint"
	metaEpoch      = "critlab.epoch"
	metaConfigHash = "critlab.config_hash"
	metaRunID      = "critlab.run_id"
	metaGraphHash  = "critlab.graph_hash"
	checkpointVer  = "1"
)

// Options are the knobs of Run that are not part of the experiment.
type Options struct {
	// Backend builds trainers and data (ortbackend.New, or a fake in tests);
	// required.
	Backend Backend
	// Progress receives progress and log lines; nil means none (log.txt is
	// written either way).
	Progress Progress
	// Force starts over in a directory that holds a finished run or a run
	// of another config.
	Force bool
	// RunID names the run in the metrics; empty means the directory's name.
	RunID string
	// Root is the directory that relative branch_from and init_from paths
	// name runs in; empty means the working directory. RunSweep sets it to
	// the sweep directory, so a sweep's run configs do not depend on where
	// the sweep lives.
	Root string
	// Threads is the intra-op thread count of a run that starts now when
	// cfg.Threads is 0; 0 means one per core. A resumed run keeps the count
	// it started with (see Run).
	Threads int
	// Planned says CheckPlan checked the run with the rest of its sweep
	// (RunSweep and RunPoint set it), settings without effect included:
	// a trunk or pretraining run may end inside the warmup of the runs that
	// continue it.
	Planned bool
}

// Status says what Run did.
type Status string

const (
	// Trained: the run trained from epoch 0 (or its branch epoch).
	Trained Status = "trained"
	// Resumed: the run continued from a checkpoint of an earlier attempt.
	Resumed Status = "resumed"
	// Skipped: the directory already held the finished run.
	Skipped Status = "skipped"
)

// Result is a finished run.
type Result struct {
	Dir    string
	RunID  string
	Status Status
	// Rows are the run's metrics, one per epoch.
	Rows []MetricsRow
	// Images is the number of training images of the epochs trained in
	// this call, Wall its wall time.
	Images int64
	Wall   time.Duration
}

// Run trains cfg in dir: for each epoch it picks the active deficit,
// trains over the (cached, deficit-corrupted) training split, evaluates on
// the clean test set, appends a row to metrics.parquet and checkpoints;
// at the end it exports model.onnx. Everything random is a function of
// (seed, epoch), so a run that was killed resumes from its last checkpoint
// to the same metrics as an uninterrupted one. A finished run is returned
// as is (Status Skipped) unless opts.Force.
//
// Cancelling ctx stops the run after the current step; the finished
// epochs stay on disk and the returned error wraps ctx.Err().
func Run(ctx context.Context, cfg Config, dir string, opts Options) (*Result, error) {
	backend := opts.Backend
	if backend == nil {
		return nil, ErrNoBackend
	}
	prog := opts.Progress
	if prog == nil {
		prog = NopProgress()
	}
	runID := opts.RunID
	if runID == "" {
		runID = filepath.Base(filepath.Clean(dir))
	}
	checked := cfg
	checked.InitFrom = resolve(opts.Root, cfg.InitFrom)
	check := Check
	if !opts.Planned && (opts.Force || !holds(dir, cfg, opts.Root)) {
		check = CheckNew
	}
	if err := check(checked, backend); err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	hash := cfg.Hash()

	// The lock comes before anything is read or written, so two processes
	// never interleave in one directory.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	lock, err := dirlock.Acquire(dir)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	defer lock.Release()
	if err := cleanTemps(dir); err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}

	state, old, err := Inspect(dir)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	// The data path is hashed as typed; another spelling of the same file
	// (x, ./x, /abs/x) resumes the run under the spelling it started with,
	// so its hash, config.yaml and checkpoints stay as they are.
	if state != StateEmpty && !opts.Force && old.Data != cfg.Data && sameData(old.Data, cfg.Data) {
		cfg.Data = old.Data
		hash = cfg.Hash()
	}
	// diskHash is the identity the directory's files carry: hash, or the
	// hash of a run written before parents were named relative to Root.
	diskHash := hash
	if state != StateEmpty {
		diskHash = old.Hash()
	}
	switch {
	case state == StateEmpty:
	case opts.Force:
		if err := preflight(ctx, cfg, dir, opts, backend); err != nil {
			return nil, fmt.Errorf("run %s: %w\n---> nothing deleted: %s holds the %s run as it was", runID, err, dir, state)
		}
		if err := clearRun(dir); err != nil {
			return nil, err
		}
		state, diskHash = StateEmpty, hash
	case state == StateUnfinished && !exists(filepath.Join(dir, MetricsFile)):
		// No epoch finished (a typo in the command, say): nothing to keep.
		if err := clearRun(dir); err != nil {
			return nil, err
		}
		state, diskHash = StateEmpty, hash
	case diskHash != hash && !sameRun(old, cfg, opts.Root):
		return nil, fmt.Errorf("%w: %s holds a %s run of config %s, this is %s (differs in %s)\n---> HINT: pass --force to start over, or choose another directory",
			ErrConfigChanged, dir, state, diskHash, hash, orDefault(diffConfigs(old, cfg), "nothing but the hash"))
	case state == StateFinished:
		rows, err := ReadMetrics(filepath.Join(dir, MetricsFile))
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", runID, err)
		}
		for i := range rows {
			rows[i].ConfigHash = hash
		}
		prog.Logf(runID, "%s: finished already, skipped (--force to train again)", runID)
		return &Result{Dir: dir, RunID: runID, Status: Skipped, Rows: rows}, nil
	}
	if cfg.Threads, err = runThreads(cfg, old, state, opts.Threads); err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, CheckpointDir), 0o755); err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	if state == StateEmpty {
		if err := atomicfile.Write(filepath.Join(dir, ConfigFile), cfg.YAML()); err != nil {
			return nil, fmt.Errorf("run %s: %w", runID, err)
		}
	}

	t0 := time.Now()
	l := &loop{cfg: cfg, dir: dir, root: opts.Root, runID: runID, hash: hash, diskHash: diskHash, prog: prog,
		log: openRunLog(filepath.Join(dir, LogFile))}
	defer l.log.Flush()
	res, err := l.run(ctx, backend)
	if err != nil {
		l.log.Printf("stopped: %v", err)
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	res.Images, res.Wall = l.images, time.Since(t0)
	return res, nil
}

// preflight makes the checks that otherwise fail only once the run starts
// (the backend's trainer: its runtime, param_groups and freeze patterns;
// the init_from or branch_from source), so that --force deletes a run only
// for one that can start.
func preflight(ctx context.Context, cfg Config, dir string, opts Options, backend Backend) error {
	if cfg.Threads <= 0 {
		cfg.Threads = 1 // the trainer is opened to be checked only
	}
	tr, _, err := backend.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer tr.Close()
	switch {
	case cfg.InitFrom != "":
		from := resolve(opts.Root, cfg.InitFrom)
		absDir, err1 := filepath.Abs(dir)
		absFrom, err2 := filepath.Abs(from)
		if rel, err := filepath.Rel(absDir, absFrom); err1 == nil && err2 == nil && err == nil && filepath.IsLocal(rel) {
			return fmt.Errorf("init_from %s lies in the run directory that --force clears", from)
		}
		if _, err := initFrom(tr, cfg, opts.Root); err != nil {
			return err
		}
	case cfg.BranchFrom != "":
		parentDir, _, err := branchParent(cfg, opts.Root)
		if err != nil {
			return err
		}
		if _, err := os.Stat(CheckpointPath(parentDir, cfg.BranchEpoch)); err != nil {
			return fmt.Errorf("branch: %w", err)
		}
	}
	return nil
}

// holds reports whether dir holds a run of cfg (under the spellings Run
// resumes: see sameData and sameRun). Such a run resumes or is skipped
// under the checks of a run on disk, so settings refused since it started
// (CheckNew) do not strand it: dropping them would change its hash.
func holds(dir string, cfg Config, root string) bool {
	state, old, err := Inspect(dir)
	if err != nil || state == StateEmpty {
		return false
	}
	if old.Data != cfg.Data && sameData(old.Data, cfg.Data) {
		cfg.Data = old.Data
	}
	return old.Hash() == cfg.Hash() || sameRun(old, cfg, root)
}

// sameRun reports whether a directory's config old is cfg written before
// sweeps named parents relative to their directory: branch_from and
// init_from held the parent's path as typed (say runs-out/demo/trunk-s0)
// where cfg holds its name relative to root (trunk-s0).
func sameRun(old, cfg Config, root string) bool {
	if root == "" {
		return false
	}
	legacy := func(was, now string) bool {
		return now != "" && !filepath.IsAbs(now) && was != now && filepath.Base(filepath.Clean(was)) == filepath.Base(now)
	}
	if legacy(old.BranchFrom, cfg.BranchFrom) {
		old.BranchFrom = cfg.BranchFrom
	}
	if legacy(old.InitFrom, cfg.InitFrom) {
		old.InitFrom = cfg.InitFrom
	}
	return old.Hash() == cfg.Hash()
}

// runThreads returns the intra-op thread count of a run. ONNX Runtime's
// CPU kernels split sums differently for different counts, so the count is
// part of a run's arithmetic: a run that started keeps its count (recorded
// in config.yaml), and a config asking for another one is refused.
func runThreads(cfg, old Config, state RunState, def int) (int, error) {
	if state != StateEmpty && old.Threads > 0 {
		if cfg.Threads != 0 && cfg.Threads != old.Threads {
			return 0, fmt.Errorf("%w: the run started with %d threads, this asks for %d; results depend on the thread count\n---> HINT: resume with --threads %d, or pass --force to start over",
				ErrConfigChanged, old.Threads, cfg.Threads, old.Threads)
		}
		return old.Threads, nil
	}
	switch {
	case cfg.Threads > 0:
		return cfg.Threads, nil
	case def > 0:
		return def, nil
	}
	return runtime.NumCPU(), nil
}

// loop is one attempt at a run.
type loop struct {
	cfg   Config
	dir   string
	root  string
	runID string
	hash  string
	// diskHash is the config hash the directory's checkpoints carry.
	diskHash string
	prog     Progress
	log      *runLog
	tr       Trainer
	data     Data
	rows     []MetricsRow
	fisher   []FisherRow
	// images counts the training images of the epochs trained here.
	images int64
	prov   Provenance
	tb     *tensorBoard
}

// writeMetrics writes metrics.parquet (and fisher.parquet when there are
// estimates) with the config and the provenance as metadata.
func (l *loop) writeMetrics() error {
	meta := map[string]string{ConfigMetadataKey: string(l.cfg.YAML()), ProvenanceMetadataKey: l.prov.json()}
	failpoint.Hit("metrics")
	if err := writeParquet(filepath.Join(l.dir, MetricsFile), l.rows, meta); err != nil {
		return err
	}
	if len(l.fisher) > 0 {
		failpoint.Hit("fisher")
		return writeParquet(filepath.Join(l.dir, FisherFile), l.fisher, meta)
	}
	return nil
}

func (l *loop) logf(format string, args ...any) {
	l.log.Printf(format, args...)
	l.prog.Logf(l.runID, format, args...)
}

func (l *loop) run(ctx context.Context, backend Backend) (*Result, error) {
	cfg := l.cfg
	var err error
	l.tr, l.data, err = backend.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer l.tr.Close()

	// Restore first: an attempt it refuses leaves run.json as it was.
	start, status, err := l.restore()
	if err != nil {
		return nil, err
	}
	if l.prov, err = startProvenance(l.dir, cfg, l.tr, l.data, time.Now()); err != nil {
		return nil, err
	}
	// TensorBoard gets the epochs an earlier attempt (or the parent of a
	// branch) finished and it has not shown yet, then each epoch as it ends.
	if l.tb, err = openTensorBoard(l.dir); err != nil {
		return nil, err
	}
	defer l.tb.close()
	if err := l.tb.sync(l.rows, l.fisher); err != nil {
		return nil, err
	}
	if start == 0 && slicesContains(cfg.KeepCheckpoints, 0) {
		if err := l.checkpoint(0); err != nil {
			return nil, err
		}
	}
	for epoch := start; epoch < cfg.Epochs; epoch++ {
		row, err := l.epoch(ctx, epoch)
		if err != nil {
			return nil, err
		}
		if err := l.estimateFisher(epoch, &row); err != nil {
			return nil, err
		}
		if err := l.endEpoch(epoch, row); err != nil {
			return nil, err
		}
	}
	// A branch that trains no epoch of its own (its parent's checkpoint is
	// its final state) ends on a row its parent may not have evaluated.
	if last := &l.rows[len(l.rows)-1]; last.TestAcc == nil {
		if err := l.evaluate(ctx, last); err != nil {
			return nil, err
		}
		if err := l.tb.sync(l.rows, l.fisher); err != nil {
			return nil, err
		}
	}
	l.prov.End = time.Now().UTC().Format(time.RFC3339)
	if err := l.writeMetrics(); err != nil {
		return nil, err
	}
	if err := writeProvenance(l.dir, l.prov); err != nil {
		return nil, err
	}
	failpoint.Hit("export")
	if err := l.tr.Export(filepath.Join(l.dir, ModelFile)); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	last := l.rows[len(l.rows)-1]
	l.logf("%s: finished %d epochs, test acc %.4f (mean of last %d evaluated: %.4f)", l.runID, cfg.Epochs, *last.TestAcc, FinalEpochs, LastKAccuracy(l.rows))
	return &Result{Dir: l.dir, RunID: l.runID, Status: status, Rows: l.rows}, nil
}

// resolve names a branch_from or init_from path p relative to root.
func resolve(root, p string) string {
	if root == "" || p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// endEpoch writes what a finished epoch leaves, in an order that a kill
// between any two writes (or inside one: each is atomic) loses nothing a
// resume cannot redo: the metrics and the log line first (a resume from
// the previous checkpoint trains the epoch again and rewrites them), then
// the kept checkpoint, then latest.ckpt, which marks the epoch done; so
// every epoch before latest.ckpt's has its row, its log line and its kept
// checkpoint. TensorBoard's event comes last: a kill before it leaves the
// epoch to the next attempt's sync.
func (l *loop) endEpoch(epoch int, row MetricsRow) error {
	l.rows = append(l.rows, row)
	if err := l.writeMetrics(); err != nil {
		return err
	}
	l.log.Printf("epoch %d/%d deficit %s lr %.6g train loss %.4f acc %.4f %s %.1fs %.0f img/s",
		epoch, l.cfg.Epochs, row.Deficit, row.LR, row.TrainLoss, row.TrainAcc, testColumns(row), row.EpochSeconds, row.ImagesPerSec)
	failpoint.Hit("log")
	if err := l.log.Flush(); err != nil {
		return err
	}
	if err := l.checkpoint(epoch + 1); err != nil {
		return err
	}
	failpoint.Hit("tensorboard")
	return l.tb.sync(l.rows, l.fisher)
}

// restore continues from the latest checkpoint, branches from a parent
// run, or initialises from cfg.InitFrom, and returns the first epoch to
// train.
func (l *loop) restore() (int, Status, error) {
	latest := LatestCheckpointPath(l.dir)
	if _, err := os.Stat(latest); err == nil {
		epoch, err := l.load(latest, l.diskHash)
		if err != nil {
			return 0, "", fmt.Errorf("%w%s", err, l.fallbackHint(err))
		}
		if err := l.loadRows(l.dir, epoch, false); err != nil {
			return 0, "", err
		}
		l.logf("%s: resumed from %s at epoch %d", l.runID, latest, epoch)
		// Runs of critlab before the write order of endEpoch could be
		// killed between latest.ckpt and the kept checkpoint of its epoch.
		if kept := CheckpointPath(l.dir, epoch); slicesContains(l.cfg.KeepCheckpoints, epoch) && !exists(kept) {
			if err := l.checkpoint(epoch); err != nil {
				return 0, "", err
			}
			l.logf("%s: wrote the missing %s from %s", l.runID, kept, latest)
		}
		return epoch, Resumed, nil
	}
	l.logf("%s: config %s, %s", l.runID, l.hash, l.cfg.Summary())
	switch {
	case l.cfg.BranchFrom != "":
		if err := l.branch(); err != nil {
			return 0, "", err
		}
		return l.cfg.BranchEpoch, Trained, nil
	case l.cfg.InitFrom != "":
		path, err := initFrom(l.tr, l.cfg, l.root)
		if err != nil {
			return 0, "", err
		}
		l.logf("%s: initialised from %s", l.runID, path)
	}
	return 0, Trained, nil
}

// load restores a checkpoint written by this loop and returns its epoch.
// An empty wantHash accepts any config.
func (l *loop) load(path, wantHash string) (int, error) {
	meta, err := l.tr.LoadCheckpoint(path)
	if err != nil {
		return 0, err // the trainer's error names the checkpoint
	}
	if v := meta[metaVersion]; v != checkpointVer {
		return 0, fmt.Errorf("checkpoint %s: loop state version %q, want %q (written by another critlab version?)", path, v, checkpointVer)
	}
	if wantHash != "" && meta[metaConfigHash] != wantHash {
		return 0, fmt.Errorf("%w: checkpoint %s is of config %s, this run is %s", ErrConfigChanged, path, meta[metaConfigHash], wantHash)
	}
	if err := l.checkGraph(path, meta[metaGraphHash]); err != nil {
		return 0, err
	}
	epoch, err := strconv.Atoi(meta[metaEpoch])
	if err != nil || epoch < 0 || epoch > l.cfg.Epochs {
		return 0, fmt.Errorf("checkpoint %s: bad epoch %q", path, meta[metaEpoch])
	}
	return epoch, nil
}

// checkGraph refuses a checkpoint written by a train-step graph other than
// the trainer's: the config alone does not pin the arithmetic, which also
// depends on the compiler's formulation of each gradient, so a run
// continued under another critlab would silently mix the two. Checkpoints
// of critlab before graph hashes carry none and load with a warning.
func (l *loop) checkGraph(path, saved string) error {
	now := graphHashOf(l.tr)
	switch {
	case now == "" || saved == now:
		return nil
	case saved == "":
		l.logf("%s: warning: %s records no training-graph hash (written before critlab recorded one): continuing without checking that this critlab computes what the one that wrote it did", l.runID, path)
		return nil
	}
	dir := filepath.Dir(filepath.Dir(path))
	by := "the critlab version that wrote it"
	if p, err := ReadProvenance(dir); err == nil && p.Critlab != "" {
		by = fmt.Sprintf("critlab %s (commit %s, as %s records)", p.Critlab, p.GitCommit, filepath.Join(dir, ProvenanceFile))
	}
	hint := fmt.Sprintf("continue with %s, or pass --force to train the run again from the start", by)
	if filepath.Clean(dir) != filepath.Clean(l.dir) {
		hint = fmt.Sprintf("branch with %s, or remove the parent run %s to train it again with this critlab", by, dir)
	}
	return fmt.Errorf("%w: checkpoint %s was written by training graph %.12s, this critlab compiles %.12s (another formulation: the floats would differ from the epochs before)\n---> HINT: %s",
		ErrGraphChanged, path, saved, now, hint)
}

// graphHashOf is tr's GraphHash, or "" when it has none.
func graphHashOf(tr Trainer) string {
	if g, ok := tr.(GraphHasher); ok {
		return g.GraphHash()
	}
	return ""
}

// loadRows reads the metrics (and Fisher rows) of dir for epochs before
// epoch; a parent's rows (branch) are relabelled as this run's.
func (l *loop) loadRows(dir string, epoch int, relabel bool) error {
	rows, err := readParquet[MetricsRow](filepath.Join(dir, MetricsFile), true)
	if err != nil {
		return err
	}
	fisher, err := readParquet[FisherRow](filepath.Join(dir, FisherFile), true)
	if err != nil {
		return err
	}
	l.rows = l.rows[:0]
	for _, r := range rows {
		if int(r.Epoch) < epoch {
			if relabel {
				r = l.relabel(r)
			}
			r.ConfigHash = l.hash // a moved legacy run's rows take the new identity
			l.rows = append(l.rows, r)
		}
	}
	if len(l.rows) != epoch {
		return fmt.Errorf("%s holds %d rows before epoch %d, want %d (metrics and checkpoint disagree)", filepath.Join(dir, MetricsFile), len(l.rows), epoch, epoch)
	}
	l.fisher = l.fisher[:0]
	for _, r := range fisher {
		if int(r.Epoch) < epoch {
			r.RunID = l.runID
			l.fisher = append(l.fisher, r)
		}
	}
	return nil
}

// relabel makes a parent's row one of this run: its run id, config hash
// and window columns.
func (l *loop) relabel(r MetricsRow) MetricsRow {
	t := l.template(int(r.Epoch))
	t.TrainLoss, t.TrainAcc = r.TrainLoss, r.TrainAcc
	// The parent evaluated its own last epoch; this run would not have.
	if l.cfg.EvalDue(int(r.Epoch)) {
		t.TestLoss, t.TestAcc = r.TestLoss, r.TestAcc
	}
	t.EpochSeconds, t.ImagesPerSec, t.FisherTrace = r.EpochSeconds, r.ImagesPerSec, r.FisherTrace
	return t
}

// initFrom loads cfg's init_from (a run directory or a model file,
// relative to root) into tr and returns the model file's path.
func initFrom(tr Trainer, cfg Config, root string) (string, error) {
	path, err := InitPath(resolve(root, cfg.InitFrom))
	if err != nil {
		return "", err
	}
	if err := tr.InitFrom(path); err != nil {
		return "", fmt.Errorf("init from %s: %w", path, err)
	}
	return path, nil
}

// branchParent returns the directory and config of cfg's branch_from run
// (relative to root), checked to be one cfg may branch from.
func branchParent(cfg Config, root string) (string, Config, error) {
	parentDir := resolve(root, cfg.BranchFrom)
	parent, err := LoadConfig(filepath.Join(parentDir, ConfigFile), Config{})
	if err != nil {
		return "", Config{}, fmt.Errorf("branch: %w", err)
	}
	if err := BranchCompatible(parent, cfg, cfg.BranchEpoch); err != nil {
		return "", Config{}, fmt.Errorf("branch from %s: %w", parentDir, err)
	}
	return parentDir, parent, nil
}

// branch starts from a parent run's checkpoint (see Config.BranchFrom).
func (l *loop) branch() error {
	parentDir, parent, err := branchParent(l.cfg, l.root)
	if err != nil {
		return err
	}
	epoch := l.cfg.BranchEpoch
	path := CheckpointPath(parentDir, epoch)
	got, err := l.load(path, parent.Hash())
	if err != nil {
		hint := fmt.Sprintf("remove the parent run %s and run again: it trains again and keeps the checkpoint", parentDir)
		if errors.Is(err, fs.ErrNotExist) && epoch == parent.Epochs {
			hint += fmt.Sprintf(" (removing its %s is enough: its resume writes the missing checkpoint of its last epoch)", ModelFile)
		}
		return fmt.Errorf("branch: %w\n---> HINT: %s", err, hint)
	}
	if got != epoch {
		return fmt.Errorf("branch: checkpoint %s is at epoch %d, want %d", path, got, epoch)
	}
	if err := l.loadRows(parentDir, epoch, true); err != nil {
		return fmt.Errorf("branch: %w", err)
	}
	l.logf("%s: branched from %s at epoch %d", l.runID, path, epoch)
	return nil
}

// BranchCompatible reports whether child may start from parent's state at
// epoch: both configs must agree on everything that shaped epochs before
// it (model, data, optimizer, seed, and per epoch the learning rate and
// the active deficit).
func BranchCompatible(parent, child Config, epoch int) error {
	if epoch > parent.Epochs {
		return fmt.Errorf("parent trains %d epochs, branch epoch is %d", parent.Epochs, epoch)
	}
	if sameData(parent.Data, child.Data) {
		child.Data = parent.Data // another spelling of the parent's data path
	}
	trunk := func(c Config) Config {
		c.Epochs, c.Deficits, c.KeepCheckpoints = 0, nil, nil
		c.BranchFrom, c.BranchEpoch, c.Fisher = "", 0, FisherConfig{}
		c.RestartAtDeficitEnd, c.LRSchedule, c.LRDecay, c.LRStep, c.WarmupEpochs = false, "", 0, 0, 0
		c.Device = ""
		return c
	}
	if d := diffConfigs(trunk(parent), trunk(child)); d != "" {
		return fmt.Errorf("configs differ in %s", d)
	}
	for e := 0; e < epoch; e++ {
		if a, b := parent.LearningRate(e), child.LearningRate(e); a != b {
			return fmt.Errorf("epoch %d: parent lr %g, branch lr %g", e, a, b)
		}
		wa, _ := parent.ActiveWindow(e)
		wb, _ := child.ActiveWindow(e)
		if wa.Deficit != wb.Deficit {
			return fmt.Errorf("epoch %d: parent deficit %q, branch deficit %q", e, wa.Deficit, wb.Deficit)
		}
	}
	return nil
}

// checkpoint saves the state at the start of epoch as that epoch's kept
// checkpoint when asked for, then as latest (see endEpoch). Checkpoints
// carry the hash the directory's config.yaml has (diskHash), which its
// branches check.
func (l *loop) checkpoint(epoch int) error {
	meta := map[string]string{
		metaVersion:    checkpointVer,
		metaEpoch:      strconv.Itoa(epoch),
		metaConfigHash: l.diskHash,
		metaRunID:      l.runID,
	}
	if h := graphHashOf(l.tr); h != "" {
		meta[metaGraphHash] = h
	}
	if slicesContains(l.cfg.KeepCheckpoints, epoch) {
		failpoint.Hit("checkpoint-kept")
		if err := l.tr.SaveCheckpoint(CheckpointPath(l.dir, epoch), meta); err != nil {
			return fmt.Errorf("checkpoint epoch %d: %w", epoch, err)
		}
	}
	failpoint.Hit("checkpoint-latest")
	if err := l.tr.SaveCheckpoint(LatestCheckpointPath(l.dir), meta); err != nil {
		return fmt.Errorf("checkpoint epoch %d: %w", epoch, err)
	}
	return nil
}

// fallbackHint says which earlier checkpoint a run can resume from when its
// latest one does not load.
func (l *loop) fallbackHint(err error) string {
	if !errors.Is(err, ErrCorrupt) {
		return ""
	}
	keep := append([]int(nil), l.cfg.KeepCheckpoints...)
	sort.Sort(sort.Reverse(sort.IntSlice(keep)))
	for _, e := range keep {
		if p := CheckpointPath(l.dir, e); exists(p) {
			return fmt.Sprintf("\n---> HINT: fall back to the earlier checkpoint %s: copy it over %s and run again to resume from epoch %d", p, LatestCheckpointPath(l.dir), e)
		}
	}
	return fmt.Sprintf("\n---> HINT: no earlier checkpoint is kept; remove %s and run again to train from epoch 0", LatestCheckpointPath(l.dir))
}

// template is a row with the run's and the epoch's settings filled in.
func (l *loop) template(epoch int) MetricsRow {
	cfg := l.cfg
	r := MetricsRow{
		RunID: l.runID, Model: cfg.Model, Dataset: cfg.Data, Seed: cfg.Seed,
		Epoch: int32(epoch), Deficit: "none", DeficitStart: -1, DeficitEnd: -1,
		DeficitWindows: cfg.DeficitWindows(), LR: cfg.LearningRate(epoch), ConfigHash: l.hash,
	}
	if ws := cfg.sortedWindows(); len(ws) > 0 {
		r.DeficitStart, r.DeficitEnd = int32(ws[0].Start), int32(ws[0].End)
	}
	if w, ok := cfg.ActiveWindow(epoch); ok {
		r.Deficit = w.Deficit
	}
	return r
}

// epoch trains and evaluates one epoch.
func (l *loop) epoch(ctx context.Context, epoch int) (MetricsRow, error) {
	row := l.template(epoch)
	deficit := ""
	if row.Deficit != "none" {
		deficit = row.Deficit
	}
	t0 := time.Now()
	next, stop, err := l.data.Train(epoch, deficit)
	if err != nil {
		return row, fmt.Errorf("epoch %d: training data: %w", epoch, err)
	}
	defer stop()
	if s, ok := l.tr.(EpochSeeder); ok {
		s.SeedEpoch(epoch)
	}
	steps := l.data.TrainSize() / l.cfg.BatchSize
	l.prog.EpochStart(l.runID, epoch, l.cfg.Epochs, steps)
	lr := float32(row.LR)
	var (
		lossSum float64
		correct int64
		images  int
		step    int
	)
	tTrain := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return row, fmt.Errorf("stopped in epoch %d after %d steps: %w", epoch, step, err)
		}
		x, y, ok, err := next()
		if err != nil {
			return row, fmt.Errorf("epoch %d step %d: batch: %w", epoch, step, err)
		}
		if !ok {
			break
		}
		loss, c, err := l.tr.Step(x, y, lr)
		if err != nil {
			return row, fmt.Errorf("epoch %d step %d: %w", epoch, step, err)
		}
		if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
			return row, fmt.Errorf("%w: loss %v at epoch %d step %d (batch of %d images, lr %g)\n---> HINT: lower lr or batch_size",
				ErrDiverged, loss, epoch, step, len(y), lr)
		}
		lossSum += float64(loss) * float64(len(y))
		correct += c
		images += len(y)
		step++
		secs := time.Since(tTrain).Seconds()
		l.prog.Step(l.runID, step, lossSum/float64(images), float64(correct)/float64(images), float64(images)/math.Max(secs, 1e-9))
	}
	if images == 0 {
		return row, fmt.Errorf("epoch %d: no training batch (train size %d, batch size %d)", epoch, l.data.TrainSize(), l.cfg.BatchSize)
	}
	trainSecs := time.Since(tTrain).Seconds()
	stop()
	if l.cfg.EvalDue(epoch) {
		if err := l.evaluate(ctx, &row); err != nil {
			return row, err
		}
	}
	row.TrainLoss = lossSum / float64(images)
	row.TrainAcc = float64(correct) / float64(images)
	row.EpochSeconds = time.Since(t0).Seconds()
	row.ImagesPerSec = float64(images) / math.Max(trainSecs, 1e-9)
	l.images += int64(images)
	l.prog.EpochEnd(l.runID, row, images)
	return row, nil
}

// evaluate fills row's test metrics from the trainer's current state.
func (l *loop) evaluate(ctx context.Context, row *MetricsRow) error {
	test, stop, err := l.data.Test()
	if err != nil {
		return fmt.Errorf("epoch %d: test data: %w", row.Epoch, err)
	}
	defer stop()
	ev, err := l.tr.Evaluate(cancellable(ctx, test))
	if err != nil {
		return fmt.Errorf("epoch %d: evaluate: %w", row.Epoch, err)
	}
	row.TestLoss, row.TestAcc = &ev.Loss, &ev.Accuracy
	return nil
}

// estimateFisher runs the Fisher hook when the epoch is due.
func (l *loop) estimateFisher(epoch int, row *MetricsRow) error {
	f := l.cfg.Fisher
	if f.Every <= 0 || !fisherDue(l.cfg, epoch) {
		return nil
	}
	ft, ok := l.tr.(FisherTrainer)
	if !ok {
		if epoch+1 == f.Every {
			l.logf("%s: fisher estimates skipped: this trainer has no Fisher support yet", l.runID)
		}
		return nil
	}
	// Fixed clean training images, whatever deficit the epoch trains on, so
	// every estimate of a run measures the same thing.
	probe, stop, err := l.data.Probe(f.Images)
	if err != nil {
		return fmt.Errorf("epoch %d: fisher data: %w", epoch, err)
	}
	defer stop()
	res, err := ft.Fisher(probe, f.Samples)
	if err != nil {
		return fmt.Errorf("epoch %d: fisher: %w", epoch, err)
	}
	total := res.Total
	row.FisherTrace = &total
	l.fisher = append(l.fisher, FisherRow{RunID: l.runID, Epoch: int32(epoch), Layer: FisherTotal, Trace: total})
	for _, name := range sortedKeys(res.Layers) {
		l.fisher = append(l.fisher, FisherRow{RunID: l.runID, Epoch: int32(epoch), Layer: name, Trace: res.Layers[name]})
	}
	return nil
}

// fisherDue reports whether the Fisher estimate runs at the end of epoch:
// every Every-th epoch, the last one, and the last epoch before each deficit
// window starts or ends.
func fisherDue(cfg Config, epoch int) bool {
	if (epoch+1)%cfg.Fisher.Every == 0 || epoch == cfg.Epochs-1 {
		return true
	}
	for _, w := range cfg.Deficits {
		if epoch+1 == w.Start || epoch+1 == w.End {
			return true
		}
	}
	return false
}

// cancellable stops a batch iterator when ctx is done.
func cancellable(ctx context.Context, next Batches) Batches {
	return func() ([]float32, []int64, bool, error) {
		if err := ctx.Err(); err != nil {
			return nil, nil, false, err
		}
		return next()
	}
}

// InitPath resolves init_from: a run directory gives its model.onnx, or
// its latest checkpoint when the run has not finished; a file is used as
// is.
func InitPath(from string) (string, error) {
	st, err := os.Stat(from)
	if err != nil {
		return "", fmt.Errorf("init_from: %w", err)
	}
	if !st.IsDir() {
		return from, nil
	}
	for _, p := range []string{filepath.Join(from, ModelFile), LatestCheckpointPath(from)} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("init_from: %w", err)
		}
	}
	return "", fmt.Errorf("init_from: %s holds neither %s nor %s", from, ModelFile, LatestCheckpointPath(from))
}
