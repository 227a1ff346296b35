package main

import (
	"bytes"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/spf13/pflag"
)

func TestStripNode(t *testing.T) {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"a": "b"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: v1.NodeSpec{ProviderID: "aws:///us-east-1a/i-0123456789abcdef0", PodCIDR: "2600::/80"},
		Status: v1.NodeStatus{
			Images:          []v1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}, SizeBytes: 1}},
			VolumesInUse:    []v1.UniqueVolumeName{"v"},
			VolumesAttached: []v1.AttachedVolume{{Name: "v"}},
			Addresses:       []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "2600::1"}},
			Conditions: []v1.NodeCondition{
				{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse},
				{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady"},
				{Type: v1.NodeDiskPressure, Status: v1.ConditionFalse},
			},
			Capacity:        v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")},
			Allocatable:     v1.ResourceList{v1.ResourceCPU: resource.MustParse("1900m")},
			NodeInfo:        v1.NodeSystemInfo{KubeletVersion: "v1.37.0"},
			DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: 10250}},
		}}
	out, err := stripNode(n)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1.Node)
	if got.ManagedFields != nil || got.Name != "n" || got.Labels["a"] != "b" {
		t.Errorf("transformed node %+v", got.ObjectMeta)
	}
	// What the node and lifecycle controllers read is kept: spec,
	// addresses and the Ready condition; nothing else of status.
	want := v1.NodeStatus{
		Addresses:  []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "2600::1"}},
		Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady"}},
	}
	if !equality.Semantic.DeepEqual(got.Status, want) {
		t.Errorf("status\n got  %+v\n want %+v", got.Status, want)
	}
	if got.Spec.ProviderID == "" || got.Spec.PodCIDR == "" {
		t.Errorf("spec dropped: %+v", got.Spec)
	}
	// Tombstones pass through untouched.
	d := cache.DeletedFinalStateUnknown{Key: "n", Obj: n}
	if out, err := stripNode(d); err != nil || out.(cache.DeletedFinalStateUnknown).Key != "n" {
		t.Errorf("tombstone: %v, %v", out, err)
	}
}

// TestIPv4Pool: --cluster-cidr read as kube-controller-manager reads it.
func TestIPv4Pool(t *testing.T) {
	tests := []struct {
		name, flag string
		pool       string
		ipv4First  bool
		errHas     string
	}{
		{"ipv4 only", "10.244.0.0/16", "10.244.0.0/16", true, ""},
		{"ipv6 first", "fd00:10:244::/56, 10.244.0.0/16", "10.244.0.0/16", false, ""},
		{"ipv4 first", "10.244.0.0/16,fd00:10:244::/56", "10.244.0.0/16", true, ""},
		{"empty", "", "", false, "--cluster-cidr is empty"},
		{"ipv6 only", "fd00:10:244::/56", "", false, "no IPv4 CIDR"},
		{"two ipv4", "10.244.0.0/16,10.245.0.0/16", "", false, "one CIDR per family"},
		{"garbage", "10.244.0.0/16,nope", "", false, "nope"},
		{"host bits", "10.244.1.0/16", "", false, "did you mean 10.244.0.0/16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, first, err := ipv4Pool(tc.flag)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("ipv4Pool(%q) error %v, want one containing %q", tc.flag, err, tc.errHas)
				}
				return
			}
			if err != nil || pool.String() != tc.pool || first != tc.ipv4First {
				t.Fatalf("ipv4Pool(%q) = %s, %v, %v; want %s, %v", tc.flag, pool, first, err, tc.pool, tc.ipv4First)
			}
		})
	}
}

// TestNodeIPAMFlagsWarnedWhenUnused: --cluster-cidr and
// --node-cidr-mask-size-ipv4 without IPv4PodCIDRSource = cluster-cidr each
// get a start-up warning; with it, neither does.
func TestNodeIPAMFlagsWarnedWhenUnused(t *testing.T) {
	for _, used := range []bool{false, true} {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fs.String("cluster-cidr", "", "")
		ipam := &nodeIPAMOptions{maskSizeIPv4: defaultNodeCIDRMaskSizeIPv4}
		ipam.AddFlags(fs)
		if err := fs.Parse([]string{"--cluster-cidr=10.244.0.0/16", "--node-cidr-mask-size-ipv4=26"}); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		klog.LogToStderr(false)
		klog.SetOutput(&buf)
		warnNoEffect(fs, nil, used)
		klog.Flush()
		klog.LogToStderr(true)
		for _, flag := range []string{"--cluster-cidr", "--node-cidr-mask-size-ipv4"} {
			if warned := strings.Contains(buf.String(), "Flag "+flag+" "); warned == used {
				t.Errorf("IPv4PodCIDRSource used %v: warning for %s %v; log %q", used, flag, warned, buf.String())
			}
		}
	}
}
