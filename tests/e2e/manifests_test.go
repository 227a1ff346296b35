package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
)

// loadShipped decodes the objects users install: manifests/base, the chart
// snapshots (kept equal to the chart's render by tests/manifests'
// TestChartSnapshots) and the kOps addon manifests its channel names.
func loadShipped(t *testing.T, root string) map[string][]*unstructured.Unstructured {
	t.Helper()
	load := func(path string) []*unstructured.Unstructured {
		objs, err := harness.LoadManifestFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	sets := map[string][]*unstructured.Unstructured{}
	base, err := harness.LoadManifests(filepath.Join(root, "manifests", "base"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range base {
		// kustomization.yaml is kustomize's input, not an API object.
		if o.GetKind() != "Kustomization" {
			sets["manifests/base"] = append(sets["manifests/base"], o)
		}
	}
	for _, f := range []string{"chart-default.yaml", "chart-full.yaml"} {
		sets["snapshots/"+f] = load(filepath.Join(root, "tests", "manifests", "snapshots", f))
	}
	// The channel file (kind Addons) is kOps' index, not an API object; its
	// schema is checked by tests/manifests' TestKopsChannel. Apply what it points to.
	kops := filepath.Join(root, "manifests", "kops")
	channel := load(filepath.Join(kops, "addon.yaml"))
	if len(channel) != 1 || channel[0].GetKind() != "Addons" {
		t.Fatalf("manifests/kops/addon.yaml: want one Addons document, got %d", len(channel))
	}
	addons, _, _ := unstructured.NestedSlice(channel[0].Object, "spec", "addons")
	for _, a := range addons {
		m, _ := a.(map[string]any)
		path, _ := m["manifest"].(string)
		if path == "" {
			t.Fatalf("kOps channel entry without manifest: %v", a)
		}
		sets["kops/"+path] = load(filepath.Join(kops, path))
	}
	for name, objs := range sets {
		if len(objs) == 0 {
			t.Fatalf("%s holds no objects", name)
		}
	}
	return sets
}

// applyCRDs creates the CRDs in path for real and waits until they are served.
func applyCRDs(ctx context.Context, t *testing.T, w *harness.World, path string) {
	t.Helper()
	crds, err := harness.LoadManifestFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(w.AdminCfg)
	if err != nil {
		t.Fatal(err)
	}
	crdRes := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, crd := range crds {
		if err := w.Apply(ctx, crd, false); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err := dc.Resource(crdRes).Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not established: %v", crd.GetName(), err)
		}
	}
}

// TestManifestsDryRunApply: every object users install is accepted by the
// real kube-apiserver (server-side apply, dry run), and the check rejects a
// broken object.
func TestManifestsDryRunApply(t *testing.T) {
	w := newWorld(t, demoScenario(t), false)
	ctx := t.Context()
	applyCRDs(ctx, t, w, filepath.Join(w.Root, "tests", "manifests", "testdata", "monitoring-crds.yaml"))
	kinds := map[string]bool{}
	for name, objs := range loadShipped(t, w.Root) {
		for _, o := range objs {
			if err := w.Apply(ctx, o, true); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			kinds[o.GetKind()] = true
		}
	}
	for _, k := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"ConfigMap", "DaemonSet", "Service", "PodMonitor", "ServiceMonitor"} {
		if !kinds[k] {
			t.Errorf("no %s among the shipped objects (kinds %v)", k, kinds)
		}
	}
	// A dry run stores nothing.
	if _, err := w.Admin.AppsV1().DaemonSets("kube-system").Get(ctx, "aws-cloud-controller-manager", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("DaemonSet exists after dry-run applies (err %v)", err)
	}

	// The check can fail: broken copies of the shipped DaemonSet are rejected.
	broken := map[string]struct {
		edit func(*unstructured.Unstructured) error
		want string
	}{
		"unknown field": {
			edit: func(o *unstructured.Unstructured) error {
				return unstructured.SetNestedField(o.Object, int64(2), "spec", "replicas")
			},
			want: ".spec.replicas: field not declared in schema",
		},
		"invalid value": {
			edit: func(o *unstructured.Unstructured) error {
				return unstructured.SetNestedField(o.Object, "Sometimes", "spec", "updateStrategy", "type")
			},
			want: "spec.updateStrategy: Unsupported value",
		},
	}
	for name, tc := range broken {
		t.Run(name, func(t *testing.T) {
			objs, err := harness.LoadManifestFile(filepath.Join(w.Root, "manifests", "base", "daemonset.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != 1 || objs[0].GetKind() != "DaemonSet" {
				t.Fatalf("daemonset.yaml: want one DaemonSet, got %d objects", len(objs))
			}
			ds := objs[0]
			if err := tc.edit(ds); err != nil {
				t.Fatal(err)
			}
			err = w.Apply(ctx, ds, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("broken DaemonSet: apply error %v, want a rejection naming %q", err, tc.want)
			}
			t.Logf("rejected: %v", err)
		})
	}
}
