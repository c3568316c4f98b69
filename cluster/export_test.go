package cluster

// Internals for the tests of package cluster_test, which start real clusters
// through internal/lab/clustertest (a package that imports cluster, so an
// in-package test cannot import it).

var MastersFromNodes = mastersFromNodes

func EqualContent(a, b *Topology) bool { return a.equalContent(b) }

// Reloading reports whether a lazy reload runs or is pending.
func (c *Cluster) Reloading() bool { return c.reloading.Load() || c.reloadPending.Load() }
