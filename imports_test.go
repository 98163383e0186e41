// Package crmpipeline_test holds the test that keeps the package table of the README true: each
// package of the module may import only the packages of the module its row names.
package crmpipeline_test

import (
	"encoding/json"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/crm-pipeline/crm-pipeline/"

// allowedImports is the README's package table: the module's packages each may import (the
// standard library and third-party modules are not listed). cmd/crm-pipeline wires everything.
var allowedImports = map[string][]string{
	"domain":           {},
	"analytics":        {"domain"},
	"step":             {"domain", "analytics"},
	"codecs":           {"domain", "analytics"},
	"dirlock":          {},
	"topics":           {"dirlock"},
	"state":            {},
	"connlimit":        {},
	"processors":       {"domain", "analytics", "step", "codecs", "topics"},
	"views":            {"domain", "analytics", "codecs", "topics"},
	"gateway":          {"domain", "codecs", "topics", "views"},
	"query":            {"domain", "analytics", "views", "gateway"},
	"web":              {},
	"app":              {"domain", "analytics", "step", "codecs", "dirlock", "topics", "state", "connlimit", "processors", "views", "gateway", "query", "web"},
	"cmd/crm-pipeline": nil, // everything
	// Support code, outside the product: nothing of the product imports it (see supportPackages).
	"analytics/analyticstest": {"domain", "analytics"}, // the tests' oracle of analytics
	"systemtest":              nil,                     // tests only
	"internal/testkit":        nil,
	"cmd/crm-bench":           nil,
}

// supportPackages are the module's packages outside the product (tests, their shared kit, the
// tests' analytics oracle, the benchmark): they may import what their rows allow (nil:
// anything), and no product package may import them.
var supportPackages = map[string]bool{"analytics/analyticstest": true, "systemtest": true, "internal/testkit": true, "cmd/crm-bench": true}

// TestImportDirections fails when a package imports one of the module's packages its row of
// the table does not allow, or when a package is missing from the table.
func TestImportDirections(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := map[string]bool{}
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(p.ImportPath, module)
		if !ok {
			continue // the module root (this test)
		}
		if strings.Contains(name, "/internal/") || strings.HasSuffix(name, "/internal") {
			continue // internal packages are their parent's own business
		}
		seen[name] = true
		if !supportPackages[name] {
			for _, imp := range p.Imports {
				if dep, ours := strings.CutPrefix(imp, module); ours && supportPackages[dep] {
					t.Errorf("product package %s imports the support package %s", name, dep)
				}
			}
		}
		allowed, listed := allowedImports[name]
		if !listed {
			t.Errorf("package %s is not in the README's package table (allowedImports)", name)
			continue
		}
		if allowed == nil {
			continue
		}
		ok2 := map[string]bool{}
		for _, a := range allowed {
			ok2[a] = true
		}
		var bad []string
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours || strings.HasPrefix(dep, name+"/internal") {
				continue
			}
			if !ok2[dep] {
				bad = append(bad, dep)
			}
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			t.Errorf("%s imports %v; its row allows %v", name, bad, allowed)
		}
	}
	for name := range allowedImports {
		if !seen[name] {
			t.Errorf("the table lists %s, which is not a package any more", name)
		}
	}
}
