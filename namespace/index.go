package namespace

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/shardseq/shardseq/shard"
)

// ListNamespaces returns the names in the index of namespaces: the union of
// its copies. It fails only if no copy can be read.
func ListNamespaces(ctx context.Context, r shard.Router) ([]string, error) {
	keys := IndexKeys()
	lists := make([][]string, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for c, k := range keys { // the copies at once: a list costs one round trip, not three
		wg.Go(func() {
			rep, err := shard.RunScript(ctx, r, indexScript, k, -1, 0, indexArgs{}.argv())
			if err == nil {
				lists[c], _, err = parseIndexReply(rep.Values)
			}
			errs[c] = err
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	read := 0
	for c, names := range lists {
		if errs[c] != nil {
			continue
		}
		read++
		for _, n := range names {
			seen[n] = true
		}
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
// in the index, or a trace of a counter or a ceiling copy of it (see
// traces.go). It returns "" when there is none. It costs the same whatever
// the number of namespaces.
func (ns *Namespace) traces(ctx context.Context) (string, error) {
	indexed, err := inIndex(ctx, ns.r, ns.Name)
	if err != nil {
		return "", err
	}
	if indexed {
		return "it is in the index of namespaces", nil
	}
	if noTraceCheck.Load() {
		return "", nil
	}
	return ns.findTrace(ctx)
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
