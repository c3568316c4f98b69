//go:build chaos

package namespace_test

// scaleNamespaces: the chaos tag measures creation at 10,000 namespaces.
const scaleNamespaces = 10000

// scaleStrict: whether the bounds are asserted (see TestCreationFlat).
const scaleStrict = true
