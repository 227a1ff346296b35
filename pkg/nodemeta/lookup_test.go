package nodemeta

import (
	"maps"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
)

func TestLookupOf(t *testing.T) {
	const id = "i-0123456789abcdef0"
	tests := []struct {
		name, nodeName, providerID string
		want                       Lookup
		wantErr                    bool
	}{
		{"providerID wins over an IP name", "ip-10-0-1-5.ec2.internal", "aws:///us-east-1a/" + id, Lookup{InstanceID: id, Zone: "us-east-1a"}, false},
		{"providerID wins over another instance's name", "i-00000000000000001.ec2.internal", "aws:///us-east-1a/" + id, Lookup{InstanceID: id, Zone: "us-east-1a"}, false},
		{"providerID without zone", "n", "aws:////" + id, Lookup{InstanceID: id}, false},
		{"bare instance ID", id, "", Lookup{InstanceID: id}, false},
		{"short bare instance ID", "i-0123abcd", "", Lookup{InstanceID: "i-0123abcd"}, false},
		{"resource name us-east-1", id + ".ec2.internal", "", Lookup{InstanceID: id}, false},
		{"resource name elsewhere", id + ".eu-west-1.compute.internal", "", Lookup{InstanceID: id}, false},
		{"IP name", "ip-10-0-1-5.ec2.internal", "", Lookup{PrivateDNSName: "ip-10-0-1-5.ec2.internal"}, false},
		{"custom name", "worker-1", "", Lookup{PrivateDNSName: "worker-1"}, false},
		{"upper-case ID is no instance ID", "i-0123456789ABCDEF0.ec2.internal", "", Lookup{PrivateDNSName: "i-0123456789ABCDEF0.ec2.internal"}, false},
		{"ID-like prefix of a longer label", id + "x.ec2.internal", "", Lookup{PrivateDNSName: id + "x.ec2.internal"}, false},
		{"bad providerID is an error, no name fallback", id, "aws:///us-east-1a/not-an-id", Lookup{}, true},
		{"foreign providerID", id, "gce://p/z/n", Lookup{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: tc.nodeName}, Spec: v1.NodeSpec{ProviderID: tc.providerID}}
			got, err := LookupOf(n)
			if (err != nil) != tc.wantErr {
				t.Fatalf("LookupOf error = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("LookupOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeOff, "off": ModeOff, "Adopt": ModeAdopt, " ASSIGN ": ModeAssign} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"on", "true", "assigned"} {
		if _, err := ParseMode(bad); err == nil || !strings.Contains(err.Error(), "off, adopt or assign") {
			t.Errorf("ParseMode(%q) error %v", bad, err)
		}
	}
	if ModeOff.IPv6() || !ModeAdopt.IPv6() || !ModeAssign.IPv6() {
		t.Error("IPv6() wrong")
	}
}

// TestLabels: the label rule shared by the provider and the node
// controller; expected values written out by hand from upstream's labels.
func TestLabels(t *testing.T) {
	inst := &ec2.Instance{ID: "i-0123456789abcdef0", Type: "m5.large", Zone: "eu-west-1a", ZoneID: "euw1-az1"}
	got := Labels(&v1.Node{}, inst, "eu-west-1")
	want := map[string]string{
		"node.kubernetes.io/instance-type":         "m5.large",
		"beta.kubernetes.io/instance-type":         "m5.large",
		"topology.kubernetes.io/zone":              "eu-west-1a",
		"failure-domain.beta.kubernetes.io/zone":   "eu-west-1a",
		"topology.kubernetes.io/region":            "eu-west-1",
		"failure-domain.beta.kubernetes.io/region": "eu-west-1",
		"topology.k8s.aws/zone-id":                 "euw1-az1",
	}
	if !maps.Equal(got, want) {
		t.Errorf("Labels =\n%v\nwant\n%v", got, want)
	}
	// A zone ID already on the node is never overwritten; no region, no region labels.
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"topology.k8s.aws/zone-id": "other"}}}
	got = Labels(n, inst, "")
	if _, ok := got["topology.k8s.aws/zone-id"]; ok {
		t.Error("zone ID overwritten")
	}
	if _, ok := got["topology.kubernetes.io/region"]; ok {
		t.Error("region label without a region")
	}
	if ProviderID(inst) != "aws:///eu-west-1a/i-0123456789abcdef0" {
		t.Errorf("ProviderID = %q", ProviderID(inst))
	}
}
