package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// dualStackClusterCIDR is scenario e's --cluster-cidr: IPv6 primary, and
// 16,384 IPv4 /24s.
const dualStackClusterCIDR = "fd00:10:244::/56,10.128.0.0/10"

// AWS's default AssignIpv6Addresses bucket, as ec2sim enforces it.
const (
	assignBucket = 100
	assignRefill = 5.0
)

// bench runs the scenarios at one N.
type bench struct {
	n             int
	ready         bool
	steadyPeriod  time.Duration
	steadyPeriods int
	logf          func(format string, args ...any)
	res           *Results
}

// world is a harness world with the CCM and a fast admin client.
type world struct {
	*harness.World
	dual  bool // dual-stack pod CIDRs (scenario e)
	ccm   *harness.CCM
	admin kubernetes.Interface
	insts []ec2sim.InstanceState
}

// startWorld starts the harness with AWS's default throttling, n generated
// instances tagged for the cluster, and the CCM with the shipped flags plus
// extra.
func (b *bench) startWorld(ctx context.Context, prePrefixed bool) (*world, error) {
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: b.n, PrePrefixed: prePrefixed, IPv6Subnet: true})
	for i := range sc.Instances {
		sc.Instances[i].Tags = map[string]string{"kubernetes.io/cluster/bench": "owned"}
	}
	hw, err := harness.Start(ctx, harness.Options{Scenario: sc, Throttling: true, Log: b.logf})
	if err != nil {
		return nil, err
	}
	w := &world{World: hw, insts: hw.Sim.State().Instances}
	// Kubelets register at once: the admin client must not be the bottleneck.
	cfg := rest.CopyConfig(hw.AdminCfg)
	cfg.QPS, cfg.Burst = 5000, 10000
	if w.admin, err = kubernetes.NewForConfig(cfg); err != nil {
		hw.Close()
		return nil, err
	}
	return w, nil
}

// startCCM starts a CCM replica and waits until it leads and its node
// controller runs.
func (w *world) startCCM(ctx context.Context, extra ...string) error {
	o := harness.CCMOptions{ExtraArgs: extra}
	if w.dual {
		cc, err := w.ShippedCloudConfig()
		if err != nil {
			return err
		}
		o.CloudConfig = cc + "IPv4PodCIDRSource=cluster-cidr\n"
		o.ExtraArgs = append([]string{"--cluster-cidr=" + dualStackClusterCIDR, "--node-cidr-mask-size-ipv4=24"}, extra...)
	}
	if profileDir != "" {
		o.Env = []string{"GODEBUG=gctrace=1"}
	}
	if ccmEnv != "" {
		o.Env = append(o.Env, strings.Split(ccmEnv, ",")...)
	}
	ccm, err := w.StartCCM(ctx, o)
	if err != nil {
		return err
	}
	w.ccm = ccm
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(ccm.Log(), "Starting node controller") {
		if ccm.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("%s: node controller did not start; log %s", ccm.Name, ccm.LogPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// sample is what is read before and after a measured interval.
type sample struct {
	at     time.Time
	ec2    map[string]map[string]int
	writes map[string]float64
	cpu    float64
}

func (w *world) sample(ctx context.Context) (sample, error) {
	s := sample{at: time.Now(), ec2: w.Sim.Counts()}
	var err error
	if s.writes, err = scrapeWrites(ctx, w.ccm.MetricsURL, w.AdminCfg.BearerToken); err != nil {
		return s, err
	}
	s.cpu, err = cpuSeconds(w.ccm.Cmd.Process.Pid)
	return s, err
}

// settle samples until the CCM's POST and PATCH writes stop growing (a
// scrape itself may cost a token and an access review), at most 5 minutes.
func (w *world) settle(ctx context.Context) (sample, error) {
	prev, err := w.sample(ctx)
	if err != nil {
		return prev, err
	}
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
		if err := sleep(ctx, 3*time.Second); err != nil {
			return prev, err
		}
		cur, err := w.sample(ctx)
		if err != nil {
			return cur, err
		}
		grew := cur.writes["POST"] + cur.writes["PATCH"] - prev.writes["POST"] - prev.writes["PATCH"]
		prev = cur
		if grew <= 4 {
			break
		}
	}
	return prev, nil
}

// fill sets the cost fields of sc from two samples.
func (w *world) fill(sc *Scenario, a, z sample) error {
	sc.EC2 = diffCounts(a.ec2, z.ec2)
	sc.APIWrites = diffWrites(a.writes, z.writes)
	sc.CPUSeconds = round3(z.cpu - a.cpu)
	rss, err := peakRSSMiB(w.ccm.Cmd.Process.Pid)
	sc.RSSPeakMiB = round3(rss)
	if err == nil {
		sc.RSSAnonMiB, sc.RSSFileMiB, err = rssSplitMiB(w.ccm.Cmd.Process.Pid)
	}
	if err == nil && profileDir != "" {
		err = saveProfile(w, profileDir, fmt.Sprintf("%s-n%d", sc.ID, sc.Nodes))
	}
	return err
}

// burst registers N nodes at once and measures until all are initialized.
// It returns the world, still running, for the steady-state scenario.
func (b *bench) burst(ctx context.Context, id string, prePrefixed bool) (sc Scenario, w *world, err error) {
	sc = Scenario{ID: id, Nodes: b.n, Title: "burst, pre-prefixed (launch template)"}
	if !prePrefixed {
		sc.Title = "burst, bare (the CCM assigns address and prefix)"
	}
	if id == "e" {
		sc.Title = "burst, pre-prefixed, dual-stack pod CIDRs (IPv4 /24s from --cluster-cidr)"
	}
	b.res.Machine.Load = append(b.res.Machine.Load, id+": "+loadAvg())
	b.logf("(%s) %s: starting the world with %d instances", id, sc.Title, b.n)
	if w, err = b.startWorld(ctx, prePrefixed); err != nil {
		return sc, nil, err
	}
	w.dual = id == "e"
	defer func() {
		if err != nil {
			w.Close()
			w = nil
		}
	}()
	if b.res.KubeAPIQPS == 0 {
		if b.res.KubeAPIQPS, b.res.KubeAPIBurst, err = clientLimits(w.World); err != nil {
			return sc, w, err
		}
	}
	if err = w.startCCM(ctx); err != nil {
		return sc, w, err
	}
	rec := newRecorder(b.n)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err = rec.watch(watchCtx, w.admin); err != nil {
		return sc, w, err
	}
	rec.kubelet(watchCtx, w.admin)
	sc.Bound = b.bound(id)
	timeout := max(10*time.Minute, 2*time.Duration(sc.Bound.Seconds*float64(time.Second))+5*time.Minute)
	before, err := w.sample(ctx)
	if err != nil {
		return sc, w, err
	}
	b.logf("(%s) creating %d nodes; bound %.0f s (%s); timeout %s", id, b.n, sc.Bound.Seconds, sc.Bound.Formula, timeout)
	rec.begin()
	if err = createNodes(ctx, w.admin, rec, w.insts, b.ready); err != nil {
		return sc, w, err
	}
	sc.CreateSeconds = round3(time.Since(rec.start).Seconds())
	b.logf("(%s) %d nodes created in %.1f s; waiting for initialization", id, b.n, sc.CreateSeconds)
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	deadline := time.After(timeout)
wait:
	for {
		select {
		case <-rec.all:
			sc.Complete = true
			break wait
		case <-progress.C:
			b.logf("(%s) %d/%d initialized after %s", id, rec.count(), b.n, time.Since(rec.start).Round(time.Second))
		case <-deadline:
			b.logf("(%s) timed out after %s with %d/%d initialized", id, timeout, rec.count(), b.n)
			break wait
		case <-ctx.Done():
			return sc, w, ctx.Err()
		case <-w.ccm.Done():
			return sc, w, fmt.Errorf("%s exited; log %s", w.ccm.Name, w.ccm.LogPath)
		}
	}
	// EC2 calls count until the last node is initialized; API writes, CPU
	// and memory until its events have landed too.
	initEC2 := w.Sim.Counts()
	sc.Curve, sc.Latencies = rec.results()
	if len(sc.Curve) > 0 {
		sc.WallSeconds = sc.Curve[len(sc.Curve)-1]
	}
	sc.Latency = percentiles(append([]float64(nil), sc.Latencies...))
	// The CCM's events share the client QPS with the node writes and drain
	// after them: count them too.
	after, err := w.settle(ctx)
	if err != nil {
		return sc, w, err
	}
	after.ec2 = initEC2
	if err = w.fill(&sc, before, after); err != nil {
		return sc, w, err
	}
	if sc.Problems, err = checkInvariants(ctx, w.admin, w.Sim.State()); err != nil {
		return sc, w, err
	}
	b.logf("(%s) done: %s", id, summary(&sc))
	return sc, w, nil
}

// steady runs scenario (c) on a world whose nodes are initialized: nodes
// report Ready, the CCM restarts with a shortened
// --node-status-update-frequency, and the cost of several refresh periods
// is measured.
func (b *bench) steady(ctx context.Context, w *world) (Scenario, error) {
	sc := Scenario{ID: "c", Nodes: b.n, Title: "steady state", Complete: true}
	b.res.Machine.Load = append(b.res.Machine.Load, "c: "+loadAvg())
	names := make([]string, len(w.insts))
	for i, in := range w.insts {
		names[i] = in.PrivateDNSName
	}
	b.logf("(c) marking %d nodes Ready and restarting the CCM with --node-status-update-frequency=%s", b.n, b.steadyPeriod)
	if err := markReady(ctx, w.admin, names); err != nil {
		return sc, err
	}
	w.ccm.Stop(15 * time.Second)
	if err := w.startCCM(ctx, "--node-status-update-frequency="+b.steadyPeriod.String()); err != nil {
		return sc, err
	}
	// Skip the start-up (informer list, first refresh): measure whole
	// periods from the middle of one.
	if err := sleep(ctx, b.steadyPeriod/2); err != nil {
		return sc, err
	}
	before, err := w.sample(ctx)
	if err != nil {
		return sc, err
	}
	window := time.Duration(b.steadyPeriods) * b.steadyPeriod
	b.logf("(c) measuring %d periods (%s)", b.steadyPeriods, window)
	if err := sleep(ctx, window); err != nil {
		return sc, err
	}
	after, err := w.sample(ctx)
	if err != nil {
		return sc, err
	}
	if err := w.fill(&sc, before, after); err != nil {
		return sc, err
	}
	sc.WallSeconds = round3(after.at.Sub(before.at).Seconds())
	nodeHours := float64(b.n) * sc.WallSeconds / 3600
	shipped := 5 * time.Minute // k8s.io/cloud-provider's default, the shipped DaemonSet keeps it
	per := float64(total(sc.EC2, "")) / nodeHours
	sc.Steady = &Steady{
		PeriodSeconds: b.steadyPeriod.Seconds(), ShippedPeriodSeconds: shipped.Seconds(), Periods: b.steadyPeriods,
		EC2PerNodeHour:        round6(per),
		EC2PerNodeHourShipped: round6(per * b.steadyPeriod.Seconds() / shipped.Seconds()),
		APIWritesPerNodeHour:  round6(writes(sc.APIWrites) / nodeHours),
	}
	if sc.Problems, err = checkInvariants(ctx, w.admin, w.Sim.State()); err != nil {
		return sc, err
	}
	b.logf("(c) done: %s", summary(&sc))
	return sc, nil
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// bound is the lower bound on a burst's wall time. (a): two API writes per
// node (status, then spec) at the CCM's client QPS after its burst. (b): one
// AssignIpv6Addresses call per missing address or prefix (two per bare
// node) on AWS's bucket.
func (b *bench) bound(id string) *Bound {
	qps, burst := b.res.KubeAPIQPS, float64(b.res.KubeAPIBurst)
	if id == "a" || id == "e" {
		return &Bound{
			What:    "API writes",
			Formula: fmt.Sprintf("(2N − %g burst) / %g QPS", burst, qps),
			Seconds: round3(max(0, 2*float64(b.n)-burst) / qps),
			Start:   min(float64(b.n), burst/2),
		}
	}
	return &Bound{
		What:    "AssignIpv6Addresses bucket",
		Formula: fmt.Sprintf("(2N − %d tokens) / %g per s", assignBucket, assignRefill),
		Seconds: round3(max(0, 2*float64(b.n)-assignBucket) / assignRefill),
		Start:   min(float64(b.n), assignBucket/2),
	}
}

// clientLimits reads --kube-api-qps and --kube-api-burst from the shipped
// DaemonSet, else the framework's defaults (20 and 30).
func clientLimits(w *harness.World) (float64, int, error) {
	qps, burst := 20.0, 30
	ds, err := w.DaemonSet()
	if err != nil {
		return 0, 0, err
	}
	for _, a := range ds.Spec.Template.Spec.Containers[0].Args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "--kube-api-qps":
			if qps, err = strconv.ParseFloat(v, 64); err != nil {
				return 0, 0, fmt.Errorf("daemonset %s: %w", a, err)
			}
		case "--kube-api-burst":
			if burst, err = strconv.Atoi(v); err != nil {
				return 0, 0, fmt.Errorf("daemonset %s: %w", a, err)
			}
		}
	}
	if qps <= 0 {
		return 0, 0, errors.New("daemonset: --kube-api-qps must be positive")
	}
	return qps, burst, nil
}

func summary(sc *Scenario) string {
	s := fmt.Sprintf("wall %.1f s", sc.WallSeconds)
	if sc.Bound != nil {
		s += fmt.Sprintf(" (bound %.1f s, ratio %.2f)", sc.Bound.Seconds, sc.ratio())
	}
	if sc.Latency != nil {
		s += fmt.Sprintf(", latency p50 %.1f p90 %.1f p99 %.1f max %.1f s", sc.Latency.P50, sc.Latency.P90, sc.Latency.P99, sc.Latency.Max)
	}
	s += fmt.Sprintf(", EC2 %v, API writes %v, RSS %.0f MiB, CPU %.1f s", sc.EC2, sc.APIWrites, sc.RSSPeakMiB, sc.CPUSeconds)
	if sc.Steady != nil {
		s += fmt.Sprintf(", EC2/node-hour %.4f (at %gs period; %.4f at the shipped %gs)", sc.Steady.EC2PerNodeHour, sc.Steady.PeriodSeconds, sc.Steady.EC2PerNodeHourShipped, sc.Steady.ShippedPeriodSeconds)
	}
	if len(sc.Problems) > 0 {
		s += fmt.Sprintf(", PROBLEMS %v", sc.Problems)
	}
	return s
}
