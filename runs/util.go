package runs

import (
	"fmt"
	"sort"
	"strings"

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
