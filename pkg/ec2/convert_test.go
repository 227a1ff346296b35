package ec2

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

func sdkInstance() ec2types.Instance {
	eni := func(id string, card, dev int32, v4 []string, v6 []ec2types.InstanceIpv6Address, pfx []string) ec2types.InstanceNetworkInterface {
		n := ec2types.InstanceNetworkInterface{
			NetworkInterfaceId: aws.String(id),
			Attachment:         &ec2types.InstanceNetworkInterfaceAttachment{NetworkCardIndex: aws.Int32(card), DeviceIndex: aws.Int32(dev)},
			Ipv6Addresses:      v6,
		}
		for k, a := range v4 {
			n.PrivateIpAddresses = append(n.PrivateIpAddresses, ec2types.InstancePrivateIpAddress{PrivateIpAddress: aws.String(a), Primary: aws.Bool(k == 0)})
		}
		for _, p := range pfx {
			n.Ipv6Prefixes = append(n.Ipv6Prefixes, ec2types.InstanceIpv6Prefix{Ipv6Prefix: aws.String(p)})
		}
		return n
	}
	return ec2types.Instance{
		InstanceId:       aws.String("i-0123456789abcdef0"),
		InstanceType:     "m5.large",
		State:            &ec2types.InstanceState{Name: "running"},
		Placement:        &ec2types.Placement{AvailabilityZone: aws.String("us-east-1a"), AvailabilityZoneId: aws.String("use1-az1")},
		PrivateDnsName:   aws.String("ip-10-0-0-1.ec2.internal"),
		PrivateIpAddress: aws.String("10.0.0.1"),
		PublicIpAddress:  aws.String("3.3.3.3"),
		Tags:             []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("n1")}},
		NetworkInterfaces: []ec2types.InstanceNetworkInterface{
			eni("eni-c", 1, 0, []string{"10.0.2.1"}, nil, nil),
			eni("eni-b", 0, 1, []string{"10.0.1.1", "10.0.1.2"}, []ec2types.InstanceIpv6Address{{Ipv6Address: aws.String("2600::b")}}, nil),
			eni("eni-a", 0, 0, []string{"10.0.0.1", "10.0.0.9"},
				[]ec2types.InstanceIpv6Address{{Ipv6Address: aws.String("2600::9")}, {Ipv6Address: aws.String("2600::5"), IsPrimaryIpv6: aws.Bool(true)}},
				[]string{"2600:0:0:1:2::/80", "2600:0:0:1:1::/80", "garbage"}),
		},
	}
}

// sdkInstanceModel is sdkInstance as the model must hold it, written out by
// hand: ENIs by network card then device index, each ENI's primary IPv4
// first, IPv6 addresses in EC2's order, valid prefixes sorted.
func sdkInstanceModel() *Instance {
	a, p := netip.MustParseAddr, netip.MustParsePrefix
	return &Instance{
		ID: "i-0123456789abcdef0", Type: "m5.large", State: "running", Zone: "us-east-1a", ZoneID: "use1-az1",
		PrivateDNSName: "ip-10-0-0-1.ec2.internal", PrivateIP: a("10.0.0.1"), PublicIP: a("3.3.3.3"),
		Tags: map[string]string{"Name": "n1"},
		ENIs: []ENI{
			{ID: "eni-a", NetworkCardIndex: 0, DeviceIndex: 0, PrivateIPv4: []netip.Addr{a("10.0.0.1"), a("10.0.0.9")},
				IPv6:         []IPv6Address{{Addr: a("2600::9")}, {Addr: a("2600::5"), Primary: true}},
				IPv6Prefixes: []netip.Prefix{p("2600:0:0:1:1::/80"), p("2600:0:0:1:2::/80")}},
			{ID: "eni-b", NetworkCardIndex: 0, DeviceIndex: 1, PrivateIPv4: []netip.Addr{a("10.0.1.1"), a("10.0.1.2")},
				IPv6: []IPv6Address{{Addr: a("2600::b")}}},
			{ID: "eni-c", NetworkCardIndex: 1, DeviceIndex: 0, PrivateIPv4: []netip.Addr{a("10.0.2.1")}},
		},
	}
}

// sameModel compares two models, an empty list equal to a missing one.
func sameModel(a, b *Instance) bool {
	norm := func(in *Instance) *Instance {
		c := in.clone()
		for k := range c.ENIs {
			e := &c.ENIs[k]
			if len(e.PrivateIPv4) == 0 {
				e.PrivateIPv4 = nil
			}
			if len(e.IPv6) == 0 {
				e.IPv6 = nil
			}
			if len(e.IPv6Prefixes) == 0 {
				e.IPv6Prefixes = nil
			}
		}
		return c
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// TestFromSDKIndependentOfListOrder converts sdkInstance with its ENIs,
// IPv4 addresses and prefixes shuffled and expects the hand-written model
// every time; IPv6 addresses, shuffled too, keep the order EC2 gave.
func TestFromSDKIndependentOfListOrder(t *testing.T) {
	base := sdkInstance()
	want := sdkInstanceModel()
	if got := fromSDK(&base); !sameModel(got, want) {
		t.Fatalf("fromSDK\n got  %+v\n want %+v", got, want)
	}
	p := want.PrimaryENI()
	if a, _ := p.PrimaryIPv6(); a != netip.MustParseAddr("2600::5") {
		t.Errorf("primary IPv6 = %v, want the flagged 2600::5", a)
	}
	if pf, _ := p.PodPrefix(); pf != netip.MustParsePrefix("2600:0:0:1:1::/80") {
		t.Errorf("pod prefix = %v, want the lowest", pf)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		in := sdkInstance()
		rng.Shuffle(len(in.NetworkInterfaces), func(i, j int) {
			in.NetworkInterfaces[i], in.NetworkInterfaces[j] = in.NetworkInterfaces[j], in.NetworkInterfaces[i]
		})
		exp := sdkInstanceModel()
		for k := range in.NetworkInterfaces {
			n := &in.NetworkInterfaces[k]
			rng.Shuffle(len(n.Ipv6Prefixes), func(i, j int) { n.Ipv6Prefixes[i], n.Ipv6Prefixes[j] = n.Ipv6Prefixes[j], n.Ipv6Prefixes[i] })
			rng.Shuffle(len(n.PrivateIpAddresses), func(i, j int) {
				n.PrivateIpAddresses[i], n.PrivateIpAddresses[j] = n.PrivateIpAddresses[j], n.PrivateIpAddresses[i]
			})
			rng.Shuffle(len(n.Ipv6Addresses), func(i, j int) { n.Ipv6Addresses[i], n.Ipv6Addresses[j] = n.Ipv6Addresses[j], n.Ipv6Addresses[i] })
			// The expected IPv6 list follows the shuffled input.
			for e := range exp.ENIs {
				if exp.ENIs[e].ID != aws.ToString(n.NetworkInterfaceId) {
					continue
				}
				exp.ENIs[e].IPv6 = nil
				for _, v6 := range n.Ipv6Addresses {
					exp.ENIs[e].IPv6 = append(exp.ENIs[e].IPv6, IPv6Address{Addr: netip.MustParseAddr(*v6.Ipv6Address), Primary: aws.ToBool(v6.IsPrimaryIpv6)})
				}
			}
		}
		if got := fromSDK(&in); !sameModel(got, exp) {
			t.Fatalf("shuffled input gave\n%+v\nwant\n%+v", got, exp)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	in := sdkInstance()
	a := fromSDK(&in)
	b := a.clone()
	b.Tags["Name"] = "changed"
	b.ENIs[0].PrivateIPv4[0] = netip.MustParseAddr("1.1.1.1")
	b.ENIs[0].IPv6Prefixes[0] = netip.MustParsePrefix("::/80")
	if a.Tags["Name"] != "n1" || a.ENIs[0].PrivateIPv4[0] == b.ENIs[0].PrivateIPv4[0] || a.ENIs[0].IPv6Prefixes[0] == b.ENIs[0].IPv6Prefixes[0] {
		t.Fatal("clone shares memory with the original")
	}
}

func TestNamedIDs(t *testing.T) {
	set := []string{"i-0123456789abcdef0", "i-0123456789abcdef1", "i-xyz", "i-11111111"}
	tests := []struct {
		msg  string
		want []string
	}{
		{"The instance ID 'i-0123456789abcdef0' does not exist", []string{"i-0123456789abcdef0"}},
		{"The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist", []string{"i-0123456789abcdef0", "i-0123456789abcdef1"}},
		{`Invalid id: "i-xyz"`, []string{"i-xyz"}},
		{"The instance ID 'i-11111111111' does not exist", nil},
		{"something else", nil},
	}
	for _, tc := range tests {
		err := &smithy.GenericAPIError{Code: codeInstanceNotFound, Message: tc.msg}
		if got := namedIDs(err, set); !slices.Equal(got, tc.want) {
			t.Errorf("namedIDs(%q) = %v, want %v", tc.msg, got, tc.want)
		}
	}
}

func TestErrorClassification(t *testing.T) {
	throttle := &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
	wrapped := errors.Join(errors.New("context"), throttle)
	if ErrorCode(wrapped) != "RequestLimitExceeded" || !IsThrottle(wrapped) {
		t.Errorf("throttle not recognised: code %q", ErrorCode(wrapped))
	}
	nf := &smithy.GenericAPIError{Code: codeInstanceNotFound}
	if IsThrottle(nf) || IsThrottle(nil) || ErrorCode(errors.New("plain")) != "" {
		t.Error("non-throttle misclassified")
	}
	for err, want := range map[error]string{nil: "ok", nf: codeInstanceNotFound, &smithy.GenericAPIError{Code: "bad code <x>"}: "other", errors.New("x"): "error"} {
		if got := codeLabel(err); got != want {
			t.Errorf("codeLabel(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestErrorSummaryDropsRequestID(t *testing.T) {
	api := &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "The subnet (subnet-1) does not have an IPv6 CIDR block associated with it."}
	for i, id := range []string{"1b2c", "9f8e"} {
		err := fmt.Errorf("assign: operation error EC2: AssignIpv6Addresses, https response error StatusCode: 400, RequestID: %s, api error %w", id, api)
		got := ErrorSummary(err)
		if want := "InvalidParameterValue: " + api.Message; got != want {
			t.Errorf("attempt %d: ErrorSummary = %q, want %q", i, got, want)
		}
	}
	if got := ErrorSummary(&smithy.GenericAPIError{Code: "Unavailable"}); got != "Unavailable" {
		t.Errorf("code only: %q", got)
	}
	if got := ErrorSummary(errors.New("dial tcp: refused")); got != "dial tcp: refused" {
		t.Errorf("plain: %q", got)
	}
}
