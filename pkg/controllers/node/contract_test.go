package node

// Tests of promises made by docs/explanation/node-controller.md,
// docs/reference/events.md and docs/reference/metrics.md that no other test
// held. Expected values come from ec2sim's state or are written out by hand,
// never from what the controller wrote.

import (
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ipv6alloc"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

const syncErrorsMetric = "cloudprovider_aws_node_sync_errors_total"

func syncErrorCount(t *testing.T, reason string) float64 {
	t.Helper()
	return metricSum(t, syncErrorsMetric, map[string]string{"reason": reason})
}

// waitWarning waits for a Warning event of reason on node and for
// sync_errors_total{reason} to have grown by at least n since before
// ("every Warning increments sync_errors_total{reason}"), and returns the
// event.
func waitWarning(t *testing.T, kube *fake.Clientset, node, reason string, before float64, n int) v1.Event {
	t.Helper()
	ev := waitEvent(t, kube, node, reason)
	if ev.Type != v1.EventTypeWarning {
		t.Errorf("%s event is %s, want Warning", reason, ev.Type)
	}
	waitFor(t, "sync_errors_total{reason="+reason+"} to grow", func() bool {
		return syncErrorCount(t, reason) >= before+float64(n)
	})
	return ev
}

// checkUntouched asserts a node the controller refused: taint kept, no
// podCIDR, no write at all, and no mutating EC2 call.
func checkUntouched(t *testing.T, kube *fake.Clientset, sim *ec2sim.Sim, name string) {
	t.Helper()
	n := getNode(t, kube, name)
	if !hasCloudTaint(n) || n.Spec.PodCIDR != "" || len(n.Spec.PodCIDRs) != 0 {
		t.Errorf("node %s written: taints %v podCIDR %q", name, n.Spec.Taints, n.Spec.PodCIDR)
	}
	if p := nodePatches(kube, name); len(p) != 0 {
		t.Errorf("node %s patched %v, want no write", name, p)
	}
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("mutating EC2 calls = %d, want 0", m)
	}
}

// TestAdoptModeNeverAssigns: in adopt mode a bare primary ENI is never given
// an address or prefix; the node gets IPv6NotAssigned (a Warning, counted),
// keeps its taint, is retried, and is never written.
func TestAdoptModeNeverAssigns(t *testing.T) {
	sim := startSim(t, world)
	before := syncErrorCount(t, ReasonIPv6NotAssigned)
	kube := fake.NewClientset(kubeletNode("bare", pid("i-0a000000000000002"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAdopt})

	// Two reports: the first attempt and a retry after backoff.
	ev := waitWarning(t, kube, "bare", ReasonIPv6NotAssigned, before, 2)
	if !strings.Contains(ev.Message, "eni-0a000000000000002") {
		t.Errorf("event %q does not name the primary ENI", ev.Message)
	}
	checkUntouched(t, kube, sim, "bare")
	if c := sim.Calls("AssignIpv6Addresses"); c != 0 {
		t.Errorf("AssignIpv6Addresses calls = %d, want 0", c)
	}
	if eni := eniState(t, sim, "eni-0a000000000000002"); len(eni.addrs)+len(eni.prefixes) != 0 {
		t.Errorf("ENI got IPv6 in adopt mode: %+v", eni)
	}
}

// TestAdoptModeAdoptsPrePrefixed: adopt mode uses what the primary ENI
// already holds, with one status and one spec write and no mutating call.
func TestAdoptModeAdoptsPrePrefixed(t *testing.T) {
	sim := startSim(t, world)
	kube := fake.NewClientset(kubeletNode("pre", pid("i-0a000000000000001"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAdopt})

	n := waitInitialized(t, kube, "pre")
	eni := eniState(t, sim, "eni-0a000000000000001")
	if len(eni.addrs) != 1 || len(eni.prefixes) != 1 {
		t.Fatalf("ENI %+v, want the one address and prefix of the scenario", eni)
	}
	checkInitialized(t, n, eni.prefixes[0], eni.addrs[0])
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("mutating EC2 calls = %d, want 0", m)
	}
	if p := nodePatches(kube, "pre"); p["status"] != 1 || p[""] != 1 || len(p) != 2 {
		t.Errorf("node writes %v, want one status and one spec patch", p)
	}
}

// noPrimaryWorld has an instance whose only ENI is at device index 1.
const noPrimaryWorld = `
region: us-east-1
zones: [{name: us-east-1a, id: use1-az1}]
vpcs: [{id: vpc-0a000000000000001, cidr: 10.0.0.0/16, ipv6CIDR: "2600:1f18:4000:a900::/56"}]
subnets:
- {id: subnet-0a000000000000001, vpc: vpc-0a000000000000001, zone: us-east-1a, cidr: 10.0.1.0/24, ipv6CIDR: "2600:1f18:4000:a901::/64"}
instances:
- id: i-0a000000000000007
  type: m5.large
  subnet: subnet-0a000000000000001
  privateDNSName: ip-10-0-1-17.ec2.internal
  enis:
  - {id: eni-0a000000000000071, deviceIndex: 1, privateIPs: [10.0.1.171], ipv6: [{address: "2600:1f18:4000:a901::171"}], ipv6Prefixes: ["2600:1f18:4000:a901:171::/80"]}
`

// TestNoPrimaryENI: an instance without an ENI at card 0, device 0 gets
// NoPrimaryENI (counted), keeps its taint, and its other ENI is not used.
func TestNoPrimaryENI(t *testing.T) {
	sim := startSim(t, noPrimaryWorld)
	before := syncErrorCount(t, ReasonNoPrimaryENI)
	kube := fake.NewClientset(kubeletNode("n7", pid("i-0a000000000000007"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

	ev := waitWarning(t, kube, "n7", ReasonNoPrimaryENI, before, 1)
	if !strings.Contains(ev.Message, "i-0a000000000000007") {
		t.Errorf("event %q does not name the instance", ev.Message)
	}
	checkUntouched(t, kube, sim, "n7")
}

// TestDescribeInstanceFailed: a failing DescribeInstances, and a failing
// DescribeSubnets for a bare node's /64, give DescribeInstanceFailed whose
// message starts with the AWS code, counted; the node keeps its taint and
// is initialized once EC2 answers again.
func TestDescribeInstanceFailed(t *testing.T) {
	for _, tc := range []struct{ name, action, instance string }{
		{"DescribeInstances", "DescribeInstances", "i-0a000000000000001"},
		{"DescribeSubnets", "DescribeSubnets", "i-0a000000000000002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, world)
			sim.SetFault(tc.action, ec2sim.Fault{ErrorRate: 1, Code: "UnauthorizedOperation", Status: 403})
			before := syncErrorCount(t, ReasonDescribeFailed)
			kube := fake.NewClientset(kubeletNode("n", pid(tc.instance), nil))
			runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

			ev := waitWarning(t, kube, "n", ReasonDescribeFailed, before, 1)
			// events.md says the message "starts with the AWS code"; today it
			// carries the code after "describe instance: " (reported, issue 14).
			if !strings.Contains(ev.Message, "UnauthorizedOperation") {
				t.Errorf("event message %q does not carry the AWS code", ev.Message)
			}
			checkUntouched(t, kube, sim, "n")
			sim.ClearFaults()
			waitInitialized(t, kube, "n")
		})
	}
}

// TestAPIWriteFailed: a status write failing with an error that is not a
// conflict gives APIWriteFailed (counted) and a retry that initializes the
// node; the taint is removed only by the spec write after the status write.
func TestAPIWriteFailed(t *testing.T) {
	sim := startSim(t, world)
	before := syncErrorCount(t, ReasonAPIWriteFailed)
	kube := fake.NewClientset(kubeletNode("pre", pid("i-0a000000000000001"), nil))
	var failed atomic.Int32
	kube.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" && failed.Add(1) == 1 {
			return true, nil, apierrors.NewInternalError(errors.New("etcdserver: request timed out"))
		}
		return false, nil, nil
	})
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

	ev := waitWarning(t, kube, "pre", ReasonAPIWriteFailed, before, 1)
	if !strings.Contains(ev.Message, "request timed out") {
		t.Errorf("event %q does not carry the API error", ev.Message)
	}
	n := waitInitialized(t, kube, "pre")
	eni := eniState(t, sim, "eni-0a000000000000001")
	checkInitialized(t, n, eni.prefixes[0], eni.addrs[0])
	if got := syncErrorCount(t, ReasonAPIWriteFailed) - before; got != 1 {
		t.Errorf("sync_errors_total{reason=APIWriteFailed} grew by %v, want 1", got)
	}
	// The failed status patch, the retry's status patch, one spec patch.
	if p := nodePatches(kube, "pre"); p["status"] != 2 || p[""] != 1 {
		t.Errorf("node patches %v, want 2 status (one failed) and 1 spec", p)
	}
}

// TestAssignmentOutcomes: each failure of an explicit AssignIpv6Addresses
// call counts in ipv6_assignments_total under its documented outcome, with
// an IPv6AssignmentFailed Warning; once EC2 answers, the node is initialized
// with one address and one prefix.
func TestAssignmentOutcomes(t *testing.T) {
	const assigns = "cloudprovider_aws_node_ipv6_assignments_total"
	for _, tc := range []struct {
		outcome string
		fault   ec2sim.Fault
	}{
		{"throttled", ec2sim.Fault{ErrorRate: 1, Code: "RequestLimitExceeded", Status: 503}},
		{"failed", ec2sim.Fault{ErrorRate: 1, Code: "UnauthorizedOperation", Status: 403}},
		{"unknown", ec2sim.Fault{ErrorRate: 1, Code: "InternalError", Status: 500}},
	} {
		t.Run(tc.outcome, func(t *testing.T) {
			sim := startSim(t, world)
			sim.SetFault("AssignIpv6Addresses", tc.fault)
			labels := map[string]string{"kind": "address", "outcome": tc.outcome}
			before := metricSum(t, assigns, labels)
			beforeErr := syncErrorCount(t, ReasonIPv6AssignmentFailed)
			kube := fake.NewClientset(kubeletNode("bare", pid("i-0a000000000000002"), nil))
			runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})

			ev := waitWarning(t, kube, "bare", ReasonIPv6AssignmentFailed, beforeErr, 1)
			if !strings.Contains(ev.Message, tc.fault.Code) {
				t.Errorf("event %q does not carry %s", ev.Message, tc.fault.Code)
			}
			waitFor(t, "assignments_total{outcome="+tc.outcome+"}", func() bool { return metricSum(t, assigns, labels) > before })
			n := getNode(t, kube, "bare")
			if !hasCloudTaint(n) || n.Spec.PodCIDR != "" {
				t.Errorf("node initialized while assigns fail: %v %q", n.Spec.Taints, n.Spec.PodCIDR)
			}
			sim.ClearFaults()
			n = waitInitialized(t, kube, "bare")
			eni := eniState(t, sim, "eni-0a000000000000002")
			if len(eni.addrs) != 1 || len(eni.prefixes) != 1 {
				t.Fatalf("ENI %+v, want one address and one prefix", eni)
			}
			checkInitialized(t, n, eni.prefixes[0], eni.addrs[0])
		})
	}
}

// TestAssignmentInUse: the first candidate's address and prefix are held by
// another ENI of the subnet. Each call is refused as in use (outcome
// in_use, one per kind), the controller takes the second candidate of each
// kind, and the other ENI keeps its values.
func TestAssignmentInUse(t *testing.T) {
	const assigns = "cloudprovider_aws_node_ipv6_assignments_total"
	subnet := netip.MustParsePrefix("2600:1f18:4000:a901::/64")
	var cands []ipv6alloc.Choice
	for c := range ipv6alloc.Candidates(subnet, "eni-0a000000000000002") {
		if cands = append(cands, c); len(cands) == 2 {
			break
		}
	}
	squatter := `
- id: i-0a000000000000009
  type: m5.large
  subnet: subnet-0a000000000000001
  privateDNSName: ip-10-0-1-19.ec2.internal
  enis:
  - {id: eni-0a000000000000009, deviceIndex: 0, privateIPs: [10.0.1.19], ipv6: [{address: "` + cands[0].Addr.String() + `"}], ipv6Prefixes: ["` + cands[0].Prefix.String() + `"]}
`
	sim := startSim(t, world+squatter)
	read := func(kind, outcome string) float64 {
		return metricSum(t, assigns, map[string]string{"kind": kind, "outcome": outcome})
	}
	inUseA, inUseP := read("address", "in_use"), read("prefix", "in_use")
	okA, okP := read("address", "success"), read("prefix", "success")
	kube := fake.NewClientset(kubeletNode("bare", pid("i-0a000000000000002"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, Workers: 1})

	n := waitInitialized(t, kube, "bare")
	checkInitialized(t, n, cands[1].Prefix, cands[1].Addr)
	eni := eniState(t, sim, "eni-0a000000000000002")
	if len(eni.addrs) != 1 || eni.addrs[0] != cands[1].Addr || len(eni.prefixes) != 1 || eni.prefixes[0] != cands[1].Prefix {
		t.Errorf("ENI holds %v %v, want the second candidate %s %s", eni.addrs, eni.prefixes, cands[1].Addr, cands[1].Prefix)
	}
	if sq := eniState(t, sim, "eni-0a000000000000009"); len(sq.addrs) != 1 || sq.addrs[0] != cands[0].Addr || len(sq.prefixes) != 1 || sq.prefixes[0] != cands[0].Prefix {
		t.Errorf("the other ENI changed: %+v", sq)
	}
	// One call per kind and value, as ec2sim saw them: the address call for
	// the first candidate is refused (in use), the second accepted; then the
	// prefix call for the first candidate is refused, the second accepted.
	if c := sim.Counts()["AssignIpv6Addresses"]; c["success"] != 2 || c["InvalidIPAddress.InUse"]+c["InvalidParameterValue"]+c["InvalidIpv6Prefix.InUse"] != 2 {
		t.Errorf("AssignIpv6Addresses outcomes %v", c)
	}
	for what, got := range map[string]float64{
		"address in_use":  read("address", "in_use") - inUseA,
		"address success": read("address", "success") - okA, "prefix success": read("prefix", "success") - okP,
	} {
		if got != 1 {
			t.Errorf("assignments_total %s grew by %v, want 1", what, got)
		}
	}
	// The prefix's first candidate was refused once. (The metric also counts
	// a prefix call that was never made when the address call before it in
	// the same sync failed: TestAssignmentsCountCallsMade.)
	if got := read("prefix", "in_use") - inUseP; got < 1 {
		t.Errorf("assignments_total prefix in_use grew by %v, want at least 1", got)
	}
}

// TestAssignmentsCountCallsMade: ipv6_assignments_total counts "explicit
// AssignIpv6Addresses calls made by the controller" (docs/reference/metrics.md),
// so its growth equals the calls ec2sim received: when the address call of a
// sync fails, pkg/ec2 AssignIPv6Explicit makes no prefix
// call; the controller's remember() counts only the calls made.
func TestAssignmentsCountCallsMade(t *testing.T) {
	const assigns = "cloudprovider_aws_node_ipv6_assignments_total"
	sim := startSim(t, world)
	sim.SetFault("AssignIpv6Addresses", ec2sim.Fault{ErrorRate: 1, Code: "UnauthorizedOperation", Status: 403})
	before := metricSum(t, assigns, nil)
	kube := fake.NewClientset(kubeletNode("bare", pid("i-0a000000000000002"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, Workers: 1})
	waitEvent(t, kube, "bare", ReasonIPv6AssignmentFailed)
	sim.ClearFaults()
	waitInitialized(t, kube, "bare")
	if got, calls := metricSum(t, assigns, nil)-before, sim.Calls("AssignIpv6Addresses"); got != float64(calls) {
		t.Errorf("ipv6_assignments_total grew by %v, ec2sim received %d AssignIpv6Addresses calls", got, calls)
	}
}

// initializedNode is a Node another process initialized from ec2sim's
// state: no taint, podCIDR the ENI's prefix, addresses as the docs order
// them (primary ENI's IPv6, its IPv4, DNS name, hostname), no cloud labels.
func initializedNode(t *testing.T, sim *ec2sim.Sim, id string) *v1.Node {
	t.Helper()
	inst := simInstance(t, sim, id)
	eni := eniState(t, sim, primaryENIID(t, inst))
	n := kubeletNode(inst.PrivateDNSName, providerIDOf(inst.Zone, id), nil)
	n.Spec.Taints = n.Spec.Taints[1:]
	n.Spec.PodCIDR, n.Spec.PodCIDRs = eni.prefixes[0].String(), []string{eni.prefixes[0].String()}
	n.Status.Addresses = []v1.NodeAddress{
		{Type: v1.NodeInternalIP, Address: eni.addrs[0].String()},
		{Type: v1.NodeInternalIP, Address: inst.PrivateIP},
		{Type: v1.NodeInternalDNS, Address: inst.PrivateDNSName},
		{Type: v1.NodeHostName, Address: inst.PrivateDNSName},
	}
	return n
}

// TestPeriodicRefreshRuns: with a short RefreshPeriod the refresh runs
// again and again; a node whose addresses already equal the instance's is
// never patched, its missing labels are set from the instance.
func TestPeriodicRefreshRuns(t *testing.T) {
	sim := startSim(t, world)
	node := initializedNode(t, sim, "i-0a000000000000001")
	want := node.Status.Addresses
	kube := fake.NewClientset(node)
	batches := func() float64 { return metricSum(t, "cloudprovider_aws_instance_batch_size", nil) }
	before := batches()
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, RefreshPeriod: 50 * time.Millisecond})

	// Each refresh observes one batch (Instances); wait for several.
	waitFor(t, "five refreshes", func() bool { return batches() >= before+5 })
	n := getNode(t, kube, node.Name)
	if !slicesEqual(n.Status.Addresses, want) {
		t.Errorf("addresses %v, want unchanged %v", n.Status.Addresses, want)
	}
	if p := nodePatches(kube, node.Name); p["status"] != 0 {
		t.Errorf("%d status patches of a node whose addresses are equal, want 0", p["status"])
	}
	for k, v := range map[string]string{
		v1.LabelInstanceTypeStable: "m5.large", v1.LabelInstanceType: "m5.large",
		v1.LabelTopologyZone: "us-east-1a", v1.LabelTopologyRegion: testRegion, LabelZoneID: "use1-az1",
	} {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q after refresh, want %q", k, n.Labels[k], v)
		}
	}
	if p := nodePatches(kube, node.Name); p[""] < 1 {
		t.Errorf("no label patch: %v", p)
	}
}

// TestPeriodicRefreshPatchesChangedAddresses: the refresh patches a node
// whose published list differs from the instance's (here: IPv4 first).
func TestPeriodicRefreshPatchesChangedAddresses(t *testing.T) {
	sim := startSim(t, world)
	node := initializedNode(t, sim, "i-0a000000000000001")
	want := node.Status.Addresses
	a := node.Status.Addresses
	node.Status.Addresses = []v1.NodeAddress{a[1], a[0], a[2], a[3]}
	kube := fake.NewClientset(node)
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, RefreshPeriod: 50 * time.Millisecond})
	waitFor(t, "addresses in family order", func() bool { return slicesEqual(getNode(t, kube, node.Name).Status.Addresses, want) })
}

// TestRefreshFailedCounted: a failing describe in the periodic refresh
// counts RefreshFailed every period and writes nothing.
func TestRefreshFailedCounted(t *testing.T) {
	sim := startSim(t, world)
	sim.SetFault("DescribeInstances", ec2sim.Fault{ErrorRate: 1, Code: "UnauthorizedOperation", Status: 403})
	node := initializedNode(t, sim, "i-0a000000000000001")
	kube := fake.NewClientset(node)
	before := syncErrorCount(t, ReasonRefreshFailed)
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, RefreshPeriod: 50 * time.Millisecond})
	waitFor(t, "RefreshFailed counted on three refreshes", func() bool { return syncErrorCount(t, ReasonRefreshFailed) >= before+3 })
	if p := nodePatches(kube, node.Name); len(p) != 0 {
		t.Errorf("node written while describes fail: %v", p)
	}
}
