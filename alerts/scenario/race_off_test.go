//go:build !race

package scenario

const scenarioRaceEnabled = false
