package config

import (
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// RouteConfig is the routing tree (Alertmanager's model): an alert walks
// it depth first and goes to the first child that matches (and on to later
// siblings when that child has continue: true); when no child matches, the
// node itself takes it. Children inherit receiver, group_by, group_wait
// and group_interval.
type RouteConfig struct {
	Receiver string `yaml:"receiver"`
	// Match: label → value, all must hold; a value written "~regex" is an
	// anchored regular expression. Labels: severity, rule, rule_kind,
	// state, room, source, platform, category and the source's own.
	Match map[string]string `yaml:"match"`
	// Matchers: label matchers in Alertmanager's syntax
	// ('severity=~"red|yellow"'); they must hold as well as Match.
	Matchers Matchers `yaml:"matchers"`
	// GroupBy: labels whose values form a group (one message per group);
	// default [room]; [...] sends every alert on its own.
	GroupBy []string `yaml:"group_by"`
	// GroupWait: how long the first alert of a new group waits for others
	// (default 5s; 0s sends at once). GroupInterval: the least time between
	// two messages to one group (default 1m).
	GroupWait     Duration `yaml:"group_wait"`
	GroupInterval Duration `yaml:"group_interval"`
	// RepeatInterval is reserved: re-notification of a still-firing alert
	// is the rule's repeat_interval (the engine re-emits the event).
	RepeatInterval Duration      `yaml:"repeat_interval"`
	Continue       bool          `yaml:"continue"`
	Routes         []RouteConfig `yaml:"routes"`

	// Inhibit lists inhibition rules; only the root route's count. When
	// empty, the default applies: a firing red alert mutes yellow and green
	// alerts of the same room.
	Inhibit []InhibitRule `yaml:"inhibit"`

	// GroupWaitSet and GroupIntervalSet record that the file wrote the key,
	// so that an explicit 0s (send at once) differs from "inherit".
	GroupWaitSet     bool `yaml:"-"`
	GroupIntervalSet bool `yaml:"-"`

	Line int `yaml:"-"`
}

func (*RouteConfig) capturesLine() {}

type routeAlias RouteConfig

func (r *RouteConfig) UnmarshalYAML(n *yaml.Node) error {
	var a routeAlias
	if err := n.Decode(&a); err != nil {
		return err
	}
	*r = RouteConfig(a)
	r.Line = n.Line
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch n.Content[i].Value {
			case "group_wait":
				r.GroupWaitSet = true
			case "group_interval":
				r.GroupIntervalSet = true
			}
		}
	}
	return nil
}

// InhibitRule mutes target alerts while a source alert fires. Equal lists
// the labels both must share (default: room). The source alert must match
// SourceMatch and SourceMatchers, the target TargetMatch and
// TargetMatchers (the maps as in RouteConfig.Match).
type InhibitRule struct {
	SourceMatch    map[string]string `yaml:"source_match"`
	SourceMatchers Matchers          `yaml:"source_matchers"`
	TargetMatch    map[string]string `yaml:"target_match"`
	TargetMatchers Matchers          `yaml:"target_matchers"`
	Equal          []string          `yaml:"equal"`

	Line int `yaml:"-"`
}

func (*InhibitRule) capturesLine() {}

type inhibitAlias InhibitRule

func (r *InhibitRule) UnmarshalYAML(n *yaml.Node) error {
	var a inhibitAlias
	if err := n.Decode(&a); err != nil {
		return err
	}
	*r = InhibitRule(a)
	r.Line = n.Line
	return nil
}

// ReceiverConfig names one destination; exactly one of the sink blocks is set.
type ReceiverConfig struct {
	Name     string          `yaml:"name"`
	Slack    *SlackConfig    `yaml:"slack"`
	DingTalk *DingTalkConfig `yaml:"dingtalk"`
	Feishu   *FeishuConfig   `yaml:"feishu"`
	WeCom    *WeComConfig    `yaml:"wecom"`
	Webhook  *WebhookConfig  `yaml:"webhook"`
	Console  *ConsoleConfig  `yaml:"console"`
	// Alertmanager hands alerts to a Prometheus Alertmanager the team
	// already runs, through its /api/v2/alerts.
	Alertmanager *AlertmanagerConfig `yaml:"alertmanager"`

	// RateLimit overrides the sink's default pace (Slack 1/s, DingTalk and
	// WeCom 20/m, Feishu 5/s, webhook 10/s).
	RateLimit Rate `yaml:"rate_limit"`

	Line int `yaml:"-"`
}

// SlackConfig: an incoming webhook, or a bot token with chat.postMessage.
type SlackConfig struct {
	WebhookURL Secret `yaml:"webhook_url"`
	Token      Secret `yaml:"token"`
	Channel    string `yaml:"channel"`
	APIURL     string `yaml:"api_url"` // override https://slack.com/api/ (tests, proxies)
	Template   string `yaml:"template"`
}

// DingTalkConfig: a custom robot, signed when Secret is set.
type DingTalkConfig struct {
	WebhookURL Secret   `yaml:"webhook_url"`
	Secret     Secret   `yaml:"secret"`
	AtMobiles  []string `yaml:"at_mobiles"` // @-mentioned on red alerts
	MsgType    string   `yaml:"msg_type"`   // markdown (default) or actionCard
	ActionURL  string   `yaml:"action_url"` // actionCard button link (a template, e.g. https://live.bilibili.com/{{.Room}})
	Template   string   `yaml:"template"`
}

// FeishuConfig: a Feishu/Lark custom bot, signed when Secret is set.
type FeishuConfig struct {
	WebhookURL Secret `yaml:"webhook_url"`
	Secret     Secret `yaml:"secret"`
	Template   string `yaml:"template"`
}

// WeComConfig: a WeCom group robot (the key in the URL is the secret).
type WeComConfig struct {
	WebhookURL     Secret   `yaml:"webhook_url"`
	MentionMobiles []string `yaml:"mention_mobiles"`
	Template       string   `yaml:"template"`
}

// WebhookConfig: a generic JSON POST.
type WebhookConfig struct {
	URL      Secret            `yaml:"url"`
	Headers  map[string]string `yaml:"headers"`
	Template string            `yaml:"template"`
	// Format of the body without a template: lookout (the default) or
	// alertmanager (Alertmanager's webhook payload, version 4, so that
	// receivers written for Alertmanager take lookout's alerts as they are).
	Format string `yaml:"format"`
}

// AlertmanagerConfig posts alerts to an Alertmanager.
type AlertmanagerConfig struct {
	URL     Secret            `yaml:"url"`     // the Alertmanager's base URL, e.g. http://alertmanager:9093
	Headers map[string]string `yaml:"headers"` // e.g. Authorization
	// Resend is how often firing alerts are posted again, as Alertmanager
	// expects of its clients (default 1m); each post says the alert ends
	// four resends later unless posted again.
	Resend Duration `yaml:"resend"`
}

// ConsoleConfig prints alerts to standard output.
type ConsoleConfig struct {
	Color *bool `yaml:"color"` // default: when stdout is a terminal
}

func (*ReceiverConfig) capturesLine() {}

type receiverAlias ReceiverConfig

func (r *ReceiverConfig) UnmarshalYAML(n *yaml.Node) error {
	var a receiverAlias
	if err := n.Decode(&a); err != nil {
		return err
	}
	*r = ReceiverConfig(a)
	r.Line = n.Line
	return nil
}

// Type returns which sink block is set ("" when none).
func (r *ReceiverConfig) Type() string {
	switch {
	case r.Slack != nil:
		return "slack"
	case r.DingTalk != nil:
		return "dingtalk"
	case r.Feishu != nil:
		return "feishu"
	case r.WeCom != nil:
		return "wecom"
	case r.Webhook != nil:
		return "webhook"
	case r.Console != nil:
		return "console"
	case r.Alertmanager != nil:
		return "alertmanager"
	}
	return ""
}

func (r *ReceiverConfig) count() int {
	n := 0
	for _, set := range []bool{r.Slack != nil, r.DingTalk != nil, r.Feishu != nil, r.WeCom != nil, r.Webhook != nil, r.Console != nil, r.Alertmanager != nil} {
		if set {
			n++
		}
	}
	return n
}

// FileName is the file the config came from, "config" for one built in
// code, as error messages name it.
func (c *Config) FileName() string {
	if c.File == "" {
		return "config"
	}
	return c.File
}

// MissingSecrets lists, all at once, the environment variables the config
// names with ${VAR} that are empty, each with its line: receivers' secrets,
// the privacy salt, sources' cookies and tokens. `run` refuses to start
// with them, `check-config` warns.
func (c *Config) MissingSecrets() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range c.envRefs {
		if seen[r.name] || os.Getenv(r.name) != "" {
			continue
		}
		seen[r.name] = true
		out = append(out, fmt.Sprintf("%s:%d: environment variable %s is not set", c.FileName(), r.line, r.name))
	}
	if len(c.envRefs) > 0 || c.root != nil {
		return out
	}
	// A config built in code (no document): what its secrets say.
	add := func(where string, ss ...Secret) {
		for _, s := range ss {
			if s.Missing() {
				out = append(out, fmt.Sprintf("%s: environment variable %s is not set", where, s.Var))
			}
		}
	}
	for _, r := range c.Receivers {
		w := "receiver " + r.Name
		switch {
		case r.Slack != nil:
			add(w, r.Slack.WebhookURL, r.Slack.Token)
		case r.DingTalk != nil:
			add(w, r.DingTalk.WebhookURL, r.DingTalk.Secret)
		case r.Feishu != nil:
			add(w, r.Feishu.WebhookURL, r.Feishu.Secret)
		case r.WeCom != nil:
			add(w, r.WeCom.WebhookURL)
		case r.Webhook != nil:
			add(w, r.Webhook.URL)
		case r.Alertmanager != nil:
			add(w, r.Alertmanager.URL)
		}
	}
	if c.Privacy.On() {
		add("privacy", c.Privacy.Salt)
	}
	return out
}

// validateReceivers checks the receivers and the routing tree, and returns
// the set of receiver names that the route and reports name receivers from.
func (c *Config) validateReceivers() (names map[string]bool, errs []error) {
	names = map[string]bool{}
	for i := range c.Receivers {
		r := &c.Receivers[i]
		f := fmt.Sprintf("receivers[%d]", i)
		if r.Name == "" {
			errs = append(errs, ferr(r.Line, f+".name", "is required"))
		} else if names[r.Name] {
			errs = append(errs, ferr(r.Line, f+".name", "duplicate receiver %q", r.Name))
		}
		names[r.Name] = true
		switch r.count() {
		case 0:
			errs = append(errs, ferr(r.Line, f, "needs one of slack, dingtalk, feishu, wecom, webhook, alertmanager, console"))
		case 1:
		default:
			errs = append(errs, ferr(r.Line, f, "has more than one sink; use one receiver per sink"))
		}
		if r.Slack != nil && !r.Slack.WebhookURL.IsSet() && !r.Slack.Token.IsSet() {
			errs = append(errs, ferr(r.Line, f+".slack", "needs webhook_url or token"))
		}
		if r.Slack != nil && r.Slack.Token.IsSet() && r.Slack.Channel == "" {
			errs = append(errs, ferr(r.Line, f+".slack.channel", "is required with a bot token"))
		}
		if r.DingTalk != nil && !r.DingTalk.WebhookURL.IsSet() {
			errs = append(errs, ferr(r.Line, f+".dingtalk.webhook_url", "is required"))
		}
		if r.DingTalk != nil && r.DingTalk.MsgType != "" && r.DingTalk.MsgType != "markdown" && r.DingTalk.MsgType != "actionCard" {
			errs = append(errs, ferr(r.Line, f+".dingtalk.msg_type", "must be markdown or actionCard, not %q", r.DingTalk.MsgType))
		}
		if r.DingTalk != nil && r.DingTalk.MsgType == "actionCard" && r.DingTalk.ActionURL == "" {
			errs = append(errs, ferr(r.Line, f+".dingtalk.action_url", "is required with msg_type actionCard"))
		}
		if r.Feishu != nil && !r.Feishu.WebhookURL.IsSet() {
			errs = append(errs, ferr(r.Line, f+".feishu.webhook_url", "is required"))
		}
		if r.WeCom != nil && !r.WeCom.WebhookURL.IsSet() {
			errs = append(errs, ferr(r.Line, f+".wecom.webhook_url", "is required"))
		}
		if r.Webhook != nil && !r.Webhook.URL.IsSet() {
			errs = append(errs, ferr(r.Line, f+".webhook.url", "is required"))
		}
		if r.Webhook != nil && r.Webhook.Format != "" && r.Webhook.Format != "lookout" && r.Webhook.Format != "alertmanager" {
			errs = append(errs, ferr(r.Line, f+".webhook.format", "must be lookout or alertmanager, not %q", r.Webhook.Format))
		}
		if r.Webhook != nil && r.Webhook.Format == "alertmanager" && r.Webhook.Template != "" {
			errs = append(errs, ferr(r.Line, f+".webhook.template", "a template replaces the body; it cannot go with format alertmanager"))
		}
		if r.Alertmanager != nil && !r.Alertmanager.URL.IsSet() {
			errs = append(errs, ferr(r.Line, f+".alertmanager.url", "is required"))
		}
		if r.Alertmanager != nil && r.Alertmanager.Resend != 0 && r.Alertmanager.Resend.D() < time.Second {
			errs = append(errs, ferr(r.Line, f+".alertmanager.resend", "must be at least 1s"))
		}
	}
	var walk func(rt *RouteConfig, path string)
	walk = func(rt *RouteConfig, path string) {
		if rt.Receiver != "" && !names[rt.Receiver] {
			errs = append(errs, ferr(rt.Line, path+".receiver", "no receiver named %q", rt.Receiver))
		}
		errs = append(errs, validateMatchMap(rt.Match, rt.Line, path+".match")...)
		for i := range rt.Inhibit {
			ih := &rt.Inhibit[i]
			f := fmt.Sprintf("%s.inhibit[%d]", path, i)
			errs = append(errs, validateMatchMap(ih.SourceMatch, ih.Line, f+".source_match")...)
			errs = append(errs, validateMatchMap(ih.TargetMatch, ih.Line, f+".target_match")...)
		}
		if path != "route" && len(rt.Inhibit) > 0 {
			errs = append(errs, ferr(0, path+".inhibit", "inhibition rules belong on the root route"))
		}
		for i := range rt.Routes {
			walk(&rt.Routes[i], fmt.Sprintf("%s.routes[%d]", path, i))
		}
	}
	if len(c.Receivers) > 0 && c.Route.Receiver == "" {
		errs = append(errs, ferr(0, "route.receiver", "is required when receivers are configured"))
	}
	walk(&c.Route, "route")
	return names, errs
}
