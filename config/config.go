// Package config loads lookout's YAML configuration strictly: unknown keys,
// wrong types and invalid values are errors that name the field and the line.
// Secrets are never written in the file; they are `${ENV_VAR}` references
// resolved from the environment (see Secret).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole file.
type Config struct {
	Store      StoreConfig             `yaml:"store"`
	Privacy    PrivacyConfig           `yaml:"privacy"`
	HTTP       HTTPConfig              `yaml:"http"`
	UI         UIConfig                `yaml:"ui"`
	Limits     LimitsConfig            `yaml:"limits"`
	Classifier ClassifierConfig        `yaml:"classifier"`
	Keywords   map[string]KeywordGroup `yaml:"keywords"`
	Sources    []SourceConfig          `yaml:"sources"`
	Rules      []RuleConfig            `yaml:"rules"`
	Route      RouteConfig             `yaml:"route"`
	Receivers  []ReceiverConfig        `yaml:"receivers"`
	Transport  TransportConfig         `yaml:"transport"`
	Reports    ReportsConfig           `yaml:"reports"`
	Brands     BrandsConfig            `yaml:"brands"`

	// File is the path the config was read from ("" for embedded configs).
	File string `yaml:"-"`

	root    *yaml.Node // the parsed document, for the lines of errors
	envRefs []envRefAt // every ${VAR} the file names, with its line
}

// envRefAt is one ${VAR} reference and the line it is on.
type envRefAt struct {
	name string
	line int
}

// StoreConfig configures the SQLite database.
type StoreConfig struct {
	Path          string          `yaml:"path"`           // default lookout.db
	BatchSize     int             `yaml:"batch_size"`     // items per transaction, default 512
	FlushInterval Duration        `yaml:"flush_interval"` // max time an item waits, default 500ms
	Retention     RetentionConfig `yaml:"retention"`
	KeepRaw       *bool           `yaml:"keep_raw"` // store raw payloads (default true)
	// Search keeps a full-text index of item text for `lookout search`
	// (default off: it doubles the store's CPU per item; turning it on
	// later indexes what is already stored).
	Search bool `yaml:"search"`
	// Driver is sqlite (the default: the file at path) or postgres: a
	// PostgreSQL database that several `--role process` daemons share
	// (items, metrics, alerts, outbox, room profiles). The DSN comes only
	// from the environment variable DSNEnv.
	Driver string `yaml:"driver"`
	// DSNEnv names the environment variable holding the PostgreSQL DSN
	// (default LOOKOUT_POSTGRES_DSN).
	DSNEnv string `yaml:"dsn_env"`
}

// Store drivers.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
	// DefaultPostgresDSNEnv is store.dsn_env's default.
	DefaultPostgresDSNEnv = "LOOKOUT_POSTGRES_DSN"
)

// Postgres reports whether the store is PostgreSQL.
func (s StoreConfig) Postgres() bool { return s.Driver == StorePostgres }

// PostgresDSN reads the DSN from the environment variable store.dsn_env
// names; the error names the variable, never a value.
func (s StoreConfig) PostgresDSN() (string, error) {
	name := s.DSNEnv
	if name == "" {
		name = DefaultPostgresDSNEnv
	}
	dsn := os.Getenv(name)
	if dsn == "" {
		return "", fmt.Errorf("store.driver is postgres but $%s is empty (postgres://user:password@host:5432/lookout)", name)
	}
	return dsn, nil
}

// RetentionConfig says how long rows are kept; zero keeps them forever.
type RetentionConfig struct {
	Raw   Duration `yaml:"raw"`   // raw payloads
	Items Duration `yaml:"items"` // items and scores
}

// PrivacyConfig controls what personal data is stored.
type PrivacyConfig struct {
	// Enabled is privacy mode: user ids and display names become salted
	// hashes wherever they appear (items, alerts, notifications, logs)
	// and raw payloads are not kept (see internal/redact.Users).
	Enabled bool `yaml:"enabled"`
	// HashUserIDs is the older name of the same switch.
	HashUserIDs bool   `yaml:"hash_user_ids"`
	Salt        Secret `yaml:"salt"`
}

// On reports whether privacy mode is on.
func (p PrivacyConfig) On() bool { return p.Enabled || p.HashUserIDs }

// HTTPConfig configures the daemon's own HTTP endpoint (metrics, health).
type HTTPConfig struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9464; "off" disables
}

// UIConfig configures the live dashboard. It is off unless Listen is set
// (or `--ui ADDR` is given); its access token comes from the environment
// (LOOKOUT_UI_TOKEN), never from the file.
type UIConfig struct {
	Listen string `yaml:"listen"` // e.g. 127.0.0.1:8080; "" or "off": no dashboard
	// PublicURL is where people reach the dashboard (e.g. behind a
	// proxy); reports posted to chat link to it. Without it they link to
	// the listen address while the dashboard runs.
	PublicURL string `yaml:"public_url"`
}

// LimitsConfig holds the politeness settings shared by all collectors.
type LimitsConfig struct {
	Default        HostLimit            `yaml:"default"`         // per-host default
	Hosts          map[string]HostLimit `yaml:"hosts"`           // per-host overrides
	MaxConcurrency int                  `yaml:"max_concurrency"` // global cap on requests in flight
	UserAgent      string               `yaml:"user_agent"`
	Timeout        Duration             `yaml:"timeout"` // per request, default 15s
}

// HostLimit is a token bucket for one host.
type HostLimit struct {
	Rate  Rate `yaml:"rate"`  // e.g. 2/s, 30/m
	Burst int  `yaml:"burst"` // default max(1, ceil(rate per second))
}

// ClassifierConfig tunes the sentiment classifier.
type ClassifierConfig struct {
	// NeutralThreshold: the probability a positive or negative verdict
	// needs (besides being the likeliest class); below it the verdict is
	// neutral. 0 means the classifier's default
	// (sentiment.DefaultNeutralThreshold, 0.5).
	NeutralThreshold float64 `yaml:"neutral_threshold"`
	Terms            *bool   `yaml:"terms"` // extract hot terms (default true)
}

// KeywordGroup is a named set of keywords: it matches a text when any of
// Any, all of All and none of None occur. Any and All may both be given.
type KeywordGroup struct {
	Category string   `yaml:"category"` // defaults to the group's name
	Severity string   `yaml:"severity"` // red, yellow, green (default yellow)
	Any      []string `yaml:"any"`
	All      []string `yaml:"all"`
	None     []string `yaml:"none"`
}

// KeepRawEnabled reports whether raw payloads are stored (default true).
func (s StoreConfig) KeepRawEnabled() bool { return s.KeepRaw == nil || *s.KeepRaw }

// TermsEnabled reports whether hot terms are extracted (default true).
func (c ClassifierConfig) TermsEnabled() bool { return c.Terms == nil || *c.Terms }

// Default returns the defaults applied to every loaded config.
func (c *Config) applyDefaults() {
	c.Transport.applyDefaults()
	if c.Store.Path == "" {
		c.Store.Path = "lookout.db"
	}
	if c.Store.BatchSize == 0 {
		c.Store.BatchSize = 512
	}
	if c.Store.FlushInterval == 0 {
		c.Store.FlushInterval = Duration(500 * time.Millisecond)
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:9464"
	}
	if c.Limits.Default.Rate == 0 {
		c.Limits.Default.Rate = 2
	}
	if c.Limits.MaxConcurrency == 0 {
		c.Limits.MaxConcurrency = 32
	}
	if c.Limits.Timeout == 0 {
		c.Limits.Timeout = Duration(15 * time.Second)
	}
	for name, g := range c.Keywords {
		if g.Category == "" {
			g.Category = name
		}
		if g.Severity == "" {
			g.Severity = "yellow"
		}
		c.Keywords[name] = g
	}
}

// BrowserUserAgent is a current desktop browser's. The platform kinds
// that bind tokens to the User-Agent or refuse clients that do not look
// like a browser (see NeedsBrowserUserAgent) send it unless the source or
// limits.user_agent sets another.
const BrowserUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// ProjectURL is where a site owner who finds lookout in their logs reads
// what it is; the default User-Agent names it.
const ProjectURL = "https://github.com/lookout-monitor/lookout"

// UserAgent is lookout's own User-Agent, sent by default: it names the
// program, its version and where to read about it, so that a site owner
// can tell who is polling and robots.txt groups for "lookout" apply.
func UserAgent(version string) string {
	if version == "" {
		version = "dev"
	}
	return "lookout/" + version + " (+" + ProjectURL + ")"
}

// NeedsBrowserUserAgent reports whether a collector kind talks to a
// platform that refuses or degrades clients without a browser's
// User-Agent (Bilibili's and Douyin's web endpoints, Weibo's mobile API).
func NeedsBrowserUserAgent(kind string) bool {
	switch kind {
	case "bilibili_live", "bilibili_comments", "douyin_live", "weibo":
		return true
	}
	return false
}

// DefaultTimezone is the zone of times written without an offset when the
// source sets no timezone: the sites and APIs lookout is mostly pointed at
// (Chinese forums, feeds and platforms) write local Beijing time.
const DefaultTimezone = "Asia/Shanghai"

// LoadTimezone loads an IANA zone name. The zones of mainland China, Hong
// Kong and Taiwan are built in (UTC+8, no daylight saving) so that the
// default works on machines without tzdata.
func LoadTimezone(name string) (*time.Location, error) {
	if name == "" {
		name = DefaultTimezone
	}
	loc, err := time.LoadLocation(name)
	if err == nil {
		return loc, nil
	}
	switch name {
	case "Asia/Shanghai", "Asia/Chongqing", "PRC", "Asia/Hong_Kong", "Asia/Taipei":
		return time.FixedZone("CST", 8*3600), nil
	}
	return nil, fmt.Errorf("unknown time zone %q (want an IANA name such as Asia/Shanghai or UTC)", name)
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates a config held in memory. name is used in error
// messages ("config.yaml:12: …").
func Parse(data []byte, name string) (*Config, error) {
	if name == "" {
		name = "config"
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, errEOF) || err.Error() == "EOF" {
			return nil, fmt.Errorf("%s: empty config", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil && !emptyDocument(&extra) {
		return nil, fmt.Errorf("%s:%d: a second YAML document (after ---) would be ignored: keep the whole config in one", name, extra.Line)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var c Config
	c.root = root
	c.envRefs = envRefsOf(root)
	if err := decodeStrict(root, &c, ""); err != nil {
		return nil, fmt.Errorf("%s:%w", name, err)
	}
	c.File = name
	c.applyDefaults()
	c.applyBrands()
	if errs := c.validate(); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = name + ":" + e.Error()
		}
		return nil, &ValidationError{Msgs: msgs}
	}
	return &c, nil
}

var errEOF = errors.New("EOF")

// emptyDocument reports whether a YAML document holds nothing (a
// trailing "---").
func emptyDocument(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode {
		return len(n.Content) == 0 || (len(n.Content) == 1 && n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null")
	}
	return n.Kind == 0
}

// ValidationError lists every problem found, one per line.
type ValidationError struct{ Msgs []string }

func (e *ValidationError) Error() string { return strings.Join(e.Msgs, "\n") }

// FieldError is a problem with one field at one line.
type FieldError struct {
	Line  int
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%d: %s: %s", e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf(" %s: %s", e.Field, e.Msg)
}

func ferr(line int, field, format string, args ...any) error {
	return &FieldError{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (c *Config) validate() []error {
	var errs []error
	ids := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		f := fmt.Sprintf("sources[%d]", i)
		if s.ID == "" {
			errs = append(errs, ferr(s.Line, f+".id", "is required"))
		} else if ids[s.ID] {
			errs = append(errs, ferr(s.Line, f+".id", "duplicate source id %q", s.ID))
		}
		ids[s.ID] = true
		if s.Kind == "" {
			errs = append(errs, ferr(s.Line, f+".kind", "is required"))
		}
		if s.Timezone != "" {
			if _, err := LoadTimezone(s.Timezone); err != nil {
				line := s.Line
				if n := c.sourceKey(i, "timezone"); n != nil {
					line = n.Line
				}
				errs = append(errs, ferr(line, f+".timezone", "%v", err))
			}
		}
	}
	for name, g := range c.Keywords {
		f := "keywords." + name
		if len(g.Any) == 0 && len(g.All) == 0 {
			errs = append(errs, ferr(0, f, "needs at least one of any or all"))
		}
		if !validSeverity(g.Severity) {
			errs = append(errs, ferr(0, f+".severity", "must be red, yellow or green, not %q", g.Severity))
		}
	}
	errs = append(errs, c.validateStore()...)
	errs = append(errs, c.validateRules()...)
	receivers, rerrs := c.validateReceivers()
	errs = append(errs, rerrs...)
	errs = append(errs, c.validateTransport()...)
	errs = append(errs, c.validateReports(receivers)...)
	errs = append(errs, c.validateBrands()...)
	return errs
}

// validateStore checks the store, http and poll-interval settings that
// defaults cannot repair.
func (c *Config) validateStore() []error {
	var errs []error
	if c.Store.BatchSize < 1 {
		errs = append(errs, ferr(c.lineOf("store", "batch_size"), "store.batch_size", "must be at least 1, not %d", c.Store.BatchSize))
	}
	if c.Store.FlushInterval < 0 {
		errs = append(errs, ferr(c.lineOf("store", "flush_interval"), "store.flush_interval", "must not be negative"))
	}
	errs = append(errs, c.validatePostgres()...)
	if strings.ContainsRune(c.Store.Path, 0) {
		errs = append(errs, ferr(c.lineOf("store", "path"), "store.path", "contains a NUL byte"))
	}
	if l := c.HTTP.Listen; l != "off" {
		if err := checkListen(l); err != nil {
			errs = append(errs, ferr(c.lineOf("http", "listen"), "http.listen", "%v (host:port, e.g. 127.0.0.1:9464, or off)", err))
		}
	}
	if c.Privacy.On() {
		if c.Privacy.Salt.Var == "" {
			errs = append(errs, ferr(c.lineOf("privacy"), "privacy.salt", "is required in privacy mode: salt: ${LOOKOUT_USER_SALT} (a long random value, kept secret and never changed, or the hashes of the same user stop matching)"))
		}
		if c.Store.KeepRaw != nil && *c.Store.KeepRaw {
			errs = append(errs, ferr(c.lineOf("store", "keep_raw"), "store.keep_raw", "cannot be true in privacy mode: raw payloads carry the user ids and names privacy mode hashes"))
		}
	}
	if l := c.UI.Listen; l != "" && l != "off" {
		if err := checkListen(l); err != nil {
			errs = append(errs, ferr(c.lineOf("ui", "listen"), "ui.listen", "%v (host:port, e.g. 127.0.0.1:8080, or off)", err))
		}
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if n := c.sourceKey(i, "every"); n != nil && s.Every <= 0 {
			errs = append(errs, ferr(n.Line, fmt.Sprintf("sources[%d].every", i), "must be more than 0 (leave it out for the kind's default)"))
		}
	}
	return errs
}

// checkListen accepts host:port with a port number from 0 to 65535.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q: bad host %q", addr, host)
	}
	return nil
}

// ListenWarning says why http.listen deserves a warning, or "": an
// address that is not loopback (":9464" binds every interface) exposes
// /metrics and the health endpoints beyond this machine.
func (h HTTPConfig) ListenWarning() string {
	if h.Listen == "off" {
		return ""
	}
	host, _, err := net.SplitHostPort(h.Listen)
	if err != nil {
		return ""
	}
	if host == "" {
		return "http.listen " + h.Listen + " binds every interface: /metrics and /healthz are reachable from other machines"
	}
	if host == "localhost" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	return "http.listen " + h.Listen + " is not a loopback address: /metrics and /healthz are reachable from other machines"
}

// lineOf is the line of a key in the document (0 when absent).
func (c *Config) lineOf(path ...string) int {
	n := c.root
	for _, k := range path {
		n = mappingValue(n, k)
		if n == nil {
			return 0
		}
	}
	return n.Line
}

// sourceKey is the node of key in sources[i], or nil.
func (c *Config) sourceKey(i int, key string) *yaml.Node {
	list := mappingValue(c.root, "sources")
	if list == nil || list.Kind != yaml.SequenceNode || i >= len(list.Content) {
		return nil
	}
	return mappingValue(list.Content[i], key)
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == key {
			return n.Content[j+1]
		}
	}
	return nil
}

// envRefsOf lists every ${VAR} in the document's values with its line.
func envRefsOf(root *yaml.Node) []envRefAt {
	var out []envRefAt
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			for _, m := range envRef.FindAllStringSubmatch(n.Value, -1) {
				out = append(out, envRefAt{m[1], n.Line})
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	if root != nil {
		walk(root)
	}
	return out
}

func validSeverity(s string) bool { return s == "red" || s == "yellow" || s == "green" }

// validatePostgres refuses, with store.driver postgres, the features that
// read the SQLite file directly: the dashboard, stream reviews and
// digests, and the full-text index.
func (c *Config) validatePostgres() []error {
	var errs []error
	switch c.Store.Driver {
	case "", StoreSQLite:
		return nil
	case StorePostgres:
	default:
		return []error{ferr(c.lineOf("store", "driver"), "store.driver", "must be sqlite or postgres, not %q", c.Store.Driver)}
	}
	if l := c.UI.Listen; l != "" && l != "off" {
		errs = append(errs, ferr(c.lineOf("ui", "listen"), "ui.listen", "the dashboard reads the SQLite store; it is not available with store.driver postgres (leave ui.listen out)"))
	}
	if c.Store.Search {
		errs = append(errs, ferr(c.lineOf("store", "search"), "store.search", "the full-text index (lookout search) is SQLite's; it is not available with store.driver postgres"))
	}
	if r := c.Reports.Review.Enabled; r != nil && *r {
		errs = append(errs, ferr(c.lineOf("reports", "review"), "reports.review", "stream reviews read the SQLite store; they are not available with store.driver postgres"))
	}
	if c.Reports.Daily != nil || c.Reports.Weekly != nil {
		errs = append(errs, ferr(c.lineOf("reports"), "reports.daily/weekly", "digests read the SQLite store; they are not available with store.driver postgres"))
	}
	return errs
}
