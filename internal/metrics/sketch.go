package metrics

import (
	"math"
	"slices"
	"sort"
)

// The percentile sketch of a slot is a logarithmic histogram in the manner
// of DDSketch, with UDDSketch's uniform collapse to stay bounded.
//
// At level 0 a positive value x falls in bucket i = ceil(log_γ x) with
// γ = (1+α)/(1-α), α = 1%: bucket i holds (γ^(i-1), γ^i] and is answered
// with 2γ^i/(γ+1), which is within α of every value in the bucket. Negative
// values mirror this; zero has a bucket of its own.
//
// A slot keeps at most SketchBuckets buckets. One more distinct bucket
// merges every pair of neighbours (i -> ceil(i/2)): the level goes up by
// one and γ is squared, so the relative error bound becomes
// α_l = (γ^(2^l)-1)/(γ^(2^l)+1): 1% at level 0, 2% at level 1, 4% at
// level 2, 8% at level 3. With 128 buckets, a slot whose positive values
// span less than a factor of about 12.8 stays at level 0 (1%), 165 at
// level 1 (2%), 27,000 at level 2 (4%). A query merges slots at the
// coarsest level among them.
//
// The guarantee: pX is within α_l (relative) of the sample at rank
// ceil(X/100 * n) in sorted order (nearest rank); p0 and p100 are exact
// (the minimum and maximum); a slot whose samples are all equal has no
// sketch and answers exactly.

const (
	// SketchBuckets is the most buckets a slot's sketch keeps.
	SketchBuckets = 128
	// Alpha is the relative error of a level-0 sketch.
	Alpha = 0.01

	// Bucket keys order values: negative buckets below zeroKey, positive
	// ones above. A level-0 index of a value within [MinMagnitude,
	// MaxMagnitude] lies within ±indexBias.
	zeroKey   = 1 << 15
	indexBias = 12500
	countBits = 48
	countMask = 1<<countBits - 1
	maxLevel  = 20
)

var (
	gamma       = (1 + Alpha) / (1 - Alpha)
	logGamma    = math.Log(gamma)
	invLogGamma = 1 / logGamma
)

// sketch is a sorted list of buckets, each a key (16 bits) and a count
// (48 bits) packed in a uint64 so that sorting by the word sorts by key.
type sketch struct {
	level uint8
	b     []uint64
}

// sketchBytes is the memory of a sketch with capacity c.
func sketchBytes(c int) int64 { return int64(32 + 8*c) }

// index is the level-0 bucket index of x > 0.
func index(x float64) int { return int(math.Ceil(math.Log(x) * invLogGamma)) }

// ceilShift is ceil(i / 2^d) for any sign of i.
func ceilShift(i int, d uint8) int { return -((-i) >> d) }

// keyOf is the bucket key of v at level l.
func keyOf(v float64, l uint8) uint64 {
	switch {
	case v > 0:
		return uint64(zeroKey + 1 + indexBias + ceilShift(index(v), l))
	case v < 0:
		return uint64(zeroKey - 1 - indexBias - ceilShift(index(-v), l))
	}
	return zeroKey
}

// relevel moves key k from level from to level to (to >= from).
func relevel(k uint64, from, to uint8) uint64 {
	if from == to || k == zeroKey {
		return k
	}
	if k > zeroKey {
		i := int(k) - zeroKey - 1 - indexBias
		return uint64(zeroKey + 1 + indexBias + ceilShift(i, to-from))
	}
	i := zeroKey - 1 - indexBias - int(k)
	return uint64(zeroKey - 1 - indexBias - ceilShift(i, to-from))
}

// valueOf is the value a bucket answers with.
func valueOf(k uint64, l uint8) float64 {
	if k == zeroKey {
		return 0
	}
	lg := logGamma * float64(uint64(1)<<l) // ln γ_l
	if k > zeroKey {
		i := int(k) - zeroKey - 1 - indexBias
		return 2 * math.Exp(float64(i)*lg) / (math.Exp(lg) + 1)
	}
	i := zeroKey - 1 - indexBias - int(k)
	return -2 * math.Exp(float64(i)*lg) / (math.Exp(lg) + 1)
}

// AlphaAt is the relative error bound of a sketch at level l.
func AlphaAt(l int) float64 {
	g := math.Pow(gamma, math.Pow(2, float64(l)))
	return (g - 1) / (g + 1)
}

// add counts v c times and returns the change in the sketch's bytes.
func (s *sketch) add(v float64, c uint64) int64 {
	return s.addKey(keyOf(v, s.level), c)
}

func (s *sketch) addKey(k uint64, c uint64) int64 {
	i := sort.Search(len(s.b), func(i int) bool { return s.b[i]>>countBits >= k })
	if i < len(s.b) && s.b[i]>>countBits == k {
		s.b[i] = k<<countBits | min(s.b[i]&countMask+c, countMask)
		return 0
	}
	var grown int64
	if len(s.b) == cap(s.b) {
		// Grow by hand: append's doubling would overshoot the bound.
		n := min(max(2*cap(s.b), 4), SketchBuckets+1)
		nb := make([]uint64, len(s.b), n)
		copy(nb, s.b)
		grown = int64(8 * (n - cap(s.b)))
		s.b = nb
	}
	s.b = slices.Insert(s.b, i, k<<countBits|min(c, countMask))
	for len(s.b) > SketchBuckets {
		s.collapse()
	}
	return grown
}

// collapse merges neighbouring buckets: one level up.
func (s *sketch) collapse() {
	if s.level == maxLevel {
		return // cannot happen with values in range: a few buckets remain
	}
	s.level++
	out := s.b[:0]
	for _, w := range s.b {
		k := relevel(w>>countBits, s.level-1, s.level)
		if n := len(out); n > 0 && out[n-1]>>countBits == k {
			out[n-1] = k<<countBits | min(out[n-1]&countMask+w&countMask, countMask)
			continue
		}
		out = append(out, k<<countBits|w&countMask)
	}
	s.b = out
}

// quantile returns the value at quantile q (0 < q < 1) of buckets, a list
// of packed words at level l sorted by key with duplicate keys allowed;
// n is the total count.
func quantile(buckets []uint64, l uint8, n uint64, q float64) float64 {
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var cum uint64
	for _, w := range buckets {
		cum += w & countMask
		if cum >= rank {
			return valueOf(w>>countBits, l)
		}
	}
	if len(buckets) == 0 {
		return math.NaN()
	}
	return valueOf(buckets[len(buckets)-1]>>countBits, l)
}
