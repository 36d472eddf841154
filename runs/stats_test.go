package runs_test

import (
	"math"
	"testing"

	"github.com/critlab/critlab/runs"
)

// The expected values are scipy.stats' (tools/analyze.py paired and tost
// on the same numbers), an implementation independent of gonum's.
func TestPairedDiff(t *testing.T) {
	tests := []struct {
		name             string
		armSeeds         []int64
		arm              []float64
		refSeeds         []int64
		ref              []float64
		n                int
		mean, low, high  float64
		noInterval, none bool
	}{
		{name: "four pairs", armSeeds: []int64{0, 1, 2, 3}, arm: []float64{0.51, 0.53, 0.52, 0.55},
			refSeeds: []int64{3, 2, 1, 0}, ref: []float64{0.5, 0.5, 0.5, 0.5},
			n: 4, mean: 0.0275, low: 0.0003246911620398453, high: 0.05467530883796015},
		{name: "unpaired seeds left out", armSeeds: []int64{0, 1, 7}, arm: []float64{0.6, 0.7, 0.9},
			refSeeds: []int64{0, 1}, ref: []float64{0.5, 0.5}, n: 2, mean: 0.15, noInterval: true},
		{name: "no common seed", armSeeds: []int64{1}, arm: []float64{0.6}, refSeeds: []int64{2}, ref: []float64{0.5}, none: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := runs.PairedDiff(tc.armSeeds, tc.arm, tc.refSeeds, tc.ref)
			switch {
			case tc.none:
				if p.N != 0 || !math.IsNaN(p.Mean) {
					t.Fatalf("got %+v, want no pairs", p)
				}
			case tc.noInterval:
				if p.N != tc.n || math.Abs(p.Mean-tc.mean) > 1e-12 || p.HasInterval() || !math.IsNaN(p.Low) || !math.IsNaN(p.High) {
					t.Fatalf("got %+v, want n %d mean %v and no interval", p, tc.n, tc.mean)
				}
			default:
				if p.N != tc.n || math.Abs(p.Mean-tc.mean) > 1e-12 || math.Abs(p.Low-tc.low) > 1e-9 || math.Abs(p.High-tc.high) > 1e-9 {
					t.Fatalf("got %+v, want n %d %v [%v, %v]", p, tc.n, tc.mean, tc.low, tc.high)
				}
			}
		})
	}
}

func TestTOST(t *testing.T) {
	pairs := func(d ...float64) runs.Paired {
		ref := make([]float64, len(d))
		seeds := make([]int64, len(d))
		for i := range d {
			seeds[i] = int64(i)
		}
		return runs.PairedDiff(seeds, d, seeds, ref)
	}
	tests := []struct {
		name       string
		p          runs.Paired
		margin     float64
		want       float64
		equivalent bool
	}{
		{"small effect", pairs(0.001, -0.002, 0.004, 0), 0.01, 0.002552152898338763, true},
		{"effect at the margin", pairs(0.008, 0.012, 0.009), 0.01, 0.403774955135062, false},
		{"two seeds: not tested", pairs(0.001, 0.002), 0.01, math.NaN(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := runs.TOST(tc.p, tc.margin)
			if math.IsNaN(tc.want) != math.IsNaN(e.P) || !math.IsNaN(tc.want) && math.Abs(e.P-tc.want) > 1e-9 || e.Equivalent(0.05) != tc.equivalent {
				t.Fatalf("TOST p %v (equivalent %v), want %v (%v)", e.P, e.Equivalent(0.05), tc.want, tc.equivalent)
			}
		})
	}
}
