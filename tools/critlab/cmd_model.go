package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"github.com/critlab/critlab/models/zoo"
	"github.com/urfave/cli/v2"
)

// modelCommand is `critlab model`: build zoo models and inspect ONNX files.
func modelCommand() *cli.Command {
	return &cli.Command{
		Name:  "model",
		Usage: "build zoo models and inspect ONNX model files",
		Subcommands: []*cli.Command{
			modelBuildCommand(),
			modelInspectCommand(),
		},
	}
}

func modelBuildCommand() *cli.Command {
	def := zoo.DefaultOptions()
	return &cli.Command{
		Name:      "build",
		Usage:     "write a freshly initialised zoo model (" + strings.Join(zoo.Names(), ", ") + ")",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.Float64Flag{Name: "width", Value: def.Width, Usage: "channel width multiplier"},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "initialisation seed"},
			&cli.IntFlag{Name: "classes", Value: def.Classes, Usage: "number of output classes"},
			&cli.IntFlag{Name: "image-size", Value: def.ImageSize, Usage: "input height and width"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "where to write the ONNX model (required)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return fmt.Errorf("model build: want one NAME argument, one of %s", strings.Join(zoo.Names(), ", "))
			}
			name := c.Args().First()
			opts := zoo.Options{Width: c.Float64("width"), Seed: c.Uint64("seed"), Classes: c.Int("classes"), ImageSize: c.Int("image-size")}
			out := c.String("output")
			if c.NArg() > 1 {
				return fmt.Errorf("model build: unexpected arguments %q: want NAME [flags]", c.Args().Tail())
			}
			if out == "" {
				return fmt.Errorf("model build: the output file is required: -o FILE")
			}
			m, err := zoo.Build(name, opts)
			if err != nil {
				return fmt.Errorf("model build: %w", err)
			}
			s, err := graph.Stats(m)
			if err != nil {
				return fmt.Errorf("model build: %w", err)
			}
			if err := graph.Save(out, m); err != nil {
				return fmt.Errorf("model build: %w", err)
			}
			fmt.Fprintf(c.App.Writer, "wrote %s: %s, %s parameters, %s FLOPs per image\n",
				out, name, thousands(s.Params), humanFLOPs(s.FLOPs))
			return nil
		},
	}
}

func modelInspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "print a model's inputs, outputs, parameter count, FLOPs and ops",
		ArgsUsage: "FILE",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("model inspect: want one FILE argument")
			}
			path := c.Args().First()
			m, err := graph.Load(path)
			if err != nil {
				return fmt.Errorf("model inspect: %w", err)
			}
			if err := inspectModel(c.App.Writer, path, m); err != nil {
				return fmt.Errorf("model inspect: %s: %w", path, err)
			}
			return nil
		},
	}
}

// gradientRule reports whether the training-graph compiler can differentiate
// op. It is the command's only call into models/compiler.
func gradientRule(op string) bool { return compiler.HasRule(op) }

// inspectModel writes the report of `critlab model inspect`.
func inspectModel(w io.Writer, path string, m *pb.ModelProto) error {
	s, err := graph.Stats(m)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "file\t%s\n", path)
	producer := strings.TrimSpace(m.GetProducerName() + " " + m.GetProducerVersion())
	if producer == "" {
		producer = "unknown"
	}
	fmt.Fprintf(tw, "format\tONNX IR %d, opset %d, producer %s\n", m.GetIrVersion(), graph.ModelOpset(m), producer)
	var meta []string
	for _, kv := range m.MetadataProps {
		if strings.HasPrefix(kv.GetKey(), "critlab.") {
			meta = append(meta, strings.TrimPrefix(kv.GetKey(), "critlab.")+"="+kv.GetValue())
		}
	}
	if len(meta) > 0 {
		fmt.Fprintf(tw, "zoo\t%s\n", strings.Join(meta, " "))
	}
	for _, in := range s.Inputs {
		fmt.Fprintf(tw, "input\t%s %s\n", in.Name, typeString(in.ValueType))
	}
	for _, out := range s.Outputs {
		fmt.Fprintf(tw, "output\t%s %s\n", out.Name, typeString(out.ValueType))
	}
	fmt.Fprintf(tw, "parameters\t%s in %d tensors\n", thousands(s.Params), s.ParamTensors)
	fmt.Fprintf(tw, "buffers\t%s in %d tensors (BatchNorm running statistics)\n", thousands(s.Buffers), s.BufferTensors)
	fmt.Fprintf(tw, "FLOPs/image\t%s (%s; 2 per multiply-add)\n", humanFLOPs(s.FLOPs), thousands(s.FLOPs))
	if len(s.Unknown) > 0 {
		fmt.Fprintf(tw, "uncounted\t%d nodes with unknown dims: %s\n", len(s.Unknown), strings.Join(s.Unknown, ", "))
	}
	valid := "ok"
	if err := graph.Validate(m); err != nil {
		valid = strings.ReplaceAll(err.Error(), "\n", " ")
	}
	fmt.Fprintf(tw, "validate\t%s\n", valid)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	width := len("op")
	for _, op := range s.Ops {
		width = max(width, len(op.Op))
	}
	row := "%-*s  %5s  %15s  %6s  %s\n"
	fmt.Fprintf(w, row, width, "op", "nodes", "FLOPs/image", "share", "gradient")
	var missing []string
	for _, op := range s.Ops {
		share := 0.0
		if s.FLOPs > 0 {
			share = 100 * float64(op.FLOPs) / float64(s.FLOPs)
		}
		grad := "yes"
		if !gradientRule(op.Op) {
			grad = "NO"
			missing = append(missing, op.Op)
		}
		fmt.Fprintf(w, row, width, op.Op, fmt.Sprint(op.Count), thousands(op.FLOPs), fmt.Sprintf("%.1f%%", share), grad)
	}
	fmt.Fprintln(w)
	findings := graph.ExportFindings(m)
	refused := false
	for _, f := range findings {
		refused = refused || f.Refuse
	}
	switch {
	case len(missing) > 0:
		fmt.Fprintf(w, "trainable: no; ops without a gradient rule: %s\n", strings.Join(missing, ", "))
	case refused:
		fmt.Fprintln(w, "trainable: no; see the exporter findings below")
	default:
		fmt.Fprintln(w, "trainable: every op has a gradient rule")
	}
	writeFindings(w, findings)
	return nil
}

// writeFindings prints what the exporter did (graph.ExportFindings):
// refusals as ERROR, the rest as NOTE.
func writeFindings(w io.Writer, findings []graph.Finding) {
	for _, f := range findings {
		kind := "NOTE"
		if f.Refuse {
			kind = "ERROR"
		}
		fmt.Fprintf(w, "%s: %s\n", kind, f)
	}
}

// typeString formats a value type as float32[N,3,32,32].
func typeString(v graph.ValueType) string {
	dims := make([]string, len(v.Dims))
	for i, d := range v.Dims {
		if d < 0 {
			dims[i] = "N"
		} else {
			dims[i] = fmt.Sprint(d)
		}
	}
	elem := strings.ToLower(v.Elem.String())
	switch v.Elem {
	case pb.TensorProto_FLOAT:
		elem = "float32"
	case pb.TensorProto_DOUBLE:
		elem = "float64"
	}
	return elem + "[" + strings.Join(dims, ",") + "]"
}

// thousands formats n with comma separators: 11,173,962.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// humanFLOPs formats a FLOP count with an SI prefix: 1.11 G.
func humanFLOPs(n int64) string {
	f := float64(n)
	for _, u := range []struct {
		div  float64
		unit string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if f >= u.div {
			return fmt.Sprintf("%.3g %s", f/u.div, u.unit)
		}
	}
	return fmt.Sprint(n)
}
