package preprocessing

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// Random streams. Every random choice in the package draws from a PCG
// generator seeded by mixing (seed, stream, epoch, index), so each choice is a
// pure function of those values and independent of scheduling.
const (
	streamShuffle      uint64 = 0x73687566666c6531 // epoch order
	streamAugment      uint64 = 0x6175676d656e7431 // crop offsets, flips
	streamLabelPerm    uint64 = 0x6c6162656c706531 // labelperm deficit
	streamLabelShuffle uint64 = 0x6c61627368756631 // labelshuffle deficit
	streamNoise        uint64 = 0x6e6f697365303031 // noise deficit
	streamSubset       uint64 = 0x7375627365743031 // class-balanced subsets
	streamSynthetic    uint64 = 0x73796e7468303031 // synthetic data set
	streamSheet        uint64 = 0x7368656574303031 // contact sheet
)

// mix64 is the SplitMix64 finaliser: a bijective 64-bit hash.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// seedPCG resets p to the generator for (seed, stream, epoch, index).
func seedPCG(p *rand.PCG, seed, stream uint64, epoch, index int) {
	hi := mix64(seed ^ mix64(stream))
	lo := mix64(mix64(uint64(epoch)+0x9e3779b97f4a7c15) ^ uint64(index))
	p.Seed(hi, lo)
}

// newPCG returns a fresh generator for (seed, stream, epoch, index).
func newPCG(seed, stream uint64, epoch, index int) *rand.PCG {
	p := new(rand.PCG)
	seedPCG(p, seed, stream, epoch, index)
	return p
}

// bounded returns a uniform integer in [0, n) (Lemire's method). It is
// written here rather than taken from math/rand so that the sequence is fixed
// by this package, not by the Go release.
func bounded(p *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(p.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(p.Uint64(), n)
		}
	}
	return hi
}

// permutation returns a uniformly random permutation of [0, n)
// (Fisher-Yates).
func permutation(p *rand.PCG, n int) []int {
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := int(bounded(p, uint64(i+1)))
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm
}

// uniform returns a float64 in (0, 1).
func uniform(p *rand.PCG) float64 {
	return (float64(p.Uint64()>>11) + 0.5) / (1 << 53)
}

// normalPair returns two independent standard normal variates (Box-Muller).
func normalPair(p *rand.PCG) (float64, float64) {
	r := math.Sqrt(-2 * math.Log(uniform(p)))
	s, c := math.Sincos(2 * math.Pi * uniform(p))
	return r * c, r * s
}
