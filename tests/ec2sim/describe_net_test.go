package ec2sim

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestDescribeNetworkInterfaces(t *testing.T) {
	_, c := newTestSim(t, Options{})
	out, err := c.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniPre}})
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	e := out.NetworkInterfaces[0]
	if aws.ToString(e.Attachment.InstanceId) != idPre || aws.ToString(e.SubnetId) != "subnet-0aaaaaaaaaaaaaaa1" ||
		aws.ToString(e.VpcId) != "vpc-0a1b2c3d4e5f60708" || aws.ToString(e.AvailabilityZone) != "us-east-1a" ||
		aws.ToString(e.MacAddress) != "02:00:00:00:00:01" || len(e.Ipv6Addresses) != 1 || len(e.Ipv6Prefixes) != 1 ||
		!aws.ToBool(e.Ipv6Addresses[0].IsPrimaryIpv6) || aws.ToInt32(e.Attachment.DeviceIndex) != 0 {
		t.Errorf("eni = %+v", e)
	}
	filters := []struct {
		name, value string
		want        int
	}{
		{"attachment.instance-id", idMulti, 2},
		{"subnet-id", "subnet-0aaaaaaaaaaaaaaa1", 2},
		{"vpc-id", "vpc-0a1b2c3d4e5f60708", 6},
		{"attachment.device-index", "1", 1},
		{"ipv6-addresses.ipv6-address", "2600:1f18:4000:a901::10", 1},
		{"network-interface-id", eniPre, 1},
	}
	for _, f := range filters {
		out, err := c.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{
			Filters: []types.Filter{{Name: aws.String(f.name), Values: []string{f.value}}}})
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if len(out.NetworkInterfaces) != f.want {
			t.Errorf("%s=%s: %d ENIs, want %d", f.name, f.value, len(out.NetworkInterfaces), f.want)
		}
	}
	_, err = c.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eni-0123456789abcdef0"}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	_, err = c.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eth0"}})
	wantCode(t, err, "InvalidNetworkInterfaceId.Malformed")
	_, err = c.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniPre}, MaxResults: aws.Int32(5)})
	wantCode(t, err, "InvalidParameterCombination")
	_, err = c.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("bogus"), Values: []string{"x"}}}})
	wantCode(t, err, "InvalidParameterValue")
}

func TestDescribeSubnetsVpcsZonesTypes(t *testing.T) {
	_, c := newTestSim(t, Options{})
	sn, err := c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0aaaaaaaaaaaaaaa1", "subnet-0ccccccccccccccc3"}})
	if err != nil {
		t.Fatalf("subnets: %v", err)
	}
	if len(sn.Subnets) != 2 || len(sn.Subnets[0].Ipv6CidrBlockAssociationSet) != 1 || len(sn.Subnets[1].Ipv6CidrBlockAssociationSet) != 0 ||
		aws.ToString(sn.Subnets[0].Ipv6CidrBlockAssociationSet[0].Ipv6CidrBlock) != "2600:1f18:4000:a901::/64" ||
		aws.ToString(sn.Subnets[0].AvailabilityZoneId) != "use1-az1" || aws.ToString(sn.Subnets[1].CidrBlock) != "10.0.3.0/24" {
		t.Errorf("subnets = %+v", sn.Subnets)
	}
	sn, err = c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{Filters: []types.Filter{
		{Name: aws.String("availability-zone"), Values: []string{"us-east-1a"}}}})
	if err != nil || len(sn.Subnets) != 2 {
		t.Errorf("subnets in us-east-1a: %v %d", err, len(sn.Subnets))
	}
	_, err = c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}})
	wantCode(t, err, "InvalidSubnetID.NotFound")

	vp, err := c.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
	if err != nil || len(vp.Vpcs) != 1 || aws.ToString(vp.Vpcs[0].CidrBlock) != "10.0.0.0/16" ||
		aws.ToString(vp.Vpcs[0].Ipv6CidrBlockAssociationSet[0].Ipv6CidrBlock) != "2600:1f18:4000:a900::/56" {
		t.Errorf("vpcs = %v %+v", err, vp)
	}
	_, err = c.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-0123456789abcdef0"}})
	wantCode(t, err, "InvalidVpcID.NotFound")

	az, err := c.DescribeAvailabilityZones(t.Context(), &ec2.DescribeAvailabilityZonesInput{})
	if err != nil || len(az.AvailabilityZones) != 2 || aws.ToString(az.AvailabilityZones[1].ZoneId) != "use1-az2" ||
		az.AvailabilityZones[0].State != types.AvailabilityZoneStateAvailable || aws.ToString(az.AvailabilityZones[0].RegionName) != "us-east-1" {
		t.Errorf("zones = %v %+v", err, az)
	}
	az, err = c.DescribeAvailabilityZones(t.Context(), &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1b"}})
	if err != nil || len(az.AvailabilityZones) != 1 {
		t.Errorf("zone by name: %v", err)
	}
	_, err = c.DescribeAvailabilityZones(t.Context(), &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1z"}})
	wantCode(t, err, "InvalidParameterValue")

	it, err := c.DescribeInstanceTypes(t.Context(), &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m5.large"}})
	if err != nil || len(it.InstanceTypes) != 1 {
		t.Fatalf("instance types: %v", err)
	}
	ni := it.InstanceTypes[0].NetworkInfo
	if aws.ToInt32(ni.MaximumNetworkInterfaces) != 3 || aws.ToInt32(ni.Ipv6AddressesPerInterface) != 10 ||
		aws.ToInt32(ni.Ipv4AddressesPerInterface) != 10 || !aws.ToBool(ni.Ipv6Supported) {
		t.Errorf("m5.large network info = %+v", ni)
	}
	_, err = c.DescribeInstanceTypes(t.Context(), &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"z9.mega"}})
	wantCode(t, err, "InvalidInstanceType")
}

func TestTags(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	_, err := c.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{idPre, "subnet-0aaaaaaaaaaaaaaa1"},
		Tags: []types.Tag{{Key: aws.String("role"), Value: aws.String("node")}}})
	if err != nil {
		t.Fatalf("create tags: %v", err)
	}
	d, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:role"), Values: []string{"node"}}}})
	if err != nil || !slices.Equal(ids(d), []string{idPre}) {
		t.Errorf("tag filter after CreateTags: %v %v", err, ids(d))
	}
	_, err = c.DeleteTags(t.Context(), &ec2.DeleteTagsInput{Resources: []string{idPre},
		Tags: []types.Tag{{Key: aws.String("role"), Value: aws.String("other")}}})
	if err != nil {
		t.Fatalf("delete tags (wrong value): %v", err)
	}
	if st, _ := sim.State().Instance(idPre); st.Tags["role"] != "node" {
		t.Error("DeleteTags with a different value removed the tag")
	}
	_, err = c.DeleteTags(t.Context(), &ec2.DeleteTagsInput{Resources: []string{idPre}, Tags: []types.Tag{{Key: aws.String("role")}}})
	if err != nil {
		t.Fatalf("delete tags: %v", err)
	}
	if st, _ := sim.State().Instance(idPre); st.Tags["role"] != "" {
		t.Error("DeleteTags left the tag")
	}
	_, err = c.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{"i-0123456789abcdef0"},
		Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
	_, err = c.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{idPre},
		Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("b")}}})
	wantCode(t, err, "InvalidParameterValue")
	if sim.MutatingCalls() != 5 {
		t.Errorf("mutating calls = %d, want 5", sim.MutatingCalls())
	}
}
