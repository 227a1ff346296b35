package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// update rewrites generated files (chart snapshots, kOps addon manifest and hash) instead of
// comparing against them: go test ./... -args -update
var update = flag.Bool("update", false, "rewrite generated files instead of checking them")

// Paths, relative to this package's directory.
const (
	repoRoot      = "../.."
	baseDir       = repoRoot + "/manifests/base"
	chartDir      = repoRoot + "/manifests/charts/aws-ipv6-ccm"
	fullValues    = chartDir + "/ci/full-values.yaml"
	kopsDir       = repoRoot + "/manifests/kops"
	iamPolicyPath = repoRoot + "/manifests/iam/policy.json"
	snapshotDir   = "snapshots"
)

// baseFiles are the plain manifests, in apply order.
var baseFiles = []string{"serviceaccount.yaml", "rbac.yaml", "configmap.yaml", "daemonset.yaml"}

var strictDecoder = newStrictDecoder()

func newStrictDecoder() runtime.Decoder {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := monitoringv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
}

// object is one decoded manifest document.
type object struct {
	Source string // file (and document index) it came from
	Obj    runtime.Object
	GVK    schema.GroupVersionKind
}

// Key identifies an object the way the API server does.
func (o object) Key() string {
	m, err := meta.Accessor(o.Obj)
	if err != nil {
		return o.GVK.String() + "/<no metadata>"
	}
	return fmt.Sprintf("%s/%s %s/%s", o.GVK.GroupVersion(), o.GVK.Kind, m.GetNamespace(), m.GetName())
}

// decodeDocs strictly decodes every non-empty YAML document in data into its typed API object.
// Unknown or duplicate fields and unknown kinds are errors.
func decodeDocs(source string, data []byte) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	var errs []error
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: read document %d: %w", source, i, err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", source, i, err))
			continue
		}
		if len(probe) == 0 {
			continue
		}
		obj, gvk, err := strictDecoder.Decode(doc, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", source, i, err))
			continue
		}
		out = append(out, object{Source: fmt.Sprintf("%s[%d]", source, i), Obj: obj, GVK: *gvk})
	}
	return out, errors.Join(errs...)
}

// loadFiles decodes the named files of dir, in order.
func loadFiles(t *testing.T, dir string, names ...string) []object {
	t.Helper()
	var all []object
	for _, n := range names {
		p := filepath.Join(dir, n)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		objs, err := decodeDocs(p, data)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		all = append(all, objs...)
	}
	return all
}

// loadBase decodes the plain manifests.
func loadBase(t *testing.T) []object {
	t.Helper()
	return loadFiles(t, baseDir, baseFiles...)
}

// byKey indexes objects by Key and fails on duplicates.
func byKey(t *testing.T, objs []object) map[string]object {
	t.Helper()
	m := make(map[string]object, len(objs))
	for _, o := range objs {
		if prev, ok := m[o.Key()]; ok {
			t.Fatalf("duplicate object %s in %s and %s", o.Key(), prev.Source, o.Source)
		}
		m[o.Key()] = o
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// typed returns the objects of type T.
func typed[T runtime.Object](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.Obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// toYAML renders an object for diffs.
func toYAML(t *testing.T, obj any) string {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// checkGenerated compares got with the file at path, or rewrites the file with -update.
func checkGenerated(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("mkdir: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (run: go test ./tests/manifests/... -args -update)", path, err)
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("%s is stale; regenerate with: cd tests/manifests && go test . -args -update", path)
	}
}
