package ec2sim

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// sgScenarioYAML has two VPCs (the second without IPv6) and scenario
// security groups referenced by name.
const sgScenarioYAML = `
region: us-east-1
seed: 3
zones: [{name: us-east-1a}, {name: us-east-1b}]
vpcs:
- {id: vpc-0aaaaaaaaaaaaaaa1, cidr: 10.0.0.0/16, ipv6CIDR: "2600:1f18:4000:a900::/56"}
- {id: vpc-0bbbbbbbbbbbbbbb2, cidr: 10.1.0.0/16}
subnets:
- {id: subnet-0aaaaaaaaaaaaaaa1, vpc: vpc-0aaaaaaaaaaaaaaa1, zone: us-east-1a, cidr: 10.0.1.0/24, ipv6CIDR: "2600:1f18:4000:a901::/64"}
- {id: subnet-0bbbbbbbbbbbbbbb2, vpc: vpc-0bbbbbbbbbbbbbbb2, zone: us-east-1b, cidr: 10.1.1.0/24}
securityGroups:
- id: sg-0aaaaaaaaaaaaaaa1
  name: web
  vpc: vpc-0aaaaaaaaaaaaaaa1
  tags: {team: edge}
  ingress:
  - {protocol: tcp, fromPort: 443, toPort: 443, cidr: 0.0.0.0/0, description: https}
  - {protocol: "6", fromPort: 443, toPort: 443, cidr: "::/0"}
  - {protocol: "-1", group: app}
- {id: sg-0bbbbbbbbbbbbbbb2, name: app, vpc: vpc-0aaaaaaaaaaaaaaa1, description: application tier}
- {id: sg-0ccccccccccccccc3, name: other, vpc: vpc-0bbbbbbbbbbbbbbb2}
instances:
- id: i-0000000000000aa01
  subnet: subnet-0aaaaaaaaaaaaaaa1
  securityGroups: [web, sg-0bbbbbbbbbbbbbbb2]
  enis:
  - {id: eni-0000000000000aa01, deviceIndex: 0, ipv6AddressCount: 2}
  - {id: eni-0000000000000aa02, deviceIndex: 1, securityGroups: [app]}
- id: i-0000000000000bb02
  subnet: subnet-0bbbbbbbbbbbbbbb2
  enis: [{id: eni-0000000000000bb01, deviceIndex: 0}]
`

const (
	sgWeb   = "sg-0aaaaaaaaaaaaaaa1"
	sgApp   = "sg-0bbbbbbbbbbbbbbb2"
	sgOther = "sg-0ccccccccccccccc3"
	sgVPC1  = "vpc-0aaaaaaaaaaaaaaa1"
	sgVPC2  = "vpc-0bbbbbbbbbbbbbbb2"
)

func newSGSim(t *testing.T, opts Options) (*Sim, *ec2.Client) {
	t.Helper()
	if opts.Scenario == nil {
		sc, err := ParseScenario([]byte(sgScenarioYAML))
		if err != nil {
			t.Fatalf("parse scenario: %v", err)
		}
		opts.Scenario = sc
	}
	return newTestSim(t, opts)
}

func describeGroup(t *testing.T, c *ec2.Client, id string) types.SecurityGroup {
	t.Helper()
	out, err := c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeSecurityGroups %s: %v", id, err)
	}
	if len(out.SecurityGroups) != 1 {
		t.Fatalf("DescribeSecurityGroups %s: %d groups", id, len(out.SecurityGroups))
	}
	return out.SecurityGroups[0]
}

// permText flattens IpPermissions to sorted lines "proto from-to src[desc]",
// one per source, and checks each permission carries one protocol and range.
func permText(perms []types.IpPermission) []string {
	var out []string
	for _, p := range perms {
		pr := aws.ToString(p.IpProtocol)
		if p.FromPort != nil {
			pr += " " + itoa(*p.FromPort) + "-" + itoa(*p.ToPort)
		}
		for _, r := range p.IpRanges {
			out = append(out, pr+" "+aws.ToString(r.CidrIp)+"["+aws.ToString(r.Description)+"]")
		}
		for _, r := range p.Ipv6Ranges {
			out = append(out, pr+" "+aws.ToString(r.CidrIpv6)+"["+aws.ToString(r.Description)+"]")
		}
		for _, g := range p.UserIdGroupPairs {
			out = append(out, pr+" "+aws.ToString(g.GroupId)+"["+aws.ToString(g.Description)+"]")
		}
	}
	slices.Sort(out)
	return out
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// decodeXML decodes an EC2 reply body.
func decodeXML(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := xml.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode reply: %v", err)
	}
}

func TestDefaultWorldSecurityGroups(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	ctx := context.Background()
	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecurityGroups) != 1 {
		t.Fatalf("want the VPC's default group only, got %d groups", len(out.SecurityGroups))
	}
	def := out.SecurityGroups[0]
	id := aws.ToString(def.GroupId)
	if aws.ToString(def.GroupName) != "default" || aws.ToString(def.VpcId) != "vpc-0a1b2c3d4e5f60708" || !sgIDRe.MatchString(id) ||
		aws.ToString(def.OwnerId) != "111122223333" || aws.ToString(def.SecurityGroupArn) != "arn:aws:ec2:us-east-1:111122223333:security-group/"+id {
		t.Fatalf("default group: %+v", def)
	}
	if got, want := permText(def.IpPermissions), []string{"-1 " + id + "[]"}; !slices.Equal(got, want) {
		t.Errorf("default ingress %v, want %v", got, want)
	}
	if def.IpPermissions[0].FromPort != nil || def.IpPermissions[0].ToPort != nil {
		t.Errorf("protocol -1 must have no ports: %+v", def.IpPermissions[0])
	}
	if got, want := permText(def.IpPermissionsEgress), []string{"-1 0.0.0.0/0[]", "-1 ::/0[]"}; !slices.Equal(got, want) {
		t.Errorf("default egress %v, want %v", got, want)
	}
	// Every ENI carries it, in both describes.
	di, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{idPre}})
	if err != nil {
		t.Fatal(err)
	}
	inst := di.Reservations[0].Instances[0]
	if len(inst.SecurityGroups) != 1 || aws.ToString(inst.SecurityGroups[0].GroupId) != id || aws.ToString(inst.SecurityGroups[0].GroupName) != "default" {
		t.Errorf("instance groups %+v", inst.SecurityGroups)
	}
	if g := inst.NetworkInterfaces[0].Groups; len(g) != 1 || aws.ToString(g[0].GroupId) != id {
		t.Errorf("instance ENI groups %+v", g)
	}
	dn, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(dn.NetworkInterfaces); n != 6 {
		t.Errorf("group-id filter: %d ENIs, want all 6 live ones", n)
	}
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
	wantCode(t, err, "CannotDelete")
	if st := sim.State(); len(st.SecurityGroups) != 1 || !st.SecurityGroups[0].Default {
		t.Errorf("State().SecurityGroups = %+v", st.SecurityGroups)
	}
}

func TestClusterDefaultWorld(t *testing.T) {
	_, c := newTestSim(t, Options{Scenario: &Scenario{ClusterID: "demo", Instances: []Instance{{}, {}}}})
	ctx := context.Background()
	subnets := func(fs ...types.Filter) []types.Subnet {
		t.Helper()
		out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: fs})
		if err != nil {
			t.Fatal(err)
		}
		return out.Subnets
	}
	f := func(name string, vals ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: vals}
	}
	public := subnets(f("tag:kubernetes.io/role/elb", "1"))
	if len(public) != 3 {
		t.Fatalf("want one public subnet per zone, got %d", len(public))
	}
	zones := map[string]bool{}
	for _, s := range public {
		zones[aws.ToString(s.AvailabilityZone)] = true
		tags := map[string]string{}
		for _, tg := range s.Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		if tags["kubernetes.io/cluster/demo"] != "owned" || !strings.HasPrefix(tags["Name"], "demo-public-") ||
			!aws.ToBool(s.MapPublicIpOnLaunch) || len(s.Ipv6CidrBlockAssociationSet) != 1 {
			t.Errorf("public subnet %s: tags %v mapPublic %v", aws.ToString(s.SubnetId), tags, aws.ToBool(s.MapPublicIpOnLaunch))
		}
	}
	if len(zones) != 3 {
		t.Errorf("public subnets cover zones %v", zones)
	}
	if n := len(subnets(f("tag-key", "kubernetes.io/cluster/demo"))); n != 6 {
		t.Errorf("tag-key cluster: %d subnets, want 6", n)
	}
	internal := subnets(f("tag:kubernetes.io/role/internal-elb", "1"))
	if len(internal) != 3 || aws.ToBool(internal[0].MapPublicIpOnLaunch) {
		t.Errorf("internal-elb subnets: %d", len(internal))
	}
	if n := len(subnets(f("tag:kubernetes.io/role/elb", "1"), f("availability-zone", "us-east-1b"))); n != 1 {
		t.Errorf("elb subnets in us-east-1b: %d", n)
	}
	if n := len(subnets(f("map-public-ip-on-launch", "true"), f("vpc-id", aws.ToString(public[0].VpcId)))); n != 3 {
		t.Errorf("map-public-ip-on-launch: %d", n)
	}
	if n := len(subnets(f("subnet-id", aws.ToString(public[1].SubnetId)), f("tag:Name", "demo-public-*"))); n != 1 {
		t.Errorf("subnet-id + tag wildcard: %d", n)
	}
	if n := len(subnets(f("tag:kubernetes.io/role/elb", "0"))); n != 0 {
		t.Errorf("elb=0: %d", n)
	}
	// The node group: cluster-tagged, on every ENI; instances stay in the
	// private subnets.
	sgs, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{f("tag:kubernetes.io/cluster/demo", "owned")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sgs.SecurityGroups) != 1 || aws.ToString(sgs.SecurityGroups[0].GroupName) != "demo-node" {
		t.Fatalf("node group: %+v", sgs.SecurityGroups)
	}
	node := aws.ToString(sgs.SecurityGroups[0].GroupId)
	di, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{f("instance.group-id", node)}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(di.Reservations); n != 2 {
		t.Fatalf("instances in the node group: %d", n)
	}
	for _, r := range di.Reservations {
		in := r.Instances[0]
		if aws.ToString(in.SubnetId) != aws.ToString(internal[0].SubnetId) {
			t.Errorf("instance %s in %s, want the first private subnet", aws.ToString(in.InstanceId), aws.ToString(in.SubnetId))
		}
		if g := in.NetworkInterfaces[0].Groups; len(g) != 1 || aws.ToString(g[0].GroupName) != "demo-node" {
			t.Errorf("ENI groups %+v", g)
		}
	}
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(node)})
	wantCode(t, err, "DependencyViolation")
}

func TestScenarioSecurityGroups(t *testing.T) {
	sim, c := newSGSim(t, Options{})
	web := describeGroup(t, c, sgWeb)
	if got, want := permText(web.IpPermissions), []string{"-1 " + sgApp + "[]", "tcp 443-443 0.0.0.0/0[https]", "tcp 443-443 ::/0[]"}; !slices.Equal(got, want) {
		t.Errorf("web ingress %v, want %v", got, want)
	}
	// One IpPermission per protocol and port range.
	if n := len(web.IpPermissions); n != 2 {
		t.Errorf("web has %d IpPermissions, want 2 (tcp/443 with both ranges, -1)", n)
	}
	if got := permText(web.IpPermissionsEgress); !slices.Equal(got, []string{"-1 0.0.0.0/0[]"}) {
		t.Errorf("scenario group egress %v", got)
	}
	if app := describeGroup(t, c, sgApp); aws.ToString(app.Description) != "application tier" {
		t.Errorf("app description %q", aws.ToString(app.Description))
	}
	st := sim.State()
	e0, _ := st.ENI("eni-0000000000000aa01")
	e1, _ := st.ENI("eni-0000000000000aa02")
	e2, _ := st.ENI("eni-0000000000000bb01")
	if !slices.Equal(e0.SecurityGroups, []string{sgWeb, sgApp}) || !slices.Equal(e1.SecurityGroups, []string{sgApp}) ||
		len(e2.SecurityGroups) != 1 || e2.SecurityGroups[0] == sgOther || !e0.SourceDestCheck {
		t.Errorf("ENI groups %v %v %v", e0.SecurityGroups, e1.SecurityGroups, e2.SecurityGroups)
	}
	gs := sim.SecurityGroups()
	if len(gs) != 5 { // two default groups and three of the scenario
		t.Fatalf("SecurityGroups() = %d groups", len(gs))
	}
	i := slices.IndexFunc(gs, func(g SecurityGroup) bool { return g.ID == sgWeb })
	if g := gs[i]; g.Tags["team"] != "edge" || len(g.Ingress) != 3 || g.Ingress[1].Protocol != "tcp" || !sgrIDRe.MatchString(g.Ingress[0].ID) {
		t.Errorf("SecurityGroups() web = %+v", g)
	}
	// The admin endpoint's state carries the groups too.
	resp, err := http.Get(sim.Endpoint() + "/_ec2sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var js State
	if err := json.NewDecoder(resp.Body).Decode(&js); err != nil || len(js.SecurityGroups) != 5 {
		t.Errorf("admin state: %v, %d groups", err, len(js.SecurityGroups))
	}
	for _, bad := range []string{
		"securityGroups: [{name: default}]",
		"securityGroups: [{name: x, ingress: [{protocol: tcp, fromPort: 1, toPort: 2, group: nope}]}]",
		"securityGroups: [{name: x, ingress: [{protocol: tcp, fromPort: 5, toPort: 1, cidr: 0.0.0.0/0}]}]",
		"securityGroups: [{name: x, ingress: [{protocol: tcp, cidr: 0.0.0.0/0, group: x}]}]",
		"securityGroups: [{name: x}, {name: X}]",
		"instances: [{securityGroups: [nope]}]",
		"instances: [{enis: [{deviceIndex: 0, enablePrimaryIpv6: true}]}]",
	} {
		sc, err := ParseScenario([]byte(bad))
		if err == nil {
			_, err = Start(Options{Scenario: sc})
		}
		if err == nil {
			t.Errorf("scenario %q accepted", bad)
		}
	}
}

func TestCreateSecurityGroup(t *testing.T) {
	_, c := newSGSim(t, Options{})
	ctx := context.Background()
	out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("k8s-elb-a1b2"), Description: aws.String("Security group for Kubernetes ELB a1b2 (default/web)"),
		VpcId: aws.String(sgVPC1),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup,
			Tags: []types.Tag{{Key: aws.String("kubernetes.io/cluster/demo"), Value: aws.String("owned")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.GroupId)
	if !sgIDRe.MatchString(id) || len(out.Tags) != 1 || !strings.HasSuffix(aws.ToString(out.SecurityGroupArn), ":security-group/"+id) {
		t.Fatalf("CreateSecurityGroup = %+v", out)
	}
	g := describeGroup(t, c, id)
	if len(g.IpPermissions) != 0 || !slices.Equal(permText(g.IpPermissionsEgress), []string{"-1 0.0.0.0/0[]"}) || len(g.Tags) != 1 {
		t.Errorf("new group: ingress %v egress %v tags %v", g.IpPermissions, permText(g.IpPermissionsEgress), g.Tags)
	}
	// The same name in another VPC is fine.
	if _, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("k8s-elb-a1b2"),
		Description: aws.String("x"), VpcId: aws.String(sgVPC2)}); err != nil {
		t.Errorf("same name, other VPC: %v", err)
	}
	for _, tc := range []struct {
		name, desc, vpc string
		tags            []types.TagSpecification
		code            string
	}{
		{"K8S-ELB-A1B2", "dup", sgVPC1, nil, "InvalidGroup.Duplicate"},
		{"default", "d", sgVPC1, nil, "InvalidGroup.Reserved"},
		{"sg-mine", "d", sgVPC1, nil, "InvalidParameterValue"},
		{"tab\tname", "d", sgVPC1, nil, "InvalidParameterValue"},
		{strings.Repeat("n", 256), "d", sgVPC1, nil, "InvalidParameterValue"},
		{"n", "caf\u00e9", sgVPC1, nil, "InvalidParameterValue"},
		{"n", "d", "", nil, "VPCIdNotSpecified"},
		{"n", "d", "vpc-0123456789abcdef9", nil, "InvalidVpcID.NotFound"},
		{"n", "d", "vpc-x", nil, "InvalidVpcID.Malformed"},
		{"n", "d", sgVPC1, []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}}, "InvalidParameterValue"},
		{"n", "d", sgVPC1, []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}}}, "InvalidParameterValue"},
	} {
		in := &ec2.CreateSecurityGroupInput{GroupName: aws.String(tc.name), Description: aws.String(tc.desc), TagSpecifications: tc.tags}
		if tc.vpc != "" {
			in.VpcId = aws.String(tc.vpc)
		}
		_, err := c.CreateSecurityGroup(ctx, in)
		wantCode(t, err, tc.code)
	}
}

// TestCreateSecurityGroupMissing sends what the SDK would refuse to send.
func TestCreateSecurityGroupMissing(t *testing.T) {
	sim, _ := newSGSim(t, Options{})
	for body, code := range map[string]string{
		"Action=CreateSecurityGroup&Version=2016-11-15&GroupName=a&VpcId=" + sgVPC1:                            "MissingParameter",
		"Action=CreateSecurityGroup&Version=2016-11-15&GroupDescription=a&VpcId=" + sgVPC1:                     "MissingParameter",
		"Action=DeleteSecurityGroup&Version=2016-11-15":                                                        "MissingParameter",
		"Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=" + sgWeb:                             "MissingParameter",
		"Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=" + sgWeb + "&IpProtocol=tcp&Bogus=1": "UnknownParameter",
	} {
		req, _ := http.NewRequest(http.MethodPost, sim.Endpoint()+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		signRequest(t, req, body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Errors []struct{ Code string } `xml:"Errors>Error"`
		}
		decodeXML(t, resp, &e)
		if resp.StatusCode != 400 || len(e.Errors) != 1 || e.Errors[0].Code != code {
			t.Errorf("%s: status %d %+v, want %s", body, resp.StatusCode, e, code)
		}
	}
}

func TestDescribeSecurityGroups(t *testing.T) {
	_, c := newSGSim(t, Options{})
	ctx := context.Background()
	ids := func(in *ec2.DescribeSecurityGroupsInput) []string {
		t.Helper()
		out, err := c.DescribeSecurityGroups(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, g := range out.SecurityGroups {
			ids = append(ids, aws.ToString(g.GroupId))
		}
		slices.Sort(ids)
		return ids
	}
	f := func(name string, vals ...string) []types.Filter {
		return []types.Filter{{Name: aws.String(name), Values: vals}}
	}
	for _, tc := range []struct {
		in   *ec2.DescribeSecurityGroupsInput
		want []string
	}{
		{&ec2.DescribeSecurityGroupsInput{GroupIds: []string{sgApp, sgWeb}}, []string{sgWeb, sgApp}},
		{&ec2.DescribeSecurityGroupsInput{Filters: f("group-name", "web", "other")}, []string{sgWeb, sgOther}},
		{&ec2.DescribeSecurityGroupsInput{Filters: f("group-id", sgApp)}, []string{sgApp}},
		{&ec2.DescribeSecurityGroupsInput{Filters: append(f("vpc-id", sgVPC1), f("group-name", "w*", "a*")...)}, []string{sgWeb, sgApp}},
		{&ec2.DescribeSecurityGroupsInput{Filters: f("tag:team", "edge")}, []string{sgWeb}},
		{&ec2.DescribeSecurityGroupsInput{Filters: f("tag-key", "team")}, []string{sgWeb}},
		{&ec2.DescribeSecurityGroupsInput{Filters: f("ip-permission.cidr", "0.0.0.0/0")}, []string{sgWeb}},
		{&ec2.DescribeSecurityGroupsInput{Filters: f("ip-permission.ipv6-cidr", "::/0")}, []string{sgWeb}},
		{&ec2.DescribeSecurityGroupsInput{Filters: f("ip-permission.group-id", sgApp)}, []string{sgWeb}},
		{&ec2.DescribeSecurityGroupsInput{Filters: f("description", "application*")}, []string{sgApp}},
	} {
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if got := ids(tc.in); !slices.Equal(got, want) {
			t.Errorf("%+v: got %v, want %v", tc.in, got, want)
		}
	}
	// Paging: 9 groups in pages of 5.
	for i := range 4 {
		if _, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("extra" + string(rune('a'+i))),
			Description: aws.String("e"), VpcId: aws.String(sgVPC1)}); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	pager := ec2.NewDescribeSecurityGroupsPaginator(c, &ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(5)})
	pages := 0
	for pager.HasMorePages() {
		out, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, g := range out.SecurityGroups {
			all = append(all, aws.ToString(g.GroupId))
		}
	}
	if pages != 2 || len(all) != 9 {
		t.Errorf("paging: %d pages, %d groups", pages, len(all))
	}
	for _, tc := range []struct {
		in   *ec2.DescribeSecurityGroupsInput
		code string
	}{
		{&ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef9"}}, "InvalidGroup.NotFound"},
		{&ec2.DescribeSecurityGroupsInput{GroupIds: []string{sgWeb, "sg-0123456789abcdef9"}}, "InvalidGroup.NotFound"},
		{&ec2.DescribeSecurityGroupsInput{GroupIds: []string{"web"}}, "InvalidGroupId.Malformed"},
		{&ec2.DescribeSecurityGroupsInput{GroupNames: []string{"web"}}, "VPCIdNotSpecified"},
		{&ec2.DescribeSecurityGroupsInput{GroupIds: []string{sgWeb}, MaxResults: aws.Int32(5)}, "InvalidParameterCombination"},
		{&ec2.DescribeSecurityGroupsInput{Filters: f("ip-permission.bogus", "x")}, "InvalidParameterValue"},
	} {
		_, err := c.DescribeSecurityGroups(ctx, tc.in)
		wantCode(t, err, tc.code)
	}
}

func tcpPerm(from, to int32, cidrs ...string) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(from), ToPort: aws.Int32(to)}
	for _, c := range cidrs {
		if strings.Contains(c, ":") {
			p.Ipv6Ranges = append(p.Ipv6Ranges, types.Ipv6Range{CidrIpv6: aws.String(c)})
		} else {
			p.IpRanges = append(p.IpRanges, types.IpRange{CidrIp: aws.String(c)})
		}
	}
	return p
}

func TestAuthorizeSecurityGroupIngress(t *testing.T) {
	_, c := newSGSim(t, Options{})
	ctx := context.Background()
	auth := func(perms ...types.IpPermission) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
		return c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sgApp), IpPermissions: perms})
	}
	health := tcpPerm(10256, 10256, "10.0.0.0/16")
	health.IpRanges[0].Description = aws.String("kubernetes.io/rule/nlb/health=web")
	out, err := auth(
		tcpPerm(30080, 30080, "0.0.0.0/0", "203.0.113.7/8", "::/0"), // host bits are canonicalised
		health,
		types.IpPermission{IpProtocol: aws.String("6"), FromPort: aws.Int32(30000), ToPort: aws.Int32(32767),
			UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(sgWeb), Description: aws.String("from web")}}},
		types.IpPermission{IpProtocol: aws.String("icmp"), FromPort: aws.Int32(3), ToPort: aws.Int32(4), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
		types.IpPermission{IpProtocol: aws.String("icmpv6"), Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("2600:1f18::/32")}}},
		types.IpPermission{IpProtocol: aws.String("50"), FromPort: aws.Int32(1), ToPort: aws.Int32(2), IpRanges: []types.IpRange{{CidrIp: aws.String("192.0.2.0/24")}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(out.Return) || len(out.SecurityGroupRules) != 8 {
		t.Fatalf("Authorize: return %v, %d rules", aws.ToBool(out.Return), len(out.SecurityGroupRules))
	}
	r0 := out.SecurityGroupRules[1]
	if !sgrIDRe.MatchString(aws.ToString(r0.SecurityGroupRuleId)) || aws.ToString(r0.GroupId) != sgApp || aws.ToBool(r0.IsEgress) ||
		aws.ToString(r0.CidrIpv4) != "203.0.0.0/8" || aws.ToInt32(r0.FromPort) != 30080 || aws.ToString(r0.GroupOwnerId) != "111122223333" {
		t.Errorf("rule %+v", r0)
	}
	if rg := out.SecurityGroupRules[4]; rg.ReferencedGroupInfo == nil || aws.ToString(rg.ReferencedGroupInfo.GroupId) != sgWeb || aws.ToString(rg.IpProtocol) != "tcp" {
		t.Errorf("group rule %+v", rg)
	}
	g := describeGroup(t, c, sgApp)
	want := []string{
		"50 192.0.2.0/24[]",
		"icmp 3-4 0.0.0.0/0[]",
		"icmpv6 -1--1 2600:1f18::/32[]",
		"tcp 10256-10256 10.0.0.0/16[kubernetes.io/rule/nlb/health=web]",
		"tcp 30000-32767 " + sgWeb + "[from web]",
		"tcp 30080-30080 0.0.0.0/0[]",
		"tcp 30080-30080 203.0.0.0/8[]",
		"tcp 30080-30080 ::/0[]",
	}
	if got := permText(g.IpPermissions); !slices.Equal(got, want) {
		t.Errorf("ingress\n got %v\nwant %v", got, want)
	}
	if n := len(g.IpPermissions); n != 6 {
		t.Errorf("%d IpPermissions, want 6 (one per protocol and range)", n)
	}
	for _, p := range g.IpPermissions {
		if aws.ToString(p.IpProtocol) == "tcp" && aws.ToInt32(p.FromPort) == 30080 && (len(p.IpRanges) != 2 || len(p.Ipv6Ranges) != 1) {
			t.Errorf("tcp/30080 is not one permission with both families: %+v", p)
		}
		if aws.ToString(p.IpProtocol) == "50" && p.FromPort != nil {
			t.Errorf("protocol 50 has ports: %+v", p)
		}
	}
	for _, tc := range []struct {
		name  string
		perms []types.IpPermission
		code  string
	}{
		{"duplicate", []types.IpPermission{tcpPerm(30080, 30080, "0.0.0.0/0")}, "InvalidPermission.Duplicate"},
		{"duplicate non-canonical", []types.IpPermission{tcpPerm(30080, 30080, "203.1.2.3/8")}, "InvalidPermission.Duplicate"},
		{"duplicate by number", []types.IpPermission{{IpProtocol: aws.String("6"), FromPort: aws.Int32(30080), ToPort: aws.Int32(30080), Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}}}, "InvalidPermission.Duplicate"},
		{"twice in one request", []types.IpPermission{tcpPerm(1, 1, "1.2.3.4/32", "1.2.3.4/32")}, "InvalidParameterValue"},
		{"bad CIDR", []types.IpPermission{tcpPerm(1, 1, "1.2.3.4/33")}, "InvalidParameterValue"},
		{"no prefix length", []types.IpPermission{tcpPerm(1, 1, "1.2.3.4")}, "InvalidParameterValue"},
		{"IPv6 as CidrIp", []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(1), ToPort: aws.Int32(1), IpRanges: []types.IpRange{{CidrIp: aws.String("::/0")}}}}, "InvalidParameterValue"},
		{"IPv4 as CidrIpv6", []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(1), ToPort: aws.Int32(1), Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("0.0.0.0/0")}}}}, "InvalidParameterValue"},
		{"port out of range", []types.IpPermission{tcpPerm(1, 65536, "1.2.3.4/32")}, "InvalidPermission.Malformed"},
		{"negative tcp port", []types.IpPermission{tcpPerm(-1, -1, "1.2.3.4/32")}, "InvalidPermission.Malformed"},
		{"reversed range", []types.IpPermission{tcpPerm(90, 80, "1.2.3.4/32")}, "InvalidPermission.Malformed"},
		{"tcp without ports", []types.IpPermission{{IpProtocol: aws.String("tcp"), IpRanges: []types.IpRange{{CidrIp: aws.String("1.2.3.4/32")}}}}, "InvalidParameterValue"},
		{"icmp without type", []types.IpPermission{{IpProtocol: aws.String("icmp"), IpRanges: []types.IpRange{{CidrIp: aws.String("1.2.3.4/32")}}}}, "InvalidParameterValue"},
		{"unknown protocol", []types.IpPermission{{IpProtocol: aws.String("sctpish"), IpRanges: []types.IpRange{{CidrIp: aws.String("1.2.3.4/32")}}}}, "InvalidParameterValue"},
		{"protocol 256", []types.IpPermission{{IpProtocol: aws.String("256"), IpRanges: []types.IpRange{{CidrIp: aws.String("1.2.3.4/32")}}}}, "InvalidParameterValue"},
		{"no source", []types.IpPermission{{IpProtocol: aws.String("-1")}}, "MissingParameter"},
		{"unknown group", []types.IpPermission{{IpProtocol: aws.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String("sg-0123456789abcdef9")}}}}, "InvalidGroup.NotFound"},
		{"group of another VPC", []types.IpPermission{{IpProtocol: aws.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(sgOther)}}}}, "InvalidGroup.NotFound"},
		{"group by name", []types.IpPermission{{IpProtocol: aws.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupName: aws.String("web")}}}}, "VPCIdNotSpecified"},
		{"bad description", []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("1.2.3.4/32"), Description: aws.String("caf\u00e9")}}}}, "InvalidParameterValue"},
		{"prefix list", []types.IpPermission{{IpProtocol: aws.String("-1"), PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String("pl-12345678")}}}}, "InvalidPrefixListID.NotFound"},
	} {
		_, err := auth(tc.perms...)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if got := apiCode(t, err); got != tc.code {
			t.Errorf("%s: %s (%v), want %s", tc.name, got, err, tc.code)
		}
	}
	// Nothing of a refused call is kept.
	if got := permText(describeGroup(t, c, sgApp).IpPermissions); !slices.Equal(got, want) {
		t.Errorf("refused calls changed the rules: %v", got)
	}
	for _, tc := range []struct {
		in   *ec2.AuthorizeSecurityGroupIngressInput
		code string
	}{
		{&ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-0123456789abcdef9"), IpPermissions: []types.IpPermission{tcpPerm(1, 1, "1.2.3.4/32")}}, "InvalidGroup.NotFound"},
		{&ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-nope"), IpPermissions: []types.IpPermission{tcpPerm(1, 1, "1.2.3.4/32")}}, "InvalidGroupId.Malformed"},
		{&ec2.AuthorizeSecurityGroupIngressInput{GroupName: aws.String("app"), IpPermissions: []types.IpPermission{tcpPerm(1, 1, "1.2.3.4/32")}}, "VPCIdNotSpecified"},
		{&ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sgApp)}, "MissingParameter"},
		{&ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sgApp), IpProtocol: aws.String("tcp"), FromPort: aws.Int32(1), ToPort: aws.Int32(1), CidrIp: aws.String("::/0")}, "InvalidParameterValue"},
		{&ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sgApp), CidrIp: aws.String("1.2.3.4/32"), IpPermissions: []types.IpPermission{tcpPerm(1, 1, "1.2.3.4/32")}}, "InvalidParameterCombination"},
	} {
		_, err := c.AuthorizeSecurityGroupIngress(ctx, tc.in)
		wantCode(t, err, tc.code)
	}
	// The legacy top-level form adds one rule.
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sgApp),
		IpProtocol: aws.String("udp"), FromPort: aws.Int32(53), ToPort: aws.Int32(53), CidrIp: aws.String("10.0.0.0/8")}); err != nil {
		t.Errorf("legacy form: %v", err)
	}
}

func TestSecurityGroupRuleQuota(t *testing.T) {
	_, c := newSGSim(t, Options{})
	ctx := context.Background()
	var perms []types.IpPermission
	for i := range 60 {
		perms = append(perms, tcpPerm(int32(1000+i), int32(1000+i), "10.0.0.0/16"))
	}
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sgApp), IpPermissions: perms}); err != nil {
		t.Fatalf("60 IPv4 rules: %v", err)
	}
	// IPv6 rules count separately ...
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sgApp),
		IpPermissions: []types.IpPermission{tcpPerm(1, 1, "::/0")}}); err != nil {
		t.Fatalf("an IPv6 rule beside 60 IPv4 ones: %v", err)
	}
	// ... but a 61st IPv4 rule, or a group reference (which counts for
	// both families), is over the quota.
	_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sgApp),
		IpPermissions: []types.IpPermission{tcpPerm(1, 1, "10.0.0.0/16")}})
	wantCode(t, err, "RulesPerSecurityGroupLimitExceeded")
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sgApp),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(sgWeb)}}}}})
	wantCode(t, err, "RulesPerSecurityGroupLimitExceeded")
}

func TestRevokeSecurityGroupIngress(t *testing.T) {
	sim, c := newSGSim(t, Options{})
	ctx := context.Background()
	revoke := func(perms ...types.IpPermission) (*ec2.RevokeSecurityGroupIngressOutput, error) {
		return c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sgWeb), IpPermissions: perms})
	}
	// A rule that does not exist fails the whole call and revokes nothing
	// (nondefault VPC).
	_, err := revoke(tcpPerm(443, 443, "0.0.0.0/0"), tcpPerm(80, 80, "0.0.0.0/0"))
	wantCode(t, err, "InvalidPermission.NotFound")
	if n := len(permText(describeGroup(t, c, sgWeb).IpPermissions)); n != 3 {
		t.Fatalf("a failed revoke removed rules: %d left", n)
	}
	// The description need not be given; protocol numbers and host bits
	// match their canonical forms.
	out, err := revoke(types.IpPermission{IpProtocol: aws.String("6"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
		IpRanges: []types.IpRange{{CidrIp: aws.String("0.1.2.3/0")}}})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(out.Return) || len(out.RevokedSecurityGroupRules) != 1 || len(out.UnknownIpPermissions) != 0 ||
		aws.ToString(out.RevokedSecurityGroupRules[0].CidrIpv4) != "0.0.0.0/0" || aws.ToString(out.RevokedSecurityGroupRules[0].Description) != "https" {
		t.Errorf("revoke = %+v", out)
	}
	g := describeGroup(t, c, sgWeb)
	if got := permText(g.IpPermissions); !slices.Equal(got, []string{"-1 " + sgApp + "[]", "tcp 443-443 ::/0[]"}) {
		t.Errorf("after revoke: %v", got)
	}
	// By rule ID.
	var ruleID string
	for _, r := range sgRulesOf(t, sim, sgWeb) {
		if r.Group == sgApp {
			ruleID = r.ID
		}
	}
	out, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sgWeb), SecurityGroupRuleIds: []string{ruleID}})
	if err != nil {
		t.Fatal(err)
	}
	if r := out.RevokedSecurityGroupRules; len(r) != 1 || aws.ToString(r[0].ReferencedGroupId) != sgApp || aws.ToString(r[0].IpProtocol) != "-1" {
		t.Errorf("revoke by ID = %+v", r)
	}
	for _, tc := range []struct {
		in   *ec2.RevokeSecurityGroupIngressInput
		code string
	}{
		{&ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sgWeb), SecurityGroupRuleIds: []string{ruleID}}, "InvalidSecurityGroupRuleId.NotFound"},
		{&ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sgWeb), SecurityGroupRuleIds: []string{"rule-1"}}, "InvalidSecurityGroupRuleId.Malformed"},
		{&ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sgWeb), SecurityGroupRuleIds: []string{ruleID}, IpPermissions: []types.IpPermission{tcpPerm(1, 1, "::/0")}}, "InvalidParameterCombination"},
		{&ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sgWeb)}, "MissingParameter"},
		{&ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String("sg-0123456789abcdef9"), IpPermissions: []types.IpPermission{tcpPerm(1, 1, "::/0")}}, "InvalidGroup.NotFound"},
		{&ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sgWeb), IpPermissions: []types.IpPermission{tcpPerm(1, 1, "1.2.3.4/40")}}, "InvalidParameterValue"},
	} {
		_, err := c.RevokeSecurityGroupIngress(ctx, tc.in)
		wantCode(t, err, tc.code)
	}
}

// sgRulesOf returns a group's ingress rules through SecurityGroups().
func sgRulesOf(t *testing.T, sim *Sim, id string) []SecurityGroupRule {
	t.Helper()
	for _, g := range sim.SecurityGroups() {
		if g.ID == id {
			return g.Ingress
		}
	}
	t.Fatalf("no group %s", id)
	return nil
}

func TestDeleteSecurityGroup(t *testing.T) {
	sim, c := newSGSim(t, Options{})
	ctx := context.Background()
	mk := func(name string) string {
		out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name), VpcId: aws.String(sgVPC1)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.GroupId)
	}
	lb, backend := mk("lb"), mk("backend")
	// Referenced by another group's rule.
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(backend),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80),
			UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(lb)}}}}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(lb)})
	wantCode(t, err, "DependencyViolation")
	// A group referencing itself can go.
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(backend),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(backend)}}}}}); err != nil {
		t.Fatal(err)
	}
	// In use by an ENI.
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0000000000000aa02"), Groups: []string{backend}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(backend)})
	wantCode(t, err, "DependencyViolation")
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0000000000000aa02"), Groups: []string{sgApp}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(backend)})
	if err != nil {
		t.Fatalf("delete backend: %v", err)
	}
	if !aws.ToBool(out.Return) || aws.ToString(out.GroupId) != backend {
		t.Errorf("DeleteSecurityGroup = %+v", out)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(lb)}); err != nil {
		t.Errorf("delete lb once nothing references it: %v", err)
	}
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{lb}})
	wantCode(t, err, "InvalidGroup.NotFound")
	for _, tc := range []struct {
		in   *ec2.DeleteSecurityGroupInput
		code string
	}{
		{&ec2.DeleteSecurityGroupInput{GroupId: aws.String(lb)}, "InvalidGroup.NotFound"},
		{&ec2.DeleteSecurityGroupInput{GroupId: aws.String("sg-1")}, "InvalidGroupId.Malformed"},
		{&ec2.DeleteSecurityGroupInput{GroupName: aws.String("web")}, "VPCIdNotSpecified"},
		{&ec2.DeleteSecurityGroupInput{GroupId: aws.String(sgApp)}, "DependencyViolation"}, // ENIs and web's rule
	} {
		_, err := c.DeleteSecurityGroup(ctx, tc.in)
		wantCode(t, err, tc.code)
	}
	// A terminated instance's ENIs no longer hold their groups.
	if err := sim.SetInstanceState("i-0000000000000bb02", "terminated"); err != nil {
		t.Fatal(err)
	}
	def := ""
	for _, g := range sim.SecurityGroups() {
		if g.Default && g.VPC == sgVPC2 {
			def = g.ID
		}
	}
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(def)})
	wantCode(t, err, "CannotDelete")
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(sgOther)}); err != nil {
		t.Errorf("delete other: %v", err)
	}
}

func TestSecurityGroupTags(t *testing.T) {
	_, c := newSGSim(t, Options{})
	ctx := context.Background()
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{sgApp, sgWeb},
		Tags: []types.Tag{{Key: aws.String("kubernetes.io/cluster/demo"), Value: aws.String("owned")}}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("tag:kubernetes.io/cluster/demo"), Values: []string{"owned"}}}})
	if err != nil || len(out.SecurityGroups) != 2 {
		t.Fatalf("tagged groups: %v %d", err, len(out.SecurityGroups))
	}
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{sgWeb}, Tags: []types.Tag{{Key: aws.String("team")}}}); err != nil {
		t.Fatal(err)
	}
	if g := describeGroup(t, c, sgWeb); len(g.Tags) != 1 {
		t.Errorf("web tags after DeleteTags: %v", g.Tags)
	}
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"sg-0123456789abcdef9"}, Tags: []types.Tag{{Key: aws.String("k")}}})
	wantCode(t, err, "InvalidGroup.NotFound")
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"sg-zz"}, Tags: []types.Tag{{Key: aws.String("k")}}})
	wantCode(t, err, "InvalidGroupId.Malformed")
}

func TestSecurityGroupPolicyDryRunThrottling(t *testing.T) {
	policy := `{"Version": "2012-10-17", "Statement": [
	  {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:AuthorizeSecurityGroupIngress"], "Resource": "*"},
	  {"Effect": "Allow", "Action": "ec2:CreateSecurityGroup", "Resource": "arn:aws:ec2:*:*:security-group/*"},
	  {"Effect": "Allow", "Action": "ec2:CreateSecurityGroup", "Resource": "arn:aws:ec2:us-east-1:111122223333:vpc/` + sgVPC1 + `"},
	  {"Effect": "Deny", "Action": "ec2:RevokeSecurityGroupIngress", "Resource": "arn:aws:ec2:*:*:security-group/` + sgWeb + `"}]}`
	sim, c := newSGSim(t, Options{Policy: []byte(policy)})
	ctx := context.Background()
	if _, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("a"), Description: aws.String("a"), VpcId: aws.String(sgVPC1)}); err != nil {
		t.Errorf("allowed create: %v", err)
	}
	// The VPC is a resource of CreateSecurityGroup too.
	_, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("a"), Description: aws.String("a"), VpcId: aws.String(sgVPC2)})
	wantCode(t, err, "UnauthorizedOperation")
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sgWeb), IpPermissions: []types.IpPermission{tcpPerm(443, 443, "0.0.0.0/0")}})
	wantCode(t, err, "UnauthorizedOperation")
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(sgApp)})
	wantCode(t, err, "UnauthorizedOperation")
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{DryRun: aws.Bool(true), GroupId: aws.String(sgApp),
		IpPermissions: []types.IpPermission{tcpPerm(1, 1, "1.2.3.4/32")}})
	wantCode(t, err, "DryRunOperation")
	if n := len(describeGroup(t, c, sgApp).IpPermissions); n != 0 {
		t.Errorf("DryRun added %d permissions", n)
	}
	if sim.MutatingCalls() != 5 {
		t.Errorf("MutatingCalls = %d, want 5 (create x2, revoke, delete, authorize)", sim.MutatingCalls())
	}
	// Buckets: the rule actions are resource-intensive (50/5),
	// ModifyNetworkInterfaceAttribute is uncategorized (100/5), the others
	// mutating (50/5); an unfiltered DescribeSecurityGroups uses the small
	// bucket.
	for key, want := range map[string][2]float64{
		"AuthorizeSecurityGroupIngress": {50, 5}, "RevokeSecurityGroupIngress": {50, 5}, "CreateSecurityGroup": {50, 5},
		"DeleteSecurityGroup": {50, 5}, "ModifyNetworkInterfaceAttribute": {100, 5}, "DescribeSecurityGroups": {100, 20},
		"DescribeSecurityGroups" + UnfilteredSuffix: {50, 10},
	} {
		if got := defaultBucket(key); got != want {
			t.Errorf("bucket %s = %v, want %v", key, got, want)
		}
	}
	if k := bucketKey("DescribeSecurityGroups", &params{v: map[string][]string{"Action": {"DescribeSecurityGroups"}}}); k != "DescribeSecurityGroups"+UnfilteredSuffix {
		t.Errorf("unfiltered bucket key %q", k)
	}
	sim.SetThrottling(true)
	sim.SetBucket("CreateSecurityGroup", 1, 0.001)
	if _, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("b"), Description: aws.String("b"), VpcId: aws.String(sgVPC1)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("c"), Description: aws.String("c"), VpcId: aws.String(sgVPC1)},
		func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
	wantCode(t, err, "RequestLimitExceeded")
}
