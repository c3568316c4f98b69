package human

import "testing"

func TestPercent(t *testing.T) {
	for in, want := range map[float64]string{
		0: "0%", 1: "100.0%", 0.5: "50.0%", 0.123456: "12.3%", 0.0123456: "1.23%", 0.000123456: "0.0123%",
		0.0012345: "0.123%", 1.11e-7: "0.0000111%", 1.5e-8: "0.00000150%",
		1.11e-9: "less than 0.000001%", 1e-15: "less than 0.000001%",
	} {
		if got := Percent(in); got != want {
			t.Errorf("Percent(%g) = %q, want %q", in, got, want)
		}
	}
}
