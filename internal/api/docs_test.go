package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOperationsDocListsEveryOperation: docs/operations.md lists the values
// of the operation label (patjanitor_api_requests_total and the other API
// metrics) that operators write queries and alerts with. The values are
// read from this package's Op* constants, so an operation added later
// without a word in the docs fails here (the API client operations were
// missing).
func TestOperationsDocListsEveryOperation(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, para, ok := strings.Cut(string(doc), "`operation` is one of")
	if !ok {
		t.Fatal("docs/operations.md has no paragraph \"`operation` is one of\"")
	}
	para, _, _ = strings.Cut(para, "\n\n")
	ops := operationConstants(t)
	if len(ops) < 10 {
		t.Fatalf("found only %d Op* constants: %v", len(ops), ops)
	}
	for name, value := range ops {
		if !strings.Contains(para, "`"+value+"`") {
			t.Errorf("docs/operations.md does not list operation %q (%s) where it says which values the operation label takes", value, name)
		}
	}
}

// operationConstants returns the string constants named Op* of this
// package's non-test files.
func operationConstants(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	ops := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "Op") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					ops[n.Name] = v
				}
			}
		}
	}
	return ops
}
