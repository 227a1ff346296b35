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
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/upstream"
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
// controller in mode off and with k8s.io/cloud-provider's own controller
// (on our provider), against the same ec2sim, and checks both against
// tests/upstream's model of cloud-provider-aws, computed from ec2sim's state:
// addresses, labels, providerID, taints and annotations.
func TestIPv4ModeMatchesUpstream(t *testing.T) {
	sim := startSim(t, world)
	nodes := map[string]string{ // node name -> instance
		"n1":                        "i-0a000000000000001",
		"n3":                        "i-0a000000000000003", // two ENIs, device index 1 listed first
		"ip-10-0-1-12.ec2.internal": "i-0a000000000000002", // found by private DNS name
	}
	state := sim.State()
	ours, theirs := fake.NewClientset(), fake.NewClientset()
	for name, id := range nodes {
		in, _ := state.Instance(id)
		p := upstream.ProviderID(in)
		if name == in.PrivateDNSName {
			p = ""
		}
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

	for name, id := range nodes {
		in, _ := state.Instance(id)
		wantLabels := upstream.Labels(in, state.Region)
		wantLabels[v1.LabelHostname], wantLabels[v1.LabelOSStable] = name, "linux" // kubelet's own
		got := waitInitialized(t, ours, name)
		// Upstream removes the taint first and writes addresses after.
		waitFor(t, "upstream addresses of "+name, func() bool { return firstInternalIP(getNode(t, theirs, name)) != "" })
		for side, n := range map[string]*v1.Node{"ours": got, "upstream's framework": getNode(t, theirs, name)} {
			if want := upstream.IPv4Addresses(in); !slicesEqual(n.Status.Addresses, want) {
				t.Errorf("%s, %s: addresses\n got  %v\n want %v", side, name, n.Status.Addresses, want)
			}
			if !mapsEqual(n.Labels, wantLabels) {
				t.Errorf("%s, %s: labels\n got  %v\n want %v", side, name, n.Labels, wantLabels)
			}
			if want := upstream.ProviderID(in); n.Spec.ProviderID != want || n.Spec.PodCIDR != "" || len(n.Spec.PodCIDRs) != 0 {
				t.Errorf("%s, %s: providerID %q (want %q), podCIDR %q %v (want none)", side, name, n.Spec.ProviderID, want, n.Spec.PodCIDR, n.Spec.PodCIDRs)
			}
			// Only kubelet's other taint is left.
			if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "example.com/other" {
				t.Errorf("%s, %s: taints %v, want only example.com/other", side, name, n.Spec.Taints)
			}
			if len(n.Annotations) != 0 {
				t.Errorf("%s, %s: annotations %v, want none", side, name, n.Annotations)
			}
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
