//go:build !race

package alerts

const alertsRaceEnabled = false
