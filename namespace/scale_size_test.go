//go:build !chaos

package namespace_test

// scaleNamespaces is how many namespaces TestCreationFlat creates: few enough
// for make test (the chaos tag makes it 10,000; SHARDSEQ_SCALE_NAMESPACES
// overrides both).
const scaleNamespaces = 1000

// scaleStrict: whether the bounds are asserted (see TestCreationFlat).
const scaleStrict = false
