package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// lbCluster is the cluster ID of the load balancer world: ec2sim tags its
// node security group and subnets with it, and the CCM reads it from the
// tags of the instance IMDS answers for.
const lbCluster = "lbe2e"

// lbScenario: a cluster with ec2sim's default subnets for a clusterID (a
// private subnet per zone, where instances go, and a public one per zone
// tagged kubernetes.io/role/elb), a control-plane instance IMDS answers for
// (no Node here), and two workers: one launched with an IPv6 address and a
// /80 that are not yet primary, one bare (the CCM assigns both). None has a
// primary IPv6 address: EnablePrimaryIPv6 in the cloud config makes it.
const lbScenario = `
region: us-east-1
clusterID: lbe2e
instances:
- id: i-0c0000000000000c1
  tags: {Name: control-plane, kubernetes.io/cluster/lbe2e: owned}
  enis: [{deviceIndex: 0, ipv6AddressCount: 1, ipv6PrefixCount: 1, enablePrimaryIpv6: true}]
- id: i-0c0000000000000a1
  tags: {Name: worker-1, kubernetes.io/cluster/lbe2e: owned}
  enis: [{deviceIndex: 0, ipv6AddressCount: 1, ipv6PrefixCount: 1}]
- id: i-0c0000000000000a2
  tags: {Name: worker-2, kubernetes.io/cluster/lbe2e: owned}
`

const (
	nlbAnnotation   = "service.beta.kubernetes.io/aws-load-balancer-type"
	lbNamespace     = "default"
	roleELBTag      = "kubernetes.io/role/elb"
	clusterTagKey   = "kubernetes.io/cluster/" + lbCluster
	serviceNameTag  = "kubernetes.io/service-name"
	lbFinalizer     = "service.kubernetes.io/load-balancer-cleanup"
	lbStepTimeout   = 30 * time.Second
	lbPollInterval  = 200 * time.Millisecond
	unsupportedType = "UnsupportedLoadBalancerType"
)

// TestLoadBalancerService drives Services of type LoadBalancer through the
// real service controller of the CCM binary against ec2sim's ELBv2 API and
// checks every outcome in ec2sim's state, with expected values from the
// world (ec2sim's subnets, groups and instances, the NodePorts the
// apiserver allocated): a Service without the NLB annotation is left alone
// with a Warning; a dual-stack Service gets a dualstack internet-facing NLB
// in the public subnets, one listener per port forwarding to an IPv6
// target group of instance targets holding every node, node security group
// rules for clients and health checks, and its DNS name in the status;
// nodes added and removed are registered and deregistered; a NodePort
// change moves its listener to a new group and the old one goes; deletion
// leaves nothing tagged for the cluster and no rule; an IPv4 Service gets an
// ipv4 NLB with IPv4 groups; and a CCM killed while a CreateListener it
// made is unanswered is replaced by one that converges without duplicates.
func TestLoadBalancerService(t *testing.T) {
	began := time.Now()
	sc, err := ec2sim.ParseScenario([]byte(lbScenario))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, sc, false)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cc, err := w.ShippedCloudConfig()
	if err != nil {
		t.Fatal(err)
	}
	opts := harness.CCMOptions{CloudConfig: cc + "EnablePrimaryIPv6=true\n", ExtraArgs: fastLeaderElection}
	ccms := []*harness.CCM{startCCM(t, w, opts)}
	t.Cleanup(func() {
		noForbidden(t, ccms...)
		for _, c := range ccms {
			if strings.Contains(c.Log(), "panic") {
				t.Errorf("%s log has a panic:\n%s", c.Name, grepLines(c.Log(), "panic"))
			}
		}
		t.Logf("TestLoadBalancerService took %s", time.Since(began).Round(100*time.Millisecond))
	})

	// The world: the public subnets, and the node security group the
	// workers' primary ENIs carry.
	var public []ec2sim.SubnetState
	var private []ec2sim.SubnetState
	for _, sn := range w.Sim.State().Subnets {
		if sn.Tags[roleELBTag] == "1" {
			public = append(public, sn)
		} else if sn.Tags["kubernetes.io/role/internal-elb"] == "1" {
			private = append(private, sn)
		}
	}
	sort.Slice(public, func(i, j int) bool { return public[i].ID < public[j].ID })
	if len(public) != 3 || len(private) != 3 {
		t.Fatalf("scenario: %d public and %d private subnets, want 3 and 3", len(public), len(private))
	}
	nodeSG := primaryENI(instanceByID(w, "i-0c0000000000000a1")).SecurityGroups
	if len(nodeSG) != 1 {
		t.Fatalf("worker's primary ENI has groups %v, want the cluster's node group", nodeSG)
	}
	if g := securityGroup(w, nodeSG[0]); g.Tags[clusterTagKey] != "owned" {
		t.Fatalf("group %s of the workers is not tagged %s: %+v", nodeSG[0], clusterTagKey, g)
	}

	// Two workers register (with providerIDs, as kubelet --provider-id
	// does) and report Ready; the CCM initializes them.
	nodes := map[string]string{} // node name → instance ID
	addNode := func(t *testing.T, id string) string {
		in := instanceByID(w, id)
		if _, err := w.CreateNode(ctx, harness.NodeSpec{Name: in.PrivateDNSName, ProviderID: providerid.Format(in.Zone, id), Ready: true}); err != nil {
			t.Fatal(err)
		}
		waitNodes(ctx, t, w, []string{in.PrivateDNSName}, lbStepTimeout, initialized)
		waitPrimaryIPv6(ctx, t, w, id)
		nodes[in.PrivateDNSName] = id
		return in.PrivateDNSName
	}
	addNode(t, "i-0c0000000000000a1")
	addNode(t, "i-0c0000000000000a2")
	nodeIDs := func() []string {
		ids := make([]string, 0, len(nodes))
		for _, id := range nodes {
			ids = append(ids, id)
		}
		return ids
	}

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	var classic *corev1.Service
	step("no type annotation: Warning, nothing made", func(t *testing.T) {
		classic = createService(ctx, t, w, "classic", nil, corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{corev1.IPv4Protocol}, 80)
		ev := serviceEvent(ctx, t, w, classic.Name, unsupportedType)
		if ev.Type != corev1.EventTypeWarning || ev.Source.Component != "aws-cloud-provider" || !strings.Contains(ev.Message, nlbAnnotation) {
			t.Errorf("event %s %s from %q: %s; want a Warning from aws-cloud-provider naming %s", ev.Type, ev.Reason, ev.Source.Component, ev.Message, nlbAnnotation)
		}
		for action, outcomes := range w.Sim.Counts() {
			if strings.HasPrefix(action, ec2sim.ELBv2KeyPrefix+"Create") {
				t.Errorf("%s called for a Service without the NLB annotation: %v", action, outcomes)
			}
		}
		if lbs := w.Sim.LoadBalancers(); len(lbs) != 0 {
			t.Errorf("load balancers made: %+v", lbs)
		}
		if tgs := w.Sim.TargetGroups(); len(tgs) != 0 {
			t.Errorf("target groups made: %+v", tgs)
		}
		if got, err := w.Admin.CoreV1().Services(lbNamespace).Get(ctx, classic.Name, metav1.GetOptions{}); err != nil || len(got.Status.LoadBalancer.Ingress) != 0 {
			t.Errorf("classic Service status %+v (%v), want no ingress", got.Status.LoadBalancer, err)
		}
	})

	var web *corev1.Service
	var webLB string
	step("dual-stack Service: dualstack NLB, IPv6 instance groups, rules, status", func(t *testing.T) {
		web = createService(ctx, t, w, "web", map[string]string{nlbAnnotation: "nlb"}, corev1.IPFamilyPolicyRequireDualStack,
			[]corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}, 80, 443)
		webLB = lbNameOf(web)
		web = waitHostname(ctx, t, w, web.Name)
		if n := len(w.Sim.LoadBalancers()); n != 1 {
			t.Errorf("%d load balancers, want 1", n)
		}
		checkNLB(t, w, web, webLB, "dualstack", "ipv6", public, nodeIDs())
		if got, want := lbRules(w, webLB), wantRules(nodeSG[0], webLB, web, true); !slices.Equal(got, want) {
			t.Errorf("node security group rules for %s:\n got %s\nwant %s", webLB, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	})

	// The new node registers with its providerID, so the service controller
	// syncs it at once, before the node controller has marked its IPv6
	// address primary: the ensure must come back for it (its initialization
	// changes nothing the service controller watches).
	step("node added is registered, node removed is deregistered", func(t *testing.T) {
		id, err := w.Sim.AddInstance(ec2sim.Instance{Subnet: private[1].ID, Tags: map[string]string{"Name": "worker-3", clusterTagKey: "owned"}})
		if err != nil {
			t.Fatal(err)
		}
		added := addNode(t, id)
		waitTargets(ctx, t, w, webLB, web, nodeIDs())
		t.Logf("node %s (%s) registered; Service events: %s", added, id, serviceEvents(ctx, w, web.Name))

		var gone string
		for name := range nodes {
			if name != added {
				gone = name
				break
			}
		}
		if err := w.Admin.CoreV1().Nodes().Delete(ctx, gone, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		goneID := nodes[gone]
		delete(nodes, gone)
		waitTargets(ctx, t, w, webLB, web, nodeIDs())
		t.Logf("node %s (%s) deregistered", gone, goneID)
		if got, want := lbRules(w, webLB), wantRules(nodeSG[0], webLB, web, true); !slices.Equal(got, want) {
			t.Errorf("rules after the node changes:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	})

	step("NodePort change: listener forwards to a new group, the old one is gone", func(t *testing.T) {
		before, _ := w.Sim.LoadBalancer(webLB)
		old := listenerGroup(w, before, 443)
		keep := listenerGroup(w, before, 80)
		newPort := freeNodePort(ctx, t, w)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s, err := w.Admin.CoreV1().Services(lbNamespace).Get(ctx, web.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for i := range s.Spec.Ports {
				if s.Spec.Ports[i].Port == 443 {
					s.Spec.Ports[i].NodePort = newPort
				}
			}
			web, err = w.Admin.CoreV1().Services(lbNamespace).Update(ctx, s, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// The ensure deletes the old group before it moves the rules to the
		// new NodePort: wait for both.
		poll(ctx, t, "listener 443 to forward to a group on the new NodePort, the old group to go and the rules to follow", func() (bool, string) {
			l, ok := w.Sim.LoadBalancer(webLB)
			if !ok {
				return false, "no load balancer"
			}
			tg := listenerGroup(w, l, 443)
			oldLeft := slices.ContainsFunc(w.Sim.TargetGroups(), func(g ec2sim.TargetGroup) bool { return g.ARN == old.ARN })
			rules := lbRules(w, webLB)
			rulesDone := slices.Equal(rules, wantRules(nodeSG[0], webLB, web, true))
			return tg.ARN != old.ARN && tg.Port == int(newPort) && !oldLeft && rulesDone,
				fmt.Sprintf("listener 443 → %s (port %d), old group %s still there: %v, rules %v", tg.Name, tg.Port, old.Name, oldLeft, rules)
		})
		checkNLB(t, w, web, webLB, "dualstack", "ipv6", public, nodeIDs())
		after, _ := w.Sim.LoadBalancer(webLB)
		if g := listenerGroup(w, after, 80); g.ARN != keep.ARN {
			t.Errorf("listener 80 moved from %s to %s though its port did not change", keep.Name, g.Name)
		}
		if got, want := lbRules(w, webLB), wantRules(nodeSG[0], webLB, web, true); !slices.Equal(got, want) {
			t.Errorf("rules after the NodePort change:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	})

	step("Service deleted: nothing tagged for the cluster, no rule", func(t *testing.T) {
		deleteService(ctx, t, w, web.Name)
		if left := w.Sim.ELBv2TaggedWith(clusterTagKey); len(left) != 0 {
			t.Errorf("tagged %s after the deletion: %v", clusterTagKey, left)
		}
		if n := len(w.Sim.LoadBalancers()) + len(w.Sim.TargetGroups()); n != 0 {
			t.Errorf("%d load balancers and target groups left", n)
		}
		if r := lbRules(w, webLB); len(r) != 0 {
			t.Errorf("rules of %s left: %v", webLB, r)
		}
	})

	var v4 *corev1.Service
	step("IPv4 Service: ipv4 NLB with IPv4 groups", func(t *testing.T) {
		v4 = createService(ctx, t, w, "v4", map[string]string{nlbAnnotation: "nlb"}, corev1.IPFamilyPolicySingleStack,
			[]corev1.IPFamily{corev1.IPv4Protocol}, 80)
		v4 = waitHostname(ctx, t, w, v4.Name)
		checkNLB(t, w, v4, lbNameOf(v4), "ipv4", "ipv4", public, nodeIDs())
		if got, want := lbRules(w, lbNameOf(v4)), wantRules(nodeSG[0], lbNameOf(v4), v4, false); !slices.Equal(got, want) {
			t.Errorf("rules for %s:\n got %s\nwant %s", lbNameOf(v4), strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	})

	step("CCM killed while its CreateListener is unanswered: a new one converges", func(t *testing.T) {
		// CreateListener takes effect at once and answers after a minute:
		// the first listener exists while the ensure waits for the reply.
		w.Sim.SetFault(ec2sim.ELBv2KeyPrefix+"CreateListener", ec2sim.Fault{ReplyLatency: time.Minute})
		svc := createService(ctx, t, w, "crash", map[string]string{nlbAnnotation: "nlb"}, corev1.IPFamilyPolicyRequireDualStack,
			[]corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}, 80, 443)
		name := lbNameOf(svc)
		poll(ctx, t, "the first listener to be made", func() (bool, string) {
			l, ok := w.Sim.LoadBalancer(name)
			return ok && len(l.Listeners) >= 1, fmt.Sprintf("load balancer made: %v, listeners %d", ok, len(l.Listeners))
		})
		l, _ := w.Sim.LoadBalancer(name)
		if s, err := w.Admin.CoreV1().Services(lbNamespace).Get(ctx, svc.Name, metav1.GetOptions{}); err != nil || len(s.Status.LoadBalancer.Ingress) != 0 {
			t.Fatalf("Service status %+v (%v) before the kill: the ensure was not stopped mid-way", s.Status.LoadBalancer, err)
		}
		killed := ccms[len(ccms)-1]
		killed.Kill()
		w.Sim.ClearFaults()
		t.Logf("killed %s with %d listener(s) and %d target group(s) made", killed.Name, len(l.Listeners), len(serviceGroups(w, "crash")))
		ccms = append(ccms, startCCM(t, w, opts))
		svc = waitHostname(ctx, t, w, svc.Name)
		n := 0
		for _, lb := range w.Sim.LoadBalancers() {
			if lb.Name == name {
				n++
			}
		}
		if all := len(w.Sim.LoadBalancers()); n != 1 || all != 2 {
			t.Errorf("%d load balancers named %s and %d in all, want 1 and 2 (with the IPv4 Service's)", n, name, all)
		}
		if got := len(serviceGroups(w, "crash")); got != 2 {
			t.Errorf("%d target groups for the Service, want one per port (2)", got)
		}
		checkNLB(t, w, svc, name, "dualstack", "ipv6", public, nodeIDs())
		if got, want := lbRules(w, name), wantRules(nodeSG[0], name, svc, true); !slices.Equal(got, want) {
			t.Errorf("rules for %s:\n got %s\nwant %s", name, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
		if _, ok := w.Sim.LoadBalancer(lbNameOf(v4)); !ok {
			t.Errorf("the IPv4 Service's load balancer is gone")
		}
		deleteService(ctx, t, w, svc.Name)
		deleteService(ctx, t, w, v4.Name)
		if left := w.Sim.ELBv2TaggedWith(clusterTagKey); len(left) != 0 {
			t.Errorf("tagged %s after deleting every Service: %v", clusterTagKey, left)
		}
		for _, lb := range []string{name, lbNameOf(v4)} {
			if r := lbRules(w, lb); len(r) != 0 {
				t.Errorf("rules of %s left: %v", lb, r)
			}
		}
	})

	// The classic Service never got anything, to the end.
	if _, ok := w.Sim.LoadBalancer(lbNameOf(classic)); ok {
		t.Errorf("a load balancer was made for the Service without the NLB annotation")
	}
}

// createService creates a LoadBalancer Service with TCP ports; the
// apiserver allocates its NodePorts.
func createService(ctx context.Context, t *testing.T, w *harness.World, name string, annotations map[string]string,
	policy corev1.IPFamilyPolicy, families []corev1.IPFamily, ports ...int32) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: lbNamespace, Annotations: annotations},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, IPFamilyPolicy: &policy, IPFamilies: families,
			Selector: map[string]string{"app": name},
		},
	}
	for _, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", p), Protocol: corev1.ProtocolTCP, Port: p, TargetPort: intstr.FromInt32(8000 + p)})
	}
	created, err := w.Admin.CoreV1().Services(lbNamespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Service %s: %v", name, err)
	}
	return created
}

// lbNameOf is upstream's load balancer name: "a" and the Service's UID
// without hyphens, cut to 32 characters.
func lbNameOf(svc *corev1.Service) string {
	n := "a" + strings.ReplaceAll(string(svc.UID), "-", "")
	return n[:min(len(n), 32)]
}

// waitHostname waits for the Service's status to carry a hostname.
func waitHostname(ctx context.Context, t *testing.T, w *harness.World, name string) *corev1.Service {
	t.Helper()
	var svc *corev1.Service
	poll(ctx, t, "Service "+name+" to get a load balancer hostname", func() (bool, string) {
		s, err := w.Admin.CoreV1().Services(lbNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		svc = s
		ing := s.Status.LoadBalancer.Ingress
		return len(ing) > 0 && ing[0].Hostname != "", fmt.Sprintf("status %+v; events: %s", s.Status.LoadBalancer, serviceEvents(ctx, w, name))
	})
	return svc
}

// deleteService deletes the Service and waits until it is gone, that is
// until the service controller has cleaned up and removed its finalizer.
func deleteService(ctx context.Context, t *testing.T, w *harness.World, name string) {
	t.Helper()
	if err := w.Admin.CoreV1().Services(lbNamespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "Service "+name+" to be deleted", func() (bool, string) {
		s, err := w.Admin.CoreV1().Services(lbNamespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("finalizers %v; events: %s", s.Finalizers, serviceEvents(ctx, w, name))
	})
}

// poll waits for cond, failing the test with cond's last message on timeout.
func poll(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, lbPollInterval, lbStepTimeout, true, func(context.Context) (bool, error) {
		ok, msg := cond()
		last = msg
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; last: %s", what, err, last)
	}
}

// serviceEvent waits for an event with the reason on the Service.
func serviceEvent(ctx context.Context, t *testing.T, w *harness.World, name, reason string) corev1.Event {
	t.Helper()
	var found corev1.Event
	poll(ctx, t, "event "+reason+" on Service "+name, func() (bool, string) {
		evs, err := w.Admin.CoreV1().Events(lbNamespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + name})
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs.Items {
			if e.Reason == reason {
				found = e
				return true, ""
			}
		}
		return false, serviceEvents(ctx, w, name)
	})
	return found
}

// serviceEvents lists the Service's events, for failure messages.
func serviceEvents(ctx context.Context, w *harness.World, name string) string {
	evs, err := w.Admin.CoreV1().Events(lbNamespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + name})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, e := range evs.Items {
		out = append(out, fmt.Sprintf("%s %s (%s): %s", e.Type, e.Reason, e.Source.Component, e.Message))
	}
	return "[" + strings.Join(out, "; ") + "]"
}

// waitPrimaryIPv6 waits until ec2sim shows a primary IPv6 address on the
// instance's primary ENI (EnablePrimaryIPv6 in the cloud config).
func waitPrimaryIPv6(ctx context.Context, t *testing.T, w *harness.World, id string) {
	t.Helper()
	poll(ctx, t, "a primary IPv6 address on "+id, func() (bool, string) {
		eni := primaryENI(instanceByID(w, id))
		return eni.PrimaryIPv6 && slices.ContainsFunc(eni.IPv6, func(a ec2sim.IPv6Addr) bool { return a.Primary }), fmt.Sprintf("%+v", eni)
	})
}

// waitTargets waits until every listener's group holds exactly the
// instances (not draining) on its port's NodePort.
func waitTargets(ctx context.Context, t *testing.T, w *harness.World, lbName string, svc *corev1.Service, ids []string) {
	t.Helper()
	poll(ctx, t, fmt.Sprintf("the groups of %s to hold %v", lbName, ids), func() (bool, string) {
		l, ok := w.Sim.LoadBalancer(lbName)
		if !ok {
			return false, "no load balancer"
		}
		var msgs []string
		done := true
		for _, p := range svc.Spec.Ports {
			got, want := liveTargets(listenerGroup(w, l, int(p.Port))), targetsOf(ids, p.NodePort)
			if !slices.Equal(got, want) {
				done = false
			}
			msgs = append(msgs, fmt.Sprintf("port %d: %v want %v", p.Port, got, want))
		}
		return done, strings.Join(msgs, "; ") + "; events: " + serviceEvents(ctx, w, svc.Name)
	})
}

// checkNLB checks the Service's load balancer in ec2sim: type, scheme, IP
// address type, the public subnets, tags, one listener per Service port
// forwarding to an instance group of the family on the port's NodePort that
// holds exactly the instances; and the Service's hostname is its DNS name.
func checkNLB(t *testing.T, w *harness.World, svc *corev1.Service, lbName, ipType, family string, public []ec2sim.SubnetState, ids []string) {
	t.Helper()
	l, ok := w.Sim.LoadBalancer(lbName)
	if !ok {
		t.Fatalf("no load balancer %s in ec2sim; there are %d", lbName, len(w.Sim.LoadBalancers()))
	}
	if l.Type != "network" || l.Scheme != "internet-facing" || l.IPAddressType != ipType {
		t.Errorf("load balancer %s: type %s, scheme %s, IP address type %s; want network, internet-facing, %s", lbName, l.Type, l.Scheme, l.IPAddressType, ipType)
	}
	var want []string
	for _, sn := range public {
		want = append(want, sn.ID)
	}
	if got := slices.Sorted(slices.Values(l.Subnets)); !slices.Equal(got, want) {
		t.Errorf("load balancer %s in subnets %v, want the public ones %v", lbName, got, want)
	}
	owner := svc.Namespace + "/" + svc.Name
	if l.Tags[clusterTagKey] != "owned" || l.Tags[serviceNameTag] != owner {
		t.Errorf("load balancer tags %v, want %s=owned and %s=%s", l.Tags, clusterTagKey, serviceNameTag, owner)
	}
	if ing := svc.Status.LoadBalancer.Ingress; len(ing) != 1 || ing[0].Hostname != l.DNSName || l.DNSName == "" {
		t.Errorf("Service status ingress %+v, want one with hostname %q (ec2sim's DNS name)", ing, l.DNSName)
	}
	if len(l.Listeners) != len(svc.Spec.Ports) {
		t.Errorf("%d listeners, want one per Service port (%d): %+v", len(l.Listeners), len(svc.Spec.Ports), l.Listeners)
	}
	seen := map[string]bool{}
	for _, p := range svc.Spec.Ports {
		n := 0
		for _, ls := range l.Listeners {
			if ls.Port == int(p.Port) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d listeners on port %d, want 1", n, p.Port)
			continue
		}
		tg := listenerGroup(w, l, int(p.Port))
		if seen[tg.ARN] {
			t.Errorf("two listeners forward to %s", tg.Name)
		}
		seen[tg.ARN] = true
		if tg.Protocol != "TCP" || tg.TargetType != "instance" || tg.IPAddressType != family || tg.Port != int(p.NodePort) || tg.VPC != l.VPC {
			t.Errorf("port %d: group %s is %s %s %s on port %d in %s; want TCP instance %s on NodePort %d in %s",
				p.Port, tg.Name, tg.Protocol, tg.TargetType, tg.IPAddressType, tg.Port, tg.VPC, family, p.NodePort, l.VPC)
		}
		if tg.Tags[clusterTagKey] != "owned" || tg.Tags[serviceNameTag] != owner {
			t.Errorf("group %s tags %v", tg.Name, tg.Tags)
		}
		if got, want := liveTargets(tg), targetsOf(ids, p.NodePort); !slices.Equal(got, want) {
			t.Errorf("port %d: group %s holds %v, want every node's instance %v", p.Port, tg.Name, got, want)
		}
	}
}

// listenerGroup returns the target group the listener on port forwards to.
func listenerGroup(w *harness.World, l ec2sim.LoadBalancer, port int) ec2sim.TargetGroup {
	for _, ls := range l.Listeners {
		if ls.Port != port {
			continue
		}
		for _, tg := range w.Sim.TargetGroups() {
			if tg.ARN == ls.TargetGroupARN {
				return tg
			}
		}
	}
	return ec2sim.TargetGroup{}
}

// serviceGroups returns the target groups tagged for the Service.
func serviceGroups(w *harness.World, name string) []ec2sim.TargetGroup {
	var out []ec2sim.TargetGroup
	for _, tg := range w.Sim.TargetGroups() {
		if tg.Tags[serviceNameTag] == lbNamespace+"/"+name {
			out = append(out, tg)
		}
	}
	return out
}

// liveTargets lists a group's targets that are not draining, as "id:port".
func liveTargets(tg ec2sim.TargetGroup) []string {
	var out []string
	for _, tt := range tg.Targets {
		if tt.State != "draining" {
			out = append(out, fmt.Sprintf("%s:%d", tt.ID, tt.Port))
		}
	}
	sort.Strings(out)
	return out
}

func targetsOf(ids []string, port int32) []string {
	var out []string
	for _, id := range ids {
		out = append(out, fmt.Sprintf("%s:%d", id, port))
	}
	sort.Strings(out)
	return out
}

func securityGroup(w *harness.World, id string) ec2sim.SecurityGroup {
	for _, g := range w.Sim.SecurityGroups() {
		if g.ID == id {
			return g
		}
	}
	return ec2sim.SecurityGroup{}
}

// lbRules lists every security group rule whose description names the load
// balancer, as "group protocol from-to cidr description", sorted; a rule
// listed twice would show twice.
func lbRules(w *harness.World, lbName string) []string {
	var out []string
	for _, g := range w.Sim.SecurityGroups() {
		for _, r := range g.Ingress {
			if strings.Contains(r.Description, lbName) {
				out = append(out, ruleString(g.ID, r.Protocol, r.FromPort, r.CIDR, r.Description))
			}
		}
	}
	sort.Strings(out)
	return out
}

func ruleString(group, proto string, port int, cidr, desc string) string {
	if p, err := netip.ParsePrefix(cidr); err == nil {
		cidr = p.String()
	}
	return fmt.Sprintf("%s %s %d-%d %s %s", group, proto, port, port, cidr, desc)
}

// wantRules are the rules a load balancer needs on the node group, as
// upstream makes them: clients from anywhere (IPv4, and IPv6 when
// dualstack) to each NodePort; the health checks need nothing more.
func wantRules(group, lbName string, svc *corev1.Service, dualstack bool) []string {
	var out []string
	for _, p := range svc.Spec.Ports {
		np := int(p.NodePort)
		out = append(out, ruleString(group, "tcp", np, "0.0.0.0/0", "kubernetes.io/rule/nlb/client="+lbName))
		if dualstack {
			out = append(out, ruleString(group, "tcp", np, "::/0", "kubernetes.io/rule/nlb/client="+lbName))
		}
	}
	sort.Strings(out)
	return out
}

// freeNodePort returns a NodePort in the default range no Service uses.
func freeNodePort(ctx context.Context, t *testing.T, w *harness.World) int32 {
	t.Helper()
	svcs, err := w.Admin.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	used := map[int32]bool{}
	for _, s := range svcs.Items {
		for _, p := range s.Spec.Ports {
			used[p.NodePort] = true
		}
	}
	for p := int32(32100); p < 32767; p++ {
		if !used[p] {
			return p
		}
	}
	t.Fatal("no free NodePort")
	return 0
}
