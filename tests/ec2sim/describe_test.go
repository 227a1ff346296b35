package ec2sim

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestDescribeInstancesFields(t *testing.T) {
	_, c := newTestSim(t, Options{})
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{idPre}})
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("want 1 instance, got %+v", out.Reservations)
	}
	in := out.Reservations[0].Instances[0]
	checks := map[string][2]string{
		"id":        {aws.ToString(in.InstanceId), idPre},
		"state":     {string(in.State.Name), "running"},
		"dns":       {aws.ToString(in.PrivateDnsName), "ip-10-0-1-10.ec2.internal"},
		"ip":        {aws.ToString(in.PrivateIpAddress), "10.0.1.10"},
		"public":    {aws.ToString(in.PublicIpAddress), "3.4.5.6"},
		"ipv6":      {aws.ToString(in.Ipv6Address), "2600:1f18:4000:a901::10"},
		"type":      {string(in.InstanceType), "m5.large"},
		"zone":      {aws.ToString(in.Placement.AvailabilityZone), "us-east-1a"},
		"zoneID":    {aws.ToString(in.Placement.AvailabilityZoneId), "use1-az1"},
		"subnet":    {aws.ToString(in.SubnetId), "subnet-0aaaaaaaaaaaaaaa1"},
		"vpc":       {aws.ToString(in.VpcId), "vpc-0a1b2c3d4e5f60708"},
		"eni":       {aws.ToString(in.NetworkInterfaces[0].NetworkInterfaceId), eniPre},
		"mac":       {aws.ToString(in.NetworkInterfaces[0].MacAddress), "02:00:00:00:00:01"},
		"eniV6":     {aws.ToString(in.NetworkInterfaces[0].Ipv6Addresses[0].Ipv6Address), "2600:1f18:4000:a901::10"},
		"eniPrefix": {aws.ToString(in.NetworkInterfaces[0].Ipv6Prefixes[0].Ipv6Prefix), "2600:1f18:4000:a901:1234::/80"},
		"eniIPv4":   {aws.ToString(in.NetworkInterfaces[0].PrivateIpAddresses[0].PrivateIpAddress), "10.0.1.10"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if aws.ToInt32(in.State.Code) != 16 {
		t.Errorf("state code = %d, want 16", aws.ToInt32(in.State.Code))
	}
	if !aws.ToBool(in.NetworkInterfaces[0].Ipv6Addresses[0].IsPrimaryIpv6) {
		t.Error("isPrimaryIpv6 not set")
	}
	att := in.NetworkInterfaces[0].Attachment
	if aws.ToInt32(att.DeviceIndex) != 0 || aws.ToInt32(att.NetworkCardIndex) != 0 {
		t.Errorf("attachment = %+v", att)
	}
	if in.LaunchTime == nil || in.LaunchTime.IsZero() {
		t.Error("launchTime missing")
	}
	tags := map[string]string{}
	for _, tg := range in.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["Name"] != "pre" || tags["KubernetesCluster"] != "demo" {
		t.Errorf("tags = %v", tags)
	}
}

func TestDescribeInstancesMultiENIOrder(t *testing.T) {
	_, c := newTestSim(t, Options{})
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{idMulti}})
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	enis := out.Reservations[0].Instances[0].NetworkInterfaces
	if len(enis) != 2 {
		t.Fatalf("want 2 ENIs, got %d", len(enis))
	}
	// Scenario order is kept: device index 1 first.
	if aws.ToInt32(enis[0].Attachment.DeviceIndex) != 1 || aws.ToInt32(enis[1].Attachment.DeviceIndex) != 0 {
		t.Errorf("device indexes = %d, %d; want 1, 0", aws.ToInt32(enis[0].Attachment.DeviceIndex), aws.ToInt32(enis[1].Attachment.DeviceIndex))
	}
	if len(enis[0].Ipv6Addresses) != 1 || len(enis[1].Ipv6Addresses) != 0 {
		t.Errorf("ipv6 = %v / %v", enis[0].Ipv6Addresses, enis[1].Ipv6Addresses)
	}
	if got := aws.ToString(out.Reservations[0].Instances[0].PrivateIpAddress); got != aws.ToString(enis[1].PrivateIpAddress) {
		t.Errorf("instance private IP %s is not the device-0 ENI's %s", got, aws.ToString(enis[1].PrivateIpAddress))
	}
}

func ids(out *ec2.DescribeInstancesOutput) []string {
	var got []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			got = append(got, aws.ToString(in.InstanceId))
		}
	}
	slices.Sort(got)
	return got
}

func TestDescribeInstancesFilters(t *testing.T) {
	_, c := newTestSim(t, Options{})
	all := []string{idPre, idBare, idMulti, idNoV6, idStopped}
	slices.Sort(all)
	tests := []struct {
		name   string
		values []string
		want   []string
	}{
		{"instance-id", []string{idPre, idBare}, []string{idPre, idBare}},
		{"private-dns-name", []string{"ip-10-0-1-10.ec2.internal"}, []string{idPre}},
		{"private-dns-name", []string{"ip-10-0-3-*.ec2.internal"}, []string{idNoV6}},
		{"instance-state-name", []string{"stopped"}, []string{idStopped}},
		{"instance-state-name", []string{"running", "pending"}, []string{idPre, idBare, idMulti, idNoV6}},
		{"vpc-id", []string{"vpc-0a1b2c3d4e5f60708"}, all},
		{"subnet-id", []string{"subnet-0ccccccccccccccc3"}, []string{idNoV6}},
		{"availability-zone", []string{"us-east-1b"}, []string{idMulti, idStopped}},
		{"tag:Name", []string{"bare"}, []string{idBare}},
		{"tag:KubernetesCluster", []string{"demo"}, []string{idPre, idBare}},
		{"tag-key", []string{"KubernetesCluster"}, []string{idPre, idBare}},
		{"network-interface.network-interface-id", []string{"eni-00000000000000c01"}, []string{idMulti}},
		{"instance-id", []string{"i-0123456789abcdef0"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{
				Filters: []types.Filter{{Name: aws.String(tc.name), Values: tc.values}},
			})
			if err != nil {
				t.Fatalf("describe: %v", err)
			}
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if got := ids(out); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}
