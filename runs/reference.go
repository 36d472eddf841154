package runs

import "fmt"

// referenceRule is one candidate reference of an arm: the variant at the
// arm's own point (samePoint) or at a fixed point, and why it fits.
type referenceRule struct {
	variant   string
	point     int
	samePoint bool
	why       string
}

// The fallbacks every family ends with: the no-deficit runs of the sweep.
var (
	refRemoval0 = referenceRule{variant: VariantRemoval, point: 0, why: "no deficit, as many epochs as the sharp epochs after removal"}
	refBaseline = referenceRule{variant: VariantBaseline, point: -1, why: "no deficit, as many epochs as the window runs"}
	refScratch  = referenceRule{variant: VariantScratch, point: 0, why: "no pretraining, the same sharp epochs"}
)

// referenceRules lists an arm's candidate references, best first.
func referenceRules(variant string) []referenceRule {
	at := func(v, why string) referenceRule { return referenceRule{variant: v, samePoint: true, why: why} }
	switch variant {
	case VariantRemoval, VariantVFlip, VariantNoise:
		return []referenceRule{
			at(VariantSham, "a sham deficit: the same lr schedule and epochs, images unchanged"),
			at(VariantSameEpochs, "no deficit, the same number of epochs"),
			refRemoval0, refBaseline}
	case VariantSham:
		return []referenceRule{at(VariantSameEpochs, "no deficit, the same number of epochs"), refRemoval0, refBaseline}
	case VariantLRRestart:
		return []referenceRule{at(VariantShamLRRestart, "a sham deficit with the same lr restart"), refRemoval0, refBaseline}
	case VariantSameEpochs, VariantShamLRRestart:
		return []referenceRule{refRemoval0, refBaseline}
	case VariantWindow, VariantWindowVFlip, VariantWindowNoise:
		return []referenceRule{
			at(VariantWindowSham, "a sham window: the same lr schedule and epochs, images unchanged"),
			refBaseline, refRemoval0}
	case VariantWindowLRRestart:
		return []referenceRule{at(VariantWindowShamLRRestart, "a sham window with the same lr restart"), refBaseline, refRemoval0}
	case VariantFinetune, VariantScratch:
		return []referenceRule{refScratch}
	}
	// The baseline, the window shams, pretraining and trunks.
	return []referenceRule{refBaseline, refRemoval0}
}

// ReferenceFor returns the arm that arm l is compared with, and why it is
// the right comparison, given which arms exist (available); the zero Label
// when none does. The best reference shares everything with the arm but
// the image change:
//
//	removal, control-vflip, control-noise at T
//	      control-sham at T, else reference-same-epochs at T, else
//	      removal at 0 (the no-deficit run with the same sharp epochs
//	      after removal), else the baseline
//	control-sham at T            reference-same-epochs at T, else removal at 0
//	reference-same-epochs at T   removal at 0
//	control-lr-restart at T      control-sham-lr-restart at T, else removal at 0
//	control-sham-lr-restart at T removal at 0 (the same schedule after T)
//	window, window-control-vflip, window-control-noise at S
//	      window-control-sham at S, else the baseline
//	window-control-lr-restart at S
//	      window-control-sham-lr-restart at S, else the baseline
//	window-control-sham*, baseline   the baseline
//	finetune, scratch            scratch
//
// Removal point 0 and the baseline stand in for each other where the one
// is missing. Removal point 0 and the baseline are their own references.
func ReferenceFor(l Label, available func(Label) bool) (Label, string) {
	ref, r := referenceOf(l, available)
	return ref, r.why
}

// referenceOf is ReferenceFor with the rule that chose the reference.
func referenceOf(l Label, available func(Label) bool) (Label, referenceRule) {
	for _, r := range referenceRules(l.Variant) {
		ref := Label{r.variant, r.point}
		if r.samePoint {
			ref.Point = l.Point
		}
		if available(ref) {
			return ref, r
		}
	}
	return Label{}, referenceRule{}
}

// String names the label as reports do: "baseline", else variant@point.
func (l Label) String() string {
	if l.Variant == VariantBaseline {
		return VariantBaseline
	}
	return fmt.Sprintf("%s@%d", l.Variant, l.Point)
}
