package ui_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestReportPage(t *testing.T) {
	f := newFixture(t, "")
	tests := []struct {
		name     string
		query    string
		wantCode int
		want     string
	}{
		{"room in window", "?room=100&from=2026-11-25T12:00:00Z&to=2026-11-25T12:30:00Z", http.StatusOK, "假货"},
		{"default window", "?room=100", http.StatusOK, "100"},
		{"bad from", "?room=100&from=yesterday", http.StatusBadRequest, "from"},
		{"empty window", "?room=100&from=2026-11-25T12:30:00Z&to=2026-11-25T12:00:00Z", http.StatusBadRequest, "before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, http.DefaultClient, f.http.URL+"/report"+tt.query)
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d: %.300s", code, tt.wantCode, body)
			}
			if !strings.Contains(body, tt.want) {
				t.Errorf("body lacks %q: %.300s", tt.want, body)
			}
			if code == http.StatusOK && !strings.Contains(body, "<svg") {
				t.Errorf("report has no chart: %.300s", body)
			}
		})
	}
}
