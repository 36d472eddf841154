package runs

// FinalEpochs is how many last epochs the final accuracy averages.
const FinalEpochs = 5

// FinalAccuracy is the mean test accuracy of the last FinalEpochs rows
// (fewer when the run is shorter); 0 without rows.
func FinalAccuracy(rows []MetricsRow) float64 {
	n := min(FinalEpochs, len(rows))
	if n == 0 {
		return 0
	}
	var s float64
	for _, r := range rows[len(rows)-n:] {
		s += r.TestAcc
	}
	return s / float64(n)
}

// BestAccuracy is the highest test accuracy of the rows.
func BestAccuracy(rows []MetricsRow) float64 {
	var b float64
	for _, r := range rows {
		b = max(b, r.TestAcc)
	}
	return b
}
