// Package lab is the folder of what proves shardseq and is not shipped to
// users: the launcher of local clusters (localcluster), the test harness
// (clustertest), the chaos engine (chaos), the unique-ids checker (checker),
// the benchmark driver (bench) and throwaway certificates (tlstest).
//
// The product (every package outside internal/lab, but cmd/shardseq, which
// carries the lab's commands cluster, verify and bench by design) never
// imports the lab; TestProductDoesNotImportLab keeps it so.
package lab
