package manifests

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/cloud"
)

// allSets returns every shipped set of objects: plain manifests, both chart renders and the kOps addon.
func allSets(t *testing.T) map[string][]object {
	t.Helper()
	return map[string][]object{
		"base":             loadBase(t),
		"chart-default":    renderChart(t, nil),
		"chart-full":       renderChart(t, readValues(t, fullValues)),
		"kops-addon":       loadKopsManifest(t),
		"snapshot-default": loadFiles(t, snapshotDir, "chart-default.yaml"),
		"snapshot-full":    loadFiles(t, snapshotDir, "chart-full.yaml"),
	}
}

func TestBaseManifestsDecode(t *testing.T) {
	objs := loadBase(t)
	keys := sortedKeys(byKey(t, objs))
	want := []string{
		"apps/v1/DaemonSet kube-system/aws-cloud-controller-manager",
		"rbac.authorization.k8s.io/v1/ClusterRole /system:cloud-controller-manager",
		"rbac.authorization.k8s.io/v1/ClusterRoleBinding /system:cloud-controller-manager",
		"rbac.authorization.k8s.io/v1/Role kube-system/cloud-controller-manager",
		"rbac.authorization.k8s.io/v1/RoleBinding kube-system/cloud-controller-manager",
		"rbac.authorization.k8s.io/v1/RoleBinding kube-system/cloud-controller-manager:apiserver-authentication-reader",
		"v1/ConfigMap kube-system/aws-cloud-config",
		"v1/ServiceAccount kube-system/cloud-controller-manager",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("base objects:\n got %q\nwant %q", keys, want)
	}
}

// TestKustomizationListsEveryFile keeps manifests/base/kustomization.yaml and the directory in step.
func TestKustomizationListsEveryFile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(baseDir, "kustomization.yaml"))
	if err != nil {
		t.Fatalf("read kustomization: %v", err)
	}
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("decode kustomization: %v", err)
	}
	if k.Kind != "Kustomization" {
		t.Fatalf("kind = %q, want Kustomization", k.Kind)
	}
	if !slices.Equal(k.Resources, baseFiles) {
		t.Fatalf("kustomization resources = %q, want %q", k.Resources, baseFiles)
	}
	entries, err := os.ReadDir(baseDir)
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	for _, e := range entries {
		if e.Name() != "kustomization.yaml" && !slices.Contains(baseFiles, e.Name()) {
			t.Errorf("manifests/base/%s is not listed in kustomization.yaml or the tests", e.Name())
		}
	}
}

// iamPolicy is the subset of the IAM policy grammar the shipped policy may use.
type iamPolicy struct {
	Version   string `json:"Version"`
	Statement []struct {
		Sid      string    `json:"Sid"`
		Effect   string    `json:"Effect"`
		Action   []string  `json:"Action"`
		Resource resources `json:"Resource"`
	} `json:"Statement"`
}

// resources is an IAM Resource: one ARN pattern or a list of them.
type resources []string

func (r *resources) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*r = resources{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*r = many
	return nil
}

func TestIAMPolicy(t *testing.T) {
	data, err := os.ReadFile(iamPolicyPath)
	if err != nil {
		t.Fatalf("read policy: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p iamPolicy
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode policy: %v", err)
	}
	if p.Version != "2012-10-17" {
		t.Errorf("Version = %q, want 2012-10-17", p.Version)
	}
	if len(p.Statement) == 0 {
		t.Fatal("policy has no statements")
	}
	seen := map[string]bool{}
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			t.Errorf("statement %q: Effect = %q, want Allow", s.Sid, s.Effect)
		}
		if len(s.Resource) == 0 || slices.Contains(s.Resource, "") {
			t.Errorf("statement %q: no Resource", s.Sid)
		}
		if !sort.StringsAreSorted(s.Action) {
			t.Errorf("statement %q: actions not sorted: %q", s.Sid, s.Action)
		}
		for _, a := range s.Action {
			_, name, _ := strings.Cut(a, ":")
			if service := strings.TrimSuffix(a, ":"+name); (service != "ec2" && service != "elasticloadbalancing") || name == "" || strings.ContainsAny(name, "*?") {
				t.Errorf("statement %q: action %q is not one named EC2 or ELB action", s.Sid, a)
			}
			if seen[a] {
				t.Errorf("action %q listed twice", a)
			}
			seen[a] = true
			// Read-only actions support no resource-level permissions: they need Resource "*".
			if strings.HasPrefix(name, "Describe") && !slices.Equal(s.Resource, resources{"*"}) {
				t.Errorf("statement %q: %s needs Resource \"*\"", s.Sid, a)
			}
		}
	}
	for _, required := range []string{"ec2:DescribeInstances", "ec2:AssignIpv6Addresses"} {
		if !seen[required] {
			t.Errorf("policy lacks %s", required)
		}
	}
}

// TestCloudConfigParses runs every shipped cloud.conf through the product's own parser: a
// misspelt key, a bad value or an upstream-only key fails here.
func TestCloudConfigParses(t *testing.T) {
	noEnv := func(string) string { return "" }
	for name, objs := range allSets(t) {
		cms := typed[*corev1.ConfigMap](objs)
		if len(cms) != 1 {
			t.Errorf("%s: %d ConfigMaps, want 1", name, len(cms))
			continue
		}
		cfg, ignored, err := cloud.ParseConfig(strings.NewReader(cms[0].Data["cloud.conf"]), noEnv)
		if err != nil {
			t.Errorf("%s: cloud.conf: %v", name, err)
			continue
		}
		if len(ignored) != 0 {
			t.Errorf("%s: cloud.conf sets keys the provider ignores: %q", name, ignored)
		}
		if len(cfg.NodeIPFamilies) == 0 || cfg.NodeIPFamilies[0] != corev1.IPv6Protocol {
			t.Errorf("%s: NodeIPFamilies = %q, want IPv6 first", name, cfg.NodeIPFamilies)
		}
		if cfg.IPv6PrefixDelegation != cloud.DelegationAssign {
			t.Errorf("%s: IPv6PrefixDelegation = %q, want assign", name, cfg.IPv6PrefixDelegation)
		}
		if strings.HasPrefix(name, "chart-full") || strings.HasPrefix(name, "snapshot-full") {
			if cfg.IMDSEndpointMode != "IPv6" || !cfg.EC2DualStackEndpoint || cfg.Region != "us-west-2" || cfg.ClusterID() != "example-cluster" {
				t.Errorf("%s: full values did not reach the config: %+v", name, cfg)
			}
		}
	}
}

// TestRBACLeastPrivilege checks every Role and ClusterRole shipped: no wildcards, no verbs that
// escalate, no access to secrets, and the ClusterRole/Role/bindings the CCM needs are present.
func TestRBACLeastPrivilege(t *testing.T) {
	for name, objs := range allSets(t) {
		var rules []rbacv1.PolicyRule
		for _, r := range typed[*rbacv1.ClusterRole](objs) {
			if r.AggregationRule != nil {
				t.Errorf("%s: ClusterRole %s aggregates other roles", name, r.Name)
			}
			rules = append(rules, r.Rules...)
		}
		for _, r := range typed[*rbacv1.Role](objs) {
			rules = append(rules, r.Rules...)
		}
		if len(rules) == 0 {
			t.Errorf("%s: no RBAC rules", name)
		}
		for _, r := range rules {
			for _, field := range [][]string{r.Verbs, r.APIGroups, r.Resources, r.ResourceNames, r.NonResourceURLs} {
				for _, v := range field {
					if strings.Contains(v, "*") {
						t.Errorf("%s: wildcard %q in rule %+v", name, v, r)
					}
				}
			}
			for _, v := range r.Verbs {
				if v == "escalate" || v == "bind" || v == "impersonate" || v == "deletecollection" {
					t.Errorf("%s: dangerous verb %q in rule %+v", name, v, r)
				}
			}
			for _, res := range r.Resources {
				if res == "secrets" || res == "pods/exec" || res == "configmaps" {
					t.Errorf("%s: rule grants %s: %+v", name, res, r)
				}
			}
			// A token may only be minted for the named per-controller service accounts.
			if slices.Contains(r.Resources, "serviceaccounts/token") && len(r.ResourceNames) == 0 {
				t.Errorf("%s: serviceaccounts/token without resourceNames: %+v", name, r)
			}
		}
		sas := map[string]bool{}
		for _, sa := range typed[*corev1.ServiceAccount](objs) {
			sas[sa.Namespace+"/"+sa.Name] = true
		}
		bound := map[string]bool{}
		for _, b := range typed[*rbacv1.ClusterRoleBinding](objs) {
			for _, s := range b.Subjects {
				bound[b.RoleRef.Name+"@"+s.Namespace+"/"+s.Name] = true
			}
		}
		for _, b := range typed[*rbacv1.RoleBinding](objs) {
			for _, s := range b.Subjects {
				bound[b.RoleRef.Name+"@"+s.Namespace+"/"+s.Name] = true
			}
		}
		for _, role := range []string{"system:cloud-controller-manager", "cloud-controller-manager", "extension-apiserver-authentication-reader"} {
			if !bound[role+"@kube-system/cloud-controller-manager"] {
				t.Errorf("%s: %s is not bound to kube-system/cloud-controller-manager", name, role)
			}
		}
		if !sas["kube-system/cloud-controller-manager"] {
			t.Errorf("%s: no ServiceAccount kube-system/cloud-controller-manager", name)
		}
	}
}

// TestDaemonSetSecurity checks the settings issue 6 requires on every shipped DaemonSet.
func TestDaemonSetSecurity(t *testing.T) {
	for name, objs := range allSets(t) {
		dss := typed[*appsv1.DaemonSet](objs)
		if len(dss) != 1 {
			t.Errorf("%s: %d DaemonSets, want 1", name, len(dss))
			continue
		}
		checkDaemonSet(t, name, dss[0], objs)
	}
}

func checkDaemonSet(t *testing.T, set string, ds *appsv1.DaemonSet, objs []object) {
	t.Helper()
	errorf := func(format string, args ...any) { t.Errorf(set+": "+format, args...) }
	if ds.Name != "aws-cloud-controller-manager" || ds.Namespace != "kube-system" {
		errorf("DaemonSet is %s/%s", ds.Namespace, ds.Name)
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork {
		errorf("hostNetwork is off")
	}
	if pod.PriorityClassName != "system-node-critical" {
		errorf("priorityClassName = %q", pod.PriorityClassName)
	}
	if v, ok := pod.NodeSelector["node-role.kubernetes.io/control-plane"]; !ok || v != "" {
		errorf("nodeSelector = %v, want the control-plane role", pod.NodeSelector)
	}
	taints := []corev1.Taint{
		{Key: "node.cloudprovider.kubernetes.io/uninitialized", Value: "true", Effect: corev1.TaintEffectNoSchedule},
		{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoExecute},
	}
	for _, taint := range taints {
		if !slices.ContainsFunc(pod.Tolerations, func(tol corev1.Toleration) bool { return tol.ToleratesTaint(klog.Background(), &taint, false) }) {
			errorf("does not tolerate %s:%s", taint.Key, taint.Effect)
		}
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		errorf("pod is not forced to run as non-root: %+v", pod.SecurityContext)
	}
	if !slices.ContainsFunc(typed[*corev1.ServiceAccount](objs), func(sa *corev1.ServiceAccount) bool { return sa.Name == pod.ServiceAccountName }) {
		errorf("serviceAccountName %q is not shipped", pod.ServiceAccountName)
	}
	if len(pod.Containers) != 1 {
		errorf("%d containers, want 1", len(pod.Containers))
		return
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		(sc.Privileged != nil && *sc.Privileged) {
		errorf("container security context is not locked down: %+v", sc)
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		errorf("no CPU request")
	}
	if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
		errorf("no memory request")
	}
	args := map[string]string{}
	for _, a := range c.Args {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	for flag, want := range map[string]string{
		"--cloud-provider":                  "aws",
		"--use-service-account-credentials": "true",
		"--configure-cloud-routes":          "false",
		"--leader-elect":                    "true",
		// Sized under APF's workload-high level (docs/reference/flags.md);
		// the same in every shipped set, and what make bench measures.
		"--kube-api-qps":   "100",
		"--kube-api-burst": "200",
	} {
		if args[flag] != want {
			errorf("%s = %q, want %q", flag, args[flag], want)
		}
	}
	port := args["--secure-port"]
	if port == "" {
		port = "10258"
	}
	p := c.LivenessProbe
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Scheme != corev1.URISchemeHTTPS ||
		p.HTTPGet.Port.String() != port {
		errorf("liveness probe is not HTTPS /healthz on the secure port %s: %+v", port, p)
	}
	// The cloud config comes from a shipped (or user-provided) ConfigMap mounted where --cloud-config points.
	cfgPath := args["--cloud-config"]
	var mounted bool
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(cfgPath, m.MountPath+"/") {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && m.ReadOnly {
				mounted = true
				if !slices.ContainsFunc(typed[*corev1.ConfigMap](objs), func(cm *corev1.ConfigMap) bool {
					_, ok := cm.Data[filepath.Base(cfgPath)]
					return cm.Name == v.ConfigMap.Name && ok
				}) {
					errorf("ConfigMap %s with key %s is not shipped", v.ConfigMap.Name, filepath.Base(cfgPath))
				}
			}
		}
	}
	if !mounted {
		errorf("--cloud-config=%q is not read-only mounted from a ConfigMap", cfgPath)
	}
}
