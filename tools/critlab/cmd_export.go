package main

import (
	"fmt"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/graph"
	"github.com/urfave/cli/v2"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write an inference ONNX model from a forward model and a training checkpoint",
		ArgsUsage: "CHECKPOINT",
		Flags: append(runtimeFlags("ort-lib"),
			&cli.StringFlag{Name: "model", Required: true, Usage: "the forward ONNX model the checkpoint was trained from"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "where to write the inference model"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("export: want one CHECKPOINT argument")
			}
			fwd, err := graph.Load(c.String("model"))
			if err != nil {
				return err
			}
			rt, err := harness.Open(runtimeOptions(c))
			if err != nil {
				return err
			}
			defer rt.Close()
			tr, err := harness.NewTrainer(rt, fwd, harness.TrainerOptions{BatchSize: 1})
			if err != nil {
				return err
			}
			defer tr.Close()
			if _, err := tr.LoadCheckpoint(c.Args().First()); err != nil {
				return err
			}
			if err := tr.Export(c.String("output")); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "wrote %s\n", c.String("output"))
			return nil
		},
	}
}
