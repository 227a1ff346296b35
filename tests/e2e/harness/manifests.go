package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// LoadManifests decodes every YAML document of the .yaml files in dir
// (sorted by name), skipping empty documents.
func LoadManifests(dir string) ([]*unstructured.Unstructured, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*unstructured.Unstructured
	for _, p := range paths {
		objs, err := LoadManifestFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// LoadManifestFile decodes the YAML documents of one file.
func LoadManifestFile(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// Apply server-side applies obj as the field manager "e2e", optionally as a dry run.
func (w *World) Apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	dc, err := dynamic.NewForConfig(w.AdminCfg)
	if err != nil {
		return err
	}
	if w.mapper == nil {
		w.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(w.Admin.Discovery()))
	}
	gvk := obj.GroupVersionKind()
	m, err := w.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		// The kind may come from a CRD applied after discovery was cached.
		w.mapper.Reset()
		m, err = w.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "e2e", Force: new(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = dc.Resource(m.Resource)
	if ns := obj.GetNamespace(); ns != "" {
		ri = dc.Resource(m.Resource).Namespace(ns)
	}
	if _, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts); err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// DaemonSet returns the shipped DaemonSet.
func (w *World) DaemonSet() (*appsv1.DaemonSet, error) {
	objs, err := LoadManifestFile(filepath.Join(w.Root, "manifests", "base", "daemonset.yaml"))
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.GetKind() == "DaemonSet" {
			var ds appsv1.DaemonSet
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &ds); err != nil {
				return nil, err
			}
			return &ds, nil
		}
	}
	return nil, errors.New("manifests/base/daemonset.yaml holds no DaemonSet")
}

// ShippedCloudConfig returns cloud.conf from the shipped ConfigMap.
func (w *World) ShippedCloudConfig() (string, error) {
	objs, err := LoadManifestFile(filepath.Join(w.Root, "manifests", "base", "configmap.yaml"))
	if err != nil {
		return "", err
	}
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" {
			if s, ok, _ := unstructured.NestedString(o.Object, "data", "cloud.conf"); ok {
				return s, nil
			}
		}
	}
	return "", errors.New("manifests/base/configmap.yaml has no data cloud.conf")
}

// flagName returns "--name" of "--name=value".
func flagName(arg string) string {
	name, _, _ := strings.Cut(arg, "=")
	return name
}
