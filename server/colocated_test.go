package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// Issue 19, item 2: keys never move but slots do. An operator's reshard of
// the one slot that holds a ceiling copy onto its counter's master puts two
// of the shard's keys on one master. The server reports it in the log, in
// shardseq_shard_keys_colocated, on the health page and in the colocated
// array of GET /v1/shards, naming the slot to move; before the reshard (the
// negative control) and after the slot is moved back, nothing is reported.
// IDs are handed out throughout.
func TestColocatedAfterReshard(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portColocated})
	cl := lc.Dial(cluster.Config{})
	var logged bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logged, mu: &mu}, nil))
	logText := func() string { mu.Lock(); defer mu.Unlock(); return logged.String() }
	s := newServer(t, Config{Cluster: cl, Shards: 3, Logger: logger})
	h := s.Handler()
	do(t, h, "POST", "/v1/ids/orders?count=10")
	do(t, h, "POST", "/v1/ids/other?count=10") // for ?namespace= to leave orders out

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := namespace.Open(ctx, cl, "orders", namespace.Settings{NoCreate: true}, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := ns.Layout
	slot := cluster.Slot(l.CeilingKey(0, 0))
	home, counterMaster := lc.MasterOf(l.CeilingKey(0, 0)), lc.MasterOf(l.CounterKey(0))
	spec := loadSpec(t)

	series := func(shard int, v int) string {
		return fmt.Sprintf(`shardseq_shard_keys_colocated{namespace="orders",shard="%d"} %d`, shard, v)
	}
	// report checks what the metric, the page and the log say; want: the
	// slot is reported on shard 0.
	report := func(when string, want bool) {
		t.Helper()
		metrics := send(h, "GET", "/metrics").Body.String()
		for i := range 3 {
			v := 0
			if want && i == 0 {
				v = 1
			}
			if !strings.Contains(metrics, series(i, v)) {
				t.Errorf("%s: /metrics lacks %s", when, series(i, v))
			}
		}
		page := send(h, "GET", "/").Body.String()
		row := `data-colocated="orders/0"`
		move := fmt.Sprintf("move slot %d ", slot)
		if got := strings.Contains(page, row) && strings.Contains(page, move) && strings.Contains(page, `data-summary="colocated"`); got != want {
			t.Errorf("%s: page shows the colocated shard and slot %d: %v, want %v", when, slot, got, want)
		}
		if want && strings.Contains(page, `data-status="ok"`) {
			t.Errorf("%s: page status ok with keys on one master", when)
		}
		if strings.Contains(page, `data-colocated="orders/1"`) || strings.Contains(page, `data-colocated="orders/2"`) {
			t.Errorf("%s: page reports shards 1 or 2", when)
		}

		// GET /v1/shards: [] (never null) or shard 0 with its two keys on
		// the counter's master, the ceiling copy's slot to move, and the
		// page's action text; valid against api/openapi.yaml either way.
		for _, target := range []string{"/v1/shards", "/v1/shards?namespace=orders"} {
			raw := do(t, h, "GET", target).raw
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(raw))
			if err != nil {
				t.Fatalf("%s: GET %s: %v", when, target, err)
			}
			if err := spec.validate(t, "/components/schemas/Shards", v); err != nil {
				t.Errorf("%s: GET %s does not match the Shards schema: %v\n%s", when, target, err, raw)
			}
			var body struct {
				Colocated []colocJSON `json:"colocated"`
			}
			if err := json.Unmarshal([]byte(raw), &body); err != nil {
				t.Fatal(err)
			}
			if !want {
				if !strings.Contains(raw, `"colocated":[]`) {
					t.Errorf("%s: GET %s: colocated not []: %s", when, target, raw)
				}
				continue
			}
			if len(body.Colocated) != 1 {
				t.Errorf("%s: GET %s: colocated %+v, want shard 0 of orders alone", when, target, body.Colocated)
				continue
			}
			co := body.Colocated[0]
			keys := []string{l.CounterKey(0), l.CeilingKey(0, 0)}
			slots := []int{cluster.Slot(l.CounterKey(0)), slot}
			if co.Namespace != "orders" || co.Shard != 0 || co.Master != counterMaster || !slices.Equal(co.Keys, keys) ||
				!slices.Equal(co.Slots, slots) || !slices.Equal(co.Move, []int{slot}) {
				t.Errorf("%s: GET %s: colocated %+v, want orders/0 on %s, keys %v, slots %v, move [%d]",
					when, target, co, counterMaster, keys, slots, slot)
			}
			if !strings.Contains(co.Action, move) || !strings.Contains(page, string(formatAction(co.Action))) {
				t.Errorf("%s: GET %s: action %q does not say %q or is not the page's text", when, target, co.Action, move)
			}
		}
		// ?namespace= lists only that namespace's shards.
		if raw := do(t, h, "GET", "/v1/shards?namespace=other").raw; strings.Contains(raw, `"namespace":"orders"`) {
			t.Errorf("%s: GET /v1/shards?namespace=other reports orders: %s", when, raw)
		}
	}
	// reload makes the connection read the topology until it shows slot on
	// master (the periodic reload would, within RefreshInterval).
	reload := func(master string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			top, err := cl.Reload(ctx)
			if err == nil {
				if m, ok := top.MasterForSlot(slot); ok && m.Addr == master {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the connection never saw slot %d on %s (last error %v)", slot, master, err)
			}
			time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
		}
	}

	report("before the reshard", false)
	if strings.Contains(logText(), "share a master") {
		t.Errorf("log before the reshard:\n%s", logText())
	}

	lc.MigrateSlot(slot, counterMaster)
	reload(counterMaster)
	report("after the reshard", true)
	warn := fmt.Sprintf("move_slots=[%d]", slot)
	if lg := logText(); !strings.Contains(lg, "level=WARN msg=\"shard keys share a master") || !strings.Contains(lg, warn) ||
		!strings.Contains(lg, "master="+counterMaster) {
		t.Errorf("log lacks the warning naming %s and master %s:\n%s", warn, counterMaster, lg)
	}
	do(t, h, "POST", "/v1/ids/orders?count=10") // still served

	// A namespace opened while the keys share a master is reported too.
	do(t, h, "POST", "/v1/ids/orders?count=10")
	if !s.pool.closeName("orders") {
		t.Fatal("closeName: orders was not open")
	}
	before := strings.Count(logText(), "shard keys share a master")
	do(t, h, "POST", "/v1/ids/orders?count=10")
	if after := strings.Count(logText(), "shard keys share a master"); after != before+1 {
		t.Errorf("reopening with keys on one master logged %d warnings, want 1", after-before)
	}
	report("reopened", true)

	lc.MigrateSlot(slot, home)
	reload(home)
	report("slot moved back", false)
	if !strings.Contains(logText(), "shard keys on distinct masters again") {
		t.Errorf("log does not say the keys are apart again")
	}
}
