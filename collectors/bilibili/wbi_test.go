package bilibili

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test vector from bilibili-API-collect docs/misc/sign/wbi.md.
const (
	biliTestImgKey = "7cd084941338484aae1ad9425b84077c"
	biliTestSubKey = "4932caff0ff746eab6f01bf08b70ac45"
	biliTestMixin  = "ea1db124af3c7062474693fa704f4ff8"
)

func TestBilibiliMixinKey(t *testing.T) {
	if got := MixinKey(biliTestImgKey, biliTestSubKey); got != biliTestMixin {
		t.Fatalf("mixin key = %q, want %q", got, biliTestMixin)
	}
	if got := MixinKey("short", "keys"); got != "" {
		t.Errorf("mixin key of short keys = %q, want empty", got)
	}
}

func TestBilibiliSignWBIVector(t *testing.T) {
	params := url.Values{"foo": {"114"}, "bar": {"514"}, "zab": {"1919810"}}
	got := SignWBI(params, biliTestMixin, 1702204169)
	want := "bar=514&foo=114&wts=1702204169&zab=1919810&w_rid=8f6f2b5b3d485fe1886cec6a0be8c5d4"
	if got != want {
		t.Fatalf("signed query\n got %s\nwant %s", got, want)
	}
}

func TestBilibiliSignWBIEncoding(t *testing.T) {
	tests := []struct {
		params url.Values
		want   string // the query before &w_rid
	}{
		{url.Values{"keyword": {"退款 假货"}}, "keyword=%E9%80%80%E6%AC%BE%20%E5%81%87%E8%B4%A7&wts=1"},
		{url.Values{"q": {"a!b'c(d)e*f"}}, "q=abcdef&wts=1"},
		{url.Values{"q": {"a+b&c=d~e"}}, "q=a%2Bb%26c%3Dd~e&wts=1"},
		{url.Values{"wts": {"999"}, "w_rid": {"old"}, "id": {"1"}}, "id=1&wts=1"},
	}
	for _, tc := range tests {
		got := SignWBI(tc.params, biliTestMixin, 1)
		q, rid, ok := strings.Cut(got, "&w_rid=")
		if !ok || q != tc.want || len(rid) != 32 {
			t.Errorf("SignWBI(%v) = %q, want %q&w_rid=<32 hex>", tc.params, got, tc.want)
		}
	}
}

func TestBilibiliWBIKeyFromURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://i0.hdslb.com/bfs/wbi/7cd084941338484aae1ad9425b84077c.png":     "7cd084941338484aae1ad9425b84077c",
		"https://i0.hdslb.com/bfs/wbi/4932caff0ff746eab6f01bf08b70ac45.png?x=1": "4932caff0ff746eab6f01bf08b70ac45",
		"4932caff0ff746eab6f01bf08b70ac45":                                      "4932caff0ff746eab6f01bf08b70ac45",
		"":                                                                      "",
	} {
		if got := WBIKeyFromURL(in); got != want {
			t.Errorf("WBIKeyFromURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// biliFakeClock records requested waits and fires them at once, advancing
// its own time.
type biliFakeClock struct {
	mu     sync.Mutex
	now    time.Time
	waits  []time.Duration
	onWait func(n int) // called after the n-th wait is recorded
}

func newBiliFakeClock() *biliFakeClock {
	return &biliFakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (c *biliFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *biliFakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	n, now, hook := len(c.waits), c.now, c.onWait
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

func (c *biliFakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *biliFakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

func TestBilibiliWBICache(t *testing.T) {
	clock := newBiliFakeClock()
	fetches := 0
	fail := false
	w := &WBI{Clock: clock, Fetch: func(context.Context) (string, string, error) {
		fetches++
		if fail {
			return "", "", errors.New("nav down")
		}
		return biliTestImgKey, biliTestSubKey, nil
	}}
	ctx := context.Background()
	params := url.Values{"foo": {"114"}, "bar": {"514"}, "zab": {"1919810"}}
	first, err := w.Sign(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	want := SignWBI(params, biliTestMixin, clock.Now().Unix())
	if first != want {
		t.Fatalf("Sign = %q, want %q", first, want)
	}
	clock.Advance(11 * time.Hour)
	if _, err := w.Sign(ctx, params); err != nil || fetches != 1 {
		t.Fatalf("within TTL: fetches = %d, err %v; want 1 fetch", fetches, err)
	}
	clock.Advance(2 * time.Hour)
	if _, err := w.Sign(ctx, params); err != nil || fetches != 2 {
		t.Fatalf("after TTL: fetches = %d, err %v; want 2", fetches, err)
	}
	w.Invalidate()
	fail = true
	if _, err := w.Sign(ctx, params); err == nil || fetches != 3 {
		t.Fatalf("after Invalidate with nav down: fetches = %d, err %v; want 3 and an error", fetches, err)
	}
	fail = false
	if _, err := w.Sign(ctx, params); err != nil || fetches != 4 {
		t.Fatalf("recovery: fetches = %d, err %v", fetches, err)
	}
}
