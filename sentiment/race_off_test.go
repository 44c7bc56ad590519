//go:build !race

package sentiment

const sentRaceEnabled = false
