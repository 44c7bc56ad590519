// Package all lists every collector kind the daemon knows, each with its
// platform package's constructor. Adding a platform means adding it here.
package all

import (
	"lookout/collectors"
	"lookout/collectors/bilibili"
	"lookout/collectors/bluesky"
	"lookout/collectors/douyin"
	"lookout/collectors/feed"
	"lookout/collectors/html"
	"lookout/collectors/jsonapi"
	"lookout/collectors/mastodon"
	"lookout/collectors/twitch"
	"lookout/collectors/wsjson"
)

// Registry returns every collector kind, in a fresh map on each call.
func Registry() collectors.Registry {
	return collectors.Registry{
		"bilibili_comments": bilibili.NewComments,
		"bilibili_live":     bilibili.NewLive,
		"bluesky":           bluesky.New,
		"douyin_live":       douyin.New,
		"html":              html.New,
		"json_api":          jsonapi.NewJSONAPI,
		"mastodon":          mastodon.New,
		"rss":               feed.NewRSS,
		"twitch":            twitch.New,
		"websocket_json":    wsjson.New,
		"weibo":             jsonapi.NewWeibo,
	}
}
