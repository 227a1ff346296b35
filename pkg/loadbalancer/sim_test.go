package loadbalancer

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	cloudprovider "k8s.io/cloud-provider"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

const cluster = "lbtest"

// lbWorld: a cluster with tagged public subnets in three zones and five
// nodes, four of whose addresses are primary (EnablePrimaryIpv6 at launch).
const lbWorld = `
region: us-east-1
clusterID: lbtest
instances:
- {id: i-0c000000000000001, enis: [{deviceIndex: 0, ipv6AddressCount: 1, ipv6PrefixCount: 1, enablePrimaryIpv6: true}]}
- {id: i-0c000000000000002, enis: [{deviceIndex: 0, ipv6AddressCount: 1, ipv6PrefixCount: 1, enablePrimaryIpv6: true}]}
- {id: i-0c000000000000003, enis: [{deviceIndex: 0, ipv6AddressCount: 1, ipv6PrefixCount: 1, enablePrimaryIpv6: true}]}
- {id: i-0c000000000000004, enis: [{deviceIndex: 0, ipv6AddressCount: 1, ipv6PrefixCount: 1, enablePrimaryIpv6: true}]}
- {id: i-0c000000000000005, enis: [{deviceIndex: 0, ipv6AddressCount: 1, ipv6PrefixCount: 1}]}
`

func startWorld(t *testing.T) (*ec2sim.Sim, *LoadBalancers, *record.FakeRecorder) {
	t.Helper()
	sc, err := ec2sim.ParseScenario([]byte(lbWorld))
	if err != nil {
		t.Fatal(err)
	}
	// The shipped IAM policy: a call it does not grant fails the test.
	policy, err := os.ReadFile("../../manifests/iam/policy.json")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim, newLBs(t, sim), nil
}

// newLBs builds the package on a fresh client, as a restarted process would.
func newLBs(t *testing.T, sim *ec2sim.Sim) *LoadBalancers {
	t.Helper()
	c, err := ec2.NewFromAWSConfig(sim.AWSConfig(), ec2.Config{Region: sim.Region(), BatchWindow: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lbs := New(c, c.ELB(), Config{ClusterID: cluster})
	lbs.SetRecorder(record.NewFakeRecorder(100))
	return lbs
}

func nodesOf(sim *ec2sim.Sim, ids ...string) []*v1.Node {
	var out []*v1.Node
	for _, in := range sim.State().Instances {
		if len(ids) > 0 && !slices.Contains(ids, in.ID) {
			continue
		}
		out = append(out, &v1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: in.PrivateDNSName},
			Spec:       v1.NodeSpec{ProviderID: providerid.Format(in.Zone, in.ID)},
		})
	}
	return out
}

// world reads what ec2sim holds for the Service: its load balancer (if
// any), each listener's port → target group, and each group's targets.
type seen struct {
	lb        ec2sim.LoadBalancer
	exists    bool
	listeners map[int]string   // port → protocol/target group family
	targets   map[int][]string // listener port → sorted "instance:port"
}

func look(t *testing.T, sim *ec2sim.Sim, name string) seen {
	t.Helper()
	s := seen{listeners: map[int]string{}, targets: map[int][]string{}}
	s.lb, s.exists = sim.LoadBalancer(name)
	if !s.exists {
		return s
	}
	groups := map[string]ec2sim.TargetGroup{}
	for _, tg := range sim.TargetGroups() {
		groups[tg.ARN] = tg
	}
	for _, l := range s.lb.Listeners {
		tg := groups[l.TargetGroupARN]
		s.listeners[l.Port] = l.Protocol + "/" + tg.IPAddressType
		for _, tt := range tg.Targets {
			if tt.State != "draining" {
				s.targets[l.Port] = append(s.targets[l.Port], fmt.Sprintf("%s:%d", tt.ID, tt.Port))
			}
		}
		sort.Strings(s.targets[l.Port])
	}
	return s
}

func targetsWant(nodePort int, ids ...string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, fmt.Sprintf("%s:%d", id, nodePort))
	}
	sort.Strings(out)
	return out
}

// ourRules lists the node security group rules made for a load balancer.
func ourRules(sim *ec2sim.Sim, lbName string) []string {
	var out []string
	for _, g := range sim.SecurityGroups() {
		for _, r := range g.Ingress {
			if strings.HasSuffix(r.Description, "="+lbName) {
				out = append(out, fmt.Sprintf("%s %s %d %s %s", g.Name, r.Protocol, r.FromPort, r.CIDR, r.Description))
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestDualStackServiceLifecycle drives one dual-stack Service through
// create, a node change, a port change and deletion against ec2sim,
// checking each step against ec2sim's own state.
func TestDualStackServiceLifecycle(t *testing.T) {
	sim, lbs, _ := startWorld(t)
	ctx := context.Background()
	svc := service(nlb(nil), v1.IPv6Protocol, v1.IPv4Protocol)
	name := Name(svc)
	all := nodesOf(sim)
	primary := []string{"i-0c000000000000001", "i-0c000000000000002", "i-0c000000000000003", "i-0c000000000000004"}

	st, err := lbs.EnsureLoadBalancer(ctx, "k", svc, all)
	if err != nil {
		t.Fatal(err)
	}
	w := look(t, sim, name)
	if !w.exists || w.lb.IPAddressType != "dualstack" || w.lb.Scheme != "internet-facing" || w.lb.Type != "network" {
		t.Fatalf("load balancer %+v", w.lb)
	}
	if len(st.Ingress) != 1 || st.Ingress[0].Hostname != w.lb.DNSName {
		t.Errorf("status %+v, want hostname %s", st, w.lb.DNSName)
	}
	if w.lb.Tags["kubernetes.io/cluster/"+cluster] != "owned" || w.lb.Tags[TagServiceName] != "web/front" {
		t.Errorf("tags %v", w.lb.Tags)
	}
	// One public subnet per zone, the ones tagged for internet-facing load balancers.
	var public []string
	for _, sn := range sim.State().Subnets {
		if sn.Tags[TagRoleELB] == "1" {
			public = append(public, sn.ID)
		}
	}
	sort.Strings(public)
	if got := slices.Sorted(slices.Values(w.lb.Subnets)); len(public) != 3 || !slices.Equal(got, public) {
		t.Errorf("subnets %v, want the public ones %v", got, public)
	}
	if want := map[int]string{80: "TCP/ipv6", 443: "TCP/ipv6"}; fmt.Sprint(w.listeners) != fmt.Sprint(want) {
		t.Errorf("listeners %v, want %v", w.listeners, want)
	}
	// The node without a primary IPv6 address is left out, with an event.
	if got := w.targets[80]; !slices.Equal(got, targetsWant(30080, primary...)) {
		t.Errorf("targets on 80: %v", got)
	}
	if got := w.targets[443]; !slices.Equal(got, targetsWant(30443, primary...)) {
		t.Errorf("targets on 443: %v", got)
	}
	rules := ourRules(sim, name)
	// Clients (0.0.0.0/0 and ::/0) on each NodePort, which let the health
	// checks (TCP on the traffic port) in too.
	if len(rules) != 2*2 {
		t.Errorf("%d rules:\n%s", len(rules), strings.Join(rules, "\n"))
	}

	// Steady state: a second ensure and an update with the same nodes
	// change nothing.
	sim.ResetCounts()
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, all); err != nil {
		t.Fatal(err)
	}
	if err := lbs.UpdateLoadBalancer(ctx, "k", svc, all); err != nil {
		t.Fatal(err)
	}
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("steady state made %d mutating calls: %v", m, sim.Counts())
	}

	// A node leaves: it is deregistered from both groups, nothing else.
	sim.ResetCounts()
	if err := lbs.UpdateLoadBalancer(ctx, "k", svc, nodesOf(sim, primary[:3]...)); err != nil {
		t.Fatal(err)
	}
	w = look(t, sim, name)
	if !slices.Equal(w.targets[80], targetsWant(30080, primary[:3]...)) || !slices.Equal(w.targets[443], targetsWant(30443, primary[:3]...)) {
		t.Errorf("after removal: %v", w.targets)
	}
	if c := sim.Calls("elasticloadbalancing:DeregisterTargets"); c != 2 || sim.MutatingCalls() != 2 {
		t.Errorf("node removal: %d deregistrations, %d mutating calls; want 2 and 2 (%v)", c, sim.MutatingCalls(), sim.Counts())
	}

	// A port changes: its listener moves to a new group; the old group goes.
	svc.Spec.Ports[1].NodePort = 30081
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, all); err != nil {
		t.Fatal(err)
	}
	w = look(t, sim, name)
	if !slices.Equal(w.targets[80], targetsWant(30081, primary...)) {
		t.Errorf("after node port change: %v", w.targets)
	}
	if n := len(sim.TargetGroups()); n != 2 {
		t.Errorf("%d target groups after the port change, want 2", n)
	}
	if got := ourRules(sim, name); slices.ContainsFunc(got, func(r string) bool { return strings.Contains(r, " 30080 ") }) {
		t.Errorf("rules for the old node port left: %v", got)
	}

	// Deleted: nothing tagged for the cluster is left, and no rule.
	if err := lbs.EnsureLoadBalancerDeleted(ctx, "k", svc); err != nil {
		t.Fatal(err)
	}
	if left := sim.ELBv2TaggedWith("kubernetes.io/cluster/" + cluster); len(left) != 0 {
		t.Errorf("left after deletion: %v", left)
	}
	if r := ourRules(sim, name); len(r) != 0 {
		t.Errorf("rules left: %v", r)
	}
	if _, exists, err := lbs.GetLoadBalancer(ctx, "k", svc); exists || err != nil {
		t.Errorf("GetLoadBalancer after deletion: %v %v", exists, err)
	}
}

// TestIPv4ServiceAsUpstream: an IPv4 Service gets an ipv4 NLB with IPv4
// target groups holding every node, as upstream makes it.
func TestIPv4ServiceAsUpstream(t *testing.T) {
	sim, lbs, _ := startWorld(t)
	svc := service(nlb(nil), v1.IPv4Protocol)
	if _, err := lbs.EnsureLoadBalancer(context.Background(), "k", svc, nodesOf(sim)); err != nil {
		t.Fatal(err)
	}
	w := look(t, sim, Name(svc))
	if w.lb.IPAddressType != "ipv4" || w.listeners[80] != "TCP/ipv4" {
		t.Errorf("%s, listeners %v", w.lb.IPAddressType, w.listeners)
	}
	var ids []string
	for _, in := range sim.State().Instances {
		ids = append(ids, in.ID)
	}
	if !slices.Equal(w.targets[80], targetsWant(30080, ids...)) {
		t.Errorf("targets %v, want all %v", w.targets[80], ids)
	}
	for _, r := range ourRules(sim, Name(svc)) {
		if strings.Contains(r, "::") || strings.Contains(r, ":/") {
			t.Errorf("IPv6 rule for an ipv4 load balancer: %s", r)
		}
	}
}

// TestNotOurs: a Service without the NLB annotation is upstream's classic
// ELB: nothing is made, the service controller is told to leave it.
func TestNotOurs(t *testing.T) {
	sim, lbs, _ := startWorld(t)
	rec := record.NewFakeRecorder(10)
	lbs.SetRecorder(rec)
	svc := service(nil, v1.IPv4Protocol)
	_, err := lbs.EnsureLoadBalancer(context.Background(), "k", svc, nodesOf(sim))
	if err != cloudprovider.ImplementedElsewhere {
		t.Errorf("err = %v, want ImplementedElsewhere", err)
	}
	if ev := <-rec.Events; !strings.Contains(ev, "Warning "+ReasonNotNLB) || !strings.Contains(ev, AnnotationType) {
		t.Errorf("event %q", ev)
	}
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("%d mutating calls", m)
	}
}

// TestCrashMidEnsure: an ensure that fails after the load balancer and a
// target group were made (a listener call fails, as a crash would stop it)
// is completed by a new process without a second load balancer, group,
// listener or rule.
func TestCrashMidEnsure(t *testing.T) {
	sim, lbs, _ := startWorld(t)
	ctx := context.Background()
	svc := service(nlb(nil), v1.IPv6Protocol, v1.IPv4Protocol)
	sim.SetFault("elasticloadbalancing:CreateListener", ec2sim.Fault{ErrorRate: 1})
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, nodesOf(sim)); err == nil {
		t.Fatal("ensure succeeded through a failing CreateListener")
	}
	if n := len(sim.TargetGroups()); n != 1 {
		t.Fatalf("%d target groups before the crash, want 1", n)
	}
	sim.ClearFaults()
	restarted := newLBs(t, sim)
	if _, err := restarted.EnsureLoadBalancer(ctx, "k", svc, nodesOf(sim)); err != nil {
		t.Fatal(err)
	}
	if n := len(sim.LoadBalancers()); n != 1 {
		t.Errorf("%d load balancers", n)
	}
	if n := len(sim.TargetGroups()); n != 2 {
		t.Errorf("%d target groups, want 2", n)
	}
	w := look(t, sim, Name(svc))
	if len(w.listeners) != 2 {
		t.Errorf("listeners %v", w.listeners)
	}
	// Deleting after a crash between target group and listener creation
	// removes the unattached group too.
	sim.SetFault("elasticloadbalancing:CreateListener", ec2sim.Fault{ErrorRate: 1})
	svc2 := service(nlb(nil), v1.IPv4Protocol)
	svc2.UID, svc2.Name = "0e0e0e0e-1111-2222-3333-444444444444", "other"
	if _, err := restarted.EnsureLoadBalancer(ctx, "k", svc2, nodesOf(sim)); err == nil {
		t.Fatal("ensure succeeded through a failing CreateListener")
	}
	sim.ClearFaults()
	if err := restarted.EnsureLoadBalancerDeleted(ctx, "k", svc2); err != nil {
		t.Fatal(err)
	}
	for _, arn := range sim.ELBv2TaggedWith(TagServiceName) {
		if strings.Contains(arn, "k8s-web-other") || strings.Contains(arn, Name(svc2)) {
			t.Errorf("left after deleting the half-made Service: %s", arn)
		}
	}
	if _, ok := sim.LoadBalancer(Name(svc)); !ok {
		t.Error("the other Service's load balancer was deleted")
	}
}

// TestForeignLoadBalancerNotAdopted: a load balancer with the Service's
// name but without its tags is refused by name, and kept on deletion.
func TestForeignLoadBalancerNotAdopted(t *testing.T) {
	sim, lbs, _ := startWorld(t)
	ctx := context.Background()
	svc := service(nlb(nil), v1.IPv4Protocol)
	c, err := ec2.NewFromAWSConfig(sim.AWSConfig(), ec2.Config{Region: sim.Region()})
	if err != nil {
		t.Fatal(err)
	}
	subnets, err := c.VPCSubnets(ctx, sim.State().Subnets[0].VPC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ELB().CreateLoadBalancer(ctx, ec2.LoadBalancerSpec{Name: Name(svc), Scheme: "internet-facing", IPAddressType: "ipv4",
		Subnets: []string{subnets[0].ID}, Tags: map[string]string{"owner": "someone else"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, nodesOf(sim)); err == nil || !strings.Contains(err.Error(), "refusing to adopt") {
		t.Errorf("err = %v", err)
	}
	if err := lbs.EnsureLoadBalancerDeleted(ctx, "k", svc); err != nil {
		t.Fatal(err)
	}
	if _, ok := sim.LoadBalancer(Name(svc)); !ok {
		t.Error("a foreign load balancer was deleted")
	}
}

// TestDualStackUDP: a dual-stack Service with a UDP port gets an NLB with
// IPv6 source NAT (which AWS requires for UDP listeners on dualstack and
// only allows at creation) and its UDP listener.
func TestDualStackUDP(t *testing.T) {
	sim, lbs, _ := startWorld(t)
	svc := service(nlb(nil), v1.IPv6Protocol, v1.IPv4Protocol)
	svc.Spec.Ports = append(svc.Spec.Ports, v1.ServicePort{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53, NodePort: 30053})
	if _, err := lbs.EnsureLoadBalancer(context.Background(), "k", svc, nodesOf(sim)); err != nil {
		t.Fatal(err)
	}
	w := look(t, sim, Name(svc))
	if w.lb.EnablePrefixForIPv6SourceNAT != "on" || w.listeners[53] != "UDP/ipv6" {
		t.Errorf("source NAT %q, listeners %v", w.lb.EnablePrefixForIPv6SourceNAT, w.listeners)
	}
}

// TestAnnotationRemoved: a Service whose NLB annotation is removed (upstream
// would now make a classic ELB) loses the NLB made for it, and everything
// with it; the framework calls EnsureLoadBalancer, not the delete, then.
func TestAnnotationRemoved(t *testing.T) {
	sim, lbs, _ := startWorld(t)
	ctx := context.Background()
	svc := service(nlb(nil), v1.IPv4Protocol)
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, nodesOf(sim)); err != nil {
		t.Fatal(err)
	}
	svc.Annotations = nil
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, nodesOf(sim)); err != cloudprovider.ImplementedElsewhere {
		t.Fatalf("err = %v, want ImplementedElsewhere", err)
	}
	if left := sim.ELBv2TaggedWith("kubernetes.io/cluster/" + cluster); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
	if r := ourRules(sim, Name(svc)); len(r) != 0 {
		t.Errorf("rules left: %v", r)
	}
}

// TestRulesLeaveUnusedClusterGroups: when no target uses a cluster-tagged
// security group any more, the load balancer's rules leave it.
func TestRulesLeaveUnusedClusterGroups(t *testing.T) {
	sim, lbs, _ := startWorld(t)
	ctx := context.Background()
	svc := service(nlb(nil), v1.IPv4Protocol)
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, nodesOf(sim)); err != nil {
		t.Fatal(err)
	}
	if len(ourRules(sim, Name(svc))) == 0 {
		t.Fatal("no rules made")
	}
	// The Service's last target goes: nothing uses the node group for it.
	svc.Annotations[AnnotationTargetLabels] = "role=none"
	if err := lbs.UpdateLoadBalancer(ctx, "k", svc, nodesOf(sim)); err != nil {
		t.Fatal(err)
	}
	if r := ourRules(sim, Name(svc)); len(r) != 0 {
		t.Errorf("rules left on an unused cluster group: %v", r)
	}
}

// drain returns the events recorded so far.
func drain(lbs *LoadBalancers) []string {
	rec := lbs.recorder.(*record.FakeRecorder)
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// TestAnnotationsApplied checks the documented effect of each supported
// annotation that changes AWS objects, and the events for what is not
// supported or not possible, against ec2sim's state.
func TestAnnotationsApplied(t *testing.T) {
	sim, lbs, _ := startWorld(t)
	ctx := context.Background()
	svc := service(nlb(map[string]string{
		AnnotationExtraTags: "team=web", AnnotationCrossZone: "true", AnnotationHCInterval: "15",
		AnnotationPrefix + "ssl-cert": "arn:aws:acm:x", AnnotationPrefix + "proxy-protocol": "*",
	}), v1.IPv6Protocol, v1.IPv4Protocol)
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, nodesOf(sim)); err != nil {
		t.Fatal(err)
	}
	w := look(t, sim, Name(svc))
	if w.lb.Attributes[crossZoneAttribute] != "true" {
		t.Errorf("cross-zone attribute %q", w.lb.Attributes[crossZoneAttribute])
	}
	for _, arn := range sim.ELBv2TaggedWith(TagServiceName) {
		found := false
		for _, a := range sim.ELBv2TaggedWith("team") {
			found = found || a == arn
		}
		if !found {
			t.Errorf("%s lacks the additional tag", arn)
		}
	}
	if n := len(sim.ELBv2TaggedWith("team")); n != 5 {
		t.Errorf("%d objects tagged team, want 5 (load balancer, 2 groups, 2 listeners)", n)
	}
	for _, tg := range sim.TargetGroups() {
		if tg.HealthCheck.IntervalSeconds != 15 || tg.HealthCheck.Protocol != "TCP" {
			t.Errorf("health check %+v", tg.HealthCheck)
		}
	}
	events := drain(lbs)
	var unsupported, skipped int
	for _, e := range events {
		if strings.HasPrefix(e, "Warning "+ReasonUnsupportedAnnotation) {
			unsupported++
		}
		if strings.HasPrefix(e, "Warning "+ReasonTargetSkipped) && strings.Contains(e, "i-0c000000000000005") {
			skipped++
		}
	}
	if unsupported != 2 || skipped == 0 {
		t.Errorf("events: %d UnsupportedAnnotation (want 2), %d TargetSkipped naming the node without primary IPv6:\n%s", unsupported, skipped, strings.Join(events, "\n"))
	}

	// A health check setting changes in place; no new group.
	sim.ResetCounts()
	svc.Annotations[AnnotationHCInterval] = "20"
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, nodesOf(sim)); err != nil {
		t.Fatal(err)
	}
	if c := sim.Calls("elasticloadbalancing:ModifyTargetGroup"); c != 2 || sim.Calls("elasticloadbalancing:CreateTargetGroup") != 0 {
		t.Errorf("ModifyTargetGroup %d (want 2), CreateTargetGroup %d (want 0)", c, sim.Calls("elasticloadbalancing:CreateTargetGroup"))
	}
	for _, tg := range sim.TargetGroups() {
		if tg.HealthCheck.IntervalSeconds != 20 {
			t.Errorf("interval %d after the change", tg.HealthCheck.IntervalSeconds)
		}
	}

	// Internal: the scheme cannot change in place, so the NLB is made anew
	// in the subnets tagged for internal load balancers.
	svc.Annotations[AnnotationInternal] = "true"
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, nodesOf(sim)); err != nil {
		t.Fatal(err)
	}
	w = look(t, sim, Name(svc))
	if w.lb.Scheme != "internal" || len(sim.LoadBalancers()) != 1 {
		t.Fatalf("scheme %q, %d load balancers", w.lb.Scheme, len(sim.LoadBalancers()))
	}
	internal := map[string]bool{}
	for _, sn := range sim.State().Subnets {
		internal[sn.ID] = sn.Tags[TagRoleInternalELB] == "1"
	}
	for _, id := range w.lb.Subnets {
		if !internal[id] {
			t.Errorf("internal load balancer in subnet %s, not tagged %s", id, TagRoleInternalELB)
		}
	}
	if len(w.listeners) != 2 {
		t.Errorf("listeners after the scheme change: %v", w.listeners)
	}
}
