package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/shardseq/shardseq/shard"
)

// ListNamespaces returns the names in the index of namespaces: the union of
// its copies. It fails only if no copy can be read. It reads every name:
// List and the repair sweeps page through the index instead (PageNames).
func ListNamespaces(ctx context.Context, r shard.Router) ([]string, error) {
	return readIndex(ctx, r, indexArgs{Op: indexList})
}

// PageNames returns at most limit names of the index after cursor ("": from
// the first), sorted: the first of the union of the copies, each read with
// one ZRANGE BYLEX of limit names, so a page costs the same whatever the
// number of namespaces. It fails only if no copy can be read.
func PageNames(ctx context.Context, r shard.Router, cursor string, limit int) ([]string, error) {
	names, err := readIndex(ctx, r, indexArgs{Op: indexPage, Name: cursor, Limit: limit})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	if len(names) > limit {
		names = names[:limit]
	}
	return names, nil
}

// readIndex runs lua/index.lua on every copy at once (one round trip, not
// three) and returns the union of their names, unsorted.
func readIndex(ctx context.Context, r shard.Router, a indexArgs) ([]string, error) {
	lists := make([][]string, metaCopies)
	errs := make([]error, metaCopies)
	var wg sync.WaitGroup
	for c := range metaCopies {
		wg.Go(func() {
			rep, err := shard.RunScriptKeys(ctx, r, indexScript, indexCopyKeys(c), -1, 0, a.argv())
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
