package client

import (
	"context"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// Namespaces as objects, for those who administer them (the server's
// /v1/namespaces routes, `shardseq namespace`): create (PutNamespace),
// inspect (DescribeNamespace, ReadNamespace, ListNamespaces) and retire
// (DeleteNamespace) them over a cluster connection, without a Client. They
// are package namespace's calls, here so that callers need only this
// package.

// Spec is what a caller asks of a namespace it creates or ensures: a nil
// field takes the stored value of an existing namespace, or the default of a
// new one.
type Spec = namespace.Spec

// Description is a namespace's record and usage (DescribeNamespace).
type Description = namespace.Description

// Info is what a namespace's record says.
type Info = namespace.Info

// Usage is how much of a namespace's ID space is used.
type Usage = namespace.Usage

// Page is one page of ListNamespaces.
type Page = namespace.Page

// State says what a namespace in the index is now.
type State = namespace.State

// The values of State.
const (
	StateActive  = namespace.StateActive
	StateDeleted = namespace.StateDeleted
	StateLost    = namespace.StateLost
	StateUnknown = namespace.StateUnknown
)

// MaxListLimit bounds the page size of ListNamespaces.
const MaxListLimit = namespace.MaxListLimit

// DefaultMaxID is the default and largest MaxID: 2^53-1, so that IDs stay
// exact in JavaScript.
const DefaultMaxID = shard.DefaultMaxID

// MaxStart is the largest Start of a namespace whose IDs go up to maxID (0:
// DefaultMaxID): half the ID space.
func MaxStart(maxID int64) int64 { return namespace.MaxStart(maxID) }

// PutNamespace creates namespace name as spec says, recreates it if it was
// deleted, or checks an existing one against spec (ErrShardCountMismatch,
// ErrSettingsMismatch). defaultShards is N of a new namespace when spec has
// none (0: DefaultShards); cfg gives the acknowledgement and MaxID (its
// connection fields are not used).
func PutNamespace(ctx context.Context, cl *cluster.Cluster, name string, spec Spec, defaultShards int, cfg Config) (Put, error) {
	ns, err := namespace.Put(ctx, cl, name, spec, defaultShards, cfg.shardOptions())
	if err != nil {
		return Put{}, err
	}
	return Put{Info: ns.Info(), Created: ns.Created, Recreated: ns.Recreated}, nil
}

// Put is what PutNamespace did: the namespace's record as it is now, and
// whether this call created it, or recreated it after a delete (then Created
// is set too).
type Put struct {
	Info
	Created, Recreated bool
}

// DescribeNamespace reads namespace name, deleted or not, and checks its
// usage; it creates nothing. It fails with ErrNamespaceNotFound for a name
// never created and ErrNamespaceLost for one whose record is lost.
func DescribeNamespace(ctx context.Context, cl *cluster.Cluster, name string, cfg Config) (Description, error) {
	return namespace.Describe(ctx, cl, name, cfg.shardOptions())
}

// DeleteNamespace retires namespace name behind a tombstone (recreating it
// continues above every ID it handed out). It reports whether it deleted it
// (false: it was deleted already).
func DeleteNamespace(ctx context.Context, cl *cluster.Cluster, name string, cfg Config) (bool, error) {
	return namespace.Delete(ctx, cl, name, cfg.shardOptions())
}

// ListNamespaces returns a page of the namespaces of the index, deleted ones
// included, sorted by name: at most limit (1 to MaxListLimit) after cursor
// ("" for the first page).
func ListNamespaces(ctx context.Context, cl *cluster.Cluster, cursor string, limit int) (Page, error) {
	return namespace.List(ctx, cl, cursor, limit)
}

// ReadNamespace reads the copies of namespace name's record, writing
// nothing; a name never created reads as StateLost.
func ReadNamespace(ctx context.Context, cl *cluster.Cluster, name string) Info {
	return namespace.Read(ctx, cl, name)
}
