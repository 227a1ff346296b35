package main

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
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
			Conditions:      []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		}}
	out, err := stripNode(n)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1.Node)
	if got.ManagedFields != nil || got.Name != "n" || got.Labels["a"] != "b" {
		t.Errorf("transformed node %+v", got.ObjectMeta)
	}
	if got.Status.Images != nil || got.Status.VolumesInUse != nil || got.Status.VolumesAttached != nil {
		t.Errorf("image and volume lists kept: %+v", got.Status)
	}
	// What the node and lifecycle controllers read is kept.
	if got.Spec.ProviderID == "" || got.Spec.PodCIDR == "" || len(got.Status.Addresses) != 1 || len(got.Status.Conditions) != 1 {
		t.Errorf("needed fields dropped: %+v", got)
	}
	// Tombstones pass through untouched.
	d := cache.DeletedFinalStateUnknown{Key: "n", Obj: n}
	if out, err := stripNode(d); err != nil || out.(cache.DeletedFinalStateUnknown).Key != "n" {
		t.Errorf("tombstone: %v, %v", out, err)
	}
}
