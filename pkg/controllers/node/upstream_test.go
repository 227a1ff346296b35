package node

import (
	"context"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	nodecontroller "k8s.io/cloud-provider/controllers/node"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/cloud"
)

// runUpstream runs k8s.io/cloud-provider's own node controller with our AWS
// provider: the reference for IPv4 mode.
func runUpstream(t *testing.T, kube *fake.Clientset, provider *cloud.Cloud) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	factory := informers.NewSharedInformerFactory(kube, 0)
	c, err := nodecontroller.NewCloudNodeController(factory.Core().V1().Nodes(), kube, provider, time.Hour, 1, 1)
	if err != nil {
		cancel()
		t.Fatalf("upstream node controller: %v", err)
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { c.RunWithContext(ctx, controllersmetrics.NewControllerManagerMetrics("test")) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	})
}

// TestIPv4ModeMatchesUpstream initializes the same kubelet Nodes with our
// controller in mode off and with upstream's controller, against the same
// ec2sim, and compares the results field by field.
func TestIPv4ModeMatchesUpstream(t *testing.T) {
	sim := startSim(t, world)
	nodes := map[string]string{ // node name -> providerID
		"n1":                        pid("i-0a000000000000001"),
		"n3":                        pid("i-0a000000000000003"),
		"ip-10-0-1-12.ec2.internal": "",
	}
	ours, theirs := fake.NewClientset(), fake.NewClientset()
	for name, p := range nodes {
		for _, kube := range []*fake.Clientset{ours, theirs} {
			if _, err := kube.CoreV1().Nodes().Create(t.Context(), kubeletNode(name, p, nil), metav1.CreateOptions{}); err != nil {
				t.Fatalf("create node: %v", err)
			}
		}
	}
	runController(t, ours, newEC2(t, sim), Options{Mode: ModeOff, Families: []v1.IPFamily{v1.IPv4Protocol}})
	provider, err := cloud.New(t.Context(), &cloud.Config{
		Region: testRegion, NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, KubernetesClusterID: "test",
	}, cloud.Options{EC2: newEC2(t, sim)})
	if err != nil {
		t.Fatalf("provider: %v", err)
	}
	runUpstream(t, theirs, provider)

	for name := range nodes {
		got := waitInitialized(t, ours, name)
		// Upstream removes the taint first and writes addresses after.
		waitFor(t, "upstream addresses of "+name, func() bool { return firstInternalIP(getNode(t, theirs, name)) != "" })
		want := getNode(t, theirs, name)
		if !slicesEqual(got.Status.Addresses, want.Status.Addresses) {
			t.Errorf("%s addresses\n ours     %v\n upstream %v", name, got.Status.Addresses, want.Status.Addresses)
		}
		if !mapsEqual(got.Labels, want.Labels) {
			t.Errorf("%s labels\n ours     %v\n upstream %v", name, got.Labels, want.Labels)
		}
		if got.Spec.ProviderID != want.Spec.ProviderID || got.Spec.PodCIDR != "" || len(got.Spec.PodCIDRs) != 0 {
			t.Errorf("%s spec: providerID %q (upstream %q) podCIDR %q %v", name, got.Spec.ProviderID, want.Spec.ProviderID, got.Spec.PodCIDR, got.Spec.PodCIDRs)
		}
		if len(got.Spec.Taints) != len(want.Spec.Taints) || len(got.Spec.Taints) != 1 || got.Spec.Taints[0].Key != want.Spec.Taints[0].Key {
			t.Errorf("%s taints: ours %v upstream %v", name, got.Spec.Taints, want.Spec.Taints)
		}
		if len(got.Annotations) != len(want.Annotations) {
			t.Errorf("%s annotations: ours %v upstream %v", name, got.Annotations, want.Annotations)
		}
	}
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("mutating EC2 calls in IPv4 mode = %d", m)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
