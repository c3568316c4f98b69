package client

import (
	"context"
	"errors"
	"testing"
)

func TestLeaseCount(t *testing.T) {
	var c Client // the count is checked before anything else
	for _, n := range []int{0, -1, MaxLease + 1} {
		if _, err := c.Lease(context.Background(), n); !errors.Is(err, ErrBadLeaseCount) {
			t.Errorf("Lease(%d): %v, want ErrBadLeaseCount", n, err)
		}
	}
}

func TestLeaseID(t *testing.T) {
	l := Lease{First: 17, Step: 12, Count: 3}
	if got := []int64{l.ID(0), l.ID(1), l.ID(2)}; got[0] != 17 || got[1] != 29 || got[2] != 41 {
		t.Errorf("IDs %v", got)
	}
}
