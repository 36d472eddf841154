package runs_test

import (
	"testing"

	"github.com/critlab/critlab/runs"
)

// Each arm compares with the closest run that differs from it only in the
// image change: the sham at its point when planned, else the same-epochs
// reference, else the family's no-deficit run.
func TestReferenceFor(t *testing.T) {
	l := func(v string, p int) runs.Label { return runs.Label{Variant: v, Point: p} }
	legacy := []runs.Label{l(runs.VariantBaseline, -1), l(runs.VariantRemoval, 0), l(runs.VariantScratch, 0)}
	full := append([]runs.Label{l(runs.VariantSham, 14), l(runs.VariantSameEpochs, 14), l(runs.VariantSameEpochs, 28),
		l(runs.VariantShamLRRestart, 14), l(runs.VariantWindowSham, 8), l(runs.VariantWindowShamLRRestart, 8)}, legacy...)
	tests := []struct {
		have []runs.Label
		arm  runs.Label
		want runs.Label
	}{
		{legacy, l(runs.VariantRemoval, 14), l(runs.VariantRemoval, 0)},
		{legacy, l(runs.VariantRemoval, 0), l(runs.VariantRemoval, 0)},
		{legacy, l(runs.VariantVFlip, 14), l(runs.VariantRemoval, 0)},
		{legacy, l(runs.VariantLRRestart, 14), l(runs.VariantRemoval, 0)},
		{legacy, l(runs.VariantWindow, 8), l(runs.VariantBaseline, -1)},
		{legacy, l(runs.VariantWindowLRRestart, 8), l(runs.VariantBaseline, -1)},
		{legacy, l(runs.VariantPretrain, 4), l(runs.VariantBaseline, -1)},
		{legacy, l(runs.VariantFinetune, 4), l(runs.VariantScratch, 0)},
		{legacy[1:2], l(runs.VariantWindow, 8), l(runs.VariantRemoval, 0)},
		{legacy[:1], l(runs.VariantRemoval, 14), l(runs.VariantBaseline, -1)},
		{full, l(runs.VariantRemoval, 14), l(runs.VariantSham, 14)},
		{full, l(runs.VariantVFlip, 14), l(runs.VariantSham, 14)},
		{full, l(runs.VariantNoise, 14), l(runs.VariantSham, 14)},
		{full, l(runs.VariantRemoval, 28), l(runs.VariantSameEpochs, 28)},
		{full, l(runs.VariantSham, 14), l(runs.VariantSameEpochs, 14)},
		{full, l(runs.VariantSameEpochs, 14), l(runs.VariantRemoval, 0)},
		{full, l(runs.VariantLRRestart, 14), l(runs.VariantShamLRRestart, 14)},
		{full, l(runs.VariantLRRestart, 28), l(runs.VariantRemoval, 0)},
		{full, l(runs.VariantShamLRRestart, 14), l(runs.VariantRemoval, 0)},
		{full, l(runs.VariantWindow, 8), l(runs.VariantWindowSham, 8)},
		{full, l(runs.VariantWindowNoise, 8), l(runs.VariantWindowSham, 8)},
		{full, l(runs.VariantWindow, 16), l(runs.VariantBaseline, -1)},
		{full, l(runs.VariantWindowLRRestart, 8), l(runs.VariantWindowShamLRRestart, 8)},
		{full, l(runs.VariantWindowSham, 8), l(runs.VariantBaseline, -1)},
		{full, l(runs.VariantFinetune, 4), l(runs.VariantScratch, 0)},
		{legacy[:2], l(runs.VariantFinetune, 4), runs.Label{}},
	}
	for _, tc := range tests {
		have := map[runs.Label]bool{}
		for _, h := range tc.have {
			have[h] = true
		}
		got, why := runs.ReferenceFor(tc.arm, func(l runs.Label) bool { return have[l] })
		if got != tc.want || (got != runs.Label{}) == (why == "") {
			t.Errorf("%s among %v: %s (%q), want %s", tc.arm, tc.have, got, why, tc.want)
		}
	}
}

// The report measures each point's change against ReferenceFor's arm, by
// point, and names it.
func TestReportReferenceByPoint(t *testing.T) {
	rep := &runs.Report{Points: []runs.PointSummary{
		{Variant: runs.VariantRemoval, Point: 0, FinalMean: 0.5},
		{Variant: runs.VariantSham, Point: 14, FinalMean: 0.7},
		{Variant: runs.VariantSameEpochs, Point: 28, FinalMean: 0.8},
	}}
	for _, tc := range []struct {
		point int
		want  float64
		name  string
	}{{14, 0.7, "control-sham@14"}, {28, 0.8, "reference-same-epochs@28"}, {7, 0.5, "removal@0"}} {
		if got, name := rep.Reference(runs.VariantRemoval, tc.point); got != tc.want || name != tc.name {
			t.Errorf("removal@%d: %v %q, want %v %q", tc.point, got, name, tc.want, tc.name)
		}
	}
}
