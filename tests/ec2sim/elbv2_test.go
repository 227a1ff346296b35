package ec2sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
)

const elbScenarioYAML = `
region: us-east-1
seed: 11
zones:
- {name: us-east-1a, id: use1-az1}
- {name: us-east-1b, id: use1-az2}
- {name: us-east-1c, id: use1-az4}
vpcs:
- {id: vpc-0a1b2c3d4e5f60708, cidr: 10.0.0.0/16, ipv6CIDR: "2600:1f18:4000:a900::/56"}
- {id: vpc-0f0f0f0f0f0f0f0f9, cidr: 10.9.0.0/16}
subnets:
- {id: subnet-0aaaaaaaaaaaaaaa1, vpc: vpc-0a1b2c3d4e5f60708, zone: us-east-1a, cidr: 10.0.1.0/24, ipv6CIDR: "2600:1f18:4000:a901::/64"}
- {id: subnet-0bbbbbbbbbbbbbbb2, vpc: vpc-0a1b2c3d4e5f60708, zone: us-east-1b, cidr: 10.0.2.0/24, ipv6CIDR: "2600:1f18:4000:a902::/64"}
- {id: subnet-0ccccccccccccccc3, vpc: vpc-0a1b2c3d4e5f60708, zone: us-east-1a, cidr: 10.0.3.0/24}
- {id: subnet-0eeeeeeeeeeeeeee5, vpc: vpc-0a1b2c3d4e5f60708, zone: us-east-1c, cidr: 10.0.5.0/24}
- {id: subnet-0ddddddddddddddd4, vpc: vpc-0f0f0f0f0f0f0f0f9, zone: us-east-1b, cidr: 10.9.1.0/24}
instances:
- id: i-0000000000000e101
  subnet: subnet-0aaaaaaaaaaaaaaa1
  enis:
  - {id: eni-0000000000000e101, deviceIndex: 0, privateIPs: [10.0.1.10], ipv6: [{address: "2600:1f18:4000:a901::10", primary: true}]}
- id: i-0000000000000e102
  subnet: subnet-0bbbbbbbbbbbbbbb2
  enis:
  - {id: eni-0000000000000e102, deviceIndex: 0, privateIPs: [10.0.2.20], ipv6: [{address: "2600:1f18:4000:a902::20"}]}
- id: i-0000000000000e103
  subnet: subnet-0aaaaaaaaaaaaaaa1
  state: stopped
- id: i-0000000000000e104
  subnet: subnet-0ddddddddddddddd4
- id: i-0000000000000e105
  subnet: subnet-0eeeeeeeeeeeeeee5
`

const (
	elbVPC      = "vpc-0a1b2c3d4e5f60708"
	elbVPC2     = "vpc-0f0f0f0f0f0f0f0f9"
	snA         = "subnet-0aaaaaaaaaaaaaaa1"
	snB         = "subnet-0bbbbbbbbbbbbbbb2"
	snANoV6     = "subnet-0ccccccccccccccc3"
	snC         = "subnet-0eeeeeeeeeeeeeee5"
	snOtherVPC  = "subnet-0ddddddddddddddd4"
	instV6      = "i-0000000000000e101" // primary IPv6, zone a
	instNoPrim  = "i-0000000000000e102" // IPv6 without the primary flag, zone b
	instStopped = "i-0000000000000e103"
	instVPC2    = "i-0000000000000e104"
	instZoneC   = "i-0000000000000e105"
)

func newELBSim(t *testing.T, opts Options) (*Sim, *elbv2.Client) {
	t.Helper()
	sc, err := ParseScenario([]byte(elbScenarioYAML))
	if err != nil {
		t.Fatalf("parse scenario: %v", err)
	}
	opts.Scenario = sc
	opts.VerifySignatures = true
	sim, err := Start(opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim, elbv2.NewFromConfig(sim.AWSConfig(), func(o *elbv2.Options) { o.RetryMaxAttempts = 1 })
}

func elbTags(kv ...string) []types.Tag {
	var out []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func forwardTo(arn string) []types.Action {
	return []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(arn)}}
}

func mustLB(t *testing.T, c *elbv2.Client, name string, ipType types.IpAddressType, subnets ...string) types.LoadBalancer {
	t.Helper()
	out, err := c.CreateLoadBalancer(t.Context(), &elbv2.CreateLoadBalancerInput{Name: aws.String(name), Type: types.LoadBalancerTypeEnumNetwork,
		IpAddressType: ipType, Subnets: subnets})
	if err != nil {
		t.Fatalf("create load balancer %s: %v", name, err)
	}
	return out.LoadBalancers[0]
}

func mustTG(t *testing.T, c *elbv2.Client, name string, ipType types.TargetGroupIpAddressTypeEnum, vpc string) types.TargetGroup {
	t.Helper()
	out, err := c.CreateTargetGroup(t.Context(), &elbv2.CreateTargetGroupInput{Name: aws.String(name), Protocol: types.ProtocolEnumTcp,
		Port: aws.Int32(30080), VpcId: aws.String(vpc), IpAddressType: ipType})
	if err != nil {
		t.Fatalf("create target group %s: %v", name, err)
	}
	return out.TargetGroups[0]
}

func mustListener(t *testing.T, c *elbv2.Client, lbARN, tgARN string, port int32) types.Listener {
	t.Helper()
	out, err := c.CreateListener(t.Context(), &elbv2.CreateListenerInput{LoadBalancerArn: aws.String(lbARN), Port: aws.Int32(port),
		Protocol: types.ProtocolEnumTcp, DefaultActions: forwardTo(tgARN)})
	if err != nil {
		t.Fatalf("create listener: %v", err)
	}
	return out.Listeners[0]
}

func TestELBv2Lifecycle(t *testing.T) {
	sim, c := newELBSim(t, Options{})
	ctx := t.Context()
	cl := "kubernetes.io/cluster/demo"

	created, err := c.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String("nlb-1"), Type: types.LoadBalancerTypeEnumNetwork,
		Scheme: types.LoadBalancerSchemeEnumInternetFacing, IpAddressType: types.IpAddressTypeDualstack,
		Subnets: []string{snA, snB}, Tags: elbTags(cl, "owned", "Name", "nlb-1")})
	if err != nil {
		t.Fatalf("create load balancer: %v", err)
	}
	lb := created.LoadBalancers[0]
	arn := aws.ToString(lb.LoadBalancerArn)
	if !lbARNRe.MatchString(arn) || !strings.HasPrefix(arn, "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/net/nlb-1/") {
		t.Errorf("ARN %s", arn)
	}
	id := arn[len(arn)-16:]
	if got, want := aws.ToString(lb.DNSName), "nlb-1-"+id+".elb.us-east-1.amazonaws.com"; got != want {
		t.Errorf("DNSName %s, want %s", got, want)
	}
	if aws.ToString(lb.CanonicalHostedZoneId) != "Z26RNL4JYFTOTI" || lb.State.Code != types.LoadBalancerStateEnumProvisioning ||
		lb.Type != types.LoadBalancerTypeEnumNetwork || lb.IpAddressType != types.IpAddressTypeDualstack || aws.ToString(lb.VpcId) != elbVPC ||
		len(lb.AvailabilityZones) != 2 || aws.ToString(lb.AvailabilityZones[1].ZoneName) != "us-east-1b" || lb.CreatedTime == nil {
		t.Errorf("created load balancer %+v", lb)
	}
	desc, err := c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{Names: []string{"nlb-1"}})
	if err != nil || len(desc.LoadBalancers) != 1 || desc.LoadBalancers[0].State.Code != types.LoadBalancerStateEnumActive {
		t.Fatalf("describe by name: %+v %v", desc, err)
	}
	if desc, err := c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{LoadBalancerArns: []string{arn}}); err != nil ||
		len(desc.LoadBalancers) != 1 || aws.ToString(desc.LoadBalancers[0].LoadBalancerName) != "nlb-1" {
		t.Fatalf("describe by ARN: %+v %v", desc, err)
	}

	tgOut, err := c.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String("tg-1"), Protocol: types.ProtocolEnumTcp,
		Port: aws.Int32(30080), VpcId: aws.String(elbVPC), TargetType: types.TargetTypeEnumInstance,
		IpAddressType: types.TargetGroupIpAddressTypeEnumIpv6, Tags: elbTags(cl, "owned")})
	if err != nil {
		t.Fatalf("create target group: %v", err)
	}
	tg := tgOut.TargetGroups[0]
	tgARN := aws.ToString(tg.TargetGroupArn)
	if !tgARNRe.MatchString(tgARN) || aws.ToString(tg.HealthCheckPort) != "traffic-port" || tg.HealthCheckProtocol != types.ProtocolEnumTcp ||
		aws.ToInt32(tg.HealthCheckIntervalSeconds) != 30 || aws.ToInt32(tg.HealthyThresholdCount) != 5 || tg.IpAddressType != types.TargetGroupIpAddressTypeEnumIpv6 {
		t.Errorf("target group %+v", tg)
	}
	lOut, err := c.CreateListener(ctx, &elbv2.CreateListenerInput{LoadBalancerArn: aws.String(arn), Port: aws.Int32(80),
		Protocol: types.ProtocolEnumTcp, DefaultActions: forwardTo(tgARN), Tags: elbTags(cl, "owned")})
	if err != nil {
		t.Fatalf("create listener: %v", err)
	}
	l := lOut.Listeners[0]
	lARN := aws.ToString(l.ListenerArn)
	if want := "arn:aws:elasticloadbalancing:us-east-1:111122223333:listener/net/nlb-1/" + id + "/"; !strings.HasPrefix(lARN, want) || !listenerARNRe.MatchString(lARN) {
		t.Errorf("listener ARN %s, want prefix %s", lARN, want)
	}
	if len(l.DefaultActions) != 1 || aws.ToString(l.DefaultActions[0].TargetGroupArn) != tgARN || l.DefaultActions[0].ForwardConfig == nil ||
		aws.ToInt32(l.DefaultActions[0].ForwardConfig.TargetGroups[0].Weight) != 1 {
		t.Errorf("listener actions %+v", l.DefaultActions)
	}
	if _, err := c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(tgARN),
		Targets: []types.TargetDescription{{Id: aws.String(instV6)}}}); err != nil {
		t.Fatalf("register: %v", err)
	}
	health, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)})
	if err != nil || len(health.TargetHealthDescriptions) != 1 {
		t.Fatalf("target health: %+v %v", health, err)
	}
	th := health.TargetHealthDescriptions[0]
	if aws.ToString(th.Target.Id) != instV6 || aws.ToInt32(th.Target.Port) != 30080 || aws.ToString(th.HealthCheckPort) != "30080" ||
		th.TargetHealth.State != types.TargetHealthStateEnumHealthy {
		t.Errorf("target health %+v %+v", th.Target, th.TargetHealth)
	}

	// Describes by every selector.
	for name, in := range map[string]*elbv2.DescribeTargetGroupsInput{
		"lb": {LoadBalancerArn: aws.String(arn)}, "arn": {TargetGroupArns: []string{tgARN}}, "name": {Names: []string{"tg-1"}}, "all": {},
	} {
		out, err := c.DescribeTargetGroups(ctx, in)
		if err != nil || len(out.TargetGroups) != 1 || !slices.Equal(out.TargetGroups[0].LoadBalancerArns, []string{arn}) {
			t.Errorf("describe target groups by %s: %+v %v", name, out, err)
		}
	}
	for name, in := range map[string]*elbv2.DescribeListenersInput{"lb": {LoadBalancerArn: aws.String(arn)}, "arn": {ListenerArns: []string{lARN}}} {
		out, err := c.DescribeListeners(ctx, in)
		if err != nil || len(out.Listeners) != 1 || aws.ToInt32(out.Listeners[0].Port) != 80 {
			t.Errorf("describe listeners by %s: %+v %v", name, out, err)
		}
	}

	// Modify.
	mtg, err := c.ModifyTargetGroup(ctx, &elbv2.ModifyTargetGroupInput{TargetGroupArn: aws.String(tgARN), HealthCheckProtocol: types.ProtocolEnumHttp,
		HealthCheckPath: aws.String("/healthz"), HealthCheckPort: aws.String("10256"), HealthCheckIntervalSeconds: aws.Int32(10)})
	if err != nil || aws.ToString(mtg.TargetGroups[0].HealthCheckPath) != "/healthz" || aws.ToInt32(mtg.TargetGroups[0].HealthCheckIntervalSeconds) != 10 ||
		aws.ToString(mtg.TargetGroups[0].Matcher.HttpCode) != "200-399" {
		t.Errorf("modify target group: %+v %v", mtg, err)
	}
	ml, err := c.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(lARN), Port: aws.Int32(8080)})
	if err != nil || aws.ToInt32(ml.Listeners[0].Port) != 8080 {
		t.Errorf("modify listener: %+v %v", ml, err)
	}
	_, err = c.SetIpAddressType(ctx, &elbv2.SetIpAddressTypeInput{LoadBalancerArn: aws.String(arn), IpAddressType: types.IpAddressTypeIpv4})
	wantCode(t, err, "InvalidConfigurationRequest") // it forwards to an IPv6 target group
	ss, err := c.SetSubnets(ctx, &elbv2.SetSubnetsInput{LoadBalancerArn: aws.String(arn), Subnets: []string{snA}})
	if err != nil || len(ss.AvailabilityZones) != 1 || ss.IpAddressType != types.IpAddressTypeDualstack {
		t.Errorf("set subnets: %+v %v", ss, err)
	}

	// Attributes.
	attrs, err := c.DescribeLoadBalancerAttributes(ctx, &elbv2.DescribeLoadBalancerAttributesInput{LoadBalancerArn: aws.String(arn)})
	if err != nil || attrValue(attrs.Attributes, "load_balancing.cross_zone.enabled") != "false" {
		t.Errorf("describe lb attributes: %+v %v", attrs, err)
	}
	mattrs, err := c.ModifyLoadBalancerAttributes(ctx, &elbv2.ModifyLoadBalancerAttributesInput{LoadBalancerArn: aws.String(arn),
		Attributes: []types.LoadBalancerAttribute{{Key: aws.String("load_balancing.cross_zone.enabled"), Value: aws.String("true")},
			{Key: aws.String("deletion_protection.enabled"), Value: aws.String("true")}}})
	if err != nil || attrValue(mattrs.Attributes, "load_balancing.cross_zone.enabled") != "true" {
		t.Errorf("modify lb attributes: %+v %v", mattrs, err)
	}
	tattrs, err := c.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(tgARN)})
	if err != nil || tattrValue(tattrs.Attributes, "deregistration_delay.timeout_seconds") != "300" ||
		tattrValue(tattrs.Attributes, "preserve_client_ip.enabled") != "true" || tattrValue(tattrs.Attributes, "proxy_protocol_v2.enabled") != "false" {
		t.Errorf("describe tg attributes: %+v %v", tattrs, err)
	}
	mt, err := c.ModifyTargetGroupAttributes(ctx, &elbv2.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tgARN),
		Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("15")},
			{Key: aws.String("proxy_protocol_v2.enabled"), Value: aws.String("true")}, {Key: aws.String("preserve_client_ip.enabled"), Value: aws.String("false")}}})
	if err != nil || tattrValue(mt.Attributes, "deregistration_delay.timeout_seconds") != "15" || tattrValue(mt.Attributes, "proxy_protocol_v2.enabled") != "true" {
		t.Errorf("modify tg attributes: %+v %v", mt, err)
	}

	// Tags.
	if _, err := c.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{arn, tgARN}, Tags: elbTags("team", "net")}); err != nil {
		t.Fatalf("add tags: %v", err)
	}
	if _, err := c.RemoveTags(ctx, &elbv2.RemoveTagsInput{ResourceArns: []string{arn}, TagKeys: []string{"Name"}}); err != nil {
		t.Fatalf("remove tags: %v", err)
	}
	tags, err := c.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: []string{arn, tgARN, lARN}})
	if err != nil || len(tags.TagDescriptions) != 3 {
		t.Fatalf("describe tags: %+v %v", tags, err)
	}
	if got := tagKeys(tags.TagDescriptions[0].Tags); !slices.Equal(got, []string{cl, "team"}) {
		t.Errorf("load balancer tags %v", got)
	}
	if got := tagKeys(tags.TagDescriptions[2].Tags); !slices.Equal(got, []string{cl}) || aws.ToString(tags.TagDescriptions[2].ResourceArn) != lARN {
		t.Errorf("listener tags %v", got)
	}

	// Inspection.
	snap, ok := sim.LoadBalancer("nlb-1")
	if !ok || snap.IPAddressType != "dualstack" || snap.State != "active" || !slices.Equal(snap.Subnets, []string{snA}) ||
		len(snap.Listeners) != 1 || snap.Listeners[0].Port != 8080 || snap.Listeners[0].TargetGroupARN != tgARN ||
		len(snap.TargetGroups) != 1 || snap.TargetGroups[0].IPAddressType != "ipv6" || len(snap.TargetGroups[0].Targets) != 1 ||
		snap.TargetGroups[0].Targets[0].ID != instV6 || snap.TargetGroups[0].Targets[0].State != "healthy" ||
		snap.Attributes["deletion_protection.enabled"] != "true" || snap.Tags["team"] != "net" {
		t.Errorf("snapshot %+v", snap)
	}
	if got := sim.ELBv2TaggedWith(cl); len(got) != 3 {
		t.Errorf("tagged with %s: %v", cl, got)
	}

	// Deregistration: draining is instant by default.
	if _, err := c.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(tgARN),
		Targets: []types.TargetDescription{{Id: aws.String(instV6)}}}); err != nil {
		t.Fatalf("deregister: %v", err)
	}
	if h, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)}); err != nil || len(h.TargetHealthDescriptions) != 0 {
		t.Errorf("health after deregister: %+v %v", h, err)
	}

	// Deletion: protection, in-use target group, then everything.
	_, err = c.DeleteLoadBalancer(ctx, &elbv2.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(arn)})
	wantCode(t, err, "OperationNotPermitted")
	_, err = c.DeleteTargetGroup(ctx, &elbv2.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgARN)})
	wantCode(t, err, "ResourceInUse")
	if _, err := c.DeleteListener(ctx, &elbv2.DeleteListenerInput{ListenerArn: aws.String(lARN)}); err != nil {
		t.Fatalf("delete listener: %v", err)
	}
	_, err = c.DeleteListener(ctx, &elbv2.DeleteListenerInput{ListenerArn: aws.String(lARN)})
	wantCode(t, err, "ListenerNotFound")
	if _, err := c.DeleteTargetGroup(ctx, &elbv2.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgARN)}); err != nil {
		t.Fatalf("delete target group: %v", err)
	}
	if _, err := c.ModifyLoadBalancerAttributes(ctx, &elbv2.ModifyLoadBalancerAttributesInput{LoadBalancerArn: aws.String(arn),
		Attributes: []types.LoadBalancerAttribute{{Key: aws.String("deletion_protection.enabled"), Value: aws.String("false")}}}); err != nil {
		t.Fatalf("disable deletion protection: %v", err)
	}
	for range 2 { // deleting a deleted load balancer succeeds, as in AWS
		if _, err := c.DeleteLoadBalancer(ctx, &elbv2.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(arn)}); err != nil {
			t.Fatalf("delete load balancer: %v", err)
		}
	}
	if len(sim.LoadBalancers()) != 0 || len(sim.TargetGroups()) != 0 || len(sim.ELBv2TaggedWith(cl)) != 0 {
		t.Errorf("left over: %+v", sim.ELBv2())
	}
	_, err = c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{LoadBalancerArns: []string{arn}})
	wantCode(t, err, "LoadBalancerNotFound")

	// Counts are keyed elasticloadbalancing:<Action>.
	counts := sim.Counts()
	if counts["elasticloadbalancing:DescribeTags"]["success"] != 1 || counts["DescribeTags"] != nil ||
		sim.Calls("elasticloadbalancing:DeleteLoadBalancer") != 3 {
		t.Errorf("counts %v", counts)
	}
	mut := 0
	for k, m := range counts {
		if elbv2Mutating(k) {
			for _, n := range m {
				mut += n
			}
		}
	}
	if mut < 20 || sim.MutatingCalls() != mut {
		t.Errorf("MutatingCalls %d, ELBv2 mutating calls %d", sim.MutatingCalls(), mut)
	}
}

func attrValue(as []types.LoadBalancerAttribute, key string) string {
	for _, a := range as {
		if aws.ToString(a.Key) == key {
			return aws.ToString(a.Value)
		}
	}
	return "<missing>"
}

func tattrValue(as []types.TargetGroupAttribute, key string) string {
	for _, a := range as {
		if aws.ToString(a.Key) == key {
			return aws.ToString(a.Value)
		}
	}
	return "<missing>"
}

func tagKeys(ts []types.Tag) []string {
	var out []string
	for _, t := range ts {
		out = append(out, aws.ToString(t.Key))
	}
	return out
}

func TestELBv2Validation(t *testing.T) {
	_, c := newELBSim(t, Options{})
	ctx := t.Context()
	v4lb := mustLB(t, c, "v4", types.IpAddressTypeIpv4, snA, snB)
	dslb := mustLB(t, c, "ds", types.IpAddressTypeDualstack, snA, snB)
	v6tg := mustTG(t, c, "v6", types.TargetGroupIpAddressTypeEnumIpv6, elbVPC)
	v4tg := mustTG(t, c, "v4", types.TargetGroupIpAddressTypeEnumIpv4, elbVPC)
	otherTG := mustTG(t, c, "other-vpc", types.TargetGroupIpAddressTypeEnumIpv4, elbVPC2)
	mustListener(t, c, aws.ToString(dslb.LoadBalancerArn), aws.ToString(v4tg.TargetGroupArn), 443)
	v4ARN, dsARN, v6ARN := aws.ToString(v4lb.LoadBalancerArn), aws.ToString(dslb.LoadBalancerArn), aws.ToString(v6tg.TargetGroupArn)
	unknownLB := v4ARN[:len(v4ARN)-16] + "0123456789abcdef"
	unknownTG := v6ARN[:len(v6ARN)-16] + "0123456789abcdef"
	lbIn := func(name string, ip types.IpAddressType, subnets ...string) func() error {
		return func() error {
			_, err := c.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String(name), Type: types.LoadBalancerTypeEnumNetwork,
				IpAddressType: ip, Subnets: subnets})
			return err
		}
	}
	tgIn := func(in elbv2.CreateTargetGroupInput) func() error {
		return func() error {
			if in.Protocol == "" {
				in.Protocol = types.ProtocolEnumTcp
			}
			if in.Port == nil {
				in.Port = aws.Int32(80)
			}
			if in.VpcId == nil {
				in.VpcId = aws.String(elbVPC)
			}
			_, err := c.CreateTargetGroup(ctx, &in)
			return err
		}
	}
	listen := func(lb, tg string, port int32, proto types.ProtocolEnum) func() error {
		return func() error {
			_, err := c.CreateListener(ctx, &elbv2.CreateListenerInput{LoadBalancerArn: aws.String(lb), Port: aws.Int32(port),
				Protocol: proto, DefaultActions: forwardTo(tg)})
			return err
		}
	}
	register := func(tg string, ids ...string) func() error {
		return func() error {
			var ts []types.TargetDescription
			for _, id := range ids {
				ts = append(ts, types.TargetDescription{Id: aws.String(id)})
			}
			_, err := c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: ts})
			return err
		}
	}
	ipTG := mustTGType(t, c, "ip-v4", types.TargetTypeEnumIp, types.TargetGroupIpAddressTypeEnumIpv4)
	tests := []struct {
		name, code, msg string
		call            func() error
	}{
		{"lb name too long", "ValidationError", "cannot be longer than '32'", lbIn(strings.Repeat("a", 33), "", snA)},
		{"lb name bad char", "ValidationError", "alphanumeric", lbIn("a_b", "", snA)},
		{"lb name hyphen", "ValidationError", "hyphen", lbIn("-ab", "", snA)},
		{"lb name trailing hyphen", "ValidationError", "hyphen", lbIn("ab-", "", snA)},
		{"lb name internal-", "ValidationError", "internal-", lbIn("internal-x", "", snA)},
		{"duplicate name", "DuplicateLoadBalancerName", "different settings", lbIn("v4", "", snA)},
		{"unknown subnet", "SubnetNotFound", "subnet-0123456789abcdef0", lbIn("x", "", "subnet-0123456789abcdef0")},
		{"two subnets one AZ", "InvalidConfigurationRequest", "same Availability Zone", lbIn("x", "", snA, snANoV6)},
		{"subnets in two VPCs", "InvalidConfigurationRequest", "different VPCs", lbIn("x", "", snA, snOtherVPC)},
		{"dualstack without IPv6", "ValidationError", "IPv6 CIDR", lbIn("x", types.IpAddressTypeDualstack, snANoV6)},
		{"application type", "ValidationError", "Network Load Balancers", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String("alb"), Subnets: []string{snA}})
			return err
		}},
		{"unknown security group", "InvalidSecurityGroup", "sg-0123456789abcdef0", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String("sg"), Type: types.LoadBalancerTypeEnumNetwork,
				Subnets: []string{snA}, SecurityGroups: []string{"sg-0123456789abcdef0"}})
			return err
		}},
		{"set dualstack without IPv6", "ValidationError", "IPv6 CIDR", func() error {
			lb := mustLB(t, c, "v4-nov6", types.IpAddressTypeIpv4, snANoV6)
			_, err := c.SetIpAddressType(ctx, &elbv2.SetIpAddressTypeInput{LoadBalancerArn: lb.LoadBalancerArn, IpAddressType: types.IpAddressTypeDualstack})
			return err
		}},
		{"set subnets other VPC", "InvalidConfigurationRequest", "", func() error {
			_, err := c.SetSubnets(ctx, &elbv2.SetSubnetsInput{LoadBalancerArn: aws.String(v4ARN), Subnets: []string{snOtherVPC}})
			return err
		}},
		{"tg name", "ValidationError", "cannot begin or end", tgIn(elbv2.CreateTargetGroupInput{Name: aws.String("tg-")})},
		{"tg name long", "ValidationError", "32", tgIn(elbv2.CreateTargetGroupInput{Name: aws.String(strings.Repeat("t", 33))})},
		{"tg duplicate", "DuplicateTargetGroupName", "different settings", tgIn(elbv2.CreateTargetGroupInput{Name: aws.String("v6"), Port: aws.Int32(81)})},
		{"tg ipv6 HTTP", "ValidationError", "", tgIn(elbv2.CreateTargetGroupInput{Name: aws.String("h"), Protocol: types.ProtocolEnumHttp,
			IpAddressType: types.TargetGroupIpAddressTypeEnumIpv6})},
		{"tg ipv6 lambda", "ValidationError", "", tgIn(elbv2.CreateTargetGroupInput{Name: aws.String("l"), TargetType: types.TargetTypeEnumLambda,
			IpAddressType: types.TargetGroupIpAddressTypeEnumIpv6})},
		{"tg unknown vpc", "ValidationError", "vpc-0123", tgIn(elbv2.CreateTargetGroupInput{Name: aws.String("u"), VpcId: aws.String("vpc-0123456789abcdef0")})},
		{"tg interval", "ValidationError", "between 5 and 300", tgIn(elbv2.CreateTargetGroupInput{Name: aws.String("i"), HealthCheckIntervalSeconds: aws.Int32(3)})},
		{"listener ipv6 tg on ipv4 lb", "InvalidConfigurationRequest", "IPv6 target group", listen(v4ARN, v6ARN, 80, types.ProtocolEnumTcp)},
		{"listener other VPC", "InvalidConfigurationRequest", "different VPC", listen(v4ARN, aws.ToString(otherTG.TargetGroupArn), 82, types.ProtocolEnumTcp)},
		{"listener duplicate port", "DuplicateListener", "", listen(dsARN, v6ARN, 443, types.ProtocolEnumTcp)},
		{"listener tg used by another lb", "TargetGroupAssociationLimit", "", listen(v4ARN, aws.ToString(v4tg.TargetGroupArn), 83, types.ProtocolEnumTcp)},
		{"listener protocols", "IncompatibleProtocols", "", listen(dsARN, v6ARN, 53, types.ProtocolEnumUdp)},
		{"listener HTTP", "UnsupportedProtocol", "", listen(dsARN, v6ARN, 81, types.ProtocolEnumHttp)},
		{"listener unknown lb", "LoadBalancerNotFound", "", listen(unknownLB, v6ARN, 84, types.ProtocolEnumTcp)},
		{"listener unknown tg", "TargetGroupNotFound", "", listen(dsARN, unknownTG, 85, types.ProtocolEnumTcp)},
		{"listener malformed lb ARN", "ValidationError", "not a valid load balancer ARN", listen("arn:nope", v6ARN, 80, types.ProtocolEnumTcp)},
		{"describe listeners unknown", "ListenerNotFound", "", func() error {
			_, err := c.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{strings.Replace(dsARN, ":loadbalancer/", ":listener/", 1) + "/0123456789abcdef"}})
			return err
		}},
		{"describe listeners nothing", "ValidationError", "", func() error {
			_, err := c.DescribeListeners(ctx, &elbv2.DescribeListenersInput{})
			return err
		}},
		{"describe lb unknown name", "LoadBalancerNotFound", "nope", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{Names: []string{"nope"}})
			return err
		}},
		{"describe tg unknown", "TargetGroupNotFound", "", func() error {
			_, err := c.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{unknownTG}})
			return err
		}},
		{"describe tags over 20", "ValidationError", "20", func() error {
			arns := make([]string, 21)
			for i := range arns {
				arns[i] = v4ARN
			}
			_, err := c.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: arns})
			return err
		}},
		{"describe tags unknown", "TargetGroupNotFound", "", func() error {
			_, err := c.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: []string{unknownTG}})
			return err
		}},
		{"duplicate tag keys", "DuplicateTagKeys", "", func() error {
			_, err := c.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{v4ARN}, Tags: elbTags("a", "1", "a", "2")})
			return err
		}},
		{"register not running", "InvalidTarget", "running state", register(v6ARN, instStopped)},
		{"register other VPC", "InvalidTarget", "VPC", register(v6ARN, instVPC2)},
		{"register unknown instance", "InvalidTarget", "i-0123456789abcdef0", register(v6ARN, "i-0123456789abcdef0")},
		{"register without primary IPv6", "InvalidTarget", "missing primary IPv6 addresses: '" + instNoPrim + "'", register(v6ARN, instNoPrim)},
		{"register IPv6 address in IPv4 group", "ValidationError", "not a valid IPv4 address", register(aws.ToString(ipTG.TargetGroupArn), "2600:1f18:4000:a901::10")},
		{"register unknown tg", "TargetGroupNotFound", "", register(unknownTG, instV6)},
		{"lb attribute key", "ValidationError", "not recognized", func() error {
			_, err := c.ModifyLoadBalancerAttributes(ctx, &elbv2.ModifyLoadBalancerAttributesInput{LoadBalancerArn: aws.String(v4ARN),
				Attributes: []types.LoadBalancerAttribute{{Key: aws.String("idle_timeout.timeout_seconds"), Value: aws.String("60")}}})
			return err
		}},
		{"tg attribute value", "ValidationError", "not valid", func() error {
			_, err := c.ModifyTargetGroupAttributes(ctx, &elbv2.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(v6ARN),
				Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("3601")}}})
			return err
		}},
		{"page size", "ValidationError", "", func() error {
			_, err := c.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(401)})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantCode(t, err, tc.code)
			var ae smithy.APIError
			if errors.As(err, &ae) && !strings.Contains(ae.ErrorMessage(), tc.msg) {
				t.Errorf("message %q does not contain %q", ae.ErrorMessage(), tc.msg)
			}
		})
	}
}

func mustTGType(t *testing.T, c *elbv2.Client, name string, tt types.TargetTypeEnum, ip types.TargetGroupIpAddressTypeEnum) types.TargetGroup {
	t.Helper()
	out, err := c.CreateTargetGroup(t.Context(), &elbv2.CreateTargetGroupInput{Name: aws.String(name), Protocol: types.ProtocolEnumTcp,
		Port: aws.Int32(8080), VpcId: aws.String(elbVPC), TargetType: tt, IpAddressType: ip})
	if err != nil {
		t.Fatalf("create target group %s: %v", name, err)
	}
	return out.TargetGroups[0]
}

func TestELBv2Idempotent(t *testing.T) {
	sim, c := newELBSim(t, Options{})
	ctx := t.Context()
	a := mustLB(t, c, "same", types.IpAddressTypeIpv4, snA, snB)
	b := mustLB(t, c, "same", types.IpAddressTypeIpv4, snB, snA) // subnet order does not matter
	if aws.ToString(a.LoadBalancerArn) != aws.ToString(b.LoadBalancerArn) {
		t.Errorf("second create: %s, want %s", aws.ToString(b.LoadBalancerArn), aws.ToString(a.LoadBalancerArn))
	}
	_, err := c.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String("same"), Type: types.LoadBalancerTypeEnumNetwork,
		IpAddressType: types.IpAddressTypeDualstack, Subnets: []string{snA, snB}})
	wantCode(t, err, "DuplicateLoadBalancerName")
	// Security groups are settings too; they must exist in the VPC.
	var sg string
	for _, g := range sim.SecurityGroups() {
		if g.VPC == elbVPC && g.Name == "default" {
			sg = g.ID
		}
	}
	withSG := &elbv2.CreateLoadBalancerInput{Name: aws.String("sg"), Type: types.LoadBalancerTypeEnumNetwork, Subnets: []string{snA}, SecurityGroups: []string{sg}}
	out, err := c.CreateLoadBalancer(ctx, withSG)
	if err != nil || !slices.Equal(out.LoadBalancers[0].SecurityGroups, []string{sg}) {
		t.Fatalf("create with security group %s: %+v %v", sg, out, err)
	}
	withSG.SecurityGroups = nil
	_, err = c.CreateLoadBalancer(ctx, withSG)
	wantCode(t, err, "DuplicateLoadBalancerName")
	tg1 := mustTG(t, c, "tg", types.TargetGroupIpAddressTypeEnumIpv4, elbVPC)
	tg2 := mustTG(t, c, "tg", types.TargetGroupIpAddressTypeEnumIpv4, elbVPC)
	if aws.ToString(tg1.TargetGroupArn) != aws.ToString(tg2.TargetGroupArn) {
		t.Errorf("second target group create: %s", aws.ToString(tg2.TargetGroupArn))
	}
	_, err = c.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String("tg"), Protocol: types.ProtocolEnumUdp,
		Port: aws.Int32(30080), VpcId: aws.String(elbVPC)})
	wantCode(t, err, "DuplicateTargetGroupName")
	l1 := mustListener(t, c, aws.ToString(a.LoadBalancerArn), aws.ToString(tg1.TargetGroupArn), 80)
	l2 := mustListener(t, c, aws.ToString(a.LoadBalancerArn), aws.ToString(tg1.TargetGroupArn), 80)
	if aws.ToString(l1.ListenerArn) != aws.ToString(l2.ListenerArn) {
		t.Errorf("second listener create: %s", aws.ToString(l2.ListenerArn))
	}
	// Registering twice keeps one target.
	for range 2 {
		if _, err := c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: tg1.TargetGroupArn,
			Targets: []types.TargetDescription{{Id: aws.String(instNoPrim)}}}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: tg1.TargetGroupArn})
	if err != nil || len(h.TargetHealthDescriptions) != 1 {
		t.Errorf("targets after registering twice: %+v %v", h, err)
	}
}

func TestELBv2Paging(t *testing.T) {
	_, c := newELBSim(t, Options{})
	ctx := t.Context()
	for i := range 5 {
		mustTG(t, c, fmt.Sprintf("tg-%d", i), types.TargetGroupIpAddressTypeEnumIpv4, elbVPC)
		mustLB(t, c, fmt.Sprintf("lb-%d", i), types.IpAddressTypeIpv4, snA)
	}
	var names []string
	pages := 0
	p := elbv2.NewDescribeTargetGroupsPaginator(c, &elbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(2)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tg := range out.TargetGroups {
			names = append(names, aws.ToString(tg.TargetGroupName))
		}
	}
	if pages != 3 || !slices.Equal(names, []string{"tg-0", "tg-1", "tg-2", "tg-3", "tg-4"}) {
		t.Errorf("%d pages: %v", pages, names)
	}
	first, err := c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{PageSize: aws.Int32(3)})
	if err != nil || len(first.LoadBalancers) != 3 || first.NextMarker == nil {
		t.Fatalf("first page: %+v %v", first, err)
	}
	rest, err := c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{PageSize: aws.Int32(3), Marker: first.NextMarker})
	if err != nil || len(rest.LoadBalancers) != 2 || rest.NextMarker != nil || aws.ToString(rest.LoadBalancers[0].LoadBalancerName) != "lb-3" {
		t.Fatalf("second page: %+v %v", rest, err)
	}
	_, err = c.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Marker: first.NextMarker})
	wantCode(t, err, "ValidationError") // a marker of another query
}

func TestELBv2TargetHealthTiming(t *testing.T) {
	sim, c := newELBSim(t, Options{})
	ctx := t.Context()
	sim.SetELBv2Timing(ELBv2Timing{Provisioning: time.Hour, InitialHealth: time.Hour, Draining: time.Hour})
	lb := mustLB(t, c, "slow", types.IpAddressTypeIpv4, snA, snB)
	tg := mustTG(t, c, "slow", types.TargetGroupIpAddressTypeEnumIpv4, elbVPC)
	reg := func(ids ...string) {
		var ts []types.TargetDescription
		for _, id := range ids {
			ts = append(ts, types.TargetDescription{Id: aws.String(id)})
		}
		if _, err := c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: tg.TargetGroupArn, Targets: ts}); err != nil {
			t.Fatal(err)
		}
	}
	state := func() map[string]types.TargetHealthStateEnum {
		out, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]types.TargetHealthStateEnum{}
		for _, d := range out.TargetHealthDescriptions {
			m[aws.ToString(d.Target.Id)] = d.TargetHealth.State
		}
		return m
	}
	reg(instV6, instNoPrim, instZoneC)
	if got := state(); got[instV6] != types.TargetHealthStateEnumUnused { // no listener yet
		t.Errorf("before listener: %v", got)
	}
	mustListener(t, c, aws.ToString(lb.LoadBalancerArn), aws.ToString(tg.TargetGroupArn), 80)
	got := state()
	if got[instV6] != types.TargetHealthStateEnumInitial || got[instZoneC] != types.TargetHealthStateEnumUnused {
		t.Errorf("with listener: %v", got)
	}
	if snap, _ := sim.LoadBalancer("slow"); snap.State != "provisioning" {
		t.Errorf("state %s, want provisioning", snap.State)
	}
	if _, err := c.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: tg.TargetGroupArn,
		Targets: []types.TargetDescription{{Id: aws.String(instNoPrim)}}}); err != nil {
		t.Fatal(err)
	}
	if got := state(); got[instNoPrim] != types.TargetHealthStateEnumDraining {
		t.Errorf("after deregister: %v", got)
	}
	sim.SetELBv2Timing(ELBv2Timing{})
	got = state()
	if _, ok := got[instNoPrim]; ok || got[instV6] != types.TargetHealthStateEnumHealthy {
		t.Errorf("after timing reset: %v", got)
	}
	if err := sim.SetInstanceState(instV6, "stopped"); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn,
		Targets: []types.TargetDescription{{Id: aws.String(instV6)}, {Id: aws.String(instStopped)}}})
	if err != nil || len(out.TargetHealthDescriptions) != 2 {
		t.Fatalf("health of named targets: %+v %v", out, err)
	}
	if h := out.TargetHealthDescriptions[0].TargetHealth; h.State != types.TargetHealthStateEnumUnused || h.Reason != types.TargetHealthReasonEnumInvalidState {
		t.Errorf("stopped target: %+v", h)
	}
	if h := out.TargetHealthDescriptions[1].TargetHealth; h.State != types.TargetHealthStateEnumUnused || h.Reason != types.TargetHealthReasonEnumNotRegistered {
		t.Errorf("unregistered target: %+v", h)
	}
}

func TestELBv2IAM(t *testing.T) {
	policy := []byte(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["elasticloadbalancing:Describe*","ec2:DescribeInstances"],"Resource":"*"},
		{"Effect":"Allow","Action":"elasticloadbalancing:CreateLoadBalancer","Resource":"*"},
		{"Effect":"Deny","Action":"elasticloadbalancing:DeleteLoadBalancer","Resource":"arn:aws:elasticloadbalancing:*:*:loadbalancer/net/keep/*"}]}`)
	sim, c := newELBSim(t, Options{Policy: policy})
	ctx := t.Context()
	if _, err := c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{}); err != nil {
		t.Fatalf("allowed describe: %v", err)
	}
	lb := mustLB(t, c, "keep", types.IpAddressTypeIpv4, snA)
	_, err := c.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String("tg"), Protocol: types.ProtocolEnumTcp,
		Port: aws.Int32(80), VpcId: aws.String(elbVPC)})
	wantCode(t, err, "AccessDenied")
	var ae smithy.APIError
	if errors.As(err, &ae) && !strings.Contains(ae.ErrorMessage(), "elasticloadbalancing:CreateTargetGroup") {
		t.Errorf("message %q", ae.ErrorMessage())
	}
	_, err = c.DeleteLoadBalancer(ctx, &elbv2.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})
	wantCode(t, err, "AccessDenied")
	if n := sim.Counts()["elasticloadbalancing:DeleteLoadBalancer"]["AccessDenied"]; n != 1 {
		t.Errorf("AccessDenied count %d", n)
	}
	// The EC2 side keeps its own prefix: ec2:DescribeInstances is allowed,
	// ec2:DescribeSubnets is not.
	e := ec2.NewFromConfig(sim.AWSConfig())
	if _, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("ec2 describe instances: %v", err)
	}
	_, err = e.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	wantCode(t, err, "UnauthorizedOperation")
}

func TestELBv2Throttling(t *testing.T) {
	sim, c := newELBSim(t, Options{Throttling: true})
	ctx := t.Context()
	// CreateLoadBalancer is "resource-intensive": 10 tokens, 0.2 per second.
	for i := range 10 {
		mustLB(t, c, fmt.Sprintf("lb-%d", i), types.IpAddressTypeIpv4, snA)
	}
	_, err := c.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String("lb-10"), Type: types.LoadBalancerTypeEnumNetwork, Subnets: []string{snA}})
	wantCode(t, err, "Throttling")
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorMessage() != "Rate exceeded" {
		t.Errorf("message %q", ae.ErrorMessage())
	}
	// Other categories have their own buckets, but share the account's 40.
	if _, err := c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{}); err != nil {
		t.Errorf("describe after create throttled: %v", err)
	}
	sim.SetBucket(ELBv2BucketAccount, 1, 0.001)
	if _, err := c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{}); err != nil {
		t.Errorf("first describe on a 1-token account bucket: %v", err)
	}
	_, err = c.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{})
	wantCode(t, err, "Throttling")
	if got := sim.Counts(); got["elasticloadbalancing:CreateLoadBalancer"]["throttled"] != 1 || got["elasticloadbalancing:DescribeTargetGroups"]["throttled"] != 1 {
		t.Errorf("counts %v", got)
	}
	// EC2 buckets are separate.
	if _, err := ec2.NewFromConfig(sim.AWSConfig()).DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("ec2 while elbv2 is throttled: %v", err)
	}
}

func TestELBv2Faults(t *testing.T) {
	sim, c := newELBSim(t, Options{})
	ctx := t.Context()
	lb := mustLB(t, c, "f", types.IpAddressTypeIpv4, snA)
	sim.SetFault("elasticloadbalancing:DescribeTags", Fault{ErrorRate: 1})
	sim.SetFault("DescribeLoadBalancers", Fault{ErrorRate: 1}) // an EC2-side key: no effect on ELBv2
	_, err := c.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: []string{aws.ToString(lb.LoadBalancerArn)}})
	wantCode(t, err, "InternalFailure")
	if _, err := c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{}); err != nil {
		t.Errorf("describe load balancers: %v", err)
	}
	sim.ClearFaults()
	sim.SetFault("elasticloadbalancing:*", Fault{ErrorRate: 1, Code: "ServiceUnavailable"})
	_, err = c.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{})
	wantCode(t, err, "ServiceUnavailable")
	if _, err := ec2.NewFromConfig(sim.AWSConfig()).DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("ec2 under an elasticloadbalancing:* fault: %v", err)
	}
	// A lost reply: the call takes effect, the caller sees a 500.
	sim.ClearFaults()
	sim.SetFault("elasticloadbalancing:CreateTargetGroup", Fault{LostReplyRate: 1})
	_, err = c.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String("lost"), Protocol: types.ProtocolEnumTcp,
		Port: aws.Int32(80), VpcId: aws.String(elbVPC)})
	wantCode(t, err, "InternalFailure")
	if len(sim.TargetGroups()) != 1 {
		t.Errorf("target groups after a lost reply: %+v", sim.TargetGroups())
	}
	if got := sim.Counts()["elasticloadbalancing:DescribeTags"]["InternalFailure"]; got != 1 {
		t.Errorf("fault count %d", got)
	}
}

// signedELB sends a raw ELBv2 request signed for service.
func signedELB(t *testing.T, sim *Sim, body, service string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sim.Endpoint()+"/", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if service != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestELBv2Protocol(t *testing.T) {
	sim, _ := newELBSim(t, Options{})
	describe := "Action=DescribeLoadBalancers&Version=2015-12-01"
	code, body := signedELB(t, sim, describe, "elasticloadbalancing")
	if code != 200 || !strings.HasPrefix(body, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeLoadBalancersResult><LoadBalancers></LoadBalancers></DescribeLoadBalancersResult><ResponseMetadata><RequestId>`) {
		t.Errorf("%d %s", code, body)
	}
	code, body = signedELB(t, sim, describe, "ec2")
	if code != 403 || !strings.Contains(body, "<Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>Credential should be scoped to correct service: &#39;elasticloadbalancing&#39;. </Message>") ||
		!strings.HasPrefix(body, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error>`) {
		t.Errorf("ec2-scoped ELBv2 call: %d %s", code, body)
	}
	code, body = signedELB(t, sim, "Action=DescribeInstances&Version=2016-11-15", "elasticloadbalancing")
	if code != 401 || !strings.Contains(body, "<Code>AuthFailure</Code>") || !strings.Contains(body, "expected us-east-1/ec2") {
		t.Errorf("elasticloadbalancing-scoped EC2 call: %d %s", code, body)
	}
	code, body = signedELB(t, sim, describe, "")
	if code != 403 || !strings.Contains(body, "<Code>MissingAuthenticationToken</Code>") {
		t.Errorf("unsigned: %d %s", code, body)
	}
	code, body = signedELB(t, sim, "Action=DescribeLoadBalancers&Version=2015-12-01&Bogus=1", "elasticloadbalancing")
	if code != 400 || !strings.Contains(body, "<Code>ValidationError</Code>") || !strings.Contains(body, "Bogus") {
		t.Errorf("unknown parameter: %d %s", code, body)
	}
	code, body = signedELB(t, sim, "Action=DescribeNothing&Version=2015-12-01", "elasticloadbalancing")
	if code != 400 || !strings.Contains(body, "<Code>InvalidAction</Code>") {
		t.Errorf("unknown action: %d %s", code, body)
	}
	// The SDK's empty-list form (Names=) is accepted.
	code, body = signedELB(t, sim, "Action=DescribeLoadBalancers&Names=&Version=2015-12-01", "elasticloadbalancing")
	if code != 200 {
		t.Errorf("empty list: %d %s", code, body)
	}
	if got := sim.Counts(); got["elasticloadbalancing:DescribeLoadBalancers"]["SignatureDoesNotMatch"] != 1 || got["DescribeInstances"]["AuthFailure"] != 1 {
		t.Errorf("counts %v", got)
	}
}

func TestELBv2IPTargetsAndAdmin(t *testing.T) {
	sim, c := newELBSim(t, Options{})
	ctx := t.Context()
	lb := mustLB(t, c, "ip", types.IpAddressTypeDualstack, snA, snB)
	tg := mustTGType(t, c, "ip6", types.TargetTypeEnumIp, types.TargetGroupIpAddressTypeEnumIpv6)
	mustListener(t, c, aws.ToString(lb.LoadBalancerArn), aws.ToString(tg.TargetGroupArn), 443)
	if _, err := c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: tg.TargetGroupArn, Targets: []types.TargetDescription{
		{Id: aws.String("2600:1f18:4000:a901::10"), Port: aws.Int32(8443)}, {Id: aws.String("2600:1f18:4000:a902::99")}}}); err != nil {
		t.Fatal(err)
	}
	h, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn})
	if err != nil || len(h.TargetHealthDescriptions) != 2 {
		t.Fatalf("%+v %v", h, err)
	}
	if d := h.TargetHealthDescriptions[0]; d.TargetHealth.State != types.TargetHealthStateEnumHealthy || aws.ToString(d.Target.AvailabilityZone) != "us-east-1a" ||
		aws.ToInt32(d.Target.Port) != 8443 {
		t.Errorf("address of a running instance: %+v %+v", d.Target, d.TargetHealth)
	}
	if d := h.TargetHealthDescriptions[1]; d.TargetHealth.State != types.TargetHealthStateEnumUnhealthy {
		t.Errorf("address nobody holds: %+v", d.TargetHealth)
	}
	resp, err := http.Get(sim.Endpoint() + "/_ec2sim/elbv2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st ELBv2State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.LoadBalancers) != 1 || st.LoadBalancers[0].IPAddressType != "dualstack" || len(st.LoadBalancers[0].TargetGroups) != 1 ||
		len(st.LoadBalancers[0].TargetGroups[0].Targets) != 2 || len(st.TargetGroups) != 1 {
		t.Errorf("admin elbv2: %+v", st)
	}
}

// TestELBv2UDPOnDualStackNeedsSourceNAT: a UDP listener on a dualstack NLB
// is refused unless the NLB was created with EnablePrefixForIpv6SourceNat.
func TestELBv2UDPOnDualStackNeedsSourceNAT(t *testing.T) {
	_, c := newELBSim(t, Options{})
	for _, nat := range []bool{false, true} {
		in := &elbv2.CreateLoadBalancerInput{Name: aws.String(fmt.Sprintf("udp-nat-%t", nat)), Type: types.LoadBalancerTypeEnumNetwork,
			IpAddressType: types.IpAddressTypeDualstack, Subnets: []string{snA, snB}}
		if nat {
			in.EnablePrefixForIpv6SourceNat = types.EnablePrefixForIpv6SourceNatEnumOn
		}
		lb, err := c.CreateLoadBalancer(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		tg, err := c.CreateTargetGroup(t.Context(), &elbv2.CreateTargetGroupInput{Name: aws.String(fmt.Sprintf("udp-%t", nat)), Protocol: types.ProtocolEnumUdp,
			Port: aws.Int32(30053), VpcId: aws.String(elbVPC), IpAddressType: types.TargetGroupIpAddressTypeEnumIpv6})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateListener(t.Context(), &elbv2.CreateListenerInput{LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn, Protocol: types.ProtocolEnumUdp,
			Port: aws.Int32(53), DefaultActions: forwardTo(aws.ToString(tg.TargetGroups[0].TargetGroupArn))})
		if nat && err != nil {
			t.Errorf("with source NAT: %v", err)
		}
		if !nat && !strings.Contains(fmt.Sprint(err), "InvalidConfigurationRequest") {
			t.Errorf("without source NAT: err = %v, want InvalidConfigurationRequest", err)
		}
	}
}
