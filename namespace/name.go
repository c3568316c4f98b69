package namespace

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The namespace rule: NamespacePattern is what ValidNamespace matches and
// NamespaceRule says it in words, for messages. No braces or colons, so a
// name cannot break a hash tag or another namespace's key prefix.
const (
	NamespacePattern = `^[A-Za-z0-9_.-]{1,64}$`
	NamespaceRule    = "1 to 64 characters of A-Z a-z 0-9 _ . -"
)

// ErrInvalidNamespace is returned, wrapped with the name, for a namespace
// ValidNamespace refuses.
var ErrInvalidNamespace = errors.New("shard: invalid namespace: want " + NamespaceRule)

var namespaceRE = regexp.MustCompile(NamespacePattern)

// ValidNamespace reports whether ns may name a namespace (see NamespaceRule).
func ValidNamespace(ns string) bool { return namespaceRE.MatchString(ns) }

// ValidateNamespace returns an error saying what a namespace name must look
// like, or nil.
func ValidateNamespace(name string) error {
	if ValidNamespace(name) {
		return nil
	}
	shown := name
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	return fmt.Errorf("%w: %q", ErrInvalidNamespace, strings.ToValidUTF8(shown, "?"))
}
