package manifests

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sdkServices maps the AWS SDK packages the product calls to their IAM
// service prefix.
var sdkServices = map[string]string{
	"github.com/aws/aws-sdk-go-v2/service/ec2":                    "ec2",
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2": "elasticloadbalancing",
}

// sdkOperations lists the IAM actions (service:Op) the product's code can
// call: every <SDK package>.<Op>Input it names (each SDK call, paginated or
// not, takes one).
func sdkOperations(t *testing.T, dirs ...string) map[string][]string {
	t.Helper()
	ops := map[string][]string{}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			aliases := map[string]string{} // package name in the file → IAM prefix
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if prefix, ok := sdkServices[p]; ok {
					name := filepath.Base(p)
					if imp.Name != nil {
						name = imp.Name.Name
					}
					aliases[name] = prefix
				}
			}
			if len(aliases) == 0 {
				return nil
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && aliases[x.Name] != "" {
					if op, ok := strings.CutSuffix(sel.Sel.Name, "Input"); ok && op != "" {
						action := aliases[x.Name] + ":" + op
						ops[action] = append(ops[action], fset.Position(sel.Pos()).String())
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s: %v", dir, err)
		}
	}
	return ops
}

// TestIAMPolicyMatchesSDKCalls: the policy grants exactly the EC2 and ELB operations pkg/ and cmd/ call,
// no more (least privilege) and no fewer (ec2sim would answer UnauthorizedOperation).
func TestIAMPolicyMatchesSDKCalls(t *testing.T) {
	data, err := os.ReadFile(iamPolicyPath)
	if err != nil {
		t.Fatalf("read policy: %v", err)
	}
	var p iamPolicy
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("decode policy: %v", err)
	}
	var granted []string
	for _, s := range p.Statement {
		for _, a := range s.Action {
			granted = append(granted, a)
		}
	}
	slices.Sort(granted)
	ops := sdkOperations(t, filepath.Join(repoRoot, "pkg"), filepath.Join(repoRoot, "cmd"))
	used := sortedKeys(ops)
	if len(used) == 0 {
		t.Fatal("found no AWS SDK operations in pkg/ or cmd/")
	}
	for _, op := range used {
		if !slices.Contains(granted, op) {
			t.Errorf("code calls %s (%s) but manifests/iam/policy.json does not grant it", op, ops[op][0])
		}
	}
	for _, op := range granted {
		if !slices.Contains(used, op) {
			t.Errorf("manifests/iam/policy.json grants %s, which no code in pkg/ or cmd/ calls", op)
		}
	}
}
