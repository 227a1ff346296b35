package ec2_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// clusterSim is a world with a cluster: tagged public subnets and a node
// security group on every instance.
func clusterSim(t *testing.T) *ec2sim.Sim {
	t.Helper()
	sc, err := ec2sim.ParseScenario([]byte("region: us-east-1\nclusterID: c1\ninstances:\n- {id: i-0d000000000000001}\n"))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// TestELBCallsMeteredAndNotFoundTolerated: ELBv2 calls count in the same
// metrics as EC2's, by operation; deletes of what is gone succeed, lookups
// of what is missing answer nil; errors carry the AWS code.
func TestELBCallsMeteredAndNotFoundTolerated(t *testing.T) {
	sim := clusterSim(t)
	c := newClient(t, sim, ec2.Config{Region: sim.Region()})
	e := c.ELB()
	ctx := context.Background()
	before := metricValue(t, "cloudprovider_aws_api_requests_total", map[string]string{"operation": "DescribeLoadBalancers", "code": "ok"})
	if lb, err := e.LoadBalancerByName(ctx, "missing"); lb != nil || err != nil {
		t.Errorf("missing load balancer: %v, %v", lb, err)
	}
	if after := metricValue(t, "cloudprovider_aws_api_requests_total", map[string]string{"operation": "DescribeLoadBalancers", "code": "LoadBalancerNotFound"}); after < 1 {
		t.Errorf("DescribeLoadBalancers not metered by code (ok before: %v)", before)
	}
	if tg, err := e.TargetGroupByName(ctx, "missing"); tg != nil || err != nil {
		t.Errorf("missing target group: %v, %v", tg, err)
	}
	gone := "arn:aws:elasticloadbalancing:us-east-1:111122223333:"
	if err := e.DeleteLoadBalancer(ctx, gone+"loadbalancer/net/x/0123456789abcdef"); err != nil {
		t.Errorf("delete a gone load balancer: %v", err)
	}
	if err := e.DeleteTargetGroup(ctx, gone+"targetgroup/x/0123456789abcdef"); err != nil {
		t.Errorf("delete a gone target group: %v", err)
	}
	if err := e.DeleteListener(ctx, gone+"listener/net/x/0123456789abcdef/0123456789abcdef"); err != nil {
		t.Errorf("delete a gone listener: %v", err)
	}
	_, err := e.CreateLoadBalancer(ctx, ec2.LoadBalancerSpec{Name: "-bad-", Scheme: "internet-facing", IPAddressType: "ipv4"})
	if ec2.ErrorCode(err) != "ValidationError" {
		t.Errorf("bad name: %v, want ValidationError", err)
	}
}

// TestTagsReadInChunks: DescribeTags takes 20 ARNs a call; more are read in
// several calls and all come back.
func TestTagsReadInChunks(t *testing.T) {
	sim := clusterSim(t)
	c := newClient(t, sim, ec2.Config{Region: sim.Region()})
	e := c.ELB()
	ctx := context.Background()
	vpc := sim.State().Subnets[0].VPC
	var arns []string
	for i := range 25 {
		tg, err := e.CreateTargetGroup(ctx, ec2.TargetGroupSpec{Name: fmt.Sprintf("tg-%d", i), Protocol: "TCP", Port: 30000, IPAddressType: "ipv4",
			VPCID: vpc, HealthCheck: ec2.HealthCheck{Protocol: "TCP"}, Tags: map[string]string{"n": fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, tg.ARN)
	}
	sim.ResetCounts()
	tags, err := e.Tags(ctx, arns)
	if err != nil {
		t.Fatal(err)
	}
	for i, arn := range arns {
		if tags[arn]["n"] != fmt.Sprint(i) {
			t.Errorf("%s: tags %v", arn, tags[arn])
		}
	}
	if n := sim.Calls("elasticloadbalancing:DescribeTags"); n != 2 {
		t.Errorf("DescribeTags calls = %d, want 2", n)
	}
}

// TestRevokeIngressRevokesTheRest: EC2 fails a whole revoke when one rule is
// missing (in a nondefault VPC); the client then revokes the others one by
// one, so a rule already gone never keeps the rest in place.
func TestRevokeIngressRevokesTheRest(t *testing.T) {
	sim := clusterSim(t)
	c := newClient(t, sim, ec2.Config{Region: sim.Region()})
	ctx := context.Background()
	var group string
	for _, g := range sim.SecurityGroups() {
		if g.Name == "c1-node" {
			group = g.ID
		}
	}
	rule := func(port int32, cidr string) ec2.IngressRule {
		return ec2.IngressRule{Protocol: "tcp", FromPort: port, ToPort: port, CIDR: netip.MustParsePrefix(cidr), Description: "kubernetes.io/rule/nlb/client=x"}
	}
	have := []ec2.IngressRule{rule(30080, "0.0.0.0/0"), rule(30080, "::/0"), rule(30443, "0.0.0.0/0")}
	if err := c.AuthorizeIngress(ctx, group, have); err != nil {
		t.Fatal(err)
	}
	// Authorizing again, with one new rule among existing ones, adds it.
	if err := c.AuthorizeIngress(ctx, group, append(have, rule(30443, "::/0"))); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		n := 0
		for _, g := range sim.SecurityGroups() {
			for _, r := range g.Ingress {
				if g.ID == group && r.Description == "kubernetes.io/rule/nlb/client=x" {
					n++
				}
			}
		}
		return n
	}
	if n := count(); n != 4 {
		t.Fatalf("%d rules after authorizing, want 4", n)
	}
	if err := c.RevokeIngress(ctx, group, []ec2.IngressRule{rule(30080, "0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	// One of these is gone already.
	all := append(have, rule(30443, "::/0"))
	if err := c.RevokeIngress(ctx, group, all); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Errorf("%d rules left after revoking all (one already gone)", n)
	}
	sgs, err := c.SecurityGroups(ctx, []string{group})
	if err != nil || len(sgs) != 1 || sgs[0].Tags["kubernetes.io/cluster/c1"] != "owned" {
		t.Errorf("SecurityGroups = %+v, %v", sgs, err)
	}
}

// TestELBCallsChargedToAWSBuckets: each ELBv2 call waits on the client-side
// bucket of the category AWS charges it to, and on the account bucket.
func TestELBCallsChargedToAWSBuckets(t *testing.T) {
	sim := clusterSim(t)
	c := newClient(t, sim, ec2.Config{Region: sim.Region()})
	e := c.ELB()
	ctx := context.Background()
	wait := func(bucket string) float64 {
		return metricValue(t, "cloudprovider_aws_api_rate_limit_wait_seconds", map[string]string{"bucket": bucket})
	}
	buckets := []string{"elb-account", "elb-describe", "elb-resource-intensive", "elb-registration", "elb-mutating"}
	before := map[string]float64{}
	for _, b := range buckets {
		before[b] = wait(b)
	}
	var public []string
	for _, sn := range sim.State().Subnets {
		if sn.Tags["kubernetes.io/role/elb"] == "1" {
			public = append(public, sn.ID)
		}
	}
	lb, err := e.CreateLoadBalancer(ctx, ec2.LoadBalancerSpec{Name: "charged", Scheme: "internet-facing", IPAddressType: "ipv4", Subnets: public})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetSubnets(ctx, lb.ARN, public[:2]); err != nil {
		t.Fatal(err)
	}
	tg, err := e.CreateTargetGroup(ctx, ec2.TargetGroupSpec{Name: "charged", Protocol: "TCP", Port: 30080, IPAddressType: "ipv4", VPCID: lb.VPCID, HealthCheck: ec2.HealthCheck{Protocol: "TCP"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RegisterTargets(ctx, tg.ARN, []ec2.Target{{ID: "i-0d000000000000001", Port: 30080}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.LoadBalancerByName(ctx, "charged"); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"elb-account": 5, "elb-describe": 1, "elb-resource-intensive": 2, "elb-registration": 1, "elb-mutating": 1}
	for _, b := range buckets {
		if got := wait(b) - before[b]; got != want[b] {
			t.Errorf("bucket %s: %v waits, want %v", b, got, want[b])
		}
	}
}

// TestInstancesCachedShareDescribes: many callers asking for the same
// instances (one per Service on a node change) cost one describe, then the
// cache answers; unknown IDs are left out.
func TestInstancesCachedShareDescribes(t *testing.T) {
	sim := startSim(t, 50, true)
	c := newClient(t, sim, ec2.Config{Region: sim.Region()})
	var ids []string
	for i := range 50 {
		ids = append(ids, instanceID(i))
	}
	sim.ResetCounts()
	for range 20 {
		got, err := c.InstancesCached(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 50 || got[instanceID(7)].ID != instanceID(7) {
			t.Fatalf("got %d instances", len(got))
		}
	}
	if n := sim.Calls("DescribeInstances"); n != 1 {
		t.Errorf("DescribeInstances calls = %d for 20 rounds, want 1", n)
	}
	got, err := c.InstancesCached(context.Background(), append(ids[:2:2], "i-0fffffffffffffff0"))
	if err != nil || len(got) != 2 {
		t.Errorf("with an unknown ID: %d instances, %v; want the 2 known", len(got), err)
	}

	// Marking an address primary drops the instance's cached copy: the
	// next lookup shows the flag.
	eni := got[instanceID(0)].PrimaryENI().ID
	if err := c.EnablePrimaryIPv6(context.Background(), eni); err != nil {
		t.Fatal(err)
	}
	again, err := c.InstancesCached(context.Background(), ids[:1])
	if err != nil || !again[instanceID(0)].PrimaryENI().IPv6[0].Primary {
		t.Errorf("after EnablePrimaryIPv6 the lookup shows %+v, %v", again[instanceID(0)].PrimaryENI().IPv6, err)
	}
}

// TestVPCSubnetsCached: load balancers read a VPC's subnets at every sync;
// one describe answers for a minute, and each caller gets its own copy.
func TestVPCSubnetsCached(t *testing.T) {
	sim := clusterSim(t)
	c := newClient(t, sim, ec2.Config{Region: sim.Region()})
	vpc := sim.State().Subnets[0].VPC
	sim.ResetCounts()
	first, err := c.VPCSubnets(context.Background(), vpc)
	if err != nil || len(first) != len(sim.State().Subnets) {
		t.Fatalf("%d subnets, %v; want %d", len(first), err, len(sim.State().Subnets))
	}
	first[0].ID = "changed"
	first[0].Tags["x"] = "y"
	second, err := c.VPCSubnets(context.Background(), vpc)
	if err != nil || second[0].ID == "changed" || second[0].Tags["x"] == "y" {
		t.Errorf("a caller's change reached the cache: %+v, %v", second[0], err)
	}
	if n := sim.Calls("DescribeSubnets"); n != 1 {
		t.Errorf("DescribeSubnets calls = %d, want 1", n)
	}
}
