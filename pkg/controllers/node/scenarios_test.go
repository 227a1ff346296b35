package node

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	cloudproviderapi "k8s.io/cloud-provider/api"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// lastErrorCode returns an error code ec2sim answered for action.
func lastErrorCode(sim *ec2sim.Sim, action string) string {
	var codes []string
	for outcome := range sim.Counts()[action] {
		if outcome != "success" && outcome != "throttled" {
			codes = append(codes, outcome)
		}
	}
	sort.Strings(codes)
	if len(codes) == 0 {
		return ""
	}
	return codes[0]
}

func TestProvidedNodeIP(t *testing.T) {
	const v4, v6 = "10.0.1.11", "2600:1f18:4000:a901::11"
	cases := []struct {
		name, provided string
		want           []v1.NodeAddress // nil: NodeIPNotFound, taint stays
		families       []v1.IPFamily    // nil: the IPv6 modes' default, IPv6 first
	}{
		{"ipv4", v4, []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: v4},
			{Type: v1.NodeInternalDNS, Address: "ip-10-0-1-11.ec2.internal"},
			{Type: v1.NodeHostName, Address: "ip-10-0-1-11.ec2.internal"},
		}, nil},
		{"ipv6", v6, []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: v6},
			{Type: v1.NodeInternalDNS, Address: "ip-10-0-1-11.ec2.internal"},
			{Type: v1.NodeHostName, Address: "ip-10-0-1-11.ec2.internal"},
		}, nil},
		{"dual-stack", v6 + "," + v4, []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: v6},
			{Type: v1.NodeInternalIP, Address: v4},
			{Type: v1.NodeInternalDNS, Address: "ip-10-0-1-11.ec2.internal"},
			{Type: v1.NodeHostName, Address: "ip-10-0-1-11.ec2.internal"},
		}, nil},
		// IPv4 first by NodeIPFamilies: only honouring "::" puts IPv6 first.
		{"unspecified-ipv6", "::", []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: v6},
			{Type: v1.NodeInternalIP, Address: v4},
			{Type: v1.NodeInternalDNS, Address: "ip-10-0-1-11.ec2.internal"},
			{Type: v1.NodeHostName, Address: "ip-10-0-1-11.ec2.internal"},
		}, []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}},
		{"not-on-instance", "10.9.9.9", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, world)
			ann := map[string]string{cloudproviderapi.AnnotationAlphaProvidedIPAddr: tc.provided}
			kube := fake.NewClientset(kubeletNode("n1", pid("i-0a000000000000001"), ann))
			runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, Families: tc.families})
			if tc.want == nil {
				ev := waitEvent(t, kube, "n1", ReasonNodeIPNotFound)
				if ev.Type != v1.EventTypeWarning || !strings.Contains(ev.Message, tc.provided) {
					t.Errorf("event %s %q", ev.Type, ev.Message)
				}
				n := getNode(t, kube, "n1")
				if !hasCloudTaint(n) || n.Spec.PodCIDR != "" {
					t.Errorf("node initialized despite a foreign node IP: %v %q", n.Spec.Taints, n.Spec.PodCIDR)
				}
				if p := nodePatches(kube, "n1"); len(p) != 0 {
					t.Errorf("node written: %v", p)
				}
				return
			}
			n := waitInitialized(t, kube, "n1")
			if !slicesEqual(n.Status.Addresses, tc.want) {
				t.Errorf("addresses\n got %v\nwant %v", n.Status.Addresses, tc.want)
			}
			if n.Spec.PodCIDR != "2600:1f18:4000:a901:11::/80" {
				t.Errorf("podCIDR %q", n.Spec.PodCIDR)
			}
		})
	}
}

// TestCrashBetweenAssignAndWrite drops every node write after the intent
// annotation, stops the controller once EC2 has assigned, and starts a new
// one (fresh process state, fresh EC2 client) while ec2sim still hides the
// assignment from describes. The new controller asks EC2 for the values
// the intent recorded again, which EC2 refuses as in use; it waits for the
// holder to show and adopts. The ENI never gets a second address or prefix.
func TestCrashBetweenAssignAndWrite(t *testing.T) {
	sim := startSim(t, world)
	sim.SetFault("DescribeInstances", ec2sim.Fault{ConsistencyLag: 2 * time.Second})
	kube := fake.NewClientset(kubeletNode("n2", pid("i-0a000000000000002"), nil))
	var drop atomic.Bool
	drop.Store(true)
	kube.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		if drop.Load() && !strings.Contains(string(p.GetPatch()), AnnotationAssignStarted+`":"`) {
			return true, nil, errors.New("simulated crash: write lost")
		}
		return false, nil, nil
	})

	stop := runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, AssignSettle: 30 * time.Second})
	waitFor(t, "address and prefix assigned", func() bool { return sim.Counts()["AssignIpv6Addresses"]["success"] == 2 })
	stop()
	first := getNode(t, kube, "n2")
	if _, ok := first.Annotations[AnnotationAssignStarted]; !ok || !hasCloudTaint(first) || first.Spec.PodCIDR != "" {
		t.Fatalf("after the crash: annotations %v taints %v podCIDR %q", first.Annotations, first.Spec.Taints, first.Spec.PodCIDR)
	}
	in, ok := parseIntent(first.Annotations[AnnotationAssignStarted])
	assigned := eniState(t, sim, "eni-0a000000000000002")
	if !ok || !in.explicit || len(assigned.addrs) != 1 || len(assigned.prefixes) != 1 || in.addr != assigned.addrs[0] || in.prefix != assigned.prefixes[0] {
		t.Fatalf("intent %q does not record what EC2 assigned (%v %v)", first.Annotations[AnnotationAssignStarted], assigned.addrs, assigned.prefixes)
	}
	drop.Store(false)

	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, AssignSettle: 30 * time.Second})
	n := waitInitialized(t, kube, "n2")
	eni := eniState(t, sim, "eni-0a000000000000002")
	if len(eni.addrs) != 1 || len(eni.prefixes) != 1 {
		t.Fatalf("ENI holds %d addresses and %d prefixes after restart, want 1 and 1", len(eni.addrs), len(eni.prefixes))
	}
	checkInitialized(t, n, eni.prefixes[0], eni.addrs[0])
	// Two accepted calls; the restarted controller's repeat of the recorded
	// address was refused as in use, and nothing else was asked.
	counts := sim.Counts()["AssignIpv6Addresses"]
	if counts["success"] != 2 || counts["InvalidIPAddress.InUse"] != 1 || len(counts) != 2 {
		t.Errorf("AssignIpv6Addresses outcomes %v, want 2 successes and 1 InvalidIPAddress.InUse", counts)
	}
	if len(events(t, kube, "n2", ReasonAssignPending)) == 0 {
		t.Error("no IPv6AssignmentPending event while EC2 hid the assignment")
	}
}

func TestThrottlingStormConverges(t *testing.T) {
	const n = 24
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: n, IPv6Subnet: true})
	sim := startSimScenario(t, sc)
	sim.SetThrottling(true)
	sim.SetBucket("AssignIpv6Addresses", 4, 20)
	sim.SetBucket("DescribeInstances", 3, 20)
	sim.SetFault("AssignIpv6Addresses", ec2sim.Fault{ErrorRate: 0.3, Code: "RequestLimitExceeded", Status: 503})

	st := sim.State()
	var nodes []runtime.Object
	for _, inst := range st.Instances {
		nodes = append(nodes, kubeletNode(inst.ID, providerIDOf(inst.Zone, inst.ID), nil))
	}
	kube := fake.NewClientset(nodes...)
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, Workers: 16})

	prefixes := map[netip.Prefix]string{}
	for _, inst := range st.Instances {
		node := waitInitialized(t, kube, inst.ID)
		eni := eniState(t, sim, primaryENIID(t, inst))
		if len(eni.addrs) != 1 || len(eni.prefixes) != 1 {
			t.Errorf("%s: ENI holds %d addresses and %d prefixes, want 1 and 1", inst.ID, len(eni.addrs), len(eni.prefixes))
			continue
		}
		checkInitialized(t, node, eni.prefixes[0], eni.addrs[0])
		if p := nodePatches(kube, inst.ID); p["status"] != 1 || p[""] != 2 {
			t.Errorf("%s: node writes %v, want intent + status + spec", inst.ID, p)
		}
		if other, dup := prefixes[eni.prefixes[0]]; dup {
			t.Errorf("%s and %s share pod CIDR %s", inst.ID, other, eni.prefixes[0])
		}
		prefixes[eni.prefixes[0]] = inst.ID
	}
	counts := sim.Counts()["AssignIpv6Addresses"]
	if counts["success"] != 2*n {
		t.Errorf("successful assigns = %d, want %d (counts %v)", counts["success"], 2*n, counts)
	}
	if counts["throttled"]+counts["RequestLimitExceeded"] == 0 {
		t.Errorf("no throttling happened: %v", counts)
	}
}

func providerIDOf(zone, id string) string { return fmt.Sprintf("aws:///%s/%s", zone, id) }

func TestInitializedNodeGetsPodCIDR(t *testing.T) {
	sim := startSim(t, world)
	node := kubeletNode("n1", pid("i-0a000000000000001"), nil)
	node.Spec.Taints = node.Spec.Taints[1:] // initialized by another CCM
	kube := fake.NewClientset(node)
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

	waitFor(t, "podCIDR set", func() bool { return getNode(t, kube, "n1").Spec.PodCIDR != "" })
	checkInitialized(t, getNode(t, kube, "n1"), netip.MustParsePrefix("2600:1f18:4000:a901:11::/80"), netip.MustParseAddr("2600:1f18:4000:a901::11"))
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("mutating EC2 calls = %d", m)
	}
}

// TestRefreshIsBatched checks that one refresh of many initialized nodes
// costs one DescribeInstances, and patches only nodes whose address list
// differs.
func TestRefreshIsBatched(t *testing.T) {
	const n = 60
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: n, IPv6Subnet: true, PrePrefixed: true})
	sim := startSimScenario(t, sc)
	st := sim.State()
	var nodes []runtime.Object
	for _, inst := range st.Instances {
		node := kubeletNode(inst.ID, providerIDOf(inst.Zone, inst.ID), nil)
		node.Spec.Taints = node.Spec.Taints[1:]
		eni := eniState(t, sim, primaryENIID(t, inst))
		node.Spec.PodCIDR = eni.prefixes[0].String()
		node.Spec.PodCIDRs = []string{node.Spec.PodCIDR}
		nodes = append(nodes, node)
	}
	kube := fake.NewClientset(nodes...)
	before := describeOps(t)
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

	for _, inst := range st.Instances {
		eni := eniState(t, sim, primaryENIID(t, inst))
		waitFor(t, "addresses of "+inst.ID, func() bool { return firstInternalIP(getNode(t, kube, inst.ID)) == eni.addrs[0].String() })
	}
	if c := describeOps(t) - before; c != 1 {
		t.Errorf("DescribeInstances calls = %v for %d nodes, want 1", c, n)
	}
	list, err := kube.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	for _, node := range list.Items {
		if p := nodePatches(kube, node.Name); p["status"] != 1 {
			t.Errorf("%s: %d status patches, want 1", node.Name, p["status"])
		}
	}
}

func TestBadInstancesKeepTaint(t *testing.T) {
	cases := []struct{ name, providerID, terminate, reason string }{
		{"unknown", pid("i-0a0000000000000ff"), "", ReasonInstanceNotFound},
		{"terminated", pid("i-0a000000000000001"), "i-0a000000000000001", ReasonInstanceNotFound},
		{"foreign", "gce://project/zone/vm", "", ReasonProviderIDInvalid},
		{"malformed", "aws:///us-east-1a/vm-1", "", ReasonProviderIDInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, world)
			if tc.terminate != "" {
				if err := sim.SetInstanceState(tc.terminate, "terminated"); err != nil {
					t.Fatalf("terminate: %v", err)
				}
			}
			kube := fake.NewClientset(kubeletNode("n", tc.providerID, nil))
			runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})
			ev := waitEvent(t, kube, "n", tc.reason)
			if ev.Type != v1.EventTypeWarning {
				t.Errorf("event type %s", ev.Type)
			}
			n := getNode(t, kube, "n")
			if !hasCloudTaint(n) || n.Spec.PodCIDR != "" || n.Spec.ProviderID != tc.providerID {
				t.Errorf("node written: taints %v podCIDR %q providerID %q", n.Spec.Taints, n.Spec.PodCIDR, n.Spec.ProviderID)
			}
			if p := nodePatches(kube, "n"); len(p) != 0 {
				t.Errorf("node writes %v, want none", p)
			}
			if m := sim.MutatingCalls(); m != 0 {
				t.Errorf("mutating EC2 calls = %d", m)
			}
		})
	}
}

// A burst handled by one worker, node after node, still shares describes:
// queued nodes announce their lookups, which ride along in the first call.
func TestSequentialBurstSharesDescribes(t *testing.T) {
	const n = 60
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: n, IPv6Subnet: true, PrePrefixed: true})
	sim := startSimScenario(t, sc)
	st := sim.State()
	var nodes []runtime.Object
	for i, inst := range st.Instances {
		pid := providerIDOf(inst.Zone, inst.ID)
		if i%2 == 1 {
			pid = "" // looked up by private DNS name
		}
		name := inst.ID
		if pid == "" {
			name = inst.PrivateDNSName
		}
		nodes = append(nodes, kubeletNode(name, pid, nil))
	}
	kube := fake.NewClientset(nodes...)
	before := describeOps(t)
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, Workers: 1})
	for _, obj := range nodes {
		waitInitialized(t, kube, obj.(*v1.Node).Name)
	}
	// One call for the IDs, one for the names. Without the announced
	// lookups this is one call per node.
	if c := describeOps(t) - before; c != 2 {
		t.Errorf("DescribeInstances calls = %v for %d nodes on one worker, want exactly 2", c, n)
	}
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("mutating calls = %d, want 0", m)
	}
}
