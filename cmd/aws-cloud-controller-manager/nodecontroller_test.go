package main

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestStripManagedFields(t *testing.T) {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"a": "b"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}}}
	out, err := stripManagedFields(n)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1.Node)
	if got.ManagedFields != nil || got.Name != "n" || got.Labels["a"] != "b" {
		t.Errorf("transformed node %+v", got.ObjectMeta)
	}
	// Tombstones pass through untouched.
	d := cache.DeletedFinalStateUnknown{Key: "n", Obj: n}
	if out, err := stripManagedFields(d); err != nil || out.(cache.DeletedFinalStateUnknown).Key != "n" {
		t.Errorf("tombstone: %v, %v", out, err)
	}
}
