package sentiment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The classes a Model tells apart. Negative is the reference class of the
// multinomial regression: its logit is 0, so the model stores one weight
// vector per other class (a "head").
const (
	ClassNegative = iota
	ClassPositive
	ClassNeutral
	NumClasses
)

// Heads of the model: the logits of positive and neutral against negative.
const (
	headPos = iota
	headNeu
	numHeads
)

// Model is a three-class (negative / positive / neutral) multinomial
// logistic regression over hashed n-gram features plus dense
// lexicon/language features, followed by vector scaling:
//
//	z_pos = CalA[0]·(n-gram sum + dense) + CalB[0], z_neu likewise, z_neg = 0
//	P(class) = softmax(z_neg, z_pos, z_neu)
//
// The n-gram weights of both heads sit side by side in one uint16 per hash
// slot (low byte positive, high byte neutral, each an int8 with one scale
// per head), so a text costs one memory load per n-gram for both heads.
type Model struct {
	HashBits uint
	Scale    [numHeads]float32 // head h's n-gram weight = int8 byte h of Weights[i] * Scale[h]
	Weights  []uint16          // 2^HashBits
	Dense    [numHeads][NumDense]float32
	CalA     [numHeads]float32
	CalB     [numHeads]float32
	// Mined is the mined polarity lexicon the dense features
	// DenseMined* come from; nil: none (those features stay 0).
	Mined *MinedLexicon
}

// sentModelMagic identifies the file format and the feature hashing it was
// trained with. LKSENT01–03 were binary (positive/negative) models with
// one int8 weight per slot and Platt scaling; LKSENT04 is the three-class
// model with paired weights and numDenseV4 dense features; LKSENT05 adds the
// mined-lexicon dense features and the mined lexicon itself after the
// n-gram weights. A model without a mined lexicon is written as LKSENT04
// (the same bytes as before the mined lexicon existed). A file of an older
// version is rejected: it would score nonsense.
const (
	sentModelMagic   = "LKSENT05"
	sentModelMagicV4 = "LKSENT04"
)

var sentOldMagics = map[string]string{
	"LKSENT01": "a two-class model with int16 weights",
	"LKSENT02": "a two-class model over earlier feature hashes",
	"LKSENT03": "a two-class model",
}

// MarshalBinary writes the model in its little-endian file format: magic,
// hash bits, head count, dense count, then per head its scale, calibration
// a and b and dense weights, then the paired n-gram weights.
func (m *Model) MarshalBinary() ([]byte, error) {
	if len(m.Weights) != 1<<m.HashBits {
		return nil, errorf("model has %d weights, want 2^%d", len(m.Weights), m.HashBits)
	}
	nd := NumDense
	magic := sentModelMagic
	if m.Mined == nil {
		for h := 0; h < numHeads; h++ {
			for i := numDenseV4; i < NumDense; i++ {
				if m.Dense[h][i] != 0 {
					return nil, errorf("model has weights for the mined-lexicon features but no mined lexicon")
				}
			}
		}
		nd, magic = numDenseV4, sentModelMagicV4
	}
	var b bytes.Buffer
	b.WriteString(magic)
	le := binary.LittleEndian
	var u [4]byte
	put32 := func(v uint32) { le.PutUint32(u[:], v); b.Write(u[:]) }
	putF := func(v float32) { put32(math.Float32bits(v)) }
	put32(uint32(m.HashBits))
	put32(numHeads)
	put32(uint32(nd))
	for h := 0; h < numHeads; h++ {
		putF(m.Scale[h])
		putF(m.CalA[h])
		putF(m.CalB[h])
		for _, w := range m.Dense[h][:nd] {
			putF(w)
		}
	}
	w := make([]byte, 2*len(m.Weights))
	for i, v := range m.Weights {
		le.PutUint16(w[2*i:], v)
	}
	b.Write(w)
	if m.Mined != nil {
		// The mined lexicon: table bits, entry count, then each non-empty
		// slot as (index, slot).
		put32(uint32(m.Mined.bits))
		put32(uint32(m.Mined.Len()))
		for i, v := range m.Mined.slots {
			if v != 0 {
				put32(uint32(i))
				put32(v)
			}
		}
	}
	return b.Bytes(), nil
}

// UnmarshalModel reads a model written by MarshalBinary.
func UnmarshalModel(data []byte) (*Model, error) {
	r := bytes.NewReader(data)
	magic := make([]byte, len(sentModelMagic))
	_, err := io.ReadFull(r, magic)
	v4 := err == nil && string(magic) == sentModelMagicV4
	if err != nil || string(magic) != sentModelMagic && !v4 {
		if what, ok := sentOldMagics[string(magic)]; ok {
			return nil, errors.New("sentiment: model: old format " + string(magic) + " (" + what +
				"); this build reads " + sentModelMagicV4 + " and " + sentModelMagic + " (three classes): retrain with go run ./sentiment/train")
		}
		return nil, errors.New("sentiment: model: bad magic")
	}
	var hdr [3]uint32
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("sentiment: model header: %w", err)
	}
	m := &Model{HashBits: uint(hdr[0])}
	if m.HashBits < 8 || m.HashBits > 26 {
		return nil, fmt.Errorf("sentiment: model: hash bits %d out of range", m.HashBits)
	}
	if hdr[1] != numHeads {
		return nil, fmt.Errorf("sentiment: model has %d heads, this build expects %d", hdr[1], numHeads)
	}
	nd := NumDense
	if v4 {
		nd = numDenseV4
	}
	if int(hdr[2]) != nd {
		return nil, fmt.Errorf("sentiment: %s model has %d dense features, this build expects %d for that format", magic, hdr[2], nd)
	}
	for h := 0; h < numHeads; h++ {
		head := make([]uint32, 3+nd)
		if err := binary.Read(r, binary.LittleEndian, head); err != nil {
			return nil, fmt.Errorf("sentiment: model head %d: %w", h, err)
		}
		m.Scale[h] = math.Float32frombits(head[0])
		m.CalA[h] = math.Float32frombits(head[1])
		m.CalB[h] = math.Float32frombits(head[2])
		for i := 0; i < nd; i++ {
			m.Dense[h][i] = math.Float32frombits(head[3+i])
		}
	}
	n := 1 << m.HashBits
	if r.Len() < 2*n || v4 && r.Len() != 2*n {
		return nil, fmt.Errorf("sentiment: model: %d bytes of weights, want %d", r.Len(), 2*n)
	}
	rest := data[len(data)-r.Len():]
	m.Weights = make([]uint16, n)
	for i := range m.Weights {
		m.Weights[i] = binary.LittleEndian.Uint16(rest[2*i:])
	}
	if v4 {
		return m, nil
	}
	ml, err := unmarshalMined(rest[2*n:])
	if err != nil {
		return nil, err
	}
	m.Mined = ml
	return m, nil
}

// Quantize turns float weights (w[h][i]: head h, slot i) into a Model with
// paired int8 n-gram weights: per head symmetric (scale = max|w|/127),
// rounded to nearest, clamped to ±127.
func Quantize(w [numHeads][]float32, dense [numHeads][NumDense]float32, hashBits uint, calA, calB [numHeads]float32) *Model {
	n := len(w[0])
	m := &Model{HashBits: hashBits, Dense: dense, CalA: calA, CalB: calB, Weights: make([]uint16, n)}
	for h := 0; h < numHeads; h++ {
		maxAbs := float32(0)
		for _, v := range w[h] {
			maxAbs = max(maxAbs, float32(math.Abs(float64(v))))
		}
		m.Scale[h] = 1
		if maxAbs == 0 {
			continue
		}
		m.Scale[h] = maxAbs / 127
		for i, v := range w[h] {
			q := int8(max(-127, min(127, math.Round(float64(v/m.Scale[h])))))
			m.Weights[i] |= uint16(uint8(q)) << (8 * h)
		}
	}
	return m
}

// sentHeadSums are the n-gram weight sums of both heads (in int8 units).
type sentHeadSums [numHeads]int64

// Logits are the raw linear scores (positive, neutral against negative)
// of extracted features, before calibration.
func (m *Model) Logits(s *FeatureScratch) [numHeads]float64 {
	var acc sentHeadSums
	mask := uint32(len(m.Weights) - 1)
	for _, i := range s.Idx {
		v := m.Weights[i&mask]
		acc[headPos] += int64(int8(v))
		acc[headNeu] += int64(int8(v >> 8))
	}
	return m.logitsSum(acc, s)
}

// logitsSum is Logits given the sums of the n-gram weights.
func (m *Model) logitsSum(acc sentHeadSums, s *FeatureScratch) [numHeads]float64 {
	var z [numHeads]float64
	for h := range z {
		v := float64(acc[h]) * float64(m.Scale[h]) * float64(s.SparseScale)
		for i, x := range s.Dense {
			v += float64(m.Dense[h][i]) * float64(x)
		}
		z[h] = v
	}
	return z
}

// Probs are the calibrated class probabilities, indexed by Class*.
func (m *Model) Probs(s *FeatureScratch) [NumClasses]float64 {
	return m.calibrate(m.Logits(s))
}

func (m *Model) calibrate(z [numHeads]float64) [NumClasses]float64 {
	return m.calibrateShifted(z, 0)
}

// calibrateShifted is calibrate with d added to the neutral logit.
func (m *Model) calibrateShifted(z [numHeads]float64, d float64) [NumClasses]float64 {
	zp := float64(m.CalA[headPos])*z[headPos] + float64(m.CalB[headPos])
	zn := float64(m.CalA[headNeu])*z[headNeu] + float64(m.CalB[headNeu]) + d
	return sentSoftmax(zp, zn)
}

// ShiftNeutral moves the neutral logit by d (a log-odds prior on neutral
// against both polarities): below 0 the model says neutral less often.
func (m *Model) ShiftNeutral(d float64) {
	m.CalB[headNeu] = float32(float64(m.CalB[headNeu]) + d)
}

// sentSoftmax turns the positive and neutral logits (negative's is 0) into
// the three probabilities.
func sentSoftmax(zp, zn float64) [NumClasses]float64 {
	top := max(0, zp, zn)
	en, ep, eu := math.Exp(-top), math.Exp(zp-top), math.Exp(zn-top)
	t := en + ep + eu
	var p [NumClasses]float64
	p[ClassNegative], p[ClassPositive], p[ClassNeutral] = en/t, ep/t, eu/t
	return p
}

// unmarshalMined reads the mined lexicon section of an LKSENT05 model.
func unmarshalMined(b []byte) (*MinedLexicon, error) {
	le := binary.LittleEndian
	if len(b) < 8 {
		return nil, fmt.Errorf("sentiment: model: mined lexicon header: %d bytes, want 8", len(b))
	}
	bits, n := le.Uint32(b), le.Uint32(b[4:])
	if bits < 4 || bits > 28 { // (4: at least four buckets of four slots)
		return nil, fmt.Errorf("sentiment: model: mined lexicon table bits %d out of range 4..28", bits)
	}
	// A table is built at most half full and grows only while a bucket
	// overflows: far more slots than 64 per entry is a damaged file (and a
	// huge allocation).
	if uint64(len(b)-8) != 8*uint64(n) || uint64(n) > 1<<bits/2 || 1<<bits > 64*max(uint64(n), 1) {
		return nil, fmt.Errorf("sentiment: model: mined lexicon of %d entries in %d bytes (table 2^%d)", n, len(b)-8, bits)
	}
	ml := &MinedLexicon{bits: uint(bits), slots: make([]uint32, 1<<bits)}
	for k := uint32(0); k < n; k++ {
		i, v := le.Uint32(b[8+8*k:]), le.Uint32(b[12+8*k:])
		if i >= 1<<bits || v == 0 || ml.slots[i] != 0 {
			return nil, fmt.Errorf("sentiment: model: mined lexicon entry %d (slot %d) is invalid or repeated", k, i)
		}
		ml.slots[i] = v
		ml.setFilter(v)
	}
	return ml, nil
}
