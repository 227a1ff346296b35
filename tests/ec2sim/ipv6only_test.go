package ec2sim

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ipv6OnlyYAML has, in REGION: an IPv6-native subnet with two instances
// (one without any address given, one with an explicit one), a dual-stack
// instance asking for a resource name itself, and a dual-stack subnet whose
// launch options ask for resource names.
const ipv6OnlyYAML = `
region: REGION
seed: 3
zones: [{name: REGIONa, id: z-az1}]
vpcs: [{id: vpc-0a1b2c3d4e5f60708, cidr: 10.0.0.0/16, ipv6CIDR: "2600:1f18:4000:a900::/56"}]
subnets:
- {id: subnet-0aaaaaaaaaaaaaaa1, zone: REGIONa, cidr: 10.0.1.0/24, ipv6CIDR: "2600:1f18:4000:a901::/64"}
- {id: subnet-0eeeeeeeeeeeeeee6, zone: REGIONa, ipv6Native: true, ipv6CIDR: "2600:1f18:4000:a906::/64"}
- id: subnet-0fffffffffffffff7
  zone: REGIONa
  cidr: 10.0.7.0/24
  ipv6CIDR: "2600:1f18:4000:a907::/64"
  privateDnsNameOptionsOnLaunch: {hostnameType: resource-name, enableResourceNameDnsAAAARecord: true}
instances:
- id: i-0000000000000f601
  subnet: subnet-0eeeeeeeeeeeeeee6
- id: i-0000000000000f602
  subnet: subnet-0eeeeeeeeeeeeeee6
  enis:
  - {deviceIndex: 0, ipv6: [{address: "2600:1f18:4000:a906::60", primary: true}], mac: "02:00:00:00:06:02"}
- id: i-0000000000000f603
  subnet: subnet-0aaaaaaaaaaaaaaa1
  privateDnsNameOptions: {hostnameType: resource-name, enableResourceNameDnsARecord: true}
  enis: [{deviceIndex: 0, privateIPs: [10.0.1.20]}]
- id: i-0000000000000f604
  subnet: subnet-0fffffffffffffff7
imdsInstance: i-0000000000000f602
instanceRole: ec2sim-node
`

const (
	snDual     = "subnet-0aaaaaaaaaaaaaaa1"
	snV6Only   = "subnet-0eeeeeeeeeeeeeee6"
	snRBN      = "subnet-0fffffffffffffff7"
	idV6Auto   = "i-0000000000000f601"
	idV6Fixed  = "i-0000000000000f602"
	idDualRBN  = "i-0000000000000f603"
	idSubnetRB = "i-0000000000000f604"
	v6Fixed    = "2600:1f18:4000:a906::60"
	v6OnlyCIDR = "2600:1f18:4000:a906::/64"
	v6OnlyMAC  = "02:00:00:00:06:02"
	roleName   = "ec2sim-node"
)

// domainOf is the private DNS domain AWS documents for a region.
func domainOf(region string) string {
	if region == "us-east-1" {
		return "ec2.internal"
	}
	return region + ".compute.internal"
}

func newIPv6OnlySim(t *testing.T, region string, opts Options) (*Sim, *ec2.Client) {
	t.Helper()
	sc, err := ParseScenario([]byte(strings.ReplaceAll(ipv6OnlyYAML, "REGION", region)))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	opts.Scenario = sc
	return newTestSim(t, opts)
}

func describeOne(t *testing.T, c *ec2.Client, id string) types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("describe %s: %+v", id, out.Reservations)
	}
	return out.Reservations[0].Instances[0]
}

func TestIPv6OnlySubnetAndInstances(t *testing.T) {
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		t.Run(region, func(t *testing.T) {
			_, c := newIPv6OnlySim(t, region, Options{})
			domain := domainOf(region)

			sn, err := c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{SubnetIds: []string{snV6Only}})
			if err != nil {
				t.Fatalf("describe subnets: %v", err)
			}
			s := sn.Subnets[0]
			if !aws.ToBool(s.Ipv6Native) || s.CidrBlock != nil || s.AvailableIpAddressCount != nil {
				t.Errorf("ipv6-only subnet: native=%v cidr=%v available=%v", aws.ToBool(s.Ipv6Native), s.CidrBlock, s.AvailableIpAddressCount)
			}
			if len(s.Ipv6CidrBlockAssociationSet) != 1 || aws.ToString(s.Ipv6CidrBlockAssociationSet[0].Ipv6CidrBlock) != v6OnlyCIDR {
				t.Errorf("ipv6 cidr = %+v", s.Ipv6CidrBlockAssociationSet)
			}
			if o := s.PrivateDnsNameOptionsOnLaunch; o == nil || o.HostnameType != types.HostnameTypeResourceName {
				t.Errorf("privateDnsNameOptionsOnLaunch = %+v", o)
			}
			nat, err := c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("ipv6-native"), Values: []string{"true"}}}})
			if err != nil {
				t.Fatalf("ipv6-native filter: %v", err)
			}
			if len(nat.Subnets) != 1 || aws.ToString(nat.Subnets[0].SubnetId) != snV6Only {
				t.Errorf("ipv6-native=true matched %d subnets", len(nat.Subnets))
			}
			dual, err := c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{SubnetIds: []string{snDual}})
			if err != nil {
				t.Fatal(err)
			}
			if d := dual.Subnets[0]; aws.ToBool(d.Ipv6Native) || aws.ToString(d.CidrBlock) != "10.0.1.0/24" ||
				d.PrivateDnsNameOptionsOnLaunch == nil || d.PrivateDnsNameOptionsOnLaunch.HostnameType != types.HostnameTypeIpName {
				t.Errorf("dual-stack subnet = %+v", d)
			}

			for _, id := range []string{idV6Auto, idV6Fixed} {
				in := describeOne(t, c, id)
				if in.PrivateIpAddress != nil {
					t.Errorf("%s: privateIpAddress = %q", id, aws.ToString(in.PrivateIpAddress))
				}
				if got, want := aws.ToString(in.PrivateDnsName), id+"."+domain; got != want {
					t.Errorf("%s: privateDnsName = %q, want %q", id, got, want)
				}
				if o := in.PrivateDnsNameOptions; o == nil || o.HostnameType != types.HostnameTypeResourceName {
					t.Errorf("%s: privateDnsNameOptions = %+v", id, o)
				}
				if len(in.NetworkInterfaces) != 1 {
					t.Fatalf("%s: %d ENIs", id, len(in.NetworkInterfaces))
				}
				e := in.NetworkInterfaces[0]
				if e.PrivateIpAddress != nil || e.PrivateDnsName != nil || len(e.PrivateIpAddresses) != 0 {
					t.Errorf("%s: ENI IPv4 fields: ip=%v dns=%v set=%v", id, e.PrivateIpAddress, e.PrivateDnsName, e.PrivateIpAddresses)
				}
				if len(e.Ipv6Addresses) != 1 {
					t.Fatalf("%s: ENI IPv6 = %+v, want one address", id, e.Ipv6Addresses)
				}
				a := netip.MustParseAddr(aws.ToString(e.Ipv6Addresses[0].Ipv6Address))
				if !netip.MustParsePrefix(v6OnlyCIDR).Contains(a) {
					t.Errorf("%s: address %s outside %s", id, a, v6OnlyCIDR)
				}
				if id == idV6Fixed && (a.String() != v6Fixed || aws.ToString(in.Ipv6Address) != v6Fixed) {
					t.Errorf("%s: address %s / instance ipv6Address %q, want %s", id, a, aws.ToString(in.Ipv6Address), v6Fixed)
				}
			}

			// The private-dns-name filter finds the resource name.
			out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
				{Name: aws.String("private-dns-name"), Values: []string{idV6Auto + "." + domain}}}})
			if err != nil {
				t.Fatalf("private-dns-name filter: %v", err)
			}
			if len(out.Reservations) != 1 || aws.ToString(out.Reservations[0].Instances[0].InstanceId) != idV6Auto {
				t.Errorf("private-dns-name filter matched %+v", out.Reservations)
			}
			// A private-ip-address filter skips instances without IPv4.
			out, err = c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
				{Name: aws.String("private-ip-address"), Values: []string{"*"}}}})
			if err != nil {
				t.Fatalf("private-ip-address filter: %v", err)
			}
			for _, r := range out.Reservations {
				if id := aws.ToString(r.Instances[0].InstanceId); id == idV6Auto || id == idV6Fixed {
					t.Errorf("private-ip-address=* matched IPv6-only %s", id)
				}
			}

			enis, err := c.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
				{Name: aws.String("subnet-id"), Values: []string{snV6Only}}}})
			if err != nil {
				t.Fatalf("describe ENIs: %v", err)
			}
			if len(enis.NetworkInterfaces) != 2 {
				t.Fatalf("%d ENIs in the IPv6-only subnet", len(enis.NetworkInterfaces))
			}
			for _, e := range enis.NetworkInterfaces {
				if !aws.ToBool(e.Ipv6Native) || e.PrivateIpAddress != nil || e.PrivateDnsName != nil || len(e.PrivateIpAddresses) != 0 || len(e.Ipv6Addresses) != 1 {
					t.Errorf("ENI %s: native=%v ip=%v dns=%v set=%v v6=%v", aws.ToString(e.NetworkInterfaceId), aws.ToBool(e.Ipv6Native),
						e.PrivateIpAddress, e.PrivateDnsName, e.PrivateIpAddresses, e.Ipv6Addresses)
				}
			}
		})
	}
}

func TestResourceNameDualStack(t *testing.T) {
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		t.Run(region, func(t *testing.T) {
			_, c := newIPv6OnlySim(t, region, Options{})
			domain := domainOf(region)

			in := describeOne(t, c, idDualRBN)
			if got, want := aws.ToString(in.PrivateDnsName), idDualRBN+"."+domain; got != want {
				t.Errorf("privateDnsName = %q, want %q", got, want)
			}
			if got := aws.ToString(in.PrivateIpAddress); got != "10.0.1.20" {
				t.Errorf("privateIpAddress = %q", got)
			}
			o := in.PrivateDnsNameOptions
			if o == nil || o.HostnameType != types.HostnameTypeResourceName || !aws.ToBool(o.EnableResourceNameDnsARecord) || aws.ToBool(o.EnableResourceNameDnsAAAARecord) {
				t.Errorf("privateDnsNameOptions = %+v", o)
			}
			e := in.NetworkInterfaces[0]
			if got, want := aws.ToString(e.PrivateDnsName), "ip-10-0-1-20."+domain; got != want {
				t.Errorf("ENI privateDnsName = %q, want the IP name %q", got, want)
			}

			// Options inherited from the subnet's privateDnsNameOptionsOnLaunch.
			in = describeOne(t, c, idSubnetRB)
			if got, want := aws.ToString(in.PrivateDnsName), idSubnetRB+"."+domain; got != want {
				t.Errorf("subnet-launched privateDnsName = %q, want %q", got, want)
			}
			o = in.PrivateDnsNameOptions
			if o == nil || o.HostnameType != types.HostnameTypeResourceName || aws.ToBool(o.EnableResourceNameDnsARecord) || !aws.ToBool(o.EnableResourceNameDnsAAAARecord) {
				t.Errorf("subnet-launched privateDnsNameOptions = %+v", o)
			}
			if in.PrivateIpAddress == nil {
				t.Error("subnet-launched instance lost its IPv4 address")
			}

			out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
				{Name: aws.String("private-dns-name"), Values: []string{idDualRBN + "." + domain, idSubnetRB + "." + domain}}}})
			if err != nil {
				t.Fatalf("private-dns-name filter: %v", err)
			}
			if n := len(out.Reservations); n != 2 {
				t.Errorf("private-dns-name filter matched %d instances, want 2", n)
			}

			sn, err := c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{SubnetIds: []string{snRBN}})
			if err != nil {
				t.Fatal(err)
			}
			so := sn.Subnets[0].PrivateDnsNameOptionsOnLaunch
			if so == nil || so.HostnameType != types.HostnameTypeResourceName || !aws.ToBool(so.EnableResourceNameDnsAAAARecord) {
				t.Errorf("subnet privateDnsNameOptionsOnLaunch = %+v", so)
			}
		})
	}
}

func TestIPv6OnlyScenarioErrors(t *testing.T) {
	const base = "vpcs: [{id: vpc-0a1b2c3d4e5f60708, cidr: 10.0.0.0/16, ipv6CIDR: \"2600:1f18:4000:a900::/56\"}]\n"
	const v6sn = "subnets:\n- {id: subnet-0eeeeeeeeeeeeeee6, ipv6Native: true, ipv6CIDR: \"2600:1f18:4000:a906::/64\"%s}\n"
	parseErrs := map[string]struct{ yaml, want string }{
		"cidr in native subnet": {base + "subnets:\n- {id: subnet-0eeeeeeeeeeeeeee6, ipv6Native: true, cidr: 10.0.6.0/24, ipv6CIDR: \"2600:1f18:4000:a906::/64\"}\n",
			`subnet "subnet-0eeeeeeeeeeeeeee6": cidr`},
		"native without ipv6CIDR": {base + "subnets:\n- {id: subnet-0eeeeeeeeeeeeeee6, ipv6Native: true}\n",
			`subnet "subnet-0eeeeeeeeeeeeeee6": ipv6CIDR`},
		"cidr missing": {base + "subnets:\n- {id: subnet-0aaaaaaaaaaaaaaa1, ipv6CIDR: \"2600:1f18:4000:a901::/64\"}\n",
			`subnet "subnet-0aaaaaaaaaaaaaaa1": cidr is required`},
		"ip-name on native subnet": {base + strings.Replace(v6sn, "%s", ", privateDnsNameOptionsOnLaunch: {hostnameType: ip-name}", 1),
			`subnet "subnet-0eeeeeeeeeeeeeee6": privateDnsNameOptionsOnLaunch.hostnameType`},
		"unknown hostnameType": {base + "instances:\n- privateDnsNameOptions: {hostnameType: fancy-name}\n", "hostnameType"},
	}
	for name, tc := range parseErrs {
		_, err := ParseScenario([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
	startErrs := map[string]struct{ yaml, want string }{
		"ip-name instance in native subnet": {base + strings.Replace(v6sn, "%s", "", 1) +
			"instances:\n- {subnet: subnet-0eeeeeeeeeeeeeee6, privateDnsNameOptions: {hostnameType: ip-name}}\n", "hostnameType must be resource-name"},
		"privateIPs in native subnet": {base + strings.Replace(v6sn, "%s", "", 1) +
			"instances:\n- subnet: subnet-0eeeeeeeeeeeeeee6\n  enis: [{deviceIndex: 0, privateIPs: [10.0.6.10]}]\n", "privateIPs are not allowed"},
	}
	for name, tc := range startErrs {
		sc, err := ParseScenario([]byte(tc.yaml))
		if err != nil {
			t.Errorf("%s: parse: %v", name, err)
			continue
		}
		sim, err := Start(Options{Scenario: sc})
		if err == nil {
			sim.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
	// A scenario built in Go (not parsed) is checked too.
	_, err := Start(Options{Scenario: &Scenario{VPCs: []VPC{{CIDR: "10.0.0.0/16", IPv6CIDR: "2600:1f18:4000:a900::/56"}},
		Subnets: []Subnet{{ID: "subnet-0eeeeeeeeeeeeeee6", IPv6Native: true, CIDR: "10.0.6.0/24", IPv6CIDR: "2600:1f18:4000:a906::/64"}}}})
	if err == nil || !strings.Contains(err.Error(), "cidr must be empty") {
		t.Errorf("Go scenario with cidr in a native subnet: %v", err)
	}
}

// httpStatus is the HTTP status of an SDK error, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestIMDSIPv6OnlyInstance(t *testing.T) {
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		t.Run(region, func(t *testing.T) {
			sim, _ := newIPv6OnlySim(t, region, Options{})
			c := imds.New(imds.Options{Endpoint: sim.Endpoint()})
			name := idV6Fixed + "." + domainOf(region)
			mac := "network/interfaces/macs/" + v6OnlyMAC + "/"
			want := map[string]string{
				"instance-id":                   idV6Fixed,
				"hostname":                      name,
				"local-hostname":                name,
				"ipv6":                          v6Fixed,
				"mac":                           v6OnlyMAC,
				mac + "ipv6s":                   v6Fixed,
				mac + "subnet-id":               snV6Only,
				mac + "subnet-ipv6-cidr-blocks": v6OnlyCIDR,
			}
			for path, w := range want {
				if got := readMetadata(t, c, path); got != w {
					t.Errorf("%s = %q, want %q", path, got, w)
				}
			}
			for _, path := range []string{"local-ipv4", mac + "local-ipv4s", mac + "subnet-ipv4-cidr-block", mac + "local-hostname"} {
				_, err := c.GetMetadata(t.Context(), &imds.GetMetadataInput{Path: path})
				if httpStatus(err) != 404 {
					t.Errorf("%s: %v, want 404", path, err)
				}
			}
			for _, dir := range []string{"", mac} {
				for _, line := range strings.Split(readMetadata(t, c, dir), "\n") {
					if strings.Contains(line, "ipv4") && line != "vpc-ipv4-cidr-block" && line != "vpc-ipv4-cidr-blocks" {
						t.Errorf("listing %q has %q", dir, line)
					}
				}
			}
			doc, err := c.GetInstanceIdentityDocument(t.Context(), &imds.GetInstanceIdentityDocumentInput{})
			if err != nil {
				t.Fatalf("identity document: %v", err)
			}
			if doc.PrivateIP != "" || doc.InstanceID != idV6Fixed || doc.Region != region {
				t.Errorf("identity document = %+v", doc.InstanceIdentityDocument)
			}
			// The dual-stack resource-name instance keeps local-ipv4.
			sim.SetIMDSInstance(idDualRBN)
			if got := readMetadata(t, c, "local-ipv4"); got != "10.0.1.20" {
				t.Errorf("dual-stack local-ipv4 = %q", got)
			}
			if got, want := readMetadata(t, c, "hostname"), idDualRBN+"."+domainOf(region); got != want {
				t.Errorf("dual-stack hostname = %q, want %q", got, want)
			}
		})
	}
}
