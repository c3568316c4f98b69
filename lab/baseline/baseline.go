// Package baseline holds the in-process ID generators shardseq is compared
// with (bwmarrin/snowflake, sony/sonyflake, google/uuid v7, rs/xid), as
// generators for internal/lab/bench's driver, so that `shardseq-lab baseline`
// measures them exactly as `shardseq bench` measures segment mode. They live
// in the lab module: the product links none of them.
package baseline

import (
	"github.com/bwmarrin/snowflake"
	"github.com/google/uuid"
	"github.com/rs/xid"
	"github.com/sony/sonyflake/v2"

	"github.com/shardseq/shardseq/internal/lab/bench"
)

// Mode names, as in the reports and tables.
const (
	Snowflake = "snowflake"
	Sonyflake = "sonyflake"
	UUIDv7    = "uuidv7"
	XID       = "xid"
)

// Generators returns the baselines in table order. One generator is shared
// by all callers of a mode, as one process would share it.
func Generators() []bench.Generator {
	return []bench.Generator{
		{Name: Snowflake, Note: "bwmarrin/snowflake, one node (4,096 IDs/ms cap)", New: shared(func() (func() error, error) {
			node, err := snowflake.NewNode(1)
			if err != nil {
				return nil, err
			}
			return func() error { _ = node.Generate(); return nil }, nil
		})},
		{Name: Sonyflake, Note: "sony/sonyflake v2, one machine ID (256 IDs per 10ms cap)", New: shared(func() (func() error, error) {
			sf, err := sonyflake.New(sonyflake.Settings{MachineID: func() (int, error) { return 1, nil }})
			if err != nil {
				return nil, err
			}
			return func() error { _, err := sf.NextID(); return err }, nil
		})},
		{Name: UUIDv7, Note: "google/uuid NewV7 (128-bit)", New: func() (func() error, error) {
			return func() error { _, err := uuid.NewV7(); return err }, nil
		}},
		{Name: XID, Note: "rs/xid (96-bit)", New: func() (func() error, error) {
			return func() error { _ = xid.New(); return nil }, nil
		}},
	}
}

// shared makes every caller use the one generator made on first use.
func shared(mk func() (func() error, error)) func() (func() error, error) {
	var (
		next func() error
		err  error
		made bool
	)
	return func() (func() error, error) {
		if !made { // callers are made one after the other, before any runs
			next, err = mk()
			made = true
		}
		return next, err
	}
}
