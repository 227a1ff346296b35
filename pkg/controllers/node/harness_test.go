package node

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	cloudproviderapi "k8s.io/cloud-provider/api"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

func TestMain(m *testing.M) {
	backoffBase, backoffMax = 10*time.Millisecond, 500*time.Millisecond
	conflictRetry = 20 * time.Millisecond
	code := m.Run()
	// Every Warning any test made counted in sync_errors_total, and every
	// reason is documented; a run of every test emits every documented one.
	if code == 0 {
		whole := flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == ""
		for _, p := range checkWarningTally(whole) {
			fmt.Fprintln(os.Stderr, "FAIL: warning tally:", p)
			code = 1
		}
	}
	os.Exit(code)
}

const testRegion = "us-east-1"

// startSim starts ec2sim with a YAML scenario.
func startSim(t *testing.T, yaml string) *ec2sim.Sim {
	t.Helper()
	sc, err := ec2sim.ParseScenario([]byte(yaml))
	if err != nil {
		t.Fatalf("parse scenario: %v", err)
	}
	return startSimScenario(t, sc)
}

func startSimScenario(t *testing.T, sc *ec2sim.Scenario) *ec2sim.Sim {
	t.Helper()
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		t.Fatalf("start ec2sim: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// newEC2 builds the real client, talking to sim over HTTP. Each call gives a
// fresh client, as a restarted process would have.
func newEC2(t *testing.T, sim *ec2sim.Sim) *ec2.Client {
	t.Helper()
	c, err := ec2.NewFromAWSConfig(sim.AWSConfig(), ec2.Config{Region: sim.Region(), BatchWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("ec2 client: %v", err)
	}
	return c
}

// runController starts a controller on kube and returns a function that
// stops it and waits for it to return.
func runController(t *testing.T, kube *fake.Clientset, cloud EC2, opts Options) func() {
	t.Helper()
	_, stop := startController(t, kube, cloud, opts)
	return stop
}

// runControllerWith is runController returning the controller itself.
func runControllerWith(t *testing.T, kube *fake.Clientset, cloud EC2, opts Options) *Controller {
	t.Helper()
	c, _ := startController(t, kube, cloud, opts)
	return c
}

func startController(t *testing.T, kube *fake.Clientset, cloud EC2, opts Options) (*Controller, func()) {
	t.Helper()
	if opts.Region == "" {
		opts.Region = testRegion
	}
	if opts.Workers == 0 {
		opts.Workers = 8
	}
	if opts.RefreshPeriod == 0 {
		opts.RefreshPeriod = time.Hour
	}
	ctx, cancel := context.WithCancel(t.Context())
	factory := informers.NewSharedInformerFactory(kube, 0)
	c, err := New(kube, factory.Core().V1().Nodes(), cloud, opts)
	if err != nil {
		cancel()
		t.Fatalf("new controller: %v", err)
	}
	tallyWarnings(c)
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			factory.Shutdown()
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// kubeletNode is a Node as kubelet registers it with --cloud-provider=external.
func kubeletNode(name, providerID string, annotations map[string]string) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:              name,
			Annotations:       annotations,
			Labels:            map[string]string{v1.LabelHostname: name, v1.LabelOSStable: "linux"},
			CreationTimestamp: metav1.Now(),
		},
		Spec: v1.NodeSpec{
			ProviderID: providerID,
			Taints: []v1.Taint{
				{Key: cloudproviderapi.TaintExternalCloudProvider, Value: "true", Effect: v1.TaintEffectNoSchedule},
				{Key: "example.com/other", Value: "x", Effect: v1.TaintEffectNoExecute},
			},
		},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeHostName, Address: name}}},
	}
}

func getNode(t *testing.T, kube *fake.Clientset, name string) *v1.Node {
	t.Helper()
	n, err := kube.CoreV1().Nodes().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %s: %v", name, err)
	}
	return n
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitInitialized waits until the node's cloud taint is gone.
func waitInitialized(t *testing.T, kube *fake.Clientset, name string) *v1.Node {
	t.Helper()
	waitFor(t, "node "+name+" initialized", func() bool { return !hasCloudTaint(getNode(t, kube, name)) })
	return getNode(t, kube, name)
}

// events lists the events recorded about a node.
func events(t *testing.T, kube *fake.Clientset, node, reason string) []v1.Event {
	t.Helper()
	list, err := kube.CoreV1().Events(metav1.NamespaceAll).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	var out []v1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Name == node && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func waitEvent(t *testing.T, kube *fake.Clientset, node, reason string) v1.Event {
	t.Helper()
	var ev []v1.Event
	waitFor(t, fmt.Sprintf("event %s on %s", reason, node), func() bool {
		ev = events(t, kube, node, reason)
		return len(ev) > 0
	})
	return ev[0]
}

// nodePatches counts patch actions on a node, by subresource ("" or "status").
func nodePatches(kube *fake.Clientset, node string) map[string]int {
	out := map[string]int{}
	for _, a := range kube.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "nodes" {
			if pa, ok := a.(interface{ GetName() string }); ok && pa.GetName() == node {
				out[a.GetSubresource()]++
			}
		}
	}
	return out
}

// simENI is one ENI as ec2sim's state holds it.
type simENI struct {
	addrs    []netip.Addr
	prefixes []netip.Prefix
}

// eniState reads an ENI's IPv6 addresses and prefixes from ec2sim's state.
func eniState(t *testing.T, sim *ec2sim.Sim, eniID string) simENI {
	t.Helper()
	for _, inst := range sim.State().Instances {
		for _, e := range inst.ENIs {
			if e.ID != eniID {
				continue
			}
			var out simENI
			for _, a := range e.IPv6 {
				out.addrs = append(out.addrs, netip.MustParseAddr(a.Address))
			}
			for _, p := range e.IPv6Prefixes {
				out.prefixes = append(out.prefixes, netip.MustParsePrefix(p))
			}
			slices.SortFunc(out.prefixes, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
			return out
		}
	}
	t.Fatalf("ENI %s not in ec2sim state", eniID)
	return simENI{}
}

// firstInternalIP returns the node's first InternalIP.
func firstInternalIP(n *v1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == v1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// primaryENIID returns the ID of the instance's ENI at card 0, device 0.
func primaryENIID(t *testing.T, inst ec2sim.InstanceState) string {
	t.Helper()
	for _, e := range inst.ENIs {
		if e.NetworkCardIndex == 0 && e.DeviceIndex == 0 {
			return e.ID
		}
	}
	t.Fatalf("instance %s has no primary ENI", inst.ID)
	return ""
}
