package runs

import (
	"math"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// MinIntervalN is the fewest paired seeds a confidence interval or an
// equivalence test is given for. With two, the t-interval has one degree
// of freedom and a half-width of 12.7 standard errors: no evidence either
// way, so the report says so instead of printing it.
const MinIntervalN = 3

// Confidence is the level of the paired intervals.
const Confidence = 0.95

// Paired summarises the within-seed differences arm minus reference over
// the seeds both have: the seed fixes the training subset, initialisation
// and data order, so the pairs share everything but the treatment.
type Paired struct {
	N    int
	Mean float64
	// Low and High bound the Confidence t-interval of the mean; NaN when
	// N < MinIntervalN.
	Low, High float64
	// Diffs are the per-seed differences.
	Diffs []float64
}

// HasInterval reports whether the interval is given (N >= MinIntervalN).
func (p Paired) HasInterval() bool { return p.N >= MinIntervalN }

// PairedDiff pairs arm and reference values by seed and summarises the
// differences; seeds only one side has are left out. N is 0 (Mean NaN)
// when no seed pairs.
func PairedDiff(armSeeds []int64, arm []float64, refSeeds []int64, ref []float64) Paired {
	byseed := make(map[int64]float64, len(refSeeds))
	for i, s := range refSeeds {
		byseed[s] = ref[i]
	}
	var d []float64
	for i, s := range armSeeds {
		if r, ok := byseed[s]; ok {
			d = append(d, arm[i]-r)
		}
	}
	p := Paired{N: len(d), Mean: math.NaN(), Low: math.NaN(), High: math.NaN(), Diffs: d}
	if len(d) == 0 {
		return p
	}
	mean, sd := stat.MeanStdDev(d, nil)
	p.Mean = mean
	if p.HasInterval() {
		h := tQuantile(1-(1-Confidence)/2, len(d)-1) * sd / math.Sqrt(float64(len(d)))
		p.Low, p.High = mean-h, mean+h
	}
	return p
}

// tQuantile is the p-quantile of Student's t with df degrees of freedom.
func tQuantile(p float64, df int) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(df)}.Quantile(p)
}

// Equivalence is the result of two one-sided t-tests (TOST) of whether a
// paired mean difference lies within ±Margin.
type Equivalence struct {
	N      int
	Margin float64
	// P is the larger of the two one-sided p-values; the difference is
	// equivalent to zero within ±Margin at level α when P < α (the same
	// as the 1-2α interval lying inside ±Margin). NaN when N <
	// MinIntervalN.
	P float64
}

// Equivalent reports whether P < alpha.
func (e Equivalence) Equivalent(alpha float64) bool { return e.P < alpha }

// TOST tests the paired differences for equivalence to zero within
// ±margin (margin > 0, in the differences' unit).
func TOST(p Paired, margin float64) Equivalence {
	e := Equivalence{N: p.N, Margin: margin, P: math.NaN()}
	if !p.HasInterval() || margin <= 0 {
		return e
	}
	sd := stat.StdDev(p.Diffs, nil)
	se := sd / math.Sqrt(float64(p.N))
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(p.N - 1)}
	if se == 0 {
		if math.Abs(p.Mean) < margin {
			e.P = 0
		} else {
			e.P = 1
		}
		return e
	}
	lower := t.Survival((p.Mean + margin) / se) // H0: mean <= -margin
	upper := t.CDF((p.Mean - margin) / se)      // H0: mean >= +margin
	e.P = max(lower, upper)
	return e
}
