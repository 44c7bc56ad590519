package collectors

// Flat lists the kinds whose collectors still live in this package;
// collectors/all adds the rest.
func Flat() Registry {
	return Registry{
		"bluesky":  newBskyCollector,
		"mastodon": newMastoCollector,
	}
}
