//go:build race

package server

// raceEnabled: the race detector slows this process down several times.
const raceEnabled = true
