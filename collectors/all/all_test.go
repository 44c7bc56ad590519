package all

import (
	"slices"
	"testing"
)

// TestRegistryKinds pins the kinds config files may name.
func TestRegistryKinds(t *testing.T) {
	want := []string{"bilibili_comments", "bilibili_live", "bluesky", "douyin_live", "html", "json_api",
		"mastodon", "rss", "twitch", "websocket_json", "weibo"}
	if got := Registry().Kinds(); !slices.Equal(got, want) {
		t.Errorf("kinds = %v, want %v", got, want)
	}
}
