package node

import (
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
)

// world is the ec2sim scenario shared by most tests: one dual-stack subnet,
// one IPv4-only subnet, and instances in every shape the issue lists.
const world = `
region: us-east-1
zones: [{name: us-east-1a, id: use1-az1}]
vpcs: [{id: vpc-0a000000000000001, cidr: 10.0.0.0/16, ipv6CIDR: "2600:1f18:4000:a900::/56"}]
subnets:
- {id: subnet-0a000000000000001, vpc: vpc-0a000000000000001, zone: us-east-1a, cidr: 10.0.1.0/24, ipv6CIDR: "2600:1f18:4000:a901::/64"}
- {id: subnet-0a000000000000002, vpc: vpc-0a000000000000001, zone: us-east-1a, cidr: 10.0.2.0/24}
instances:
- id: i-0a000000000000001 # pre-prefixed
  type: m5.large
  subnet: subnet-0a000000000000001
  privateDNSName: ip-10-0-1-11.ec2.internal
  enis:
  - {id: eni-0a000000000000001, deviceIndex: 0, privateIPs: [10.0.1.11], ipv6: [{address: "2600:1f18:4000:a901::11"}], ipv6Prefixes: ["2600:1f18:4000:a901:11::/80"]}
- id: i-0a000000000000002 # bare
  type: m5.large
  subnet: subnet-0a000000000000001
  privateDNSName: ip-10-0-1-12.ec2.internal
  enis:
  - {id: eni-0a000000000000002, deviceIndex: 0, privateIPs: [10.0.1.12]}
- id: i-0a000000000000003 # multi-ENI, device index 1 listed first and already prefixed
  type: m5.large
  subnet: subnet-0a000000000000001
  privateDNSName: ip-10-0-1-13.ec2.internal
  enis:
  - {id: eni-0a000000000000031, deviceIndex: 1, privateIPs: [10.0.1.131], ipv6: [{address: "2600:1f18:4000:a901::131"}], ipv6Prefixes: ["2600:1f18:4000:a901:131::/80"]}
  - {id: eni-0a000000000000030, deviceIndex: 0, privateIPs: [10.0.1.13]}
- id: i-0a000000000000004 # two prefixes
  type: m5.large
  subnet: subnet-0a000000000000001
  privateDNSName: ip-10-0-1-14.ec2.internal
  enis:
  - {id: eni-0a000000000000004, deviceIndex: 0, privateIPs: [10.0.1.14], ipv6: [{address: "2600:1f18:4000:a901::14"}], ipv6Prefixes: ["2600:1f18:4000:a901:14b::/80", "2600:1f18:4000:a901:14a::/80"]}
- id: i-0a000000000000005 # subnet without IPv6
  type: m5.large
  subnet: subnet-0a000000000000002
  privateDNSName: ip-10-0-2-15.ec2.internal
  enis:
  - {id: eni-0a000000000000005, deviceIndex: 0, privateIPs: [10.0.2.15]}
`

func pid(id string) string { return providerid.Format("us-east-1a", id) }

// checkInitialized asserts the IPv6 invariants on an initialized node.
func checkInitialized(t *testing.T, n *v1.Node, wantPrefix netip.Prefix, wantIPv6 netip.Addr) {
	t.Helper()
	if hasCloudTaint(n) {
		t.Errorf("node %s still has the cloud taint", n.Name)
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "example.com/other" {
		t.Errorf("other taints not kept: %v", n.Spec.Taints)
	}
	if n.Spec.PodCIDR != wantPrefix.String() || len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != wantPrefix.String() {
		t.Errorf("podCIDR %q podCIDRs %v, want %s", n.Spec.PodCIDR, n.Spec.PodCIDRs, wantPrefix)
	}
	if got := firstInternalIP(n); got != wantIPv6.String() {
		t.Errorf("first InternalIP %q, want %s (addresses %v)", got, wantIPv6, n.Status.Addresses)
	}
	if _, ok := n.Annotations[AnnotationAssignStarted]; ok {
		t.Errorf("intent annotation left on node: %v", n.Annotations)
	}
	id, err := providerid.Parse(n.Spec.ProviderID)
	if err != nil || id.Zone == "" {
		t.Fatalf("providerID %q: %v", n.Spec.ProviderID, err)
	}
	for k, v := range map[string]string{
		v1.LabelTopologyZone: id.Zone, v1.LabelFailureDomainBetaZone: id.Zone,
		v1.LabelTopologyRegion: testRegion, v1.LabelFailureDomainBetaRegion: testRegion,
		v1.LabelInstanceTypeStable: "m5.large", v1.LabelInstanceType: "m5.large",
	} {
		if n.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, n.Labels[k], v)
		}
	}
	if id.Zone == "us-east-1a" && n.Labels[LabelZoneID] != "use1-az1" {
		t.Errorf("label %s=%q, want use1-az1", LabelZoneID, n.Labels[LabelZoneID])
	}
}

func TestPrePrefixedAdoptedWithoutMutations(t *testing.T) {
	sim := startSim(t, world)
	kube := fake.NewClientset(kubeletNode("n1", pid("i-0a000000000000001"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

	n := waitInitialized(t, kube, "n1")
	checkInitialized(t, n, netip.MustParsePrefix("2600:1f18:4000:a901:11::/80"), netip.MustParseAddr("2600:1f18:4000:a901::11"))
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("mutating EC2 calls = %d, want 0", m)
	}
	if got := eniState(t, sim, "eni-0a000000000000001"); len(got.prefixes) != 1 || len(got.addrs) != 1 {
		t.Errorf("ENI changed: %+v", got)
	}
	if p := nodePatches(kube, "n1"); p["status"] != 1 || p[""] != 1 {
		t.Errorf("node writes %v, want one status and one spec patch", p)
	}
	want := []v1.NodeAddress{
		{Type: v1.NodeInternalIP, Address: "2600:1f18:4000:a901::11"},
		{Type: v1.NodeInternalIP, Address: "10.0.1.11"},
		{Type: v1.NodeInternalDNS, Address: "ip-10-0-1-11.ec2.internal"},
		{Type: v1.NodeHostName, Address: "ip-10-0-1-11.ec2.internal"},
	}
	if !slicesEqual(n.Status.Addresses, want) {
		t.Errorf("addresses\n got %v\nwant %v", n.Status.Addresses, want)
	}
}

func TestBareInstanceAssigned(t *testing.T) {
	sim := startSim(t, world)
	// No providerID: resolved by private DNS name, as kubelet names nodes on AWS.
	kube := fake.NewClientset(kubeletNode("ip-10-0-1-12.ec2.internal", "", nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

	n := waitInitialized(t, kube, "ip-10-0-1-12.ec2.internal")
	eni := eniState(t, sim, "eni-0a000000000000002")
	if len(eni.addrs) != 1 || len(eni.prefixes) != 1 {
		t.Fatalf("ENI holds %d addresses and %d prefixes, want 1 and 1", len(eni.addrs), len(eni.prefixes))
	}
	if eni.prefixes[0].Bits() != 80 {
		t.Errorf("prefix %s is not a /80", eni.prefixes[0])
	}
	checkInitialized(t, n, eni.prefixes[0], eni.addrs[0])
	if n.Spec.ProviderID != pid("i-0a000000000000002") {
		t.Errorf("providerID %q", n.Spec.ProviderID)
	}
	if c := sim.Calls("AssignIpv6Addresses"); c != 2 {
		t.Errorf("AssignIpv6Addresses calls = %d, want 2 (address, prefix)", c)
	}
	if p := nodePatches(kube, n.Name); p["status"] != 1 || p[""] != 2 {
		t.Errorf("node writes %v, want intent + status + spec", p)
	}
}

func TestMultiENIUsesPrimary(t *testing.T) {
	sim := startSim(t, world)
	kube := fake.NewClientset(kubeletNode("n3", pid("i-0a000000000000003"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

	n := waitInitialized(t, kube, "n3")
	primary := eniState(t, sim, "eni-0a000000000000030")
	if len(primary.addrs) != 1 || len(primary.prefixes) != 1 {
		t.Fatalf("primary ENI holds %+v, want one address and one prefix", primary)
	}
	checkInitialized(t, n, primary.prefixes[0], primary.addrs[0])
	other := eniState(t, sim, "eni-0a000000000000031")
	if len(other.prefixes) != 1 || other.prefixes[0].String() != "2600:1f18:4000:a901:131::/80" || len(other.addrs) != 1 {
		t.Errorf("device-index-1 ENI changed: %+v", other)
	}
	// Addresses: primary ENI first within each family.
	want := []string{primary.addrs[0].String(), "2600:1f18:4000:a901::131", "10.0.1.13", "10.0.1.131"}
	var got []string
	for _, a := range n.Status.Addresses {
		if a.Type == v1.NodeInternalIP {
			got = append(got, a.Address)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("InternalIPs %v, want %v", got, want)
	}
}

func TestTwoPrefixesPickLowestAndReport(t *testing.T) {
	sim := startSim(t, world)
	kube := fake.NewClientset(kubeletNode("n4", pid("i-0a000000000000004"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

	n := waitInitialized(t, kube, "n4")
	checkInitialized(t, n, netip.MustParsePrefix("2600:1f18:4000:a901:14a::/80"), netip.MustParseAddr("2600:1f18:4000:a901::14"))
	ev := waitEvent(t, kube, "n4", ReasonMultiplePrefixes)
	if ev.Type != v1.EventTypeWarning || !strings.Contains(ev.Message, "2600:1f18:4000:a901:14a::/80") {
		t.Errorf("event %s %q", ev.Type, ev.Message)
	}
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("mutating EC2 calls = %d, want 0", m)
	}
	if got := eniState(t, sim, "eni-0a000000000000004"); len(got.prefixes) != 2 {
		t.Errorf("ENI prefixes %v, want the two it had", got.prefixes)
	}
}

// TestSubnetWithoutIPv6KeepsTaint: a node whose subnet has no IPv6 CIDR
// gets a Warning naming the subnet, keeps its taint, is retried with
// backoff, and costs no mutating EC2 call: explicit values need the
// subnet's /64, so the controller knows before asking.
func TestSubnetWithoutIPv6KeepsTaint(t *testing.T) {
	sim := startSim(t, world)
	before := metricSum(t, "cloudprovider_aws_node_sync_errors_total", map[string]string{"reason": ReasonIPv6AssignmentFailed})
	kube := fake.NewClientset(kubeletNode("n5", pid("i-0a000000000000005"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

	ev := waitEvent(t, kube, "n5", ReasonIPv6AssignmentFailed)
	subnet := simInstance(t, sim, "i-0a000000000000005").Subnet
	if ev.Type != v1.EventTypeWarning || !strings.Contains(ev.Message, subnet) || !strings.Contains(ev.Message, "no IPv6 CIDR") {
		t.Errorf("event %s %q, want a Warning naming subnet %s", ev.Type, ev.Message, subnet)
	}
	// Retried with backoff: wait for a second failure, then check nothing was written.
	waitFor(t, "a retry", func() bool {
		return metricSum(t, "cloudprovider_aws_node_sync_errors_total", map[string]string{"reason": ReasonIPv6AssignmentFailed}) >= before+2
	})
	n := getNode(t, kube, "n5")
	if !hasCloudTaint(n) || n.Spec.PodCIDR != "" || len(n.Spec.PodCIDRs) != 0 {
		t.Errorf("node written: taint %v podCIDR %q", n.Spec.Taints, n.Spec.PodCIDR)
	}
	if p := nodePatches(kube, "n5"); len(p) != 0 {
		t.Errorf("node written: %v", p)
	}
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("mutating EC2 calls = %d, want 0", m)
	}
	if got := eniState(t, sim, "eni-0a000000000000005"); len(got.addrs)+len(got.prefixes) != 0 {
		t.Errorf("ENI got IPv6: %+v", got)
	}
}

func TestPodCIDRPresetDifferentUntouched(t *testing.T) {
	sim := startSim(t, world)
	node := kubeletNode("n1", pid("i-0a000000000000001"), nil)
	node.Spec.PodCIDR = "10.244.1.0/24"
	node.Spec.PodCIDRs = []string{"10.244.1.0/24"}
	kube := fake.NewClientset(node)
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

	ev := waitEvent(t, kube, "n1", ReasonPodCIDRMismatch)
	if ev.Type != v1.EventTypeWarning || !strings.Contains(ev.Message, "10.244.1.0/24") {
		t.Errorf("event %s %q", ev.Type, ev.Message)
	}
	n := getNode(t, kube, "n1")
	if n.Spec.PodCIDR != "10.244.1.0/24" || len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != "10.244.1.0/24" {
		t.Errorf("podCIDR changed: %q %v", n.Spec.PodCIDR, n.Spec.PodCIDRs)
	}
	if !hasCloudTaint(n) {
		t.Error("taint removed from a node with a foreign podCIDR")
	}
	if p := nodePatches(kube, "n1"); len(p) != 0 {
		t.Errorf("node written: %v", p)
	}
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("mutating EC2 calls = %d, want 0", m)
	}
}

func slicesEqual(a, b []v1.NodeAddress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
