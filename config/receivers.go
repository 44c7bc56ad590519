package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// RouteConfig is the routing tree: an alert walks it depth first and is sent
// to the receiver of every matching node (Alertmanager's model).
type RouteConfig struct {
	Receiver       string            `yaml:"receiver"`
	Match          map[string]string `yaml:"match"` // label → value; severity, rule, room, source, platform, category
	GroupBy        []string          `yaml:"group_by"`
	GroupWait      Duration          `yaml:"group_wait"`
	GroupInterval  Duration          `yaml:"group_interval"`
	RepeatInterval Duration          `yaml:"repeat_interval"`
	Continue       bool              `yaml:"continue"`
	Routes         []RouteConfig     `yaml:"routes"`
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
	}
	return ""
}

func (r *ReceiverConfig) count() int {
	n := 0
	for _, set := range []bool{r.Slack != nil, r.DingTalk != nil, r.Feishu != nil, r.WeCom != nil, r.Webhook != nil, r.Console != nil} {
		if set {
			n++
		}
	}
	return n
}

// MissingSecrets lists the environment variables a receiver names that are
// empty; `run` refuses to start with them, `check-config` warns.
func (c *Config) MissingSecrets() []string {
	var out []string
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
		}
	}
	if c.Privacy.HashUserIDs {
		add("privacy", c.Privacy.Salt)
	}
	return out
}

func (c *Config) validateReceivers() []error {
	var errs []error
	names := map[string]bool{}
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
			errs = append(errs, ferr(r.Line, f, "needs one of slack, dingtalk, feishu, wecom, webhook, console"))
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
	}
	var walk func(rt *RouteConfig, path string)
	walk = func(rt *RouteConfig, path string) {
		if rt.Receiver != "" && !names[rt.Receiver] {
			errs = append(errs, ferr(0, path+".receiver", "no receiver named %q", rt.Receiver))
		}
		for i := range rt.Routes {
			walk(&rt.Routes[i], fmt.Sprintf("%s.routes[%d]", path, i))
		}
	}
	if len(c.Receivers) > 0 && c.Route.Receiver == "" {
		errs = append(errs, ferr(0, "route.receiver", "is required when receivers are configured"))
	}
	walk(&c.Route, "route")
	return errs
}
