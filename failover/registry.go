// Package failover keeps a namespace serving while masters fail: one circuit
// breaker per shard, a registry of every shard's health that the server and
// the health page read, and the picker that routes reservations around
// shards whose breaker is open, within the same call.
package failover

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"
)

// ShardStatus is one row of the registry: what an operator needs to know about
// a shard. Rows are values; the registry never hands out a stored row to
// mutate.
type ShardStatus struct {
	Namespace    string    `json:"namespace"`
	Index        int       `json:"index"`
	Key          string    `json:"key"`
	Slot         int       `json:"slot"`
	Node         string    `json:"node"`
	NodeID       string    `json:"node_id"`
	State        string    `json:"state"` // closed, half-open or open
	Healthy      bool      `json:"healthy"`
	LastError    string    `json:"last_error"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	LatencyMs    float64   `json:"latency_ms"` // last reservation, with its acknowledgement
	Reservations uint64    `json:"reservations"`
	Failures     uint64    `json:"failures"`
	IDsIssued    uint64    `json:"ids_issued"`
	FenceEvents  uint64    `json:"fence_events"`
	BlockSize    int64     `json:"block_size"`
	UpdatedAt    time.Time `json:"updated_at"`
}

const table = "shards"

// schema has only indexes that are queried: id by Update and List, namespace
// by List and Remove, state by ByState.
var schema = &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
	table: {
		Name: table,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "Namespace"},
				&memdb.IntFieldIndex{Field: "Index"},
			}}},
			"namespace": {Name: "namespace", Indexer: &memdb.StringFieldIndex{Field: "Namespace"}},
			"state":     {Name: "state", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "State"}},
		},
	},
}}

// Registry is the shard registry, an in-memory database (hashicorp/go-memdb)
// that many readers can query and watch while writers update it.
type Registry struct{ db *memdb.MemDB }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	db, err := memdb.NewMemDB(schema)
	if err != nil {
		panic(fmt.Sprintf("failover: registry schema: %v", err)) // a static schema; a test covers it
	}
	return &Registry{db: db}
}

// Update changes the row of shard (ns, index) with fn, creating it if absent.
// fn gets a copy; the stored row is replaced, never mutated.
func (r *Registry) Update(ns string, index int, fn func(*ShardStatus)) {
	txn := r.db.Txn(true)
	defer txn.Abort()
	row := ShardStatus{Namespace: ns, Index: index}
	if raw, err := txn.First(table, "id", ns, index); err == nil && raw != nil {
		row = *raw.(*ShardStatus)
	}
	fn(&row)
	row.Namespace, row.Index = ns, index
	row.UpdatedAt = time.Now()
	if err := txn.Insert(table, &row); err != nil {
		return // only a schema violation fails here, and the schema is static
	}
	txn.Commit()
}

// Remove drops every row of namespace ns.
func (r *Registry) Remove(ns string) {
	txn := r.db.Txn(true)
	defer txn.Abort()
	if _, err := txn.DeleteAll(table, "namespace", ns); err == nil {
		txn.Commit()
	}
}

// List returns the rows of namespace ns ("" for every namespace) ordered by
// namespace and index, and a channel closed when any of them changes.
func (r *Registry) List(ns string) ([]ShardStatus, <-chan struct{}) {
	txn := r.db.Txn(false)
	defer txn.Abort()
	var it memdb.ResultIterator
	var err error
	if ns == "" {
		it, err = txn.Get(table, "id")
	} else {
		it, err = txn.Get(table, "namespace", ns)
	}
	if err != nil {
		return nil, nil
	}
	var out []ShardStatus
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, *raw.(*ShardStatus))
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Namespace != out[b].Namespace {
			return out[a].Namespace < out[b].Namespace
		}
		return out[a].Index < out[b].Index
	})
	return out, it.WatchCh()
}

// ByState returns the rows whose breaker is in state ("closed", "half-open",
// "open").
func (r *Registry) ByState(state string) []ShardStatus {
	txn := r.db.Txn(false)
	defer txn.Abort()
	it, err := txn.Get(table, "state", state)
	if err != nil {
		return nil
	}
	var out []ShardStatus
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, *raw.(*ShardStatus))
	}
	return out
}

// WaitChange blocks until a row of namespace ns ("" for all) changes or ctx
// ends. It returns the rows as they were before the change.
func (r *Registry) WaitChange(ctx context.Context, ns string) []ShardStatus {
	rows, ch := r.List(ns)
	if ch == nil {
		return rows
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
	return rows
}
