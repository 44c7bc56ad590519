package config

import "testing"

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
