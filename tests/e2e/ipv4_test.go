package e2e

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/upstream"
)

// ipv4CloudConfig turns IPv6 off: upstream cloud-provider-aws's defaults, spelled out.
const ipv4CloudConfig = `[Global]
NodeIPFamilies=ipv4
IPv6PrefixDelegation=off
`

// TestIPv4Mode: with IPv6 off, every node (the one in the IPv4-only subnet
// too) is initialized as upstream cloud-provider-aws initializes it, with no
// podCIDR and without a single mutating EC2 call.
func TestIPv4Mode(t *testing.T) {
	w := newWorld(t, demoScenario(t), true)
	ctx := t.Context()
	before := w.Sim.State()
	ccm := startCCM(t, w, harness.CCMOptions{CloudConfig: ipv4CloudConfig})

	ids := map[string]string{} // node name -> instance ID
	var names []string
	// The IPv6-only instance has no address of the IPv4 family: a Warning,
	// and it stays uninitialized.
	const ipv6Only = "i-0f0000000000000f1"
	ipv6OnlyNode := instanceByID(w, ipv6Only).PrivateDNSName
	if _, err := w.CreateNode(ctx, harness.NodeSpec{Name: ipv6OnlyNode, Ready: true}); err != nil {
		t.Fatal(err)
	}
	for _, in := range before.Instances {
		if in.ID == ipv6Only {
			continue
		}
		spec := harness.NodeSpec{Name: in.PrivateDNSName, Ready: true}
		// Some kubelets are started with --provider-id, most are found by name.
		if in.ID == "i-0a0000000000000c1" || in.ID == "i-0e0000000000000e1" {
			spec.ProviderID = upstream.ProviderID(in)
		}
		if _, err := w.CreateNode(ctx, spec); err != nil {
			t.Fatal(err)
		}
		ids[spec.Name] = in.ID
		names = append(names, spec.Name)
	}
	if len(names) != 5 {
		t.Fatalf("demo scenario has %d instances, want 5", len(names))
	}
	// Upstream removes the taint before it writes the addresses: wait for both.
	nodes := waitNodes(ctx, t, w, names, 2*time.Minute, func(n *corev1.Node) bool {
		return initialized(n) && len(n.Status.Addresses) > 0
	})

	for name, node := range nodes {
		in := instanceByID(w, ids[name])
		if want := upstream.ProviderID(in); node.Spec.ProviderID != want {
			t.Errorf("%s: providerID %q, want %q", name, node.Spec.ProviderID, want)
		}
		for k, v := range upstream.Labels(in, before.Region) {
			if node.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q; labels %v", name, k, node.Labels[k], v, node.Labels)
			}
		}
		if want := upstream.IPv4Addresses(in); !reflect.DeepEqual(node.Status.Addresses, want) {
			t.Errorf("%s: addresses\n got  %v\n want %v", name, node.Status.Addresses, want)
		}
		if node.Spec.PodCIDR != "" || len(node.Spec.PodCIDRs) != 0 {
			t.Errorf("%s: podCIDR %q %v written in IPv4 mode", name, node.Spec.PodCIDR, node.Spec.PodCIDRs)
		}
		// kube-apiserver's TaintNodesByCondition admission adds not-ready at
		// creation (the node controller clears it when kubelet heartbeats).
		for _, taint := range node.Spec.Taints {
			if taint.Key != "node.kubernetes.io/not-ready" {
				t.Errorf("%s: taint %v, want no taint but not-ready", name, taint)
			}
		}
	}

	// Nothing changed in EC2: no calls that mutate, and every ENI as it was.
	if m := w.Sim.MutatingCalls(); m != 0 {
		t.Errorf("%d mutating EC2 calls in IPv4 mode; counts %v", m, w.Sim.Counts())
	}
	for _, b := range before.Instances {
		if a := instanceByID(w, b.ID); !reflect.DeepEqual(b.ENIs, a.ENIs) {
			t.Errorf("%s: ENIs changed\n before %+v\n after  %+v", b.ID, b.ENIs, a.ENIs)
		}
	}
	// No other node needed a Warning: the IPv4-only subnet is fine in IPv4
	// mode; the IPv6-only instance gets one naming NodeIPFamilies.
	ev := warningEvent(ctx, t, w, ipv6OnlyNode, "NodeIPFamilies")
	if ev.Reason != "NoAddressOfFamily" {
		t.Errorf("%s: Warning %s: %s", ipv6OnlyNode, ev.Reason, ev.Message)
	}
	if n, err := w.Admin.CoreV1().Nodes().Get(ctx, ipv6OnlyNode, metav1.GetOptions{}); err != nil || !hasTaint(n, uninitializedTaint) || len(n.Status.Addresses) != 0 {
		t.Errorf("%s: IPv6-only node written in IPv4 mode: %v %v", ipv6OnlyNode, err, n)
	}
	evs, err := w.Admin.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.InvolvedObject.Name != ipv6OnlyNode {
			t.Errorf("Warning event on %s/%s: %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	if ccm.Exited() {
		t.Fatalf("CCM exited:\n%s", tail(ccm.Log(), 4000))
	}
	noForbidden(t, ccm)
}
