package preprocessing

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Info summarises a data set: sizes, class balance and pixel statistics.
type Info struct {
	Name, Spec string
	Classes    []string
	C, H, W    int
	Train      SplitInfo
	Test       SplitInfo
	Bytes      int64 // memory held by both splits
}

// SplitInfo summarises one split.
type SplitInfo struct {
	N           int
	ClassCounts []int
	Stats       Stats
}

// Describe computes the Info of a data set.
func Describe(ds *Dataset) Info {
	si := func(s *Split) SplitInfo { return SplitInfo{N: s.N, ClassCounts: s.ClassCounts(), Stats: s.Stats()} }
	return Info{Name: ds.Name, Spec: ds.Spec, Classes: ds.Classes, C: ds.Train.C, H: ds.Train.H, W: ds.Train.W,
		Train: si(ds.Train), Test: si(ds.Test), Bytes: ds.Bytes()}
}

// WriteText writes the summary as aligned text.
func (in Info) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "data set  %s (%s)\n", in.Name, in.Spec)
	fmt.Fprintf(&b, "images    %d×%d×%d (C×H×W), %d classes\n", in.C, in.H, in.W, len(in.Classes))
	fmt.Fprintf(&b, "train     %d images, %s\n", in.Train.N, balance(in.Train.ClassCounts))
	fmt.Fprintf(&b, "test      %d images, %s\n", in.Test.N, balance(in.Test.ClassCounts))
	fmt.Fprintf(&b, "memory    %.1f MB (pixels and labels of both splits)\n\n", float64(in.Bytes)/1e6)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "class\tname\ttrain\ttest\t\n")
	for k, name := range in.Classes {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t\n", k, name, count(in.Train.ClassCounts, k), count(in.Test.ClassCounts, k))
	}
	tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "channel\ttrain mean\ttrain std\ttest mean\ttest std\t\n")
	for c := range in.Train.Stats.Mean {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t\n", channelName(c, in.C), in.Train.Stats.Mean[c], in.Train.Stats.Std[c],
			in.Test.Stats.Mean[c], in.Test.Stats.Std[c])
	}
	tw.Flush()
	b.WriteString("(pixel values in [0, 1])\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func count(c []int, k int) int {
	if k < len(c) {
		return c[k]
	}
	return 0
}

func balance(counts []int) string {
	if len(counts) == 0 {
		return "no classes"
	}
	lo, hi := counts[0], counts[0]
	for _, c := range counts {
		lo, hi = min(lo, c), max(hi, c)
	}
	if lo == hi {
		return fmt.Sprintf("balanced: %d per class", lo)
	}
	return fmt.Sprintf("%d to %d per class", lo, hi)
}

func channelName(c, n int) string {
	if n == 3 {
		return []string{"R", "G", "B"}[c]
	}
	return fmt.Sprint(c)
}
