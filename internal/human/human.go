// Package human formats numbers for people, the same way in the CLI and on
// the health page.
package human

import (
	"math"
	"strconv"
)

// Percent prints a share from 0 to 1 as a percentage with three significant
// digits (0.0123%), never in exponent form.
func Percent(f float64) string {
	p := 100 * f
	switch {
	case p <= 0:
		return "0%"
	case p < 1e-6:
		return "less than 0.000001%"
	case p >= 10:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 2-int(math.Floor(math.Log10(p))), 64) + "%"
}
