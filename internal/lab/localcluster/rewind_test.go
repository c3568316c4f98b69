package localcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// portRewind: 7120-7125, two nodes per persistence mode.
const portRewind = 7120

// The rewind verbs do what production nodes do: each persistence mode writes
// and loads what Redis would (a replica's full sync leaves a dump.rdb even
// with save ""), and Save then RestartFromFiles brings a master back with
// the data of the save, not of the moment it died.
func TestSaveThenRestartFromFilesRewinds(t *testing.T) {
	requireRedis(t)
	for i, mode := range []Persistence{PersistNone, PersistRDB, PersistAOF} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			lc, err := Start(ctx, Config{Masters: 1, Replicas: 1, BasePort: portRewind + 2*i, Dir: t.TempDir(), Persistence: mode, Logf: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = lc.Close() })
			master, replica := lc.Addrs()[0], lc.Addrs()[1]
			m := redis.NewClient(&redis.Options{Addr: master})
			defer m.Close()

			wantConfig := map[string]string{
				"repl-diskless-load": "disabled",
				"appendonly":         "no",
			}
			if mode == PersistAOF {
				wantConfig["appendonly"] = "yes"
			}
			if mode == PersistRDB {
				wantConfig["save"] = "3600 1 300 100 60 10000"
			}
			if mode == PersistNone {
				wantConfig["save"] = ""
			}
			for k, want := range wantConfig {
				got, err := m.ConfigGet(ctx, k).Result()
				if err != nil || got[k] != want {
					t.Fatalf("CONFIG GET %s = %q (%v), want %q", k, got[k], err, want)
				}
			}
			if mode != PersistAOF {
				// The replica's full sync went through its disk.
				r, _ := lc.NodeByAddr(replica)
				if _, err := os.Stat(filepath.Join(r.Dir, "dump.rdb")); err != nil {
					t.Fatalf("replica wrote no dump.rdb on its full sync: %v", err)
				}
			}

			if err := m.Set(ctx, "k{0}", "saved", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if err := lc.Save(ctx, master); err != nil {
				t.Fatal(err)
			}
			if err := m.Set(ctx, "k{0}", "after", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if mode == PersistAOF {
				// Wait for everysec to write the new value, so that only
				// Save's copy can rewind it.
				n, _ := lc.NodeByAddr(master)
				if err := poll(ctx, "the AOF holding the new value", func() error {
					files, _ := filepath.Glob(filepath.Join(n.Dir, "appendonlydir", "*.incr.aof"))
					for _, f := range files {
						if b, _ := os.ReadFile(f); strings.Contains(string(b), "after") {
							return nil
						}
					}
					return errors.New("not yet")
				}); err != nil {
					t.Fatal(err)
				}
			}
			if err := lc.RestartFromFiles(master); err != nil {
				t.Fatal(err)
			}
			var got string
			if err := poll(ctx, "k{0} readable on "+master, func() error {
				var err error
				got, err = m.Get(ctx, "k{0}").Result()
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got != "saved" {
				t.Fatalf("after Save and RestartFromFiles, k = %q, want the saved value", got)
			}
		})
	}
}
