package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidRole(t *testing.T) {
	mem, err := Parse([]byte("sources: []\n"), "mem.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nats, err := Parse([]byte("transport:\n  kind: nats\n  nats:\n    url: nats://127.0.0.1:4222\n"), "nats.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if nats.Transport.NATS.Partitions != 16 || nats.Transport.NATS.Stream != "LOOKOUT_ITEMS" {
		t.Fatalf("nats defaults: %+v", nats.Transport.NATS)
	}
	if mem.Transport.Kind != "memory" {
		t.Fatalf("default transport %q, want memory", mem.Transport.Kind)
	}
	for _, tc := range []struct {
		cfg  *Config
		role string
		ok   bool
	}{
		{mem, "all", true},
		{mem, "collect", false},
		{mem, "process", false},
		{nats, "all", true},
		{nats, "collect", true},
		{nats, "process", true},
		{nats, "both", false},
	} {
		err := tc.cfg.ValidRole(tc.role)
		if (err == nil) != tc.ok {
			t.Errorf("%s role %q: err %v, want ok=%v", tc.cfg.Transport.Kind, tc.role, err, tc.ok)
		}
	}
}

func TestTransportChangeNeedsRestart(t *testing.T) {
	a, err := Parse([]byte("transport:\n  kind: nats\n  nats:\n    url: nats://127.0.0.1:4222\n"), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte("transport:\n  kind: nats\n  nats:\n    url: nats://127.0.0.1:4333\n"), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(a, a); len(d.NeedsRestart) != 0 {
		t.Fatalf("same config needs restart: %v", d.NeedsRestart)
	}
	d := Compare(a, b)
	if len(d.NeedsRestart) != 1 || d.NeedsRestart[0] != "transport.nats" {
		t.Fatalf("NeedsRestart = %v, want [transport.nats]", d.NeedsRestart)
	}
}

// Batch size and window parse, and out-of-range values are refused with
// the field named.
func TestTransportBatchOptions(t *testing.T) {
	base := "transport:\n  kind: nats\n  nats:\n    url: nats://127.0.0.1:4222\n"
	for _, tc := range []struct {
		extra   string
		items   int
		wantErr string
	}{
		{"    batch_items: 64\n    batch_window: 50ms\n", 64, ""},
		{"", 0, ""},
		{"    batch_items: -1\n", 0, "transport.nats.batch_items"},
		{"    batch_items: 5000\n", 0, "transport.nats.batch_items"},
		{"    batch_window: 10s\n", 0, "transport.nats.batch_window"},
	} {
		cfg, err := Parse([]byte(base+tc.extra), "nats.yaml")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one naming %s", tc.extra, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.extra, err)
			continue
		}
		if cfg.Transport.NATS.BatchItems != tc.items {
			t.Errorf("%q: batch_items %d, want %d", tc.extra, cfg.Transport.NATS.BatchItems, tc.items)
		}
		if tc.items == 64 && cfg.Transport.NATS.BatchWindow.D() != 50*time.Millisecond {
			t.Errorf("batch_window %v, want 50ms", cfg.Transport.NATS.BatchWindow.D())
		}
	}
}

// The partition lease and the outbox claim timeout parse, and values out
// of range are refused with the field and its line.
func TestTransportFailoverTimes(t *testing.T) {
	base := "transport:\n  kind: nats\n  nats:\n    url: nats://127.0.0.1:4222\n"
	for _, tc := range []struct {
		extra        string
		lease, claim time.Duration
		wantErr      string
	}{
		{"    partition_lease: 10s\n    outbox_claim_timeout: 2m\n", 10 * time.Second, 2 * time.Minute, ""},
		{"", 0, 0, ""},
		{"    partition_lease: 500ms\n", 0, 0, "nats.yaml:5: transport.nats.partition_lease"},
		{"    partition_lease: 1h\n", 0, 0, "nats.yaml:5: transport.nats.partition_lease"},
		{"    outbox_claim_timeout: 1s\n", 0, 0, "nats.yaml:5: transport.nats.outbox_claim_timeout"},
		{"    outbox_claim_timeout: -1m\n", 0, 0, "nats.yaml:5: transport.nats.outbox_claim_timeout"},
	} {
		cfg, err := Parse([]byte(base+tc.extra), "nats.yaml")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.extra, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.extra, err)
			continue
		}
		if n := cfg.Transport.NATS; n.PartitionLease.D() != tc.lease || n.OutboxClaimTimeout.D() != tc.claim {
			t.Errorf("%q: partition_lease %v, outbox_claim_timeout %v; want %v, %v", tc.extra, n.PartitionLease.D(), n.OutboxClaimTimeout.D(), tc.lease, tc.claim)
		}
	}
}
