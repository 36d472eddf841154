// Package runs owns critlab's experiments: run configs, run directories,
// the training loop, Parquet logs, sweeps, reports and plots.
//
// # Runs
//
// A Config is resolved from Default() < a YAML file (LoadConfig) < flags,
// validated (Validate on its own, Check against the model and data;
// CheckNew also refuses settings without effect, for runs not on disk yet,
// so that directories written before those checks still resume), and
// trained by Run into a directory:
//
//	config.yaml        the resolved config; its hash (Config.Hash) tags every row
//	metrics.parquet    one row per finished epoch (MetricsRow), rewritten atomically
//	fisher.parquet     Fisher-trace estimates per layer, when configured
//	checkpoints/       latest.ckpt and the epochs of KeepCheckpoints
//	log.txt            what happened, appended to by every attempt
//	model.onnx         the trained inference model, written last
//
// Every random choice is a function of (seed, epoch), and the checkpoint
// holds the whole training state and the epoch, so a run killed at any
// step and started again resumes to the same metrics as an uninterrupted
// run. A run holds an exclusive lock on its directory (internal/dirlock)
// while it works. A finished run is skipped unless Options.Force; a
// directory that holds another config is refused (ErrConfigChanged), unless
// it finished no epoch.
//
//	cfg := runs.Default()
//	cfg.Model, cfg.Data, cfg.Epochs = "small", "synthetic", 30
//	cfg.Deficits = []runs.Window{{Deficit: "blur", Start: 0, End: 10}}
//	res, err := runs.Run(ctx, cfg, "runs-out/blur10", runs.Options{Backend: ortbackend.New(ortbackend.Options{})})
//
// # Sweeps
//
// A SweepSpec (configs/*.yaml) expands into a Plan of runs: deficit removal
// at each epoch T (optionally branched from one long deficit run's
// checkpoints), a sliding deficit window with a baseline, and fine-tuning
// after deficit pretraining against training from scratch, plus controls,
// for several seeds. RunSweep checks every run before any trains, trains
// them in parallel under a worker limit, and writes sweep.parquet.
// Executors in other processes share its plan through dir/sweep.yaml:
// PrepareSweep writes it, RunPoint trains one planned run, CollectSweep
// writes sweep.parquet, SweepStatus says where each run stands, and
// SubmitSweep hands the runs to Slurm as dependent job arrays.
//
// # Reports
//
// LoadReport summarises a run or sweep directory: per run the final
// accuracy (last evaluated epoch) and the mean of the last FinalEpochs;
// per point the paired, within-seed differences from its reference with a
// t-interval (stats.go: PairedDiff, TOST; none below MinIntervalN seeds).
// WriteTable, PointsCSV and WriteFiles write the table, CSV files and
// figures (plot.go: PNG at PlotDPI and SVG).
//
// The loop reaches ONNX Runtime, the model zoo and the data sets only
// through the Backend, Trainer and Data interfaces (backend.go); the
// package harness/ortbackend wires them to ONNX Runtime, and runstest provides a
// pure-Go fake. runs itself needs no cgo.
package runs
