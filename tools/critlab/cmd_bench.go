package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/internal/atomicfile"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"github.com/critlab/critlab/models/zoo"
	"github.com/critlab/critlab/preprocessing"
	"github.com/urfave/cli/v2"
)

// benchModel is one model's row of `critlab bench`.
type benchModel struct {
	Model string  `json:"model"`
	Width float64 `json:"width"`
	Batch int     `json:"batch"`
	// ImageSize is the image side; 0 for an .onnx graph (its own).
	ImageSize     int                `json:"image_size,omitempty"`
	MemArena      bool               `json:"mem_arena"`
	Params        int64              `json:"params"`
	FLOPsPerImage int64              `json:"forward_flops_per_image"`
	Train         harness.Throughput `json:"train_step"`
	Eval          harness.Throughput `json:"eval"`
	PeakRSSBytes  int64              `json:"peak_rss_bytes"`
	CeilingRatio  float64            `json:"train_gflops_over_conv_ceiling"`
	Fisher        *fisherBench       `json:"fisher,omitempty"`
	// Profile is ORT's profile of train steps (--profile).
	Profile *harness.Profile `json:"profile,omitempty"`
	// Torch is PyTorch's train step on the same architecture, batch and
	// threads (--torch); TorchRatio is critlab's train images/s over
	// PyTorch's, TorchCPURatio the same per CPU-second of each process
	// (steadier when other jobs share the cores), TorchRSSRatio critlab's
	// peak RSS over PyTorch's.
	Torch         *torchBench `json:"torch,omitempty"`
	TorchRatio    float64     `json:"train_ratio_to_torch,omitempty"`
	TorchCPURatio float64     `json:"train_cpu_ratio_to_torch,omitempty"`
	TorchRSSRatio float64     `json:"peak_rss_ratio_to_torch,omitempty"`
	// Repeats are every measurement of --repeat, in order; the row's own
	// figures are those of the median one (by ratio to PyTorch, else by
	// train images/s).
	Repeats []benchRepeat `json:"repeats,omitempty"`
}

// benchRepeat is one of --repeat's measurements of a model.
type benchRepeat struct {
	TrainImagesPerSec float64 `json:"train_images_per_sec"`
	TorchImagesPerSec float64 `json:"torch_images_per_sec,omitempty"`
	Ratio             float64 `json:"train_ratio_to_torch,omitempty"`
	CPURatio          float64 `json:"train_cpu_ratio_to_torch,omitempty"`
}

// fisherBench is the cost of one Fisher-trace estimate (Trainer.Fisher).
type fisherBench struct {
	Images  int     `json:"images"`
	Samples int     `json:"samples"`
	Seconds float64 `json:"seconds"`
	// EpochSeconds is a CIFAR-10 epoch (epochImages) at the train-step
	// rate; Ratio is Seconds over it.
	EpochSeconds float64 `json:"epoch_seconds"`
	Ratio        float64 `json:"ratio_to_epoch"`
}

// epochImages is the size of the epoch the Fisher cost is compared with
// (CIFAR-10's training set).
const epochImages = 50000

// benchReport is what `critlab bench --json` writes.
type benchReport struct {
	Time     string             `json:"time"`
	Device   string             `json:"device"`
	ORT      string             `json:"onnxruntime"`
	Threads  int                `json:"threads"`
	MemArena bool               `json:"mem_arena"`
	CPU      string             `json:"cpu_features"`
	Ceiling  harness.Throughput `json:"conv_ceiling"`
	Layer    string             `json:"conv_ceiling_layer"`
	Models   []benchModel       `json:"models"`
	Pipeline *pipelineBench     `json:"pipeline,omitempty"`
	// TorchPython is the interpreter of the PyTorch column (--torch).
	TorchPython string `json:"torch_python,omitempty"`
	// Repeat is how many times each model was measured (--repeat).
	Repeat int `json:"repeat"`
}

type pipelineBench struct {
	ImagesPerSec float64 `json:"images_per_sec"`
	Workers      int     `json:"workers"`
	// RatioToAllCNN is pipeline images/s over allcnn's train-step images/s.
	RatioToAllCNN float64 `json:"ratio_to_allcnn_train"`
}

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure train-step, eval and data-pipeline throughput, and ORT's Conv ceiling",
		Description: "Each model runs in a child process so its peak RSS is its own. Train GFLOP/s\n" +
			"counts 3× the forward FLOPs per image. The ceiling is ORT's plain forward Conv\n" +
			"on allcnn's largest layer (96→96 channels, 3×3, 32×32) at the same batch.\n\n" +
			"A model is a zoo name, an .onnx forward graph or, with --torch, tv:NAME\n" +
			"(torchvision's NAME with 10 classes, exported by tools/export_torch.py and\n" +
			"cached); /bN, /Npx and /arena or /noarena after it set its batch, image side\n" +
			"and memory arena, as in tv:vgg11_bn/224px/b8. --torch PYTHON times PyTorch's train step\n" +
			"on the same architecture, batch and threads with tools/torch_bench.py, in its\n" +
			"own process after critlab's, and prints the ratio.",
		Flags: append(runtimeFlags(),
			&cli.StringFlag{Name: "models", Value: "allcnn,resnet18,small", Usage: "comma-separated zoo models, .onnx forward graphs or tv:NAME, each optionally /bN, /Npx, /arena or /noarena"},
			&cli.Float64Flag{Name: "width", Value: 1, Usage: "width multiplier"},
			&cli.IntFlag{Name: "batch-size", Aliases: []string{"b"}, Value: 128, Usage: "batch size"},
			&cli.DurationFlag{Name: "min-time", Value: 5 * time.Second, Usage: "minimum timed duration per measurement"},
			&cli.StringFlag{Name: "json", Usage: "also write the figures as JSON to this file"},
			&cli.BoolFlag{Name: "no-pipeline", Usage: "skip the data-pipeline measurement"},
			&cli.IntFlag{Name: "fisher-images", Value: 500, Usage: "images of the timed Fisher-trace estimate (0: skip it)"},
			&cli.IntFlag{Name: "fisher-samples", Value: 1, Usage: "label samples per image of the timed Fisher-trace estimate"},
			&cli.BoolFlag{Name: "profile", Usage: "also profile train steps with ONNX Runtime's profiler and attribute their time to the compiler's forward ops, gradient rules and optimizer"},
			&cli.IntFlag{Name: "profile-steps", Value: 5, Usage: "profiled train steps (after 2 warm-up steps)"},
			&cli.IntFlag{Name: "profile-top", Value: 15, Usage: "profile entries printed per model (the JSON keeps all)"},
			&cli.StringFlag{Name: "profile-dir", Usage: "keep ORT's traces and optimized graphs here, one folder per model (default: a temporary folder, removed)"},
			&cli.StringFlag{Name: "torch", Usage: "Python with torch and torchvision: time PyTorch's train step beside critlab's (tools/torch_bench.py)"},
			&cli.IntFlag{Name: "repeat", Value: 1, Usage: "measure each model this many times (with --torch, critlab and PyTorch in turn) and keep the median: ratios on a shared machine move by tenths between runs"},
			&cli.StringFlag{Name: "one", Hidden: true, Usage: "internal: measure one model (zoo name or .onnx) and print JSON"},
			&cli.StringFlag{Name: "one-name", Hidden: true, Usage: "internal: the row's model name"},
			&cli.IntFlag{Name: "image-size", Hidden: true, Usage: "internal: a zoo model's image side"},
		),
		Action: func(c *cli.Context) error {
			opts := runtimeOptions(c)
			if src := c.String("one"); src != "" {
				spec := benchSpec{Name: cmp.Or(c.String("one-name"), src), Batch: c.Int("batch-size"), ImageSize: c.Int("image-size"), Arena: opts.MemArena}
				row, err := benchOne(opts, spec, src, c.Float64("width"), c.Duration("min-time"), c.Int("fisher-images"), c.Int("fisher-samples"))
				if err != nil {
					return err
				}
				if c.Bool("profile") {
					if row.Profile, err = benchProfile(opts, spec, src, c.Float64("width"), c.Int("profile-steps"), c.String("profile-dir")); err != nil {
						return err
					}
				}
				return json.NewEncoder(c.App.Writer).Encode(row)
			}
			return benchAll(c, opts)
		},
	}
}

// benchSpec is one entry of --models: a model and the batch, image side
// and memory arena it is measured at.
type benchSpec struct {
	// Name is a zoo name, an .onnx file or tv:NAME.
	Name      string
	Batch     int
	ImageSize int // 0: the model's own
	Arena     bool
}

var (
	specBatch = regexp.MustCompile(`^b([1-9][0-9]*)$`)
	specSize  = regexp.MustCompile(`^([1-9][0-9]*)px$`)
)

// parseBenchSpecs reads --models: comma-separated models, each with
// optional /bN, /Npx and /arena or /noarena segments after it; batch and
// arena are the defaults.
func parseBenchSpecs(list string, batch int, arena bool) ([]benchSpec, error) {
	var out []benchSpec
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		sp := benchSpec{Name: item, Batch: batch, Arena: arena}
		for {
			i := strings.LastIndex(sp.Name, "/")
			seg := sp.Name[i+1:]
			if m := specBatch.FindStringSubmatch(seg); m != nil {
				sp.Batch, _ = strconv.Atoi(m[1])
			} else if m := specSize.FindStringSubmatch(seg); m != nil {
				sp.ImageSize, _ = strconv.Atoi(m[1])
			} else if seg == "arena" || seg == "noarena" {
				sp.Arena = seg == "arena"
			} else {
				break
			}
			sp.Name = sp.Name[:max(i, 0)]
		}
		switch {
		case sp.Name == "":
			return nil, fmt.Errorf("bench: --models entry %q names no model (want NAME[/bN][/Npx][/arena|/noarena])", item)
		case isONNX(sp.Name) && sp.ImageSize != 0:
			return nil, fmt.Errorf("bench: --models entry %q: an .onnx graph has its own image size; drop /%dpx", item, sp.ImageSize)
		}
		out = append(out, sp)
	}
	return out, nil
}

func isONNX(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".onnx") }

func benchAll(c *cli.Context, opts harness.RuntimeOptions) error {
	specs, err := parseBenchSpecs(c.String("models"), c.Int("batch-size"), opts.MemArena)
	if err != nil {
		return err
	}
	py := c.String("torch")
	var tools string
	if py != "" {
		if tools, err = findTools(); err != nil {
			return err
		}
	}
	// Sources: what each child measures (a tv: model's cached export).
	sources := make([]string, len(specs))
	for i, sp := range specs {
		sources[i] = sp.Name
		if !strings.HasPrefix(sp.Name, torchvisionPrefix) {
			continue
		}
		if py == "" {
			return fmt.Errorf("bench: %s needs --torch PYTHON to export it (tools/export_torch.py)", sp.Name)
		}
		if sources[i], err = exportTorchvision(c.Context, c.App.ErrWriter, py, tools, sp); err != nil {
			return err
		}
	}
	rt, err := harness.Open(opts)
	if err != nil {
		return err
	}
	rep := benchReport{Time: time.Now().UTC().Format(time.RFC3339), Device: rt.Device().String(), ORT: rt.Version(),
		Threads: rt.Threads(), MemArena: opts.MemArena, CPU: cpuFeatures(), Layer: "Conv 96→96 3×3 pad 1 on 32×32", TorchPython: py}
	batch, minTime := c.Int("batch-size"), c.Duration("min-time")
	fmt.Fprintf(c.App.ErrWriter, "bench: conv ceiling at batch %d\n", batch)
	rep.Ceiling, err = harness.BenchConv(rt, int64(batch), 96, 96, 32, minTime)
	rt.Close()
	if err != nil {
		return fmt.Errorf("bench: conv ceiling: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	repeat := c.Int("repeat")
	if repeat < 1 {
		return fmt.Errorf("bench: --repeat %d: want at least 1", repeat)
	}
	rep.Repeat = repeat
	for i, sp := range specs {
		var rows []benchModel
		for range repeat {
			row, err := benchChild(c, exe, opts, rep, sp, sources[i])
			if err != nil {
				return err
			}
			if py != "" {
				if isONNX(sp.Name) {
					fmt.Fprintf(c.App.ErrWriter, "bench: %s: no PyTorch model to compare with (name a zoo model or tv:NAME)\n", sp.Name)
				} else if err := benchTorch(c.Context, c.App.ErrWriter, torchRun{Py: py, Tools: tools, Width: c.Float64("width"), Threads: rep.Threads, MinTime: minTime, Spin: opts.Spin}, sp, &row); err != nil {
					return err
				}
			}
			rows = append(rows, row)
		}
		rep.Models = append(rep.Models, medianRow(rows))
	}
	if !c.Bool("no-pipeline") {
		fmt.Fprintf(c.App.ErrWriter, "bench: data pipeline\n")
		p, err := benchPipeline(batch)
		if err != nil {
			return err
		}
		for _, m := range rep.Models {
			if m.Model == "allcnn" {
				p.RatioToAllCNN = p.ImagesPerSec / m.Train.ImagesPerSec
				break
			}
		}
		rep.Pipeline = p
	}
	writeBenchTable(c.App.Writer, rep)
	for _, m := range rep.Models {
		if m.Profile != nil {
			writeProfile(c.App.Writer, m, c.Int("profile-top"))
		}
	}
	if path := c.String("json"); path != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := atomicfile.Write(path, append(data, '\n')); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		fmt.Fprintf(c.App.Writer, "wrote %s\n", path)
	}
	return nil
}

// benchChild measures one model in a child process (so its peak RSS is its
// own) and returns its row.
func benchChild(c *cli.Context, exe string, opts harness.RuntimeOptions, rep benchReport, sp benchSpec, source string) (benchModel, error) {
	fmt.Fprintf(c.App.ErrWriter, "bench: %s batch %d\n", sp.Name, sp.Batch)
	args := []string{"bench", "--one", source, "--one-name", sp.Name, "--width", fmt.Sprint(c.Float64("width")),
		"--batch-size", fmt.Sprint(sp.Batch), "--image-size", fmt.Sprint(sp.ImageSize),
		"--min-time", c.Duration("min-time").String(), "--device", opts.Device, "--threads", fmt.Sprint(rep.Threads),
		"--fisher-images", fmt.Sprint(c.Int("fisher-images")), "--fisher-samples", fmt.Sprint(c.Int("fisher-samples"))}
	if opts.Library != "" {
		args = append(args, "--ort-lib", opts.Library)
	}
	args = append(args, fmt.Sprintf("--mem-arena=%t", sp.Arena), fmt.Sprintf("--spin=%t", opts.Spin))
	if c.Bool("profile") {
		args = append(args, "--profile", "--profile-steps", fmt.Sprint(c.Int("profile-steps")))
		if dir := c.String("profile-dir"); dir != "" {
			args = append(args, "--profile-dir", dir)
		}
	}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(c.Context, exe, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return benchModel{}, fmt.Errorf("bench %s: %w: %s", sp.Name, err, strings.TrimSpace(errb.String()))
	}
	var row benchModel
	if err := json.Unmarshal(out.Bytes(), &row); err != nil {
		return row, fmt.Errorf("bench %s: read child output: %w", sp.Name, err)
	}
	row.CeilingRatio = row.Train.GFLOPs / rep.Ceiling.GFLOPs
	return row, nil
}

// medianRow is the median of one model's measurements (by ratio to PyTorch
// where there is one, else by train images/s), listing them all in its
// Repeats when there are several.
func medianRow(rows []benchModel) benchModel {
	key := func(m benchModel) float64 {
		if m.Torch != nil {
			return m.TorchRatio
		}
		return m.Train.ImagesPerSec
	}
	var reps []benchRepeat
	for _, m := range rows {
		r := benchRepeat{TrainImagesPerSec: m.Train.ImagesPerSec, Ratio: m.TorchRatio, CPURatio: m.TorchCPURatio}
		if m.Torch != nil {
			r.TorchImagesPerSec = m.Torch.ImagesPerSec
		}
		reps = append(reps, r)
	}
	sorted := slices.Clone(rows)
	slices.SortStableFunc(sorted, func(a, b benchModel) int { return cmp.Compare(key(a), key(b)) })
	med := sorted[(len(sorted)-1)/2]
	if len(rows) > 1 {
		med.Repeats = reps
	}
	return med
}

// benchTorch times PyTorch's train step of sp's model and sets row's
// PyTorch figures, warning when the parameter counts disagree (then the
// two sides are not the same architecture).
func benchTorch(ctx context.Context, errw io.Writer, r torchRun, sp benchSpec, row *benchModel) error {
	fmt.Fprintf(errw, "bench: %s batch %d (PyTorch)\n", sp.Name, sp.Batch)
	t, err := runTorchBench(ctx, r, sp)
	if err != nil {
		return err
	}
	row.Torch = t
	row.TorchRatio = row.Train.ImagesPerSec / t.ImagesPerSec
	if row.Train.CPUSeconds > 0 && t.CPUSeconds > 0 {
		// Images per CPU-second: the batch is the same on both sides.
		row.TorchCPURatio = (float64(row.Train.Iterations) / row.Train.CPUSeconds) / (float64(t.Steps) / t.CPUSeconds)
	}
	if t.PeakRSSBytes > 0 {
		row.TorchRSSRatio = float64(row.PeakRSSBytes) / float64(t.PeakRSSBytes)
	}
	if t.Params != row.Params {
		fmt.Fprintf(errw, "bench: WARNING: %s has %d parameters in PyTorch and %d in critlab: not the same architecture\n", sp.Name, t.Params, row.Params)
	}
	return nil
}

// benchForward loads or builds a benched model's forward graph: src is a
// zoo name (built at width and image side px, 0 for the default) or an
// .onnx file.
func benchForward(src string, width float64, px int) (*pb.ModelProto, error) {
	var m *pb.ModelProto
	var err error
	if isONNX(src) {
		if m, err = graph.Load(src); err == nil {
			err = graph.CheckExport(m)
		}
	} else {
		m, err = zoo.Build(src, zoo.Options{Width: width, Seed: 1, ImageSize: px})
	}
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", src, err)
	}
	return m, nil
}

// benchCompile is the train-step compilation every bench measurement uses.
func benchCompile() compiler.Options {
	co := compiler.DefaultOptions()
	co.Momentum, co.WeightDecay = 0.9, 5e-4
	return co
}

func benchOne(opts harness.RuntimeOptions, sp benchSpec, src string, width float64, minTime time.Duration, fisherImages, fisherSamples int) (benchModel, error) {
	batch := sp.Batch
	row := benchModel{Model: sp.Name, Width: width, Batch: batch, MemArena: opts.MemArena}
	m, err := benchForward(src, width, sp.ImageSize)
	if err != nil {
		return row, err
	}
	st, err := graph.Stats(m)
	if err != nil {
		return row, err
	}
	row.Params, row.FLOPsPerImage = st.Params, st.FLOPs
	if in := m.GetGraph().GetInput(); len(in) > 0 {
		if d, _ := graph.Dims(in[0]); len(d) == 4 {
			row.ImageSize = int(d[3])
		}
	}
	rt, err := harness.Open(opts)
	if err != nil {
		return row, err
	}
	defer rt.Close()
	co := benchCompile()
	// m is not used after this call, so the trainer's copy of the model is
	// the only one alive while it steps, as in `critlab train`, and the
	// peak RSS counts what training holds.
	row.Train, row.Eval, err = harness.BenchTrain(rt, m, harness.TrainerOptions{Compile: co, BatchSize: batch}, float64(st.FLOPs), minTime)
	if err != nil {
		return row, fmt.Errorf("bench %s: %w", sp.Name, err)
	}
	// Peak RSS of training alone, before the Fisher graph adds its own.
	if row.PeakRSSBytes, err = harness.PeakRSS(); err != nil || fisherImages <= 0 {
		return row, err
	}
	if m, err = benchForward(src, width, sp.ImageSize); err != nil {
		return row, err
	}
	sec, err := harness.BenchFisher(rt, m, harness.TrainerOptions{Compile: co, BatchSize: batch}, fisherImages, fisherSamples, minTime)
	if err != nil {
		return row, fmt.Errorf("bench %s: fisher: %w", sp.Name, err)
	}
	epoch := epochImages / row.Train.ImagesPerSec
	row.Fisher = &fisherBench{Images: fisherImages, Samples: fisherSamples, Seconds: sec, EpochSeconds: epoch, Ratio: sec / epoch}
	return row, nil
}

// benchProfile profiles train steps of one model with ORT's profiler, in
// dir/<model> when dir is set, else in a temporary folder.
func benchProfile(opts harness.RuntimeOptions, sp benchSpec, src string, width float64, steps int, dir string) (*harness.Profile, error) {
	name, batch := sp.Name, sp.Batch
	m, err := benchForward(src, width, sp.ImageSize)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "critlab-profile-")
		if err != nil {
			return nil, fmt.Errorf("bench %s: profile: %w", name, err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else {
		dir = filepath.Join(dir, fmt.Sprintf("%s-b%d", strings.NewReplacer("/", "_", ":", "_").Replace(name), batch))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("bench %s: profile: %w", name, err)
		}
	}
	rt, err := harness.Open(opts)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	p, err := harness.ProfileTrain(rt, m, harness.TrainerOptions{Compile: benchCompile(), BatchSize: batch}, 2, steps, dir)
	if err != nil {
		return nil, fmt.Errorf("bench %s: profile: %w", name, err)
	}
	return p, nil
}

// writeProfile prints a model's top profile entries and the step's split
// by category.
func writeProfile(w io.Writer, m benchModel, top int) {
	p := m.Profile
	fmt.Fprintf(w, "\nprofile: %s batch %d, %d steps: %.1f ms per step, kernels %.1f ms (%.0f%%), unattributed kernels %.1f ms (%.1f%%)\n",
		m.Model, m.Batch, p.Steps, p.StepMs, p.KernelMs, 100*p.KernelMs/p.StepMs, p.UnattributedMs, 100*p.UnattributedMs/p.StepMs)
	largest := func(ms map[string]float64, n int) string {
		keys := slices.Collect(maps.Keys(ms))
		slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(ms[b], ms[a]), cmp.Compare(a, b)) })
		var parts []string
		for _, k := range keys[:min(n, len(keys))] {
			parts = append(parts, fmt.Sprintf("%s %.1f ms (%.0f%%)", k, ms[k], 100*ms[k]/p.StepMs))
		}
		return strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "by part: %s\n", largest(p.Categories, len(p.Categories)))
	fmt.Fprintf(w, "by label: %s\n", largest(p.Labels, 8))
	if e := p.Memory; e != nil {
		mib := func(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
		var parts []string
		for _, s := range e.AtPeak[:min(6, len(e.AtPeak))] {
			parts = append(parts, fmt.Sprintf("%s %s (%d values)", s.Label, mib(s.Bytes), s.Values))
		}
		fmt.Fprintf(w, "live memory (static estimate in node order, no in-place runs or buffer reuse): inputs %s, outputs %s, activation peak %s at node %d (%s): %s\n",
			mib(e.InputBytes), mib(e.OutputBytes), mib(e.PeakBytes), e.PeakNode, e.PeakLabel, strings.Join(parts, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "provenance\top\tnodes\tms/step\t% of step")
	for i, e := range p.Entries {
		if i == top {
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.1f\n", e.Label, e.Op, e.Nodes, e.MsPerStep, 100*e.Share)
	}
	tw.Flush()
}

// benchPipeline times augmentation, normalisation and batching of a
// CIFAR-sized synthetic training set with a cached 8×8 blur.
func benchPipeline(batch int) (*pipelineBench, error) {
	ds, err := preprocessing.Open("synthetic:train=10000,test=100", preprocessing.OpenOptions{})
	if err != nil {
		return nil, fmt.Errorf("bench pipeline: %w", err)
	}
	d, err := preprocessing.ParseDeficit("blur")
	if err != nil {
		return nil, err
	}
	blurred, err := preprocessing.ApplyDeficit(ds.Train, d, 1)
	if err != nil {
		return nil, fmt.Errorf("bench pipeline: %w", err)
	}
	cfg := preprocessing.DefaultLoaderConfig()
	cfg.BatchSize = batch
	cfg = cfg.WithStats(ds.Train.Stats())
	res, err := preprocessing.BenchmarkPipeline(blurred, cfg, 2*10000/batch)
	if err != nil {
		return nil, fmt.Errorf("bench pipeline: %w", err)
	}
	return &pipelineBench{ImagesPerSec: res.ImagesPerSec, Workers: cfg.Workers}, nil
}

func writeBenchTable(w io.Writer, rep benchReport) {
	arena := "off"
	if rep.MemArena {
		arena = "on"
	}
	fmt.Fprintf(w, "ONNX Runtime %s on %s, %d threads, memory arena %s, %s\n", rep.ORT, rep.Device, rep.Threads, arena, rep.CPU)
	fmt.Fprintf(w, "ceiling: %s: %.1f GFLOP/s\n\n", rep.Layer, rep.Ceiling.GFLOPs)
	torch := slices.ContainsFunc(rep.Models, func(m benchModel) bool { return m.Torch != nil })
	repeats := torch && rep.Repeat > 1
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "model\twidth\tbatch\tpx\tparams\tGFLOP/img\ttrain img/s\ttrain GFLOP/s\t/ceiling\teval img/s\tpeak RSS MiB\tfisher s\t/epoch\t"
	if torch {
		head += "torch img/s\tratio\t"
		if repeats {
			head += "ratio range\t"
		}
		head += "cpu ratio\ttorch RSS MiB\tRSS ratio\t"
	}
	fmt.Fprintln(tw, head)
	var fisher *fisherBench
	for _, m := range rep.Models {
		fs, fr := "-", "-"
		if f := m.Fisher; f != nil {
			fs, fr, fisher = fmt.Sprintf("%.2f", f.Seconds), fmt.Sprintf("%.1f%%", 100*f.Ratio), f
		}
		name := m.Model
		if m.MemArena != rep.MemArena {
			name += map[bool]string{true: " (arena)", false: " (no arena)"}[m.MemArena]
		}
		fmt.Fprintf(tw, "%s\t%g\t%d\t%d\t%d\t%.3f\t%.1f\t%.1f\t%.2f\t%.1f\t%.0f\t%s\t%s\t", name, m.Width, m.Batch, m.ImageSize, m.Params,
			float64(m.FLOPsPerImage)/1e9, m.Train.ImagesPerSec, m.Train.GFLOPs, m.CeilingRatio, m.Eval.ImagesPerSec, float64(m.PeakRSSBytes)/(1<<20), fs, fr)
		if t := m.Torch; t != nil {
			fmt.Fprintf(tw, "%.1f\t%.2f\t", t.ImagesPerSec, m.TorchRatio)
			if repeats {
				fmt.Fprintf(tw, "%s\t", ratioRange(m.Repeats))
			}
			fmt.Fprintf(tw, "%.2f\t%.0f\t%.2f\t", m.TorchCPURatio, float64(t.PeakRSSBytes)/(1<<20), m.TorchRSSRatio)
		} else if torch {
			cols := 5
			if repeats {
				cols++
			}
			fmt.Fprint(tw, strings.Repeat("-\t", cols))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if torch {
		fmt.Fprintf(w, "\ntorch: PyTorch's train step (tools/torch_bench.py, %s) on the same architecture, batch and threads, each in its own process; ratio: critlab's train img/s over PyTorch's; cpu ratio: the same per CPU-second of each process; RSS ratio: critlab's peak RSS over PyTorch's\n", rep.TorchPython)
		if repeats {
			fmt.Fprintf(w, "repeats: each model measured %d times, critlab and PyTorch in turn; the row is the run of median ratio, ratio range the lowest and highest\n", rep.Repeat)
		}
	}
	if fisher != nil {
		fmt.Fprintf(w, "\nfisher: one Tr F estimate on %d images × %d sampled labels; /epoch: over %d images at the train rate\n", fisher.Images, fisher.Samples, epochImages)
	}
	if p := rep.Pipeline; p != nil {
		fmt.Fprintf(w, "\npipeline: %.0f images/s (%d workers, blur cached), %.1f× allcnn's train step\n", p.ImagesPerSec, p.Workers, p.RatioToAllCNN)
	}
}

// ratioRange is the lowest and highest ratio to PyTorch of reps.
func ratioRange(reps []benchRepeat) string {
	if len(reps) < 2 {
		return "-"
	}
	lo, hi := reps[0].Ratio, reps[0].Ratio
	for _, r := range reps[1:] {
		lo, hi = min(lo, r.Ratio), max(hi, r.Ratio)
	}
	return fmt.Sprintf("%.2f-%.2f", lo, hi)
}
