//go:build !race

package bitlocker

const RaceEnabled = false
