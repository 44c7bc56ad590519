package sentiment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Model is a binary logistic regression over hashed n-gram features (int8
// weights with one scale) plus dense lexicon/language features, followed by
// Platt scaling: P(positive) = sigmoid(PlattA·z + PlattB).
type Model struct {
	HashBits uint
	Scale    float32 // n-gram weight = Weights[i] * Scale
	Weights  []int8  // 2^HashBits
	Dense    [NumDense]float32
	PlattA   float32
	PlattB   float32
}

// sentModelMagic identifies the file format and the feature hashing it was
// trained with. LKSENT01 was the same layout with int16 n-gram weights;
// LKSENT02 had int8 weights over the earlier n-gram hashes (two
// multiply-xorshift mixes per n-gram, trigrams anywhere in the table);
// LKSENT03 is the same layout over the current hashes (one 128-bit multiply
// per n-gram, each trigram in its bigram's cache line). A file of an older
// version loads but would score nonsense, so it is rejected.
const sentModelMagic = "LKSENT03"

const (
	sentModelMagicV1 = "LKSENT01"
	sentModelMagicV2 = "LKSENT02"
)

// MarshalBinary writes the model in its little-endian file format:
// magic, hash bits, scale, Platt a and b, dense count, dense weights, n-gram
// weights.
func (m *Model) MarshalBinary() ([]byte, error) {
	if len(m.Weights) != 1<<m.HashBits {
		return nil, errorf("model has %d weights, want 2^%d", len(m.Weights), m.HashBits)
	}
	var b bytes.Buffer
	b.WriteString(sentModelMagic)
	le := binary.LittleEndian
	var u [4]byte
	put32 := func(v uint32) { le.PutUint32(u[:], v); b.Write(u[:]) }
	put32(uint32(m.HashBits))
	put32(math.Float32bits(m.Scale))
	put32(math.Float32bits(m.PlattA))
	put32(math.Float32bits(m.PlattB))
	put32(NumDense)
	for _, w := range m.Dense {
		put32(math.Float32bits(w))
	}
	w8 := make([]byte, len(m.Weights))
	for i, w := range m.Weights {
		w8[i] = byte(w)
	}
	b.Write(w8)
	return b.Bytes(), nil
}

// UnmarshalModel reads a model written by MarshalBinary.
func UnmarshalModel(data []byte) (*Model, error) {
	r := bytes.NewReader(data)
	magic := make([]byte, len(sentModelMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != sentModelMagic {
		switch string(magic) {
		case sentModelMagicV1:
			return nil, errors.New("sentiment: model: old format " + sentModelMagicV1 +
				" (int16 weights); this build reads " + sentModelMagic + " (int8 weights): retrain with go run ./sentiment/train")
		case sentModelMagicV2:
			return nil, errors.New("sentiment: model: old format " + sentModelMagicV2 +
				" (earlier feature hashes); this build reads " + sentModelMagic + ": retrain with go run ./sentiment/train")
		}
		return nil, errors.New("sentiment: model: bad magic")
	}
	var hdr [5]uint32
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("sentiment: model header: %w", err)
	}
	m := &Model{HashBits: uint(hdr[0]), Scale: math.Float32frombits(hdr[1]),
		PlattA: math.Float32frombits(hdr[2]), PlattB: math.Float32frombits(hdr[3])}
	if m.HashBits < 8 || m.HashBits > 26 {
		return nil, fmt.Errorf("sentiment: model: hash bits %d out of range", m.HashBits)
	}
	if hdr[4] != NumDense {
		return nil, fmt.Errorf("sentiment: model has %d dense features, this build expects %d", hdr[4], NumDense)
	}
	var dense [NumDense]uint32
	if err := binary.Read(r, binary.LittleEndian, &dense); err != nil {
		return nil, fmt.Errorf("sentiment: model dense weights: %w", err)
	}
	for i, v := range dense {
		m.Dense[i] = math.Float32frombits(v)
	}
	n := 1 << m.HashBits
	if r.Len() != n {
		return nil, fmt.Errorf("sentiment: model: %d bytes of weights, want %d", r.Len(), n)
	}
	rest := data[len(data)-n:]
	m.Weights = make([]int8, n)
	for i := range m.Weights {
		m.Weights[i] = int8(rest[i])
	}
	return m, nil
}

// Quantize turns float weights into a Model with int8 n-gram weights:
// symmetric (scale = max|w|/127), rounded to nearest, clamped to ±127.
func Quantize(w []float32, dense [NumDense]float32, hashBits uint, plattA, plattB float32) *Model {
	maxAbs := float32(0)
	for _, v := range w {
		if a := float32(math.Abs(float64(v))); a > maxAbs {
			maxAbs = a
		}
	}
	m := &Model{HashBits: hashBits, Dense: dense, PlattA: plattA, PlattB: plattB, Weights: make([]int8, len(w))}
	if maxAbs == 0 {
		m.Scale = 1
		return m
	}
	m.Scale = maxAbs / 127
	for i, v := range w {
		q := math.Round(float64(v / m.Scale))
		m.Weights[i] = int8(max(-127, min(127, q)))
	}
	return m
}

// Logit is the raw linear score z of extracted features.
func (m *Model) Logit(s *FeatureScratch) float64 {
	var acc int64
	ws := m.Weights
	mask := uint32(len(ws) - 1)
	for _, i := range s.Idx {
		acc += int64(ws[i&mask])
	}
	return m.logitSum(acc, s)
}

// logitSum is Logit given the sum of the n-gram weights.
func (m *Model) logitSum(acc int64, s *FeatureScratch) float64 {
	z := float64(acc) * float64(m.Scale) * float64(s.SparseScale)
	for i, x := range s.Dense {
		z += float64(m.Dense[i]) * float64(x)
	}
	return z
}

// Prob is the calibrated probability that the text is positive.
func (m *Model) Prob(s *FeatureScratch) float64 {
	return m.calibrate(m.Logit(s))
}

func (m *Model) calibrate(z float64) float64 {
	return sentSigmoid(float64(m.PlattA)*z + float64(m.PlattB))
}

func sentSigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}
