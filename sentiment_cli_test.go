package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"lookout/config"
	"lookout/sentiment"
)

func TestScoreLines(t *testing.T) {
	c, err := sentiment.New(sentiment.Options{Groups: map[string]config.KeywordGroup{"crisis": {Category: "crisis", Severity: "red", Any: []string{"退款"}}}})
	if err != nil {
		t.Fatal(err)
	}
	in := "不是很好\n太棒了！\n\n客服不理人，我要退款\r\n"
	var out bytes.Buffer
	if err := scoreLines(c, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), out.String())
	}
	wantLabels := []string{"negative", "positive", "neutral", "negative"}
	for i, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, l)
		}
		for _, k := range []string{"label", "score", "prob", "lang", "groups", "terms"} {
			if _, ok := v[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i, k, l)
			}
		}
		if v["label"] != wantLabels[i] {
			t.Errorf("line %d label %v, want %s", i, v["label"], wantLabels[i])
		}
	}
	if !strings.Contains(lines[3], `"group":"crisis"`) || !strings.Contains(lines[3], `"退款"`) {
		t.Errorf("line 4 lacks the crisis group: %s", lines[3])
	}
}
