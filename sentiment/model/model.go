// Package model holds the sentiment classifier's generated artefacts,
// embedded into the binary: the trained weights (model.bin), the merged
// lexicon (lexicon.tsv) and the stop-word list for hot terms
// (stopwords.txt), all three written by `go run ./sentiment/train`, and the
// compact segmentation dictionary for hot terms (zhdict.txt.gz) and the HMM
// emission table for words outside it (hmmemit.txt.gz), both written by
// `go run ./sentiment/termsdict`. See README.md here for the commands, the
// data they derive from and its terms.
package model

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
)

//go:embed model.bin
var weights []byte

//go:embed lexicon.tsv
var lexicon []byte

//go:embed stopwords.txt
var stopwords []byte

// Weights returns the model file. Callers must not modify it.
func Weights() []byte { return weights }

// Lexicon returns the lexicon file. Callers must not modify it.
func Lexicon() []byte { return lexicon }

// Stopwords returns the stop-word list. Callers must not modify it.
func Stopwords() []byte { return stopwords }

//go:embed zhdict.txt.gz
var zhDictGz []byte

// SegmentDict returns the segmentation dictionary for hot terms ("word freq
// pos" lines, gse's format; a first line starting with # is a comment),
// decompressed on each call: only term extraction needs it, once.
func SegmentDict() (string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(zhDictGz))
	if err != nil {
		return "", fmt.Errorf("segmentation dictionary: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return "", fmt.Errorf("segmentation dictionary: %w", err)
	}
	return string(b), nil
}

//go:embed hmmemit.txt.gz
var hmmEmitGz []byte

// HMMEmit returns the HMM emission table for words outside the segmentation
// dictionary ("char B E M S" lines of log-probabilities, "x" for none; a
// first line starting with # is a comment), decompressed on each call.
func HMMEmit() (string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(hmmEmitGz))
	if err != nil {
		return "", fmt.Errorf("HMM emission table: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return "", fmt.Errorf("HMM emission table: %w", err)
	}
	return string(b), nil
}
