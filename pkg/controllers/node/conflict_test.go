package node

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestConflictsDoNotGrowBackoff: a spec patch that conflicts (someone else
// changed the node) is retried soon, without the per-node exponential
// backoff a failing node gets, so a busy node is not pushed minutes away.
func TestConflictsDoNotGrowBackoff(t *testing.T) {
	sim := startSim(t, world)
	kube := fake.NewClientset(kubeletNode("n1", pid("i-0a000000000000001"), nil))
	var ctl atomic.Pointer[Controller]
	var conflicts atomic.Int32
	var mu sync.Mutex
	var requeues []int
	kube.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		if a.GetSubresource() == "" && strings.Contains(string(p.GetPatch()), `"podCIDR"`) && conflicts.Load() < 5 {
			if n := conflicts.Add(1); n > 1 && ctl.Load() != nil {
				mu.Lock()
				requeues = append(requeues, ctl.Load().queue.NumRequeues("n1"))
				mu.Unlock()
			}
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, "n1", errors.New("the object has been modified"))
		}
		return false, nil, nil
	})
	ctl.Store(runControllerWith(t, kube, newEC2(t, sim), Options{Mode: ModeAssign}))
	n := waitInitialized(t, kube, "n1")
	if conflicts.Load() != 5 || n.Spec.PodCIDR == "" {
		t.Fatalf("conflicts %d, podCIDR %q", conflicts.Load(), n.Spec.PodCIDR)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(requeues) == 0 {
		t.Fatal("no conflict observed with the controller running")
	}
	for i, r := range requeues {
		if r != 0 {
			t.Errorf("after conflict %d the node had %d backoff requeues, want 0", i+1, r)
		}
	}
	if len(events(t, kube, "n1", ReasonAPIConflict)) == 0 {
		t.Error("no APIConflict event")
	}
}
