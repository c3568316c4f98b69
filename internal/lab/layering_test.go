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

// rpcModules are the modules of the server's gRPC face (server/rpc.go,
// api/gen): the library must not need them.
var rpcModules = []string{"google.golang.org/protobuf", "connectrpc.com/"}

// TestClientNeedsNoRPC: a program that imports client links neither
// protobuf nor connect-go (go list -deps of client, its non-test
// dependencies), while the server does (the control: the listing sees
// them where they are).
func TestClientNeedsNoRPC(t *testing.T) {
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		return strings.Fields(string(out))
	}
	rpc := func(dep string) bool {
		for _, m := range rpcModules {
			if strings.HasPrefix(dep, m) {
				return true
			}
		}
		return false
	}
	for _, d := range deps(module + "/client") {
		if rpc(d) {
			t.Errorf("client depends on %s", d)
		}
	}
	found := 0
	for _, d := range deps(module + "/server") {
		if rpc(d) {
			found++
		}
	}
	if found == 0 {
		t.Error("no protobuf or connect package among the server's dependencies: the check sees nothing")
	}
}
