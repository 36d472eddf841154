package main

import (
	"fmt"

	"github.com/critlab/critlab/runs"
	"github.com/urfave/cli/v2"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "summarise a run or sweep directory: table on stdout, CSV and plots in DIR/report/",
		ArgsUsage: "DIR",
		Description: `Final test accuracy is the mean of the last 5 epochs; per (variant, point) the table
gives mean ± sample std over seeds and the change from the baseline (no-deficit) runs.
Plots (PNG and SVG): final accuracy vs removal epoch, accuracy change vs window onset,
fine-tuning vs pretraining epochs, learning curves, and the Fisher trace when
fisher.parquet files exist.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-plots", Usage: "print the table only; write no files"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("report: want one run or sweep directory, got %d arguments", c.NArg())
			}
			return writeReport(c, c.Args().First())
		},
	}
}

// writeReport prints the summary table of dir and writes its files.
func writeReport(c *cli.Context, dir string) error {
	rep, err := runs.LoadReport(dir)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(c.App.Writer); err != nil {
		return err
	}
	if c.Bool("no-plots") {
		return nil
	}
	if err := rep.WriteFiles(); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "\nplot:    %s\nreport:  %d files in %s/%s (summary.csv, runs.csv, *.png, *.svg)\n",
		rep.MainPlot(), len(rep.Files), dir, runs.ReportDir)
	return nil
}
