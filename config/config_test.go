package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The shipped example must always load.
func TestExampleConfigLoads(t *testing.T) {
	c, err := Load("../config.yaml")
	if err != nil {
		t.Fatalf("config.yaml does not load: %v", err)
	}
	if len(c.Sources) == 0 || len(c.Rules) == 0 || len(c.Receivers) == 0 {
		t.Fatalf("example config lost its sources/rules/receivers: %+v", c)
	}
	if c.Store.FlushInterval.D() != 500*time.Millisecond {
		t.Errorf("flush_interval = %v", c.Store.FlushInterval)
	}
}

// testdata/*.good.yaml must load; each *.bad.yaml must fail with the error
// written in its first line ("# want: …").
func TestGoodAndBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data, filepath.Base(f))
			if strings.HasSuffix(f, ".good.yaml") {
				if err != nil {
					t.Fatalf("want ok, got %v", err)
				}
				return
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want := strings.TrimSpace(strings.TrimPrefix(first, "# want:"))
			if err == nil {
				t.Fatalf("want error containing %q, got none", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not contain %q", err, want)
			}
		})
	}
}

func TestSecretsComeFromEnv(t *testing.T) {
	t.Setenv("TEST_HOOK", "https://hooks.slack.com/services/T0/B0/secret")
	c, err := Parse([]byte("route: {receiver: s}\nreceivers:\n  - name: s\n    slack: {webhook_url: \"${TEST_HOOK}\"}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Receivers[0].Slack.WebhookURL
	if s.Value() != "https://hooks.slack.com/services/T0/B0/secret" {
		t.Fatalf("secret not resolved: %q", s.Value())
	}
	if strings.Contains(s.String(), "hooks.slack.com") {
		t.Fatalf("String() leaks the secret: %s", s)
	}
	if got := c.MissingSecrets(); len(got) != 0 {
		t.Fatalf("unexpected missing secrets: %v", got)
	}
	t.Setenv("TEST_HOOK", "")
	c, _ = Parse([]byte("route: {receiver: s}\nreceivers:\n  - name: s\n    slack: {webhook_url: \"${TEST_HOOK}\"}\n"), "x.yaml")
	if got := c.MissingSecrets(); len(got) != 1 || !strings.Contains(got[0], "TEST_HOOK") {
		t.Fatalf("missing secret not reported: %v", got)
	}
}

func TestDurationAndRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"30s", 30 * time.Second, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"0", 0, false},
		{"5x", 0, true},
		{"d", 0, true},
	} {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseDuration(%q) = %v, %v", tc.in, got, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want Rate
		bad  bool
	}{
		{"2/s", 2, false}, {"30/m", 0.5, false}, {"36/h", 0.01, false}, {"5", 5, false}, {"2/w", 0, true}, {"-1/s", 0, true}, {"x", 0, true},
	} {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseRate(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestSourceSpecIsStrict(t *testing.T) {
	c, err := Parse([]byte("sources:\n  - id: news\n    kind: rss\n    every: 5m\n    urll: http://x\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		URL string `yaml:"url"`
	}
	err = c.Sources[0].DecodeSpec(&spec)
	if err == nil || !strings.Contains(err.Error(), "5") || !strings.Contains(err.Error(), "urll") {
		t.Fatalf("want an error naming line 5 and urll, got %v", err)
	}
	if c.Sources[0].Every.D() != 5*time.Minute {
		t.Fatalf("common key every not decoded: %v", c.Sources[0].Every)
	}
}

// What a config can get wrong beyond unknown keys and types, each named by
// file, line and field.
func TestConfigStrictness(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"batch size", "store:\n  batch_size: -1\n", "c.yaml:2: store.batch_size: must be at least 1, not -1"},
		{"listen", "http:\n  listen: nine-four-six-four\n", `c.yaml:2: http.listen: "nine-four-six-four" is not host:port`},
		{"listen port", "http:\n  listen: 127.0.0.1:99999\n", `c.yaml:2: http.listen: "127.0.0.1:99999": port "99999"`},
		{"nul in path", "store:\n  path: \"a\\0b.db\"\n", "c.yaml:2: store.path: contains a NUL byte"},
		{"privacy without salt", "privacy:\n  enabled: true\n", "c.yaml:2: privacy.salt: is required in privacy mode"},
		{"privacy (older name) without salt", "privacy:\n  hash_user_ids: true\n", "c.yaml:2: privacy.salt: is required"},
		{"privacy keeps no raw payloads", "store:\n  keep_raw: true\nprivacy:\n  enabled: true\n  salt: ${HOME}\n",
			"c.yaml:2: store.keep_raw: cannot be true in privacy mode"},
		{"every 0s", "sources:\n  - id: f\n    kind: rss\n    url: http://x/feed\n    every: 0s\n", "c.yaml:5: sources[0].every: must be more than 0"},
		{"second document", "store:\n  path: a.db\n---\nstore:\n  path: b.db\n", "c.yaml:3: a second YAML document"},
		{"unknown route receiver", "route:\n  receiver: nobody\nreceivers:\n  - name: c\n    console: {}\n", "c.yaml:2: route.receiver: no receiver named \"nobody\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text), "c.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	for _, ok := range []string{"http:\n  listen: off\n", "http:\n  listen: \":9464\"\n", "http:\n  listen: \"[::1]:9464\"\n", "store:\n  path: a.db\n---\n"} {
		if _, err := Parse([]byte(ok), "c.yaml"); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestListenWarning(t *testing.T) {
	for listen, warn := range map[string]bool{"127.0.0.1:9464": false, "localhost:9464": false, "[::1]:9464": false, "off": false,
		":9464": true, "0.0.0.0:9464": true, "10.0.0.5:9464": true} {
		if got := (HTTPConfig{Listen: listen}).ListenWarning() != ""; got != warn {
			t.Errorf("%s: warning %v, want %v", listen, got, warn)
		}
	}
}

// Every unset ${VAR} is reported at once, with its line, wherever it is.
func TestMissingSecretsAllAtOnce(t *testing.T) {
	t.Setenv("LOOKOUT_TEST_SET", "x")
	text := "sources:\n  - id: b\n    kind: bilibili_live\n    room: 1\n    cookie: ${LOOKOUT_TEST_UNSET_COOKIE}\n" +
		"receivers:\n  - name: s\n    slack:\n      webhook_url: ${LOOKOUT_TEST_UNSET_HOOK}\n  - name: w\n    webhook:\n      url: ${LOOKOUT_TEST_SET}\n" +
		"route:\n  receiver: s\n"
	c, err := Parse([]byte(text), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.MissingSecrets(), "\n")
	for _, want := range []string{"c.yaml:5: environment variable LOOKOUT_TEST_UNSET_COOKIE is not set", "c.yaml:9: environment variable LOOKOUT_TEST_UNSET_HOOK is not set"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "LOOKOUT_TEST_SET") {
		t.Errorf("a set variable reported:\n%s", got)
	}
}

func TestSourceTimezoneErrorNamesLine(t *testing.T) {
	text := "sources:\n  - id: a\n    kind: rss\n    url: http://x/\n    timezone: Mars/Olympus\n"
	_, err := Parse([]byte(text), "tz.yaml")
	if err == nil || !strings.Contains(err.Error(), "5: sources[0].timezone") || !strings.Contains(err.Error(), "Mars/Olympus") {
		t.Fatalf("err %v, want line 5 naming sources[0].timezone", err)
	}
	ok := "sources:\n  - id: a\n    kind: rss\n    url: http://x/\n    timezone: UTC\n    ignore_robots: true\n"
	cfg, err := Parse([]byte(ok), "tz.yaml")
	if err != nil || cfg.Sources[0].Timezone != "UTC" || !cfg.Sources[0].IgnoreRobots {
		t.Fatalf("valid options: %v %+v", err, cfg)
	}
}
