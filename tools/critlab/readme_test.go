package main

// The README's commands, run (golang/perf's tested docs): every `critlab`
// line of a ```sh block in README.md is in readmeCases, either run in
// order in one work folder on tiny synthetic data (each substitution must
// apply, so the line run is the README's with sizes made small) and its
// output checked for shape, or skipped with the reason it cannot run
// offline. A README command missing from the table, or a table entry
// missing from the README, fails the test.

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/runs"
)

// tinyData is the synthetic data set README commands train on here.
const tinyData = "synthetic:train=64,test=32,size=16,mix=0.5"

// tinySweep is the sweep `critlab report runs-out/demo` reports: the
// demo's variants at 16×16 and a few epochs.
const tinySweep = `name: demo
seeds: [0, 1]
base: {model: small, width: 0.25, data: "` + tinyData + `", batch_size: 32, lr: 0.05, lr_schedule: exp, lr_decay: 0.97, threads: 1,
       augment: {hflip: false, crop: false}}
removal:
  deficit: blur:size=4
  points: [0, 1, 2]
  after: 5
  branch: true
  controls: {vflip: true, lr_restart: true}
`

type readmeCase struct {
	cmd  string // the README line: continuations joined, comment dropped
	skip string // why it cannot run here
	// subst are old, new pairs applied in order; [ and ] of optional
	// arguments are dropped after.
	subst          []string
	extra          string // appended arguments
	stdout, stderr string // patterns the outputs must match
	err            string // pattern of the error, for a command that must fail here
}

var readmeCases = []readmeCase{
	{cmd: "critlab model build allcnn [--width 0.5] [--seed 1] [--classes 10] [--image-size 32] -o allcnn.onnx",
		stdout: `^wrote allcnn\.onnx: allcnn, 4\d\d,\d{3} parameters, \d+ M FLOPs per image\n$`},
	{cmd: "critlab model inspect allcnn.onnx",
		stdout: `(?m)^zoo +model=allcnn width=0.5 classes=10 image_size=32 seed=1\n(.*\n)*^parameters +4\d\d,\d{3} in \d+ tensors\n(.*\n)*^trainable: every op has a gradient rule`},
	{cmd: "critlab data fetch cifar10 [--dir D]", skip: "downloads from the internet"},
	{cmd: "critlab data fetch cifar10 --archive ../shared/data/cifar-10-binary.tar.gz",
		stdout: `^cifar10: placed data/cifar-10-binary\.tar\.gz \(\d+ bytes, MD5 [0-9a-f]{32}: not the published MD5\)`, extra: "-q"},
	{cmd: "critlab data info --archive ../shared/data/cifar-10-binary.tar.gz [--sheet sheet.png]",
		stdout: `(?m)^train +5 images`},
	{cmd: "critlab train --model allcnn --width 0.5 --data cifar10 --epochs 60 --deficit blur --deficit-epochs 0-20 --lr 0.05 --lr-schedule exp --lr-decay 0.97 --out runs-out/blur20",
		subst: []string{"allcnn --width 0.5", "small --width 0.25", "--data cifar10", "--data " + tinyData, "--epochs 60", "--epochs 3", "0-20", "0-1"},
		extra: "--batch-size 32 --threads 1 -q",
		stdout: `^run runs-out/blur20 \(trained\): final test accuracy \d+\.\d\d% \(last epoch\), \d+\.\d\d% \(mean of the last 5 evaluated epochs\)\n` +
			`trained 192 images in \S+: \d+ img/s \(evaluation included\)\n` +
			`metrics: runs-out/blur20/metrics\.parquet\nmodel: +runs-out/blur20/model\.onnx\n$`,
		stderr: `(?m)^blur20 epoch 0/3 \[blur\] lr 0\.05 \| train loss \d\.\d{4} acc \d\.\d{4} \| test loss \d\.\d{4} acc \d\.\d{4} \|`},
	{cmd: "critlab train --config my.yaml --seed 2",
		stdout: `^run runs-out/train/small-synthetic-s2-[0-9a-f]{8} \(trained\): final test accuracy`, extra: "-q"},
	{cmd: "critlab train --model allcnn --width 0.5 --data cifar10 --init-from runs-out/blur20 --freeze 'conv1.*' --out runs-out/ft",
		subst:  []string{"allcnn --width 0.5", "small --width 0.25", "--data cifar10", "--data " + tinyData},
		extra:  "--epochs 2 --batch-size 32 --threads 1 -q",
		stdout: `^run runs-out/ft \(trained\): final test accuracy`, stderr: `initialised from runs-out/blur20/model\.onnx`},
	{cmd: "critlab sweep --config demo",
		extra: "--dry-run", stdout: `^sweep demo: 16 runs in runs-out/demo\n(.*\n)*total: 660 epochs, 168960 training images`},
	// The dry run checks the runs against the data: the 5 images of the
	// test's archive are refused.
	{cmd: "critlab sweep --config cifar-cpu --data cifar10 --seeds 0-2 -j 2",
		extra: "--dry-run", err: `run trunk-s0: runs: invalid config: subset 5000 is larger than the 5 training images of cifar10`},
	{cmd: "critlab report runs-out/demo"}, // checked against the README's sample table
	{cmd: "critlab export --model forward.onnx runs-out/x/checkpoints/latest.ckpt -o trained.onnx",
		subst: []string{"runs-out/x", "runs-out/blur20"}, stdout: `^wrote trained\.onnx`},
	{cmd: "critlab bench [--models allcnn,resnet18,small,FILE.onnx] [--batch-size 128] [--profile] [--torch PYTHON] [--json bench.json]", skip: "a benchmark (make bench)"},
	{cmd: "critlab doctor [--device cuda]", subst: []string{"[--device cuda]", ""}, stdout: `(?m)^version: +1\.\d+\.\d+\n(.*\n)*^provider: +cpu +ok`},
	{cmd: "./bin/critlab doctor --device cuda", skip: "needs a GPU"},
	{cmd: "./bin/critlab sweep --config paper-removal --device cuda -j 1", skip: "needs a GPU"},
	{cmd: "./bin/critlab sweep --config paper-window --device cuda -j 1", skip: "needs a GPU"},
	{cmd: "./bin/critlab sweep --config paper-removal --out /scratch/$USER/removal --executor slurm --partition gpu --gpus 1 --cpus-per-task 8 --mem 16G --time 12:00:00 --requeue --device cuda --ort-lib $PWD/.deps/onnxruntime-cuda/libonnxruntime.so", skip: "needs Slurm (make test-slurm)"},
	{cmd: "./bin/critlab sweep status /scratch/$USER/removal", skip: "needs Slurm (make test-slurm)"},
	{cmd: "critlab train --model resnet18.onnx --data cifar10 ...", skip: "needs PyTorch's export"},
}

// readmeShell returns the critlab command lines of the README's ```sh
// blocks, with single spaces between words.
func readmeShell(readme string) []string {
	var cmds []string
	inSh := false
	var line strings.Builder
	for _, l := range strings.Split(readme, "\n") {
		switch {
		case strings.HasPrefix(l, "```"):
			inSh = strings.TrimSpace(l) == "```sh"
			continue
		case !inSh:
			continue
		}
		l = strings.TrimSpace(l)
		if more := strings.HasSuffix(l, "\\"); more {
			line.WriteString(strings.TrimSpace(strings.TrimSuffix(l, "\\")) + " ")
			continue
		}
		line.WriteString(l)
		cmd := line.String()
		line.Reset()
		if i := strings.Index(cmd, " #"); i >= 0 {
			cmd = strings.TrimSpace(cmd[:i])
		}
		if strings.HasPrefix(cmd, "critlab ") || strings.HasPrefix(cmd, "./bin/critlab ") {
			cmds = append(cmds, strings.Join(strings.Fields(cmd), " "))
		}
	}
	return cmds
}

// shellWords splits a command line as sh does for the quoting it uses
// (single and double quotes, no expansion).
func shellWords(s string) []string {
	var (
		words []string
		w     strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// readmeSample returns the lines of the README's sample output of
// `make run`: the ``` block holding the report's table.
func readmeSample(t *testing.T, readme string) []string {
	t.Helper()
	for _, block := range strings.Split(readme, "```")[1:] {
		if regexp.MustCompile(`(?m)^variant +point `).MatchString(block) {
			return strings.Split(strings.TrimSpace(block), "\n")
		}
	}
	t.Fatal("README.md has no sample report (a ``` block holding the variant table)")
	return nil
}

// shape masks numbers and collapses blanks, so that outputs of sweeps of
// other sizes compare.
func shape(lines []string) map[string]bool {
	num := regexp.MustCompile(`[+-]?\d+(\.\d+)?`)
	out := map[string]bool{}
	for _, l := range lines {
		if l = strings.Join(strings.Fields(num.ReplaceAllString(l, "N")), " "); l != "" {
			out[l] = true
		}
	}
	return out
}

func TestReadmeCommands(t *testing.T) {
	// The commands run in a work folder outside the checkout, where
	// .deps/ is not found: name the checkout's library.
	if lib, err := filepath.Abs("../../.deps/onnxruntime/libonnxruntime.so"); err == nil && os.Getenv("CRITLAB_ORT_LIB") == "" {
		if _, err := os.Stat(lib); err == nil {
			t.Setenv("CRITLAB_ORT_LIB", lib)
		}
	}
	rt, err := harness.Open(harness.RuntimeOptions{Threads: 1})
	if errors.Is(err, harness.ErrNoLibrary) {
		t.Skipf("README commands need ONNX Runtime: %v (run `make setup`)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	rt.Close()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	cmds := readmeShell(readme)
	listed := map[string]bool{}
	for _, c := range readmeCases {
		listed[c.cmd] = true
	}
	inReadme := map[string]bool{}
	for _, c := range cmds {
		inReadme[c] = true
		if !listed[c] {
			t.Errorf("README command %q is not in readmeCases: add it, run or skipped with a reason", c)
		}
	}
	for _, c := range readmeCases {
		if !inReadme[c.cmd] {
			t.Errorf("readmeCases holds %q, which README.md no longer has", c.cmd)
		}
	}

	// The work folder: the archive where the README has it, a config file,
	// a forward model matching the trained runs, and a small sweep for the
	// report.
	root := t.TempDir()
	work := filepath.Join(root, "work")
	os.MkdirAll(filepath.Join(root, "shared", "data"), 0o755)
	os.MkdirAll(work, 0o755)
	if err := os.Rename(tinyArchive(t), filepath.Join(root, "shared", "data", "cifar-10-binary.tar.gz")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	t.Setenv("CRITLAB_DATA", "")
	os.WriteFile("my.yaml", []byte("model: small\nwidth: 0.25\ndata: \""+tinyData+"\"\nepochs: 2\nbatch_size: 32\nthreads: 1\n"), 0o644)
	os.WriteFile("tiny-demo.yaml", []byte(tinySweep), 0o644)
	for _, setup := range [][]string{
		{"model", "build", "small", "--width", "0.25", "--image-size", "16", "-o", "forward.onnx"},
		{"sweep", "--config", "tiny-demo.yaml", "--out", "runs-out/demo", "-q", "-j", "1", "--no-report"},
	} {
		if _, errOut, err := runCLI(t, setup...); err != nil {
			t.Fatalf("setup critlab %s: %v\n%s", strings.Join(setup, " "), err, errOut)
		}
	}

	// The zoo table's parameters and FLOPs are what model build says.
	zoo := regexp.MustCompile("(?m)^\\| `(\\w+)` \\| ([\\d,]+) \\| ([\\d.]+ [kMG]) \\|").FindAllStringSubmatch(readme, -1)
	if len(zoo) != 3 {
		t.Errorf("README's zoo table has %d rows, want 3", len(zoo))
	}
	for _, m := range zoo {
		want := "wrote zoo.onnx: " + m[1] + ", " + m[2] + " parameters, " + m[3] + " FLOPs per image\n"
		if out, _, err := runCLI(t, "model", "build", m[1], "-o", "zoo.onnx"); err != nil || out != want {
			t.Errorf("model build %s: %v\n%q\nREADME's zoo table: %q", m[1], err, out, want)
		}
	}

	for _, c := range readmeCases {
		if c.skip != "" {
			continue
		}
		line := c.cmd
		for i := 0; i+1 < len(c.subst); i += 2 {
			if !strings.Contains(line, c.subst[i]) {
				t.Fatalf("%s: no %q to substitute", c.cmd, c.subst[i])
			}
			line = strings.Replace(line, c.subst[i], c.subst[i+1], 1)
		}
		line = strings.NewReplacer("[", "", "]", "").Replace(line) + " " + c.extra
		args := shellWords(line)[1:]
		stdout, stderr, err := runCLI(t, args...)
		if c.err != "" {
			if err == nil || !regexp.MustCompile(c.err).MatchString(err.Error()) {
				t.Errorf("%s: err = %v, want one matching %q", line, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", line, err, stderr)
			continue
		}
		if c.cmd == "critlab report runs-out/demo" {
			// The same lines as the README's sample but for the numbers.
			got, want := shape(strings.Split(stdout, "\n")), shape(readmeSample(t, readme))
			for l := range got {
				if !want[l] {
					t.Errorf("%s prints %q, which the README's sample lacks", line, l)
				}
			}
			for l := range want {
				if !got[l] {
					t.Errorf("the README's sample has %q, which %s does not print", l, line)
				}
			}
			continue
		}
		for _, o := range []struct{ name, pat, got string }{{"stdout", c.stdout, stdout}, {"stderr", c.stderr, stderr}} {
			if o.pat != "" && !regexp.MustCompile(o.pat).MatchString(o.got) {
				t.Errorf("%s: %s does not match %q:\n%s", line, o.name, o.pat, o.got)
			}
		}
	}
}

// TestReadmeYAML parses every ```yaml block of README.md as the file it
// shows: a sweep spec (it has removal, window or finetune) must plan, a run
// config must validate, so a copied example never fails.
func TestReadmeYAML(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```yaml block")
	}
	sweepKey := regexp.MustCompile(`(?m)^(removal|window|finetune):`)
	for i, m := range blocks {
		if sweepKey.MatchString(m[1]) {
			spec, err := runs.ParseSweep([]byte(m[1]))
			if err == nil {
				_, err = spec.Plan(t.TempDir())
			}
			if err != nil {
				t.Errorf("README yaml block %d (a sweep): %v", i+1, err)
			}
			continue
		}
		cfg, err := runs.ParseConfig([]byte(m[1]), runs.Default())
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Errorf("README yaml block %d (a run config): %v", i+1, err)
		}
	}
}
