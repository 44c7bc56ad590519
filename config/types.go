package config

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that also accepts days ("7d") and is written
// back in Go's notation.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration parses Go durations plus a "d" (24h) unit: "90d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	var days float64
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days, s = n, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		var err error
		if rest, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 30s, 5m, 2h, 7d)", s)
		}
	}
	return time.Duration(days*24*float64(time.Hour)) + rest, nil
}

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as 30s or 5m")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Rate is events per second. It reads "2/s", "30/m", "100/h" or a bare
// number (per second).
type Rate float64

// ParseRate parses the Rate notation.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	num, unit, found := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n < 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("invalid rate %q (use e.g. 2/s, 30/m)", s)
	}
	if !found {
		return Rate(n), nil
	}
	switch strings.TrimSpace(unit) {
	case "s", "sec", "second":
		return Rate(n), nil
	case "m", "min", "minute":
		return Rate(n / 60), nil
	case "h", "hour":
		return Rate(n / 3600), nil
	}
	return 0, fmt.Errorf("invalid rate unit in %q (use /s, /m or /h)", s)
}

func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a rate such as 2/s")
	}
	v, err := ParseRate(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Secret is a value that must come from the environment: in the file it is
// written as ${ENV_VAR}. A literal value is rejected so that tokens never end
// up in a config file or a repository. String() redacts it.
type Secret struct {
	Var   string // the environment variable's name
	value string
}

var secretRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// NewSecret builds a Secret from a value already in hand (tests, embedded
// demo config).
func NewSecret(v string) Secret { return Secret{Var: "(inline)", value: v} }

func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected ${ENV_VAR}")
	}
	if n.Value == "" {
		*s = Secret{}
		return nil
	}
	m := secretRef.FindStringSubmatch(strings.TrimSpace(n.Value))
	if m == nil {
		return fmt.Errorf("secrets must come from the environment: write ${ENV_VAR}, not the value itself")
	}
	*s = Secret{Var: m[1], value: os.Getenv(m[1])}
	return nil
}

// Value returns the secret itself. Never log it.
func (s Secret) Value() string { return s.value }

// IsSet reports whether the config names a secret (set or not).
func (s Secret) IsSet() bool { return s.Var != "" }

// Missing reports whether the config names a variable that is empty.
func (s Secret) Missing() bool { return s.Var != "" && s.value == "" }

func (s Secret) String() string {
	if s.Var == "" {
		return ""
	}
	return "${" + s.Var + "}"
}

func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// ReferencedEnv lists the environment variables a config's values name
// with ${VAR} (comments are not values), in order of first appearance. A
// text that is not YAML names none.
func ReferencedEnv(text []byte) []string {
	var doc yaml.Node
	if yaml.Unmarshal(text, &doc) != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			for _, m := range envRef.FindAllStringSubmatch(n.Value, -1) {
				if !seen[m[1]] {
					seen[m[1]] = true
					out = append(out, m[1])
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	return out
}

// CheckPlaceholder is what check-config puts in secrets whose variables are
// unset, so that everything else about the receivers and sources can still
// be checked. It is a URL because most secrets are webhook URLs.
const CheckPlaceholder = "https://placeholder.invalid/lookout-check-config"
