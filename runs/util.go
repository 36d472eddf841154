package runs

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/critlab/critlab/preprocessing"

	"gopkg.in/yaml.v3"
)

func slicesContains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// diffConfigs names the top-level YAML keys in which two configs differ,
// with both values, or returns "".
func diffConfigs(a, b Config) string {
	var ma, mb map[string]any
	_ = yaml.Unmarshal(a.YAML(), &ma)
	_ = yaml.Unmarshal(b.YAML(), &mb)
	var diffs []string
	for _, k := range sortedKeys(ma) {
		va, vb := fmt.Sprint(ma[k]), fmt.Sprint(mb[k])
		if va != vb {
			diffs = append(diffs, fmt.Sprintf("%s (%s vs %s)", k, va, vb))
		}
	}
	return strings.Join(diffs, ", ")
}

// Summary is a one-line description of the config for logs.
func (c Config) Summary() string {
	return fmt.Sprintf("model %s width %g data %s epochs %d batch %d lr %g %s deficits %s seed %d",
		c.Model, c.Width, c.Data, c.Epochs, c.BatchSize, c.LR, orDefault(c.LRSchedule, "constant"), c.DeficitWindows(), c.Seed)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// sameData reports whether two data specs read the same data: equal as
// typed, or of one kind with paths that name the same existing file or
// folder (x, ./x, /abs/x, or through a symbolic link).
func sameData(a, b string) bool {
	if a == b {
		return true
	}
	ka, pa := preprocessing.SpecPath(a)
	kb, pb := preprocessing.SpecPath(b)
	if ka != kb || pa == "" || pb == "" {
		return false
	}
	sa, err := os.Stat(pa)
	if err != nil {
		return false
	}
	sb, err := os.Stat(pb)
	return err == nil && os.SameFile(sa, sb)
}
