package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// SourceConfig is one `sources:` entry. The common keys are fields here; the
// rest belong to the collector kind, which decodes them with DecodeSpec so
// that a misspelt key is still an error naming its line.
type SourceConfig struct {
	ID       string            `yaml:"id"`
	Kind     string            `yaml:"kind"`
	Disabled bool              `yaml:"disabled"`
	Labels   map[string]string `yaml:"labels"`
	// Brand names the brand the source is about (own or competitor, see
	// BrandsConfig); items get it as their brand label.
	Brand     string   `yaml:"brand"`
	Every     Duration `yaml:"every"`      // poll interval (pollers)
	Jitter    float64  `yaml:"jitter"`     // fraction of Every, default 0.1
	UserAgent string   `yaml:"user_agent"` // overrides limits.user_agent
	Proxy     string   `yaml:"proxy"`      // http://, https:// or socks5:// URL
	Timeout   Duration `yaml:"timeout"`    // per request
	// Timezone is the IANA zone of times the source writes without an
	// offset (default DefaultTimezone).
	Timezone string `yaml:"timezone"`
	// IgnoreRobots skips robots.txt for an rss, html or json_api source
	// (logged as a warning when the source starts).
	IgnoreRobots bool `yaml:"ignore_robots"`

	// Line is where the entry starts in the file.
	Line int `yaml:"-"`
	node *yaml.Node
}

var commonSourceKeys = func() []string {
	var keys []string
	for k := range structFields(typeOfSource) {
		keys = append(keys, k)
	}
	return keys
}()

func (s *SourceConfig) checkYAML(n *yaml.Node, path string) error {
	if n.Kind != yaml.MappingNode {
		return ferr(n.Line, path, "expected a mapping of keys")
	}
	// Common keys are checked here; the kind's own keys when the collector
	// is built (DecodeSpec).
	fields := structFields(typeOfSource)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if ft, ok := fields[k.Value]; ok {
			if err := check(v, ft, join(path, k.Value)); err != nil {
				return err
			}
		}
	}
	return nil
}

type sourceAlias SourceConfig

func (s *SourceConfig) UnmarshalYAML(n *yaml.Node) error {
	common := *n
	common.Content = nil
	fields := structFields(typeOfSource)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if _, ok := fields[n.Content[i].Value]; ok {
			common.Content = append(common.Content, n.Content[i], n.Content[i+1])
		}
	}
	var a sourceAlias
	if err := common.Decode(&a); err != nil {
		return err
	}
	*s = SourceConfig(a)
	s.Line = n.Line
	s.node = n
	return nil
}

// DecodeSpec decodes the kind-specific keys of the source into v (a pointer
// to a struct with yaml tags), rejecting keys v does not know.
func (s *SourceConfig) DecodeSpec(v any) error {
	path := fmt.Sprintf("sources[%s]", s.ID)
	if s.node == nil {
		return nil
	}
	return DecodeStrict(s.node, v, path, commonSourceKeys...)
}

// NewSourceConfig builds a source entry from YAML text, for tests and the
// embedded demo.
func NewSourceConfig(yamlText string) (SourceConfig, error) {
	var s SourceConfig
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(yamlText), &n); err != nil {
		return s, err
	}
	if len(n.Content) != 1 {
		return s, fmt.Errorf("expected one mapping")
	}
	if err := s.checkYAML(n.Content[0], "source"); err != nil {
		return s, err
	}
	err := n.Content[0].Decode(&s)
	return s, err
}

var typeOfSource = reflectTypeOf[SourceConfig]()
