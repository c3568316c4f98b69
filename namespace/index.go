package namespace

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/shard"
)

// ListNamespaces returns the names in the index of namespaces: the union of
// its copies. It fails only if no copy can be read.
func ListNamespaces(ctx context.Context, r shard.Router) ([]string, error) {
	seen := map[string]bool{}
	var errs []error
	read := 0
	for _, k := range IndexKeys() {
		rep, err := shard.RunScript(ctx, r, indexScript, k, -1, 0, indexArgs{}.argv())
		if err == nil {
			var names []string
			if names, _, err = parseIndexReply(rep.Values); err == nil {
				read++
				for _, n := range names {
					seen[n] = true
				}
			}
		}
		errs = append(errs, err)
	}
	if read == 0 {
		return nil, fmt.Errorf("shard: reading the index of namespaces: %w", errors.Join(errs...))
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	return out, nil
}

// traces describes what is left of a namespace that has no record: its name
// in the index, or keys under its hash-tag prefix on any master (a full SCAN
// of each master, done only when a namespace is about to be created). It
// returns "" when there is none.
func (ns *Namespace) traces(ctx context.Context) (string, error) {
	names, err := ListNamespaces(ctx, ns.r)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if n == ns.Name {
			return "it is in the index of namespaces", nil
		}
	}
	top := ns.r.Topology()
	if top == nil {
		return "", errors.New("no topology")
	}
	pattern := "shardseq:{" + ns.Name + ":*" // a namespace cannot hold ':' or glob characters
	for _, m := range top.Masters {
		if len(m.Slots) == 0 {
			continue
		}
		key, err := scanFirst(ctx, ns.r.Node(m.Addr), pattern)
		if err != nil {
			return "", fmt.Errorf("scanning %s: %w", m.Addr, err)
		}
		if key != "" {
			return fmt.Sprintf("key %s of it exists on %s", key, m.Addr), nil
		}
	}
	return "", nil
}

func scanFirst(ctx context.Context, node *redis.Client, pattern string) (string, error) {
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return "", err
		}
		if len(keys) > 0 {
			return keys[0], nil
		}
		if next == 0 {
			return "", nil
		}
		cursor = next
	}
}

// anyRecord reports whether a copy of the namespace's record exists now.
func (ns *Namespace) anyRecord(ctx context.Context, keys []string) bool {
	for _, k := range keys {
		if rec, err := readRecord(ctx, ns.r, k); err == nil && rec != nil {
			return true
		}
	}
	return false
}

// readRecord reads one copy of a namespace record, writing nothing.
func readRecord(ctx context.Context, r shard.Router, key string) (*record, error) {
	rep, err := shard.RunScript(ctx, r, metaScript, key, -1, 0, metaArgs{Op: metaRead}.argv())
	if err != nil {
		return nil, shard.ClassifyNode(err)
	}
	rec, _, err := parseMetaReply(rep.Values)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return rec, nil
}
