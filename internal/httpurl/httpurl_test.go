package httpurl

import (
	"net/url"
	"testing"
)

func TestOK(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want bool
	}{
		{"https://api.twitch.tv/helix", true},
		{"http://127.0.0.1:8080", true},
		{"HTTPS://example.com", true}, // url.Parse lower-cases the scheme
		{"ftp://example.com", false},
		{"https://", false},
		{"/relative/path", false},
		{"example.com", false},
		{"socks5://127.0.0.1:1080", false},
	} {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		if got := OK(u); got != tc.want {
			t.Errorf("OK(%q) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}
