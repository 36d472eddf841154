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
		Description: `Final test accuracy is the last epoch's (the mean of the last 5 evaluated epochs is a
secondary column). Per (variant, point) the table gives the paired difference from the
reference run of the same seed, the closest run that differs only in the image change
(removal points and their controls: the sham at T, else the same-epochs reference, else
removal@0; windows: the sham window at the onset, else the baseline; fine-tuning:
scratch): mean over seeds, 95% t-interval (none below 3 seeds) and n. --margin adds a
TOST equivalence column ("no effect beyond ±margin"). Figures (PNG at 200 dpi and SVG):
paired differences vs removal epoch, window onset and pretraining epochs; learning
curves per arm with their reference; the Fisher trace and each layer's share of it
when fisher.parquet files exist.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-plots", Usage: "print the table only; write no files"},
			&cli.Float64Flag{Name: "margin", Usage: "equivalence margin in accuracy points for a TOST column (0: none)"},
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
	m := c.Float64("margin")
	if !(m >= 0 && m < 100) { // NaN fails both
		return fmt.Errorf("report: --margin %v: want accuracy points in [0, 100), e.g. 1 for ±1 point", m)
	}
	rep, err := runs.LoadReport(dir)
	if err != nil {
		return err
	}
	rep.Margin = m / 100
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
