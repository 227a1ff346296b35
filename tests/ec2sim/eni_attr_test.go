package ec2sim

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func describeENI(t *testing.T, c *ec2.Client, id string) types.NetworkInterface {
	t.Helper()
	out, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeNetworkInterfaces %s: %v", id, err)
	}
	return out.NetworkInterfaces[0]
}

func TestEnablePrimaryIpv6(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	ctx := context.Background()
	const eni = "eni-00000000000000c00" // idMulti's device 0: no IPv6 yet
	enable := func(on bool) error {
		_, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(eni), EnablePrimaryIpv6: aws.Bool(on)})
		return err
	}
	// It needs an IPv6 address on the ENI.
	wantCode(t, enable(true), "InvalidParameterValue")
	if _, err := c.AssignIpv6Addresses(ctx, &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(eni), Ipv6AddressCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if err := enable(true); err != nil {
		t.Fatalf("EnablePrimaryIpv6: %v", err)
	}
	e := describeENI(t, c, eni)
	if len(e.Ipv6Addresses) != 2 || !aws.ToBool(e.Ipv6Addresses[0].IsPrimaryIpv6) || aws.ToBool(e.Ipv6Addresses[1].IsPrimaryIpv6) {
		t.Fatalf("ipv6AddressesSet %+v: want the first address primary", e.Ipv6Addresses)
	}
	first := aws.ToString(e.Ipv6Addresses[0].Ipv6Address)
	if aws.ToString(e.Ipv6Address) != first {
		t.Errorf("ENI ipv6Address %q, want %q", aws.ToString(e.Ipv6Address), first)
	}
	di, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{idMulti}})
	if err != nil {
		t.Fatal(err)
	}
	in := di.Reservations[0].Instances[0]
	ie := in.NetworkInterfaces[1] // listed second in the scenario
	if aws.ToString(in.Ipv6Address) != first || aws.ToString(ie.NetworkInterfaceId) != eni || !aws.ToBool(ie.Ipv6Addresses[0].IsPrimaryIpv6) {
		t.Errorf("DescribeInstances: ipv6Address %q, set %+v", aws.ToString(in.Ipv6Address), ie.Ipv6Addresses)
	}
	es, ok := sim.State().ENI(eni)
	if !ok || !es.PrimaryIPv6 || !es.IPv6[0].Primary || es.IPv6[1].Primary {
		t.Errorf("State().ENI = %+v", es)
	}
	// Idempotent; a later address does not become primary.
	if err := enable(true); err != nil {
		t.Errorf("second EnablePrimaryIpv6: %v", err)
	}
	if _, err := c.AssignIpv6Addresses(ctx, &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(eni), Ipv6AddressCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	e = describeENI(t, c, eni)
	n := 0
	for _, a := range e.Ipv6Addresses {
		if aws.ToBool(a.IsPrimaryIpv6) {
			n++
		}
	}
	if n != 1 || aws.ToString(e.Ipv6Address) != first {
		t.Errorf("after another assign: %d primary, ipv6Address %q", n, aws.ToString(e.Ipv6Address))
	}
	// It cannot be turned off.
	wantCode(t, enable(false), "InvalidParameterValue")
	if es, _ := sim.State().ENI(eni); !es.PrimaryIPv6 {
		t.Error("false disabled the primary IPv6 address")
	}
	for _, tc := range []struct {
		id, code string
	}{
		{"eni-0123456789abcdef9", "InvalidNetworkInterfaceID.NotFound"},
		{"eni-x", "InvalidNetworkInterfaceId.Malformed"},
	} {
		_, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(tc.id), EnablePrimaryIpv6: aws.Bool(true)})
		wantCode(t, err, tc.code)
	}
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{DryRun: aws.Bool(true), NetworkInterfaceId: aws.String(eni), EnablePrimaryIpv6: aws.Bool(true)})
	wantCode(t, err, "DryRunOperation")
}

func TestScenarioEnablePrimaryIpv6(t *testing.T) {
	sc := &Scenario{Instances: []Instance{{ID: "i-0000000000000ee01", ENIs: []ENI{{ID: "eni-0000000000000ee01", IPv6AddressCount: 2, EnablePrimaryIPv6: true}}}}}
	sim, c := newTestSim(t, Options{Scenario: sc})
	e := describeENI(t, c, "eni-0000000000000ee01")
	if !aws.ToBool(e.Ipv6Addresses[0].IsPrimaryIpv6) || aws.ToBool(e.Ipv6Addresses[1].IsPrimaryIpv6) {
		t.Errorf("scenario enablePrimaryIpv6: %+v", e.Ipv6Addresses)
	}
	if es, _ := sim.State().ENI("eni-0000000000000ee01"); !es.PrimaryIPv6 {
		t.Error("State: primaryIPv6 not set")
	}
}

func TestModifyENISecurityGroups(t *testing.T) {
	sim, c := newSGSim(t, Options{})
	ctx := context.Background()
	set := func(eni string, groups ...string) error {
		_, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eni), Groups: groups})
		return err
	}
	if err := set("eni-0000000000000aa01", sgApp, sgApp); err != nil {
		t.Fatal(err)
	}
	if g := describeENI(t, c, "eni-0000000000000aa01").Groups; len(g) != 1 || aws.ToString(g[0].GroupId) != sgApp || aws.ToString(g[0].GroupName) != "app" {
		t.Errorf("ENI groups %+v", g)
	}
	di, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("instance.group-name"), Values: []string{"app"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(di.Reservations) != 1 {
		t.Fatalf("instance.group-name=app: %d reservations", len(di.Reservations))
	}
	if g := di.Reservations[0].Instances[0].SecurityGroups; len(g) != 1 || aws.ToString(g[0].GroupId) != sgApp {
		t.Errorf("instance groups (of the primary ENI) %+v", g)
	}
	// IMDS reports the ENI's groups.
	if got := imdsGet(t, sim, "meta-data/security-groups"); got != "app" {
		t.Errorf("IMDS security-groups %q", got)
	}
	var sg6 []string
	for i := range 5 {
		out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("g" + string(rune('0'+i))), Description: aws.String("g"), VpcId: aws.String(sgVPC1)})
		if err != nil {
			t.Fatal(err)
		}
		sg6 = append(sg6, aws.ToString(out.GroupId))
	}
	if err := set("eni-0000000000000aa02", sg6...); err != nil {
		t.Errorf("five groups: %v", err)
	}
	wantCode(t, set("eni-0000000000000aa02", append(sg6, sgWeb)...), "SecurityGroupsPerInterfaceLimitExceeded")
	wantCode(t, set("eni-0000000000000aa02", sgOther), "InvalidGroup.NotFound")
	wantCode(t, set("eni-0000000000000aa02", "sg-0123456789abcdef9"), "InvalidGroup.NotFound")
	wantCode(t, set("eni-0000000000000aa02", "web"), "InvalidGroupId.Malformed")
	if es, _ := sim.State().ENI("eni-0000000000000aa02"); len(es.SecurityGroups) != 5 {
		t.Errorf("refused changes were applied: %v", es.SecurityGroups)
	}
}

// imdsGet reads one IMDS path with a fresh token.
func imdsGet(t *testing.T, sim *Sim, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, sim.Endpoint()+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, sim.Endpoint()+"/latest/"+path, nil)
	req.Header.Set("X-aws-ec2-metadata-token", string(tok))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

func TestModifyENIOtherAttributes(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	ctx := context.Background()
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eniPre),
		SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eniPre),
		Description: &types.AttributeValue{Value: aws.String("node eth0")}}); err != nil {
		t.Fatal(err)
	}
	e := describeENI(t, c, eniPre)
	if aws.ToBool(e.SourceDestCheck) || aws.ToString(e.Description) != "node eth0" {
		t.Errorf("sourceDestCheck %v description %q", aws.ToBool(e.SourceDestCheck), aws.ToString(e.Description))
	}
	di, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{idPre}})
	if err != nil {
		t.Fatal(err)
	}
	if in := di.Reservations[0].Instances[0]; aws.ToBool(in.SourceDestCheck) || aws.ToString(in.NetworkInterfaces[0].Description) != "node eth0" {
		t.Errorf("DescribeInstances sourceDestCheck %v", aws.ToBool(in.SourceDestCheck))
	}
	if es, _ := sim.State().ENI(eniPre); es.SourceDestCheck {
		t.Error("State: sourceDestCheck still true")
	}
	for _, tc := range []struct {
		in   *ec2.ModifyNetworkInterfaceAttributeInput
		code string
	}{
		{&ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eniPre)}, "MissingParameter"},
		{&ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eniPre), EnablePrimaryIpv6: aws.Bool(true),
			SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(true)}}, "InvalidParameterCombination"},
		{&ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eniPre),
			Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String("eni-attach-00000000000000a01"), DeleteOnTermination: aws.Bool(false)}}, "UnsupportedOperation"},
	} {
		_, err := c.ModifyNetworkInterfaceAttribute(ctx, tc.in)
		wantCode(t, err, tc.code)
	}
}
