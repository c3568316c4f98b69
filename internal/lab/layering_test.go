package lab

import (
	"os/exec"
	"strings"
	"testing"
)

const (
	module = "github.com/shardseq/shardseq"
	labDir = module + "/internal/lab"
)

// labAllowed are the product packages that may import the lab: the binary
// carries the lab's commands (cluster, verify, bench) by design.
var labAllowed = map[string]bool{module + "/cmd/shardseq": true}

func isLab(pkg string) bool { return pkg == labDir || strings.HasPrefix(pkg, labDir+"/") }

// TestProductDoesNotImportLab lists every package of the module with its
// non-test imports and fails when a product package imports the lab.
// Test files may (the harness is the lab's), so only .Imports is read.
func TestProductDoesNotImportLab(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "integration chaos",
		"-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := fields[0]
		if isLab(pkg) || labAllowed[pkg] || strings.HasPrefix(pkg, module+"/integration") {
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			if isLab(imp) {
				t.Errorf("product package %s imports the lab package %s", pkg, imp)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d product packages: the listing is wrong\n%s", checked, out)
	}
}

// TestIsLab pins the classification the layering test relies on, so that a
// rename of the lab folder cannot make it pass vacuously.
func TestIsLab(t *testing.T) {
	for pkg, want := range map[string]bool{
		labDir + "/chaos":            true,
		labDir:                       true,
		module + "/internal/version": false,
		module + "/internal/labels":  false,
		module + "/server":           false,
	} {
		if got := isLab(pkg); got != want {
			t.Errorf("isLab(%q) = %v, want %v", pkg, got, want)
		}
	}
}
