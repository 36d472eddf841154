// Command critlab runs critical-learning-period experiments on convolutional
// networks trained through ONNX Runtime. See README.md for the commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/critlab/critlab/harness"
	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout, os.Stderr, os.Args)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "critlab:", err)
		os.Exit(1)
	}
}

// Flag zero values mean "not set" here (the config file and the defaults
// fill them), so cli's own "(default: 0)" would contradict a usage text
// that states the real default: drop it there.
func init() {
	stringify := cli.FlagStringer
	cli.FlagStringer = func(f cli.Flag) string {
		s := stringify(f)
		if i := strings.LastIndex(s, " (default: "); i >= 0 && strings.Contains(s[:i], "default") {
			return s[:i]
		}
		return s
	}
}

// run builds the app and executes args; tests call it with their own writers.
func run(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	app := newApp()
	app.Writer, app.ErrWriter = stdout, stderr
	return app.RunContext(ctx, hoistFlags(app.Commands, args))
}

// hoistFlags moves the flags written after a command's positional arguments
// in front of them: urfave/cli v2 stops reading flags at the first positional
// argument, and `critlab export CKPT -o out.onnx` should work as written.
func hoistFlags(cmds []*cli.Command, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	var cmd *cli.Command
	i := 1
	for ; i < len(args); i++ {
		next := findCommand(cmds, args[i])
		if next == nil {
			break
		}
		out = append(out, args[i])
		cmd, cmds = next, next.Subcommands
	}
	if cmd == nil {
		return args
	}
	var flags, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if f := findFlag(cmd.Flags, name); f != nil && !hasValue && takesValue(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(append(out, flags...), positional...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	v, ok := f.(interface{ TakesValue() bool })
	return !ok || v.TakesValue()
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "critlab",
		Usage: "critical learning periods in deep networks, trained through ONNX Runtime",
		Commands: []*cli.Command{
			modelCommand(),
			dataCommand(),
			trainCommand(),
			sweepCommand(),
			reportCommand(),
			exportCommand(),
			benchCommand(),
			doctorCommand(),
		},
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {}, // main prints errors once
	}
}

// runtimeFlags are the flags every command that opens ONNX Runtime takes.
func runtimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "execution provider: cpu, cuda or cuda:N"},
		&cli.StringFlag{Name: "ort-lib", Usage: "ONNX Runtime library (default: $CRITLAB_ORT_LIB, then .deps/onnxruntime from make setup)"},
		&cli.IntFlag{Name: "threads", Usage: "intra-op threads (default: one per core)"},
		&cli.BoolFlag{Name: "mem-arena", Usage: "ONNX Runtime's CPU memory arena: ~15% faster steps, ~1.6× the peak memory"},
	}
}

// runtimeOptions reads runtimeFlags.
func runtimeOptions(c *cli.Context) harness.RuntimeOptions {
	return harness.RuntimeOptions{Library: c.String("ort-lib"), Device: c.String("device"), Threads: c.Int("threads"), MemArena: c.Bool("mem-arena")}
}
