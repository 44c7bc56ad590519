package config

import (
	"net/url"
	"strings"
	"time"
)

// TransportConfig chooses how items travel from collectors to the
// processing pipeline. "memory" (the default) keeps everything in one
// process; "nats" publishes items to a NATS JetStream stream so that
// collect-role and process-role daemons can run on different machines.
type TransportConfig struct {
	Kind string     `yaml:"kind"` // memory (default) or nats
	NATS NATSConfig `yaml:"nats"`
}

// NATSConfig configures the JetStream transport.
type NATSConfig struct {
	URL        string `yaml:"url"`        // e.g. nats://127.0.0.1:4222
	Stream     string `yaml:"stream"`     // default LOOKOUT_ITEMS
	Partitions int    `yaml:"partitions"` // subjects lookout.items.<0..P-1>, default 16
	User       Secret `yaml:"user"`       // ${NATS_USER}: credentials come from the environment
	Password   Secret `yaml:"password"`   // ${NATS_PASSWORD}
	Token      Secret `yaml:"token"`      // ${NATS_TOKEN}
	// A collector's items of one partition travel together in one message:
	// at most BatchItems of them (default 128; 1 sends each item alone),
	// waiting at most BatchWindow for more (default 20ms).
	BatchItems  int      `yaml:"batch_items"`
	BatchWindow Duration `yaml:"batch_window"`
	// PartitionLease is how long a partition stays with a processor that
	// stopped renewing its lease (it died): the take-over time after a
	// crash (default 6s). Every processor of the stream must agree.
	PartitionLease Duration `yaml:"partition_lease"`
	// OutboxClaimTimeout is how long a notification a processor claimed
	// and never finished (it died mid-send) waits before another
	// processor sharing the store sends it (default 1m). A send is cut
	// off at 30s or half of it, whichever is less, so that a slow sink's
	// message is not sent twice.
	OutboxClaimTimeout Duration `yaml:"outbox_claim_timeout"`
	TLS                struct {
		CAFile   string `yaml:"ca_file"`
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
}

// TransportNATS reports whether items travel over NATS JetStream.
func (c *Config) TransportNATS() bool { return c.Transport.Kind == "nats" }

func (t *TransportConfig) applyDefaults() {
	if t.Kind == "" {
		t.Kind = "memory"
	}
	if t.Kind == "nats" {
		if t.NATS.Stream == "" {
			t.NATS.Stream = "LOOKOUT_ITEMS"
		}
		if t.NATS.Partitions == 0 {
			t.NATS.Partitions = 16
		}
	}
}

func (c *Config) validateTransport() []error {
	t := c.Transport
	var errs []error
	switch t.Kind {
	case "memory":
		return nil
	case "nats":
	default:
		return []error{ferr(c.lineOf("transport", "kind"), "transport.kind", "must be memory or nats, not %q", t.Kind)}
	}
	n := t.NATS
	if n.URL == "" {
		errs = append(errs, ferr(c.lineOf("transport"), "transport.nats.url", "is required when transport.kind is nats"))
	} else {
		for _, u := range strings.Split(n.URL, ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || p.Host == "" || (p.Scheme != "nats" && p.Scheme != "tls") {
				errs = append(errs, ferr(c.lineOf("transport", "nats", "url"), "transport.nats.url", "%q is not a nats:// or tls:// URL", u))
			}
		}
	}
	if n.Partitions < 1 || n.Partitions > 1024 {
		errs = append(errs, ferr(c.lineOf("transport", "nats", "partitions"), "transport.nats.partitions", "must be between 1 and 1024, not %d", n.Partitions))
	}
	if n.BatchItems < 0 || n.BatchItems > 4096 {
		errs = append(errs, ferr(c.lineOf("transport", "nats", "batch_items"), "transport.nats.batch_items", "must be between 1 and 4096 (0: the default, 128), not %d", n.BatchItems))
	}
	if n.BatchWindow < 0 || n.BatchWindow.D() > 5*time.Second {
		errs = append(errs, ferr(c.lineOf("transport", "nats", "batch_window"), "transport.nats.batch_window", "must be between 0 (the default, 20ms) and 5s, not %v", n.BatchWindow.D()))
	}
	if n.PartitionLease < 0 || n.PartitionLease != 0 && (n.PartitionLease.D() < time.Second || n.PartitionLease.D() > 10*time.Minute) {
		errs = append(errs, ferr(c.lineOf("transport", "nats", "partition_lease"), "transport.nats.partition_lease", "must be between 1s and 10m (0: the default, 6s), not %v", n.PartitionLease.D()))
	}
	if n.OutboxClaimTimeout < 0 || n.OutboxClaimTimeout != 0 && (n.OutboxClaimTimeout.D() < 2*time.Second || n.OutboxClaimTimeout.D() > 24*time.Hour) {
		errs = append(errs, ferr(c.lineOf("transport", "nats", "outbox_claim_timeout"), "transport.nats.outbox_claim_timeout", "must be between 2s and 24h (0: the default, 1m), not %v", n.OutboxClaimTimeout.D()))
	}
	if strings.ContainsAny(n.Stream, " .*>") {
		errs = append(errs, ferr(c.lineOf("transport", "nats", "stream"), "transport.nats.stream", "%q must not contain spaces, '.', '*' or '>'", n.Stream))
	}
	if n.Token.IsSet() && (n.User.IsSet() || n.Password.IsSet()) {
		errs = append(errs, ferr(c.lineOf("transport", "nats", "token"), "transport.nats.token", "set either token or user/password, not both"))
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		errs = append(errs, ferr(c.lineOf("transport", "nats", "tls"), "transport.nats.tls", "cert_file and key_file go together"))
	}
	return errs
}

// ValidRole checks a `lookout run --role` value against the transport:
// collect and process need a transport that crosses processes.
func (c *Config) ValidRole(role string) error {
	if c.Store.Postgres() && role != "process" {
		return ferr(c.lineOf("store", "driver"), "store.driver", "postgres is the shared store of --role process; --role %s keeps the SQLite file", role)
	}
	switch role {
	case "all":
		return nil
	case "collect", "process":
		if !c.TransportNATS() {
			return ferr(c.lineOf("transport"), "transport.kind", "--role %s needs transport.kind nats, not %q", role, c.Transport.Kind)
		}
		return nil
	}
	return ferr(0, "--role", "must be all, collect or process, not %q", role)
}
