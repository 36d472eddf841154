package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/critlab/critlab/preprocessing"
	"github.com/urfave/cli/v2"
)

// dataCommand is `critlab data`: fetch and inspect data sets.
func dataCommand() *cli.Command {
	return &cli.Command{
		Name:        "data",
		Usage:       "fetch and inspect data sets",
		Subcommands: []*cli.Command{dataFetchCommand(), dataInfoCommand()},
	}
}

func dataFetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "fetch",
		Usage:     "download a CIFAR binary archive, or place a local copy of one",
		ArgsUsage: "cifar10|cifar100",
		Description: "Downloads into FILE.part with a progress bar, resumes a partial transfer\n" +
			"(HTTP Range), checks the published MD5 and only then renames it to FILE.\n" +
			"An interrupted fetch resumes when run again. With --archive a local copy is\n" +
			"checked and copied instead; a checksum other than the published one is\n" +
			"accepted with a notice.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "data folder (default: $CRITLAB_DATA, then ./data)"},
			&cli.StringFlag{Name: "archive", Usage: "place this local copy of the archive instead of downloading", TakesFile: true},
			&cli.StringFlag{Name: "base-url", Value: preprocessing.DefaultBaseURL, Usage: "where the archives are published (a mirror)"},
			&cli.IntFlag{Name: "retries", Value: 3, Usage: "resume an interrupted transfer this many times"},
			&cli.BoolFlag{Name: "force", Usage: "download again even if the archive is present"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return fmt.Errorf("data fetch: name one data set: cifar10 or cifar100")
			}
			name := c.Args().First()
			if c.NArg() > 1 {
				return fmt.Errorf("data fetch: unexpected arguments %q: want NAME [flags]", c.Args().Tail())
			}
			opts := preprocessing.FetchOptions{
				Dir:     c.String("dir"),
				BaseURL: c.String("base-url"),
				Log:     c.App.ErrWriter,
				Retries: c.Int("retries"),
				Force:   c.Bool("force"),
			}
			if !c.Bool("quiet") {
				opts.Progress = c.App.ErrWriter
			}
			var (
				res *preprocessing.FetchResult
				err error
			)
			if src := c.String("archive"); src != "" {
				res, err = preprocessing.ImportArchive(name, src, opts)
			} else {
				res, err = preprocessing.Fetch(c.Context, name, opts)
			}
			if err != nil {
				return err
			}
			return printFetch(c.App.Writer, name, res)
		},
	}
}

func printFetch(w io.Writer, name string, res *preprocessing.FetchResult) error {
	what := "placed"
	if res.Present {
		what = "already present"
	}
	check := "the published MD5"
	if !res.Official {
		check = "not the published MD5"
	}
	_, err := fmt.Fprintf(w, "%s: %s %s (%d bytes, MD5 %s: %s)\n", name, what, res.Path, res.Bytes, res.MD5, check)
	return err
}

func dataInfoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "print counts, class balance and pixel statistics; draw a contact sheet",
		Description: "Data set specs: " + preprocessing.Specs + ".\n" +
			"The contact sheet shows the first training images of each class clean and\n" +
			"under each image deficit (" + strings.Join(sheetDeficitNames(), ", ") + ").",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "data set spec, e.g. cifar10:data or synthetic:mix=0.7"},
			&cli.StringFlag{Name: "archive", Usage: "a CIFAR-10 or CIFAR-100 binary archive", TakesFile: true},
			&cli.StringFlag{Name: "sheet", Usage: "write a contact sheet PNG here", TakesFile: true},
			&cli.IntFlag{Name: "per-class", Value: 4, Usage: "samples per class on the sheet"},
			&cli.IntFlag{Name: "classes", Value: 10, Usage: "classes (rows) on the sheet"},
			&cli.StringSliceFlag{Name: "deficit", Usage: "deficit columns on the sheet (repeatable; default: none, blur, gauss, vflip, noise)"},
		},
		Action: func(c *cli.Context) error {
			spec, archive := c.String("data"), c.String("archive")
			if (spec == "") == (archive == "") {
				return fmt.Errorf("data info: give one of --data SPEC or --archive FILE")
			}
			if archive != "" {
				spec = "archive:" + archive
			}
			ds, err := preprocessing.Open(spec, preprocessing.OpenOptions{})
			if err != nil {
				return err
			}
			if err := preprocessing.Describe(ds).WriteText(c.App.Writer); err != nil {
				return err
			}
			path := c.String("sheet")
			if path == "" {
				return nil
			}
			opts := preprocessing.SheetOptions{PerClass: c.Int("per-class"), MaxClasses: c.Int("classes")}
			for _, s := range c.StringSlice("deficit") {
				d, err := preprocessing.ParseDeficit(s)
				if err != nil {
					return err
				}
				opts.Deficits = append(opts.Deficits, d)
			}
			if err := preprocessing.WriteContactSheet(path, ds, opts); err != nil {
				return fmt.Errorf("data info: %w", err)
			}
			_, err = fmt.Fprintf(c.App.Writer, "\ncontact sheet: %s\n", path)
			return err
		},
	}
}

func sheetDeficitNames() []string {
	var out []string
	for _, d := range preprocessing.DefaultSheetDeficits() {
		out = append(out, d.String())
	}
	return out
}
