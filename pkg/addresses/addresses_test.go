package addresses

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
)

var (
	v4   = []v1.IPFamily{v1.IPv4Protocol}
	v6   = []v1.IPFamily{v1.IPv6Protocol}
	v6v4 = []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}
	v4v6 = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
)

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

// multiENI is an instance with two ENIs, listed secondary first, whose
// primary ENI lists a non-primary IPv6 address before the primary one.
func multiENI() *ec2.Instance {
	return &ec2.Instance{
		ID:             "i-0123456789abcdef0",
		PrivateDNSName: "ip-10-0-1-5.ec2.internal",
		PublicIP:       a("54.1.2.3"),
		PublicDNSName:  "ec2-54-1-2-3.compute-1.amazonaws.com",
		ENIs: []ec2.ENI{
			{ID: "eni-b", DeviceIndex: 1, PrivateIPv4: []netip.Addr{a("10.0.2.7")},
				IPv6: []ec2.IPv6Address{{Addr: a("2600:1f18::b1")}}},
			{ID: "eni-a", DeviceIndex: 0, PrivateIPv4: []netip.Addr{a("10.0.1.5"), a("10.0.1.6")},
				IPv6: []ec2.IPv6Address{{Addr: a("2600:1f18::5")}, {Addr: a("2600:1f18::a0"), Primary: true}}},
		},
	}
}

func na(t v1.NodeAddressType, s string) v1.NodeAddress { return v1.NodeAddress{Type: t, Address: s} }

func TestBuild(t *testing.T) {
	v4Part := []v1.NodeAddress{
		na(v1.NodeInternalIP, "10.0.1.5"), na(v1.NodeInternalIP, "10.0.1.6"), na(v1.NodeInternalIP, "10.0.2.7"),
		na(v1.NodeExternalIP, "54.1.2.3"),
		na(v1.NodeInternalDNS, "ip-10-0-1-5.ec2.internal"), na(v1.NodeHostName, "ip-10-0-1-5.ec2.internal"),
		na(v1.NodeExternalDNS, "ec2-54-1-2-3.compute-1.amazonaws.com"),
	}
	v6Part := []v1.NodeAddress{na(v1.NodeInternalIP, "2600:1f18::a0"), na(v1.NodeInternalIP, "2600:1f18::b1")}
	tests := []struct {
		name string
		fams []v1.IPFamily
		want []v1.NodeAddress
	}{
		{"ipv4 like upstream", v4, v4Part},
		{"ipv6 only", v6, v6Part},
		{"ipv6 first", v6v4, append(append([]v1.NodeAddress{}, v6Part...), v4Part...)},
		{"ipv4 first", v4v6, append(append([]v1.NodeAddress{}, v4Part...), v6Part...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Build(multiENI(), tt.fams)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Build =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

// TestBuildIPv6Only: an instance in an IPv6-only subnet has no IPv4 and a
// resource-based name. Whatever the families, no address is empty; the
// IPv6 family carries the name as InternalDNS and Hostname, and the IPv4
// family alone yields no InternalIP.
func TestBuildIPv6Only(t *testing.T) {
	const name = "i-0123456789abcdef0.eu-west-1.compute.internal"
	inst := &ec2.Instance{ID: "i-0123456789abcdef0", PrivateDNSName: name, ENIs: []ec2.ENI{
		{ID: "eni-a", IPv6: []ec2.IPv6Address{{Addr: a("2600:1f18::a0")}}},
	}}
	ip, dns, host := na(v1.NodeInternalIP, "2600:1f18::a0"), na(v1.NodeInternalDNS, name), na(v1.NodeHostName, name)
	tests := []struct {
		name string
		fams []v1.IPFamily
		want []v1.NodeAddress
	}{
		{"ipv6", v6, []v1.NodeAddress{ip, dns, host}},
		{"ipv6 first", v6v4, []v1.NodeAddress{ip, dns, host}},
		{"ipv4 first", v4v6, []v1.NodeAddress{dns, host, ip}},
		{"ipv4", v4, []v1.NodeAddress{dns, host}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Build(inst, tt.fams)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Build =\n%v\nwant\n%v", got, tt.want)
			}
			if HasInternalIP(got) != (tt.name != "ipv4") {
				t.Errorf("HasInternalIP = %v", HasInternalIP(got))
			}
		})
	}
	if HasIPv4(inst) || !HasIPv4(multiENI()) {
		t.Error("HasIPv4 wrong")
	}
}

// TestBuildOrderIndependent shuffles ENIs and their IPv6 addresses: the
// result must not change, and the caller's instance must not be reordered.
func TestBuildOrderIndependent(t *testing.T) {
	want := Build(multiENI(), v6v4)
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		inst := multiENI()
		r.Shuffle(len(inst.ENIs), func(i, j int) { inst.ENIs[i], inst.ENIs[j] = inst.ENIs[j], inst.ENIs[i] })
		for k := range inst.ENIs {
			ips := inst.ENIs[k].IPv6
			r.Shuffle(len(ips), func(i, j int) { ips[i], ips[j] = ips[j], ips[i] })
		}
		before := inst.ENIs[0].ID
		if got := Build(inst, v6v4); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffled input changed the result:\n%v\nwant\n%v", got, want)
		}
		if inst.ENIs[0].ID != before {
			t.Fatal("Build reordered the caller's ENIs")
		}
	}
}

func TestBuildLowestIPv6WithoutPrimaryFlag(t *testing.T) {
	inst := &ec2.Instance{ENIs: []ec2.ENI{{IPv6: []ec2.IPv6Address{{Addr: a("2600::9")}, {Addr: a("2600::3")}}}}}
	got := Build(inst, v6)
	if len(got) != 1 || got[0].Address != "2600::3" {
		t.Fatalf("Build = %v, want the lowest address 2600::3", got)
	}
}

func node(providedIP string) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
	if providedIP != "" {
		n.Annotations = map[string]string{"alpha.kubernetes.io/provided-node-ip": providedIP}
	}
	return n
}

func TestForNode(t *testing.T) {
	base := Build(multiENI(), v6v4)
	tests := []struct {
		name      string
		provided  string
		wantFirst []string
		wantErr   string
		wantLen   int
	}{
		{name: "no annotation", wantFirst: []string{"2600:1f18::a0"}, wantLen: len(base)},
		// The provided IP comes first and other InternalIPs are dropped.
		{name: "ipv4", provided: "10.0.1.6", wantFirst: []string{"10.0.1.6", "54.1.2.3"}, wantLen: 5},
		{name: "ipv6", provided: "2600:1f18::b1", wantFirst: []string{"2600:1f18::b1", "54.1.2.3"}, wantLen: 5},
		{name: "dual-stack", provided: "2600:1f18::a0,10.0.1.5", wantFirst: []string{"2600:1f18::a0", "10.0.1.5", "54.1.2.3"}, wantLen: 6},
		{name: "unspecified v6 selects the family", provided: "::", wantFirst: []string{"2600:1f18::a0", "2600:1f18::b1", "10.0.1.5"}, wantLen: len(base)},
		{name: "unspecified v4 selects the family", provided: "0.0.0.0", wantFirst: []string{"10.0.1.5", "10.0.1.6", "10.0.2.7", "54.1.2.3", "2600:1f18::a0"}, wantLen: len(base)},
		{name: "not on the instance", provided: "10.9.9.9", wantErr: "10.9.9.9"},
		{name: "garbage", provided: "not-an-ip", wantErr: "not-an-ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ForNode(node(tt.provided), base)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.wantLen {
				t.Fatalf("got %d addresses %v, want %d", len(got), got, tt.wantLen)
			}
			for i, w := range tt.wantFirst {
				if got[i].Address != w {
					t.Fatalf("address %d = %v, want %s (all: %v)", i, got[i], w, got)
				}
			}
		})
	}
}
