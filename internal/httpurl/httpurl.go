// Package httpurl holds the one check every configured address goes
// through before lookout uses it: collectors' endpoints, sinks' webhooks
// and the dashboard's public URL must be absolute http or https URLs.
package httpurl

import "net/url"

// OK reports whether u is an absolute http or https URL with a host.
func OK(u *url.URL) bool {
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
