// Package model holds the sentiment classifier's generated artefacts,
// embedded into the binary: the trained weights (model.bin), the merged
// lexicon (lexicon.tsv) and the stop-word list for hot terms
// (stopwords.txt). All three are written by `go run ./sentiment/train`; see
// README.md here for the command, the data they derive from and its terms.
package model

import _ "embed"

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
