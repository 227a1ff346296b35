package manifests

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/google/go-cmp/cmp"
)

// readValues reads a values file.
func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		t.Fatalf("read values %s: %v", path, err)
	}
	return v
}

// kubeVersion is the Kubernetes version the chart is rendered for (the project's k8s.io version).
func kubeVersion(t *testing.T) *chartutil.KubeVersion {
	t.Helper()
	v, err := chartutil.ParseKubeVersion("v1.37.2")
	if err != nil {
		t.Fatalf("parse kube version: %v", err)
	}
	return v
}

// renderManifest renders the chart as `helm template aws-ipv6-ccm -n kube-system` does.
func renderManifest(t *testing.T, vals map[string]any) string {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities.Copy(),
		Log:          func(string, ...any) {},
	}
	install := action.NewInstall(cfg)
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = "aws-ipv6-ccm"
	install.Namespace = "kube-system"
	install.KubeVersion = kubeVersion(t)
	rel, err := install.Run(chrt, vals)
	if err != nil {
		t.Fatalf("render chart: %v", err)
	}
	return rel.Manifest
}

// renderChart renders and strictly decodes the chart.
func renderChart(t *testing.T, vals map[string]any) []object {
	t.Helper()
	objs, err := decodeDocs("chart", []byte(renderManifest(t, vals)))
	if err != nil {
		t.Fatalf("decode chart render: %v", err)
	}
	return objs
}

func TestChartLint(t *testing.T) {
	for name, vals := range map[string]map[string]any{"default": nil, "full": readValues(t, fullValues)} {
		lint := action.NewLint()
		lint.Strict = true
		lint.Namespace = "kube-system"
		lint.KubeVersion = kubeVersion(t)
		res := lint.Run([]string{chartDir}, vals)
		for _, err := range res.Errors {
			t.Errorf("helm lint (%s values): %v", name, err)
		}
		if res.TotalChartsLinted != 1 {
			t.Errorf("helm lint (%s values) linted %d charts", name, res.TotalChartsLinted)
		}
	}
}

// TestChartDefaultEqualsManifests: `helm template` with default values gives exactly manifests/base.
func TestChartDefaultEqualsManifests(t *testing.T) {
	base := byKey(t, loadBase(t))
	chart := byKey(t, renderChart(t, nil))
	if diff := cmp.Diff(sortedKeys(base), sortedKeys(chart)); diff != "" {
		t.Fatalf("chart and manifests/base hold different objects (-base +chart):\n%s", diff)
	}
	for k, b := range base {
		c := chart[k]
		if !apiequality.Semantic.DeepEqual(b.Obj, c.Obj) {
			t.Errorf("%s differs (-base +chart):\n%s", k, cmp.Diff(toYAML(t, b.Obj), toYAML(t, c.Obj)))
		}
	}
}

// TestChartFullValues checks that every value reaches the objects it is meant to.
func TestChartFullValues(t *testing.T) {
	objs := renderChart(t, readValues(t, fullValues))
	ds := typed[*appsv1.DaemonSet](objs)[0]
	c := ds.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example.com/aws-ipv6-ccm:v0.1.0-test" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image = %s (%s)", c.Image, c.ImagePullPolicy)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--concurrent-node-syncs=10", "--v=4", "--cloud-config=/etc/kubernetes/cloud-config/cloud.conf"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"] != "IPv6" || env["AWS_USE_DUALSTACK_ENDPOINT"] != "true" {
		t.Errorf("env = %v", env)
	}
	if ds.Spec.Template.Spec.Affinity == nil || len(ds.Spec.Template.Spec.ImagePullSecrets) != 1 {
		t.Errorf("affinity or imagePullSecrets missing")
	}
	if c.Resources.Limits.Memory().String() != "512Mi" {
		t.Errorf("memory limit = %s", c.Resources.Limits.Memory())
	}
	cm := typed[*corev1.ConfigMap](objs)[0]
	for _, line := range []string{"NodeIPFamilies=ipv6", "IPv6PrefixDelegation=assign", "IMDSEndpointMode=IPv6",
		"EC2DualStackEndpoint=true", "Region=us-west-2", "Zone=us-west-2a", "KubernetesClusterID=example-cluster"} {
		if !strings.Contains(cm.Data["cloud.conf"], line+"\n") {
			t.Errorf("cloud.conf lacks %q:\n%s", line, cm.Data["cloud.conf"])
		}
	}
	if n := len(typed[*monitoringv1.PodMonitor](objs)); n != 1 {
		t.Errorf("%d PodMonitors, want 1", n)
	}
	if n := len(typed[*monitoringv1.ServiceMonitor](objs)); n != 1 {
		t.Errorf("%d ServiceMonitors, want 1", n)
	}
	for _, o := range objs {
		if l := labelsOf(t, o); l["app.kubernetes.io/part-of"] != "aws-ipv6-ccm" {
			t.Errorf("%s lacks commonLabels: %v", o.Key(), l)
		}
	}
}

// TestChartSnapshots keeps rendered copies of the chart in snapshots/ so reviewers see what a
// template change does, and the e2e harness can server-side apply them.
func TestChartSnapshots(t *testing.T) {
	checkGenerated(t, filepath.Join(snapshotDir, "chart-default.yaml"), []byte(renderManifest(t, nil)))
	checkGenerated(t, filepath.Join(snapshotDir, "chart-full.yaml"), []byte(renderManifest(t, readValues(t, fullValues))))
}

// TestMonitoringCRDsCoverFullRender: testdata/monitoring-crds.yaml defines every custom kind the
// full render uses, so the e2e harness can apply that render to a bare API server.
func TestMonitoringCRDsCoverFullRender(t *testing.T) {
	served := map[string]bool{}
	for _, crd := range typed[*apiextensionsv1.CustomResourceDefinition](loadFiles(t, "testdata", "monitoring-crds.yaml")) {
		for _, v := range crd.Spec.Versions {
			served[crd.Spec.Group+"/"+v.Name+"/"+crd.Spec.Names.Kind] = v.Served
		}
	}
	for _, o := range renderChart(t, readValues(t, fullValues)) {
		if o.GVK.Group == "monitoring.coreos.com" && !served[o.GVK.GroupVersion().String()+"/"+o.GVK.Kind] {
			t.Errorf("no CRD serves %s", o.GVK)
		}
	}
}
