package harness

// Hooks for the external tests of fisher.go.

// FisherNorms returns ‖∇ log p(labels[i] | image i)‖² per layer ([layers][n],
// layer-major) and the layer names, for fixed labels.
func (t *Trainer) FisherNorms(images []float32, labels []int64) ([]float64, []string, error) {
	if err := t.openFisher(); err != nil {
		return nil, nil, err
	}
	norms, err := t.fisherNorms(images, labels)
	return norms, t.fisher.layers, err
}

// Predictive returns the model's predictive distribution [n, classes].
func (t *Trainer) Predictive(images []float32, labels []int64) ([]float64, int, error) {
	if err := t.openFisher(); err != nil {
		return nil, 0, err
	}
	return t.predictive(images, labels)
}

// ForceFisherBatched makes Fisher compile the batch-of-one form.
func (t *Trainer) ForceFisherBatched() { t.closeFisher(); t.fisherBatched = true }
