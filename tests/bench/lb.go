package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// LBResults is one run of scenario (f), stored as
// docs/benchmarks/results-lb.json.
type LBResults struct {
	Date       time.Time `json:"date"`
	Commit     string    `json:"commit"`
	CCMVersion string    `json:"ccmVersion"`
	Machine    Machine   `json:"machine"`
	Services   int       `json:"services"`
	Nodes      int       `json:"nodes"`
	// Ports per Service; every Service is dual-stack, IPv6 first.
	Ports int `json:"ports"`
	// CreateSeconds runs from the first Service Create to the last Service
	// with its load balancer's hostname in its status.
	CreateSeconds float64 `json:"createSeconds"`
	// Create, NodeAdded and NodeRemoved are ec2sim's counts (ELBv2 actions
	// as elasticloadbalancing:<Action>) over each phase.
	Create      map[string]map[string]int `json:"create"`
	NodeAdded   map[string]map[string]int `json:"nodeAdded"`
	NodeRemoved map[string]map[string]int `json:"nodeRemoved"`
	// NodeAddedSeconds and NodeRemovedSeconds: until every target group
	// shows the change.
	NodeAddedSeconds   float64 `json:"nodeAddedSeconds"`
	NodeRemovedSeconds float64 `json:"nodeRemovedSeconds"`
	// Steady counts the load balancers' calls (ELBv2 and security groups)
	// over SteadySeconds with nothing changing.
	Steady        map[string]map[string]int `json:"steady"`
	SteadySeconds float64                   `json:"steadySeconds"`
	Problems      []string                  `json:"problems,omitempty"`
}

func lbPath(dir string) string { return filepath.Join(dir, "results-lb.json") }

func (r *LBResults) save(dir string) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(lbPath(dir), append(b, '\n'), 0o644)
}

func loadLB(dir string) (*LBResults, error) {
	b, err := os.ReadFile(lbPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r LBResults
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", lbPath(dir), err)
	}
	return &r, nil
}

const lbCluster = "bench"

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// measureLB runs scenario (f): S dual-stack Services on N Ready nodes.
func measureLB(root string, services, nodes int, steady time.Duration) (*LBResults, error) {
	if services < 1 || nodes < 1 {
		return nil, fmt.Errorf("need -lb-services and -lb-nodes above zero")
	}
	ctx, stop := signalContext()
	defer stop()
	res := &LBResults{Date: time.Now().UTC().Truncate(time.Second), Commit: commit(root), CCMVersion: ccmVersion(root),
		Machine: machine(), Services: services, Nodes: nodes, Ports: 2}
	res.Machine.Load = append(res.Machine.Load, "f: "+loadAvg())

	// One extra instance for the node-added phase. Instances carry a primary
	// IPv6 address from launch (a launch template's PrimaryIpv6), so the
	// phases measure the load balancers alone.
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: nodes + 1, PrePrefixed: true, IPv6Subnet: true})
	sc.ClusterID = lbCluster
	for i := range sc.Instances {
		sc.Instances[i].Tags = map[string]string{"kubernetes.io/cluster/" + lbCluster: "owned"}
		for j := range sc.Instances[i].ENIs {
			sc.Instances[i].ENIs[j].EnablePrimaryIPv6 = true
		}
	}
	for z, zone := range sc.Zones {
		sc.Subnets = append(sc.Subnets, ec2sim.Subnet{ID: fmt.Sprintf("subnet-0f%015x", z+1), Zone: zone.Name,
			CIDR: fmt.Sprintf("10.0.%d.0/20", 128+16*z), IPv6CIDR: fmt.Sprintf("2600:1f18:4000:a9%02x::/64", 0x81+z), MapPublicIPOnLaunch: true,
			Tags: map[string]string{"kubernetes.io/role/elb": "1", "kubernetes.io/cluster/" + lbCluster: "owned"}})
	}
	logf("(f) %d dual-stack Services on %d nodes: starting the world", services, nodes)
	hw, err := harness.Start(ctx, harness.Options{Scenario: sc, Throttling: true, Log: logf})
	if err != nil {
		return nil, err
	}
	defer hw.Close()
	w := &world{World: hw, insts: hw.Sim.State().Instances}
	cfg := rest.CopyConfig(hw.AdminCfg)
	cfg.QPS, cfg.Burst = 5000, 10000
	if w.admin, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if err := w.startCCM(ctx); err != nil {
		return nil, err
	}
	rec := newRecorder(nodes)
	if err := rec.watch(ctx, w.admin); err != nil {
		return nil, err
	}
	rec.kubelet(ctx, w.admin)
	rec.begin()
	if err := createNodes(ctx, w.admin, rec, w.insts[:nodes], false); err != nil {
		return nil, err
	}
	select {
	case <-rec.all:
	case <-time.After(10 * time.Minute):
		return nil, fmt.Errorf("(f) nodes not initialized after 10 minutes: %d/%d", rec.count(), nodes)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	logf("(f) %d nodes initialized; creating %d Services", nodes, services)

	// Create.
	before := w.Sim.Counts()
	start := time.Now()
	var names []string
	for i := range services {
		names = append(names, fmt.Sprintf("svc-%03d", i))
	}
	if err := parallel(ctx, 16, names, func(ctx context.Context, name string) error {
		_, err := w.admin.CoreV1().Services("default").Create(ctx, lbService(name), metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 15*time.Minute, "every Service has its load balancer", func() (bool, error) {
		list, err := w.admin.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		done := 0
		for _, s := range list.Items {
			if len(s.Status.LoadBalancer.Ingress) > 0 && s.Status.LoadBalancer.Ingress[0].Hostname != "" {
				done++
			}
		}
		return done == services, nil
	}); err != nil {
		return nil, err
	}
	res.CreateSeconds = round3(time.Since(start).Seconds())
	res.Create = diffCounts(before, w.Sim.Counts())
	logf("(f) %d load balancers in %.1f s", services, res.CreateSeconds)
	res.Problems = append(res.Problems, checkTargets(w.Sim, services, w.insts[:nodes])...)

	// A node added, then removed.
	extra := w.insts[nodes]
	before, start = w.Sim.Counts(), time.Now()
	if _, err := w.admin.CoreV1().Nodes().Create(ctx, kubeletNode(extra, nodes, true), metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 10*time.Minute, "the new node in every target group", func() (bool, error) {
		return targetCount(w.Sim, extra.ID) == services*res.Ports, nil
	}); err != nil {
		return nil, err
	}
	res.NodeAddedSeconds = round3(time.Since(start).Seconds())
	res.NodeAdded = diffCounts(before, w.Sim.Counts())
	before, start = w.Sim.Counts(), time.Now()
	if err := w.admin.CoreV1().Nodes().Delete(ctx, extra.PrivateDNSName, metav1.DeleteOptions{}); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 10*time.Minute, "the node gone from every target group", func() (bool, error) {
		return targetCount(w.Sim, extra.ID) == 0, nil
	}); err != nil {
		return nil, err
	}
	res.NodeRemovedSeconds = round3(time.Since(start).Seconds())
	res.NodeRemoved = diffCounts(before, w.Sim.Counts())
	logf("(f) node added in %.1f s, removed in %.1f s", res.NodeAddedSeconds, res.NodeRemovedSeconds)

	// Steady state: nothing changes.
	before, start = w.Sim.Counts(), time.Now()
	logf("(f) steady state for %s", steady)
	if err := sleep(ctx, steady); err != nil {
		return nil, err
	}
	res.SteadySeconds = round3(time.Since(start).Seconds())
	res.Steady = map[string]map[string]int{}
	for action, byOutcome := range diffCounts(before, w.Sim.Counts()) {
		if lbAction(action) {
			res.Steady[action] = byOutcome
		}
	}
	logf("(f) done: %s", lbSummary(res))
	return res, nil
}

// lbAction reports whether an ec2sim count key is a call the load balancers make.
func lbAction(action string) bool {
	return strings.HasPrefix(action, ec2sim.ELBv2KeyPrefix) || strings.Contains(action, "SecurityGroup")
}

func lbService(name string) *corev1.Service {
	dual := corev1.IPFamilyPolicyRequireDualStack
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			Annotations: map[string]string{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, IPFamilyPolicy: &dual, IPFamilies: []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol},
			Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP},
				{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// targetCount is how many target groups hold the instance (not draining).
func targetCount(sim *ec2sim.Sim, id string) int {
	n := 0
	for _, tg := range sim.TargetGroups() {
		for _, t := range tg.Targets {
			if t.ID == id && t.State != "draining" {
				n++
			}
		}
	}
	return n
}

// checkTargets: every Service has a dualstack NLB whose two IPv6 groups hold
// every node.
func checkTargets(sim *ec2sim.Sim, services int, insts []ec2sim.InstanceState) []string {
	var problems []string
	lbs := sim.LoadBalancers()
	if len(lbs) != services {
		problems = append(problems, fmt.Sprintf("%d load balancers for %d Services", len(lbs), services))
	}
	for _, lb := range lbs {
		if lb.IPAddressType != "dualstack" || len(lb.Listeners) != 2 {
			problems = append(problems, fmt.Sprintf("%s: %s with %d listeners", lb.Name, lb.IPAddressType, len(lb.Listeners)))
		}
	}
	for _, tg := range sim.TargetGroups() {
		if tg.IPAddressType != "ipv6" || len(tg.Targets) != len(insts) {
			problems = append(problems, fmt.Sprintf("target group %s: %s with %d targets, want ipv6 with %d", tg.Name, tg.IPAddressType, len(tg.Targets), len(insts)))
		}
	}
	return problems
}

func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("(f) timed out after %s waiting for %s", timeout, what)
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// callsBy splits a phase's counts into ELBv2 calls and EC2 calls, per
// Service, with the actions named.
func callsBy(counts map[string]map[string]int, services int) (elb, ec2 float64, actions string) {
	var parts []string
	for _, action := range slices.Sorted(mapsKeys(counts)) {
		n := 0
		for _, c := range counts[action] {
			n += c
		}
		if n == 0 {
			continue
		}
		if strings.HasPrefix(action, ec2sim.ELBv2KeyPrefix) {
			elb += float64(n)
		} else {
			ec2 += float64(n)
		}
		parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(action, ec2sim.ELBv2KeyPrefix), n))
	}
	return elb / float64(services), ec2 / float64(services), strings.Join(parts, ", ")
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func lbSummary(r *LBResults) string {
	ce, cc, _ := callsBy(r.Create, r.Services)
	ae, ac, _ := callsBy(r.NodeAdded, r.Services)
	se, sc, _ := callsBy(r.Steady, r.Services)
	hours := r.SteadySeconds / 3600
	return fmt.Sprintf("create %.1f ELBv2 + %.1f EC2 calls per Service; node added %.2f + %.2f per Service; steady %.2f + %.2f per Service-hour",
		ce, cc, ae, ac, se/hours, sc/hours)
}

// lbSection renders scenario (f).
func lbSection(b *strings.Builder, r *LBResults) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## (f) Load balancers: %d dual-stack Services on %d nodes\n\n", r.Services, r.Nodes)
	p("Measured %s, commit `%s`, %d CPUs (%s). Each Service is dual-stack (IPv6 first) with the NLB annotation and %d TCP ports,\n",
		r.Date.Format("2006-01-02"), r.Commit, r.Machine.CPUs, r.Machine.Model, r.Ports)
	p("so it gets a dualstack NLB, %d listeners and %d IPv6 target groups of instance targets; nodes carry a primary IPv6\n", r.Ports, r.Ports)
	p("address from launch. ec2sim enforces AWS's ELBv2 and EC2 token buckets. Calls are ec2sim's counts over each phase\n")
	p("(EC2 calls in the node phases include the node controller's own lookups of the added node).\n\n")
	p("| phase | wall time | ELBv2 calls per Service | EC2 calls per Service | calls (all Services) |\n|---|---|---|---|---|\n")
	row := func(name string, secs float64, counts map[string]map[string]int, scale float64, unit string) {
		e, c, actions := callsBy(counts, r.Services)
		wall := "-"
		if secs > 0 {
			wall = fmt.Sprintf("%.1f s", secs)
		}
		p("| %s | %s | %.2f%s | %.2f%s | %s |\n", name, wall, e*scale, unit, c*scale, unit, actions)
	}
	row(fmt.Sprintf("%d Services created", r.Services), r.CreateSeconds, r.Create, 1, "")
	row("one node added", r.NodeAddedSeconds, r.NodeAdded, 1, "")
	row("one node removed", r.NodeRemovedSeconds, r.NodeRemoved, 1, "")
	row(fmt.Sprintf("steady state, %.0f s", r.SteadySeconds), 0, r.Steady, 3600/r.SteadySeconds, " per hour")
	p("\n")
	if len(r.Problems) > 0 {
		p("Problems: %s\n\n", strings.Join(r.Problems, "; "))
	}
}
