// Command critlab runs critical-learning-period experiments on convolutional
// networks trained through ONNX Runtime. See README.md for the commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/internal/version"
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
	if err := checkCommand(app.Commands, args); err != nil {
		return err
	}
	return app.RunContext(ctx, hoistFlags(app.Commands, args))
}

// checkCommand refuses an unknown command, subcommand or help topic in
// one line with the nearest one, where cli would print its whole help.
func checkCommand(cmds []*cli.Command, args []string) error {
	path := "critlab"
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "help" && i == 1 {
			continue
		}
		if strings.HasPrefix(a, "-") || len(cmds) == 0 {
			return nil
		}
		c := findCommand(cmds, a)
		if c == nil {
			msg := fmt.Sprintf("unknown command %q", strings.TrimPrefix(path+" "+a, "critlab "))
			if s := cli.SuggestCommand(cmds, a); s != "" {
				msg += "; did you mean" + strings.TrimPrefix(s, "Did you mean")
			}
			return fmt.Errorf("%s (see %s --help)", msg, path)
		}
		path += " " + c.Name
		cmds = c.Subcommands
	}
	return nil
}

// usageError is a flag error in one line with the nearest flag, where cli
// would print the command's whole help.
func usageError(c *cli.Context, err error, _ bool) error {
	prefix, name, flags := "", "critlab", c.App.Flags
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != c.App.Name {
		// HelpName is the whole path (critlab model build); FullName is
		// only the command's own name for subcommands.
		name = c.Command.HelpName
		if name == "" {
			name = "critlab " + c.Command.FullName()
		}
		prefix, flags = strings.TrimPrefix(name, "critlab ")+": ", c.Command.Flags
	}
	msg := err.Error()
	if bad, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		bad = strings.TrimLeft(bad, "-")
		msg = "unknown flag --" + bad
		if s := cli.SuggestFlag(flags, bad, false); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
	}
	return fmt.Errorf("%s%s (see %s --help)", prefix, msg, name)
}

// setUsageErrors gives every command the one-line flag errors.
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = usageError
		setUsageErrors(c.Subcommands)
	}
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
	app := &cli.App{
		Name:    "critlab",
		Usage:   "critical learning periods in deep networks, trained through ONNX Runtime",
		Version: version.Get().String(),
		Commands: []*cli.Command{
			modelCommand(),
			dataCommand(),
			trainCommand(),
			sweepCommand(),
			reportCommand(),
			exportCommand(),
			benchCommand(),
			doctorCommand(),
			versionCommand(),
		},
		OnUsageError:   usageError,
		ExitErrHandler: func(*cli.Context, error) {}, // main prints errors once
	}
	setUsageErrors(app.Commands)
	return app
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print critlab's version and the git commit it was built from",
		Action: func(c *cli.Context) error {
			_, err := fmt.Fprintf(c.App.Writer, "critlab %s\n", version.Get())
			return err
		},
	}
}

// runtimeFlags are the flags of commands that open ONNX Runtime: those
// named in only, or all when none is named.
func runtimeFlags(only ...string) []cli.Flag {
	all := []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "execution provider: cpu, cuda or cuda:N"},
		&cli.StringFlag{Name: "ort-lib", Usage: "ONNX Runtime library (default: $CRITLAB_ORT_LIB, then .deps/onnxruntime from make setup)"},
		&cli.IntFlag{Name: "threads", Usage: "intra-op threads (default: one per core)"},
		&cli.BoolFlag{Name: "mem-arena", Value: true, Usage: "ONNX Runtime's CPU memory arena: about 1.25× the images per CPU-second at no more peak memory (ORT's memory pattern is off with it), same floats; --mem-arena=false turns it off"},
		&cli.BoolFlag{Name: "spin", Usage: "let ONNX Runtime's idle threads spin-wait (its own default): may help one run on idle cores; off, as cores here are shared (measured 1.6× the CPU time)"},
	}
	if len(only) == 0 {
		return all
	}
	var flags []cli.Flag
	for _, f := range all {
		if slices.Contains(only, f.Names()[0]) {
			flags = append(flags, f)
		}
	}
	return flags
}

// runtimeOptions reads runtimeFlags.
func runtimeOptions(c *cli.Context) harness.RuntimeOptions {
	return harness.RuntimeOptions{Library: c.String("ort-lib"), Device: c.String("device"), Threads: c.Int("threads"), MemArena: c.Bool("mem-arena"), Spin: c.Bool("spin")}
}
