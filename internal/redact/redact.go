// Package redact is lookout's one redaction policy for what reaches logs,
// errors and alerts: secrets come from the environment and never leave
// the process, so any URL that may carry one is cut before it is shown.
package redact

import "net/url"

// URL is for the URLs of sources (feeds, pages, APIs): scheme, host and
// path stay, so a log names the page; the query, which often carries
// tokens (access_token, key, sign), and any userinfo go.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	u.User = nil
	return u.String()
}

// SecretURL is for URLs that are secrets themselves (alert sinks): only
// scheme and host stay. Sink URLs carry their secret in the query
// (DingTalk access_token, WeCom key) or in the path (Slack
// /services/T…/B…/secret, Feishu /hook/<uuid>).
func SecretURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(redacted URL)"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}
