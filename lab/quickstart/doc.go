// Package quickstart runs README.md's Quick start as a newcomer would: the
// real binary serves on a real Redis Cluster (as `make run` does), the
// block's curl calls go over HTTP, and what the README shows is held to the
// shape of what comes back. The test reads the README's code block itself,
// so the README and the test cannot drift.
package quickstart
