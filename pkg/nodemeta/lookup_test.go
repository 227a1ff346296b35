package nodemeta

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
