// Package all lists every collector kind the daemon knows, each with its
// platform package's constructor.
package all

import (
	"lookout/collectors"
	"lookout/collectors/html"
)

// Registry returns the collector kinds, a fresh map on each call.
func Registry() collectors.Registry {
	r := collectors.Flat()
	r["html"] = html.New
	return r
}
