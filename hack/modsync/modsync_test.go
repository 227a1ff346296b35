// Package modsync holds a test that keeps the repository's Go modules on one version of every
// dependency they share.
//
// A cold `make test` builds the CCM (main module), kube-apiserver (tests/tools) and the test
// modules into one build cache. A package is reused only when its whole dependency closure is
// identical, so one module on a newer go-logr or golang.org/x/sys than another recompiles
// client-go, apimachinery and apiserver for it: minutes on two cores.
package modsync

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/mod/modfile"
)

// modules are the go.mod files that share the build cache in `make test`, relative to the
// repository root. tests/tools/etcd is left out on purpose: etcd v3.6 brings its own grpc,
// otel and protobuf versions and shares little else (it builds in about a minute).
var modules = []string{
	"go.mod",
	"tests/tools/go.mod",
	"tests/manifests/go.mod",
	"tests/metricsserver/go.mod",
	"tests/bench/go.mod",
}

func TestSharedDependencyVersions(t *testing.T) {
	root := filepath.Join("..", "..")
	// path -> version -> go.mod files requiring it
	seen := map[string]map[string][]string{}
	for _, name := range modules {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := modfile.Parse(name, data, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		local := map[string]bool{}
		pinned := map[string]string{} // k8s.io/kubernetes' staging modules: replace path => path vX
		for _, r := range f.Replace {
			switch {
			case modfile.IsDirectoryPath(r.New.Path):
				local[r.Old.Path] = true
			case r.New.Path == r.Old.Path:
				pinned[r.Old.Path] = r.New.Version
			}
		}
		for _, r := range f.Require {
			if local[r.Mod.Path] {
				continue // this repository's own module, built from source
			}
			v := r.Mod.Version
			if pv, ok := pinned[r.Mod.Path]; ok {
				v = pv
			}
			if seen[r.Mod.Path] == nil {
				seen[r.Mod.Path] = map[string][]string{}
			}
			seen[r.Mod.Path][v] = append(seen[r.Mod.Path][v], name)
		}
	}
	if len(seen) < 100 {
		t.Fatalf("read only %d required modules; is the list of go.mod files right?", len(seen))
	}
	var paths []string
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if len(seen[p]) > 1 {
			t.Errorf("%s is required at more than one version: %v\n"+
				"\tgo get %s@<highest> in each of these modules, then go mod tidy", p, seen[p], p)
		}
	}
}
