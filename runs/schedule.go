package runs

import "math"

// LearningRate is the learning rate of an epoch:
//
//	constant  lr0
//	step      lr0 × decay^⌊t / lr_step⌋      (decay 0.1 by default)
//	exp       lr0 × decay^t                   (decay 0.97 by default, as in the papers)
//	cosine    lr0 × (1 + cos(π t / T)) / 2    over the T epochs of the phase
//
// where t counts epochs from 0, or, with RestartAtDeficitEnd, from the end
// of the last deficit window that ended at or before the epoch (and T is
// then the number of epochs after it). With WarmupEpochs W, epochs e < W
// train at (e+1)/(W+1) of that: PyTorch's LinearLR(start_factor=1/(W+1),
// total_iters=W) chained with the schedule.
func (c Config) LearningRate(epoch int) float64 {
	lr := c.scheduled(epoch)
	if epoch < c.WarmupEpochs {
		lr *= float64(epoch+1) / float64(c.WarmupEpochs+1)
	}
	return lr
}

func (c Config) scheduled(epoch int) float64 {
	t, span := epoch, c.Epochs
	if c.RestartAtDeficitEnd {
		for _, w := range c.Deficits {
			if w.End <= epoch && epoch-w.End < t {
				t, span = epoch-w.End, c.Epochs-w.End
			}
		}
	}
	switch c.LRSchedule {
	case "step":
		return c.LR * math.Pow(c.decay(0.1), float64(t/c.LRStep))
	case "exp":
		return c.LR * math.Pow(c.decay(0.97), float64(t))
	case "cosine":
		if span <= 0 {
			return c.LR
		}
		return c.LR * (1 + math.Cos(math.Pi*float64(t)/float64(span))) / 2
	default:
		return c.LR
	}
}

func (c Config) decay(def float64) float64 {
	if c.LRDecay == 0 {
		return def
	}
	return c.LRDecay
}
