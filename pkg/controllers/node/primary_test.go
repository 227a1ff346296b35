package node

import (
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// primaryOf returns the ENI's addresses ec2sim flags primary.
func primaryOf(t *testing.T, sim *ec2sim.Sim, eniID string) []string {
	t.Helper()
	for _, in := range sim.State().Instances {
		for _, e := range in.ENIs {
			if e.ID == eniID {
				var out []string
				for _, a := range e.IPv6 {
					if a.Primary {
						out = append(out, a.Address)
					}
				}
				return out
			}
		}
	}
	t.Fatalf("ENI %s not in ec2sim state", eniID)
	return nil
}

// TestEnablePrimaryIPv6 marks the address primary on a bare instance (after
// the assignment) and on a pre-prefixed one (adopted), so that IPv6 target
// groups can hold them; without the option nothing is marked.
func TestEnablePrimaryIPv6(t *testing.T) {
	sim := startSim(t, world)
	kube := fake.NewClientset(kubeletNode("n1", pid("i-0a000000000000001"), nil), kubeletNode("n2", pid("i-0a000000000000002"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, EnablePrimaryIPv6: true})
	for name, eniID := range map[string]string{"n1": "eni-0a000000000000001", "n2": "eni-0a000000000000002"} {
		n := waitInitialized(t, kube, name)
		primary := primaryOf(t, sim, eniID)
		if len(primary) != 1 || primary[0] != firstInternalIP(n) {
			t.Errorf("%s: primary IPv6 on %s = %v, want the Node's first InternalIP %s", name, eniID, primary, firstInternalIP(n))
		}
	}
	if c := sim.Calls("ModifyNetworkInterfaceAttribute"); c != 2 {
		t.Errorf("ModifyNetworkInterfaceAttribute calls = %d, want one per ENI", c)
	}

	off := startSim(t, world)
	kube = fake.NewClientset(kubeletNode("n1", pid("i-0a000000000000001"), nil))
	runController(t, kube, newEC2(t, off), Options{Mode: ModeAssign})
	waitInitialized(t, kube, "n1")
	if p := primaryOf(t, off, "eni-0a000000000000001"); len(p) != 0 || off.Calls("ModifyNetworkInterfaceAttribute") != 0 {
		t.Errorf("option off: primary %v, calls %d", p, off.Calls("ModifyNetworkInterfaceAttribute"))
	}
}

// TestEnablePrimaryIPv6Refused: when EC2 refuses, the node keeps its taint
// and gets a PrimaryIPv6Failed Warning naming the ENI and EC2's reason.
func TestEnablePrimaryIPv6Refused(t *testing.T) {
	sim := startSim(t, world)
	sim.SetFault("ModifyNetworkInterfaceAttribute", ec2sim.Fault{ErrorRate: 1, Code: "UnauthorizedOperation"})
	kube := fake.NewClientset(kubeletNode("n1", pid("i-0a000000000000001"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, EnablePrimaryIPv6: true})
	ev := waitEvent(t, kube, "n1", ReasonPrimaryIPv6Failed)
	if ev.Type != "Warning" || !contains(ev.Message, "eni-0a000000000000001") || !contains(ev.Message, "UnauthorizedOperation") {
		t.Errorf("event %s %q", ev.Type, ev.Message)
	}
	if !hasCloudTaint(getNode(t, kube, "n1")) {
		t.Error("node initialized although its address could not be made primary")
	}
}
