// Package all lists every collector kind the daemon knows, each with its
// platform package's constructor.
package all

import (
	"lookout/collectors"
	"lookout/collectors/bilibili"
	"lookout/collectors/douyin"
	"lookout/collectors/feed"
	"lookout/collectors/html"
	"lookout/collectors/jsonapi"
	"lookout/collectors/twitch"
	"lookout/collectors/wsjson"
)

// Registry returns the collector kinds, a fresh map on each call.
func Registry() collectors.Registry {
	r := collectors.Flat()
	r["bilibili_live"] = bilibili.NewLive
	r["bilibili_comments"] = bilibili.NewComments
	r["html"] = html.New
	r["rss"] = feed.NewRSS
	r["json_api"] = jsonapi.NewJSONAPI
	r["weibo"] = jsonapi.NewWeibo
	r["websocket_json"] = wsjson.New
	r["twitch"] = twitch.New
	r["douyin_live"] = douyin.New
	return r
}
