package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// Scenario (d), churn: waves of nodes created, initialized and deleted, with
// failures mixed in, while the CCM's per-node maps and its RSS are sampled.
// Every map must come back to its floor after each wave, and RSS must not
// trend upwards.

// The CCM's size gauges (pkg/controllers/node/metrics.go, pkg/ec2/metrics.go,
// pkg/ec2/assign.go) and the sync error counter.
const (
	metricStateEntries   = "cloudprovider_aws_node_controller_state_entries" // {map}
	metricCacheEntries   = "cloudprovider_aws_instance_cache_entries"
	metricCacheIndex     = "cloudprovider_aws_instance_cache_index_entries" // {index}
	metricExpectations   = "cloudprovider_aws_instance_expectations"
	metricLookupsPending = "cloudprovider_aws_instance_lookups_pending"
	metricAssignCredit   = "cloudprovider_aws_assign_credit_enis"
	metricSyncErrors     = "cloudprovider_aws_node_sync_errors_total" // {reason}
	// metricHeapInuse tells live heap from pages the Go runtime has not
	// returned to the OS yet (RSS holds both).
	metricHeapInuse = "go_memstats_heap_inuse_bytes"
)

var churnMetrics = []string{metricStateEntries, metricCacheEntries, metricCacheIndex, metricExpectations,
	metricLookupsPending, metricAssignCredit}

// gaugeKey names a gauge sample in the results: "<metric>" or
// "<metric>{<label value>}".
func gaugeKey(s metricSample) string {
	for _, l := range []string{"map", "index"} {
		if v, ok := s.Labels[l]; ok {
			return s.Name + "{" + v + "}"
		}
	}
	return s.Name
}

// zeroFloor reports whether a gauge must be back at zero once a wave's
// nodes are deleted: every per-node map of the node controller, the
// expectations, pending lookups and assign credits, and the cache's forget
// fence. The instance cache itself (and its name and ENI indexes) holds
// described instances for its TTL (30 s; swept by 45 s), so it reaches zero
// only once lookups stop: checked after the last wave.
func zeroFloor(key string) bool {
	switch key {
	case metricCacheEntries, metricCacheIndex + "{private_dns_name}", metricCacheIndex + "{eni}":
		return false
	}
	return true
}

// v4OnlySubnet is the IPv4-only subnet added to the churn world.
const v4OnlySubnet = "subnet-0ccc0000000000001"

// churnMix is the make-up of one wave of size n.
func churnMix(n int) ChurnMix {
	m := ChurnMix{
		Bare: n / 50, BadProviderID: n / 50, UnknownInstance: n / 100, IPv4Only: n / 50, DeletedEarly: n * 3 / 100,
	}
	m.Good = n - m.Bare - m.BadProviderID - m.UnknownInstance - m.IPv4Only - m.DeletedEarly
	return m
}

// churnNode is one Node of a wave, with its instance if it has one.
type churnNode struct {
	node  *corev1.Node
	inst  string // instance ID, "" without one
	want  bool   // expected to be initialized
	early bool   // deleted right after its creation
}

// churnTracker follows every Node through one informer: how many exist,
// and which of the current wave's expected nodes are initialized. Like
// kubelet, it reports a node Ready once initialized.
type churnTracker struct {
	mu   sync.Mutex
	live int
	seen map[string]bool // initialized nodes, reported Ready
	want map[string]bool // current wave's nodes still to be initialized
	all  chan struct{}
	// ready receives initialized nodes' names (kubelet then reports Ready).
	ready chan string
}

func (t *churnTracker) run(ctx context.Context, cs kubernetes.Interface) error {
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Nodes().Informer()
	see := func(obj any) {
		n, ok := obj.(*corev1.Node)
		if !ok || !initialized(n) {
			return
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.seen[n.Name] {
			return
		}
		t.seen[n.Name] = true
		if t.want[n.Name] {
			delete(t.want, n.Name)
			if len(t.want) == 0 {
				close(t.all)
			}
		}
		select {
		case t.ready <- n.Name:
		default: // kubelet is behind: the node stays NotReady, which only costs lifecycle lookups
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			t.mu.Lock()
			t.live++
			t.mu.Unlock()
			see(obj)
		},
		UpdateFunc: func(_, obj any) { see(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			t.mu.Lock()
			t.live--
			if n, ok := obj.(*corev1.Node); ok {
				delete(t.seen, n.Name)
			}
			t.mu.Unlock()
		},
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("node informer did not sync: %w", ctx.Err())
	}
	for range 8 {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case name := <-t.ready:
					_ = patchReady(ctx, cs, name) // fails when the node is gone already
				}
			}
		}()
	}
	return nil
}

// expect starts a wave: names must be initialized; the returned channel is
// closed once they are.
func (t *churnTracker) expect(names []string) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want, t.all = map[string]bool{}, make(chan struct{})
	for _, n := range names {
		if !t.seen[n] {
			t.want[n] = true
		}
	}
	if len(t.want) == 0 {
		close(t.all)
	}
	return t.all
}

func (t *churnTracker) counts() (live, waiting int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live, len(t.want)
}

// churnSampler scrapes the CCM's gauges and reads its RSS every interval.
type churnSampler struct {
	w     *world
	t     *churnTracker
	start time.Time
	mu    sync.Mutex
	out   []ChurnSample
	err   error
}

func (s *churnSampler) take(ctx context.Context) (ChurnSample, error) {
	samples, err := scrapeSamples(ctx, s.w.ccm.MetricsURL, s.w.AdminCfg.BearerToken, append(churnMetrics, metricHeapInuse)...)
	if err != nil {
		return ChurnSample{}, err
	}
	rss, err := currentRSSMiB(s.w.ccm.Cmd.Process.Pid)
	if err != nil {
		return ChurnSample{}, err
	}
	live, _ := s.t.counts()
	cs := ChurnSample{T: round3(time.Since(s.start).Seconds()), RSSMiB: round3(rss), Nodes: live, Gauges: map[string]float64{}}
	for _, m := range samples {
		if m.Name == metricHeapInuse {
			cs.HeapInuseMiB = round3(m.Value / (1 << 20))
			continue
		}
		cs.Gauges[gaugeKey(m)] = m.Value
	}
	s.mu.Lock()
	s.out = append(s.out, cs)
	s.mu.Unlock()
	return cs, nil
}

func (s *churnSampler) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := s.take(ctx); err != nil && ctx.Err() == nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
			}
		}
	}
}

func (s *churnSampler) samples() ([]ChurnSample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.out), s.err
}

// churn runs scenario (d): waves of size nodes, each created, initialized
// (the ones that can be), then deleted with their instances terminated.
func (b *bench) churn(ctx context.Context, waves, size int) (*ChurnResults, error) {
	mix := churnMix(size)
	res := &ChurnResults{Date: time.Now().UTC().Truncate(time.Second), Waves: waves, WaveSize: size, Mix: mix,
		Machine: b.res.Machine, Commit: b.res.Commit, CCMVersion: b.res.CCMVersion}
	res.Machine.Load = []string{"d: " + loadAvg()}
	start := time.Now()
	// One instance stands for the control plane (IMDS answers for it); the
	// waves' instances are added and terminated at run time.
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: 1, PrePrefixed: true, IPv6Subnet: true})
	sc.Instances[0].Tags = map[string]string{"kubernetes.io/cluster/bench": "owned"}
	sc.Subnets = append(sc.Subnets, ec2sim.Subnet{ID: v4OnlySubnet, Zone: sc.Zones[0].Name, CIDR: "10.0.240.0/20"})
	v6Subnets := make([]ec2sim.Subnet, 0, len(sc.Subnets))
	for _, sn := range sc.Subnets {
		if sn.IPv6CIDR != "" {
			v6Subnets = append(v6Subnets, sn)
		}
	}
	b.logf("(d) churn: %d waves of %d nodes (%+v); starting the world", waves, size, mix)
	hw, err := harness.Start(ctx, harness.Options{Scenario: sc, Throttling: true, Log: b.logf})
	if err != nil {
		return nil, err
	}
	w := &world{World: hw}
	defer w.Close()
	cfg := rest.CopyConfig(hw.AdminCfg)
	cfg.QPS, cfg.Burst = 5000, 10000
	if w.admin, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if res.KubeAPIQPS, res.KubeAPIBurst, err = clientLimits(hw); err != nil {
		return nil, err
	}
	if err := w.startCCM(ctx); err != nil {
		return nil, err
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	tr := &churnTracker{seen: map[string]bool{}, ready: make(chan string, 4*size)}
	if err := tr.run(runCtx, w.admin); err != nil {
		return nil, err
	}
	smp := &churnSampler{w: w, t: tr, start: time.Now()}
	first, err := smp.take(ctx)
	if err != nil {
		return nil, err
	}
	res.Start = first
	go smp.run(runCtx, 2*time.Second)
	before, err := w.sample(ctx)
	if err != nil {
		return nil, err
	}
	errsBefore, err := scrapeSamples(ctx, w.ccm.MetricsURL, w.AdminCfg.BearerToken, metricSyncErrors)
	if err != nil {
		return nil, err
	}
	for k := range waves {
		wv, err := b.churnWave(ctx, w, tr, smp, v6Subnets, k, mix)
		if err != nil {
			return nil, fmt.Errorf("wave %d: %w", k+1, err)
		}
		res.WaveStats = append(res.WaveStats, wv)
		res.Created += wv.Created
		res.Deleted += wv.Deleted
		if w.ccm.Exited() {
			return nil, fmt.Errorf("%s exited; log %s", w.ccm.Name, w.ccm.LogPath)
		}
	}
	// After the last wave nothing looks instances up: the cache empties
	// within 1.5 TTL.
	b.logf("(d) waves done; waiting for every gauge to reach zero (the instance cache within 45 s)")
	final, drained, err := waitFloor(ctx, smp, func(string) bool { return true }, 90*time.Second)
	if err != nil {
		return nil, err
	}
	res.Final, res.FinalDrainSeconds = final, drained
	after, err := w.sample(ctx)
	if err != nil {
		return nil, err
	}
	res.EC2 = diffCounts(before.ec2, after.ec2)
	res.APIWrites = diffWrites(before.writes, after.writes)
	res.CPUSeconds = round3(after.cpu - before.cpu)
	errsAfter, err := scrapeSamples(ctx, w.ccm.MetricsURL, w.AdminCfg.BearerToken, metricSyncErrors)
	if err != nil {
		return nil, err
	}
	res.SyncErrors = map[string]float64{}
	for _, s := range errsAfter {
		res.SyncErrors[s.Labels["reason"]] += s.Value
	}
	for _, s := range errsBefore {
		res.SyncErrors[s.Labels["reason"]] -= s.Value
	}
	maps.DeleteFunc(res.SyncErrors, func(_ string, v float64) bool { return v == 0 })
	rss, err := peakRSSMiB(w.ccm.Cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	res.RSSPeakMiB = round3(rss)
	stopRun()
	if res.Samples, err = smp.samples(); err != nil {
		return nil, fmt.Errorf("sampling: %w", err)
	}
	res.Seconds = round3(time.Since(start).Seconds())
	res.Problems = res.check()
	b.logf("(d) done in %s: %d created, %d deleted, RSS peak %.0f MiB, trend %+.1f MiB, final %v, problems %v",
		time.Since(start).Round(time.Second), res.Created, res.Deleted, res.RSSPeakMiB, res.rssGrowth(), res.Final, res.Problems)
	return res, nil
}

// churnWave creates one wave's instances and Nodes, waits for the ones
// that can be initialized, deletes everything and waits for the floor.
func (b *bench) churnWave(ctx context.Context, w *world, tr *churnTracker, smp *churnSampler, subnets []ec2sim.Subnet, k int, mix ChurnMix) (ChurnWave, error) {
	wv := ChurnWave{Wave: k + 1, Start: round3(time.Since(smp.start).Seconds())}
	tag := strconv.Itoa(k)
	tags := func() map[string]string {
		return map[string]string{"kubernetes.io/cluster/bench": "owned", "bench-wave": tag}
	}
	// Instances: pre-prefixed (good, early), bare, and in the IPv4-only subnet.
	type kind struct {
		n       int
		subnet  func(i int) string
		prefix  bool
		want    bool
		early   bool
		comment string
	}
	v6 := func(i int) string { return subnets[i%len(subnets)].ID }
	kinds := []kind{
		{mix.Good, v6, true, true, false, "good"},
		{mix.Bare, v6, false, true, false, "bare"},
		{mix.IPv4Only, func(int) string { return v4OnlySubnet }, false, false, false, "ipv4-only"},
		{mix.DeletedEarly, v6, true, false, true, "early"},
	}
	byID := map[string]kind{}
	for _, kd := range kinds {
		for i := range kd.n {
			in := ec2sim.Instance{Type: "m5.large", State: "running", Subnet: kd.subnet(i), Tags: tags()}
			if kd.prefix {
				in.ENIs = []ec2sim.ENI{{DeviceIndex: 0, IPv6AddressCount: 1, IPv6PrefixCount: 1}}
			}
			id, err := w.Sim.AddInstance(in)
			if err != nil {
				return wv, err
			}
			byID[id] = kd
		}
	}
	var nodes []churnNode
	var want []string
	i := k * 100000
	for _, in := range w.Sim.State().Instances {
		kd, ok := byID[in.ID]
		if !ok {
			continue
		}
		i++
		nodes = append(nodes, churnNode{node: kubeletNode(in, i, false), inst: in.ID, want: kd.want, early: kd.early})
		if kd.want {
			want = append(want, in.PrivateDNSName)
		}
	}
	zone := subnets[0].Zone
	for j := range mix.BadProviderID {
		i++
		name := fmt.Sprintf("ip-bad-%d-%d.ec2.internal", k, j)
		nodes = append(nodes, churnNode{node: kubeletNodeWithID(name, fmt.Sprintf("aws:///%s/i-notAnInstance%d", zone, i), zone, i, false)})
	}
	for j := range mix.UnknownInstance {
		i++
		name := fmt.Sprintf("ip-unknown-%d-%d.ec2.internal", k, j)
		nodes = append(nodes, churnNode{node: kubeletNodeWithID(name, providerid.Format(zone, fmt.Sprintf("i-0fff%013x", i)), zone, i, false)})
	}
	// Interleave the kinds, as a real scale-up does.
	slices.SortFunc(nodes, func(a, b churnNode) int { return compareHash(a.node.Name, b.node.Name) })
	all := tr.expect(want)
	t0 := time.Now()
	err := parallel(ctx, 64, nodes, func(ctx context.Context, n churnNode) error {
		if _, err := w.admin.CoreV1().Nodes().Create(ctx, n.node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", n.node.Name, err)
		}
		if n.early {
			return deleteChurnNode(ctx, w, n)
		}
		return nil
	})
	if err != nil {
		return wv, err
	}
	wv.Created = len(nodes)
	wv.Expected = len(want)
	select {
	case <-all:
	case <-time.After(3 * time.Minute):
	case <-ctx.Done():
		return wv, ctx.Err()
	}
	_, waiting := tr.counts()
	wv.Initialized = wv.Expected - waiting
	wv.InitSeconds = round3(time.Since(t0).Seconds())
	// Scale down: terminate the instances and delete the Nodes.
	rest := slices.DeleteFunc(nodes, func(n churnNode) bool { return n.early })
	if err := parallel(ctx, 64, rest, func(ctx context.Context, n churnNode) error { return deleteChurnNode(ctx, w, n) }); err != nil {
		return wv, err
	}
	wv.Deleted = wv.Created
	t1 := time.Now()
	at, _, err := waitFloor(ctx, smp, zeroFloor, 2*time.Minute)
	if err != nil {
		return wv, err
	}
	wv.SettleSeconds = round3(time.Since(t1).Seconds())
	wv.AtFloor = at
	if s, ok := lastSample(smp); ok {
		wv.RSSMiB, wv.HeapInuseMiB = s.RSSMiB, s.HeapInuseMiB
	}
	b.logf("(d) wave %d: %d nodes created, %d/%d initialized in %.1f s, deleted; floor in %.1f s: %v, RSS %.0f MiB, heap in use %.0f MiB",
		wv.Wave, wv.Created, wv.Initialized, wv.Expected, wv.InitSeconds, wv.SettleSeconds, at, wv.RSSMiB, wv.HeapInuseMiB)
	return wv, nil
}

// deleteChurnNode terminates the node's instance and deletes the Node (the
// lifecycle controller may have deleted it already).
func deleteChurnNode(ctx context.Context, w *world, n churnNode) error {
	if n.inst != "" {
		if err := w.Sim.SetInstanceState(n.inst, "terminated"); err != nil {
			return err
		}
	}
	err := w.admin.CoreV1().Nodes().Delete(ctx, n.node.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", n.node.Name, err)
	}
	return nil
}

// waitFloor samples until no Node is left and every gauge selected by
// which is zero, or timeout; it returns the gauges of the last sample (all
// of them) and how long it waited.
func waitFloor(ctx context.Context, smp *churnSampler, which func(string) bool, timeout time.Duration) (map[string]float64, float64, error) {
	start := time.Now()
	for {
		s, err := smp.take(ctx)
		if err != nil {
			return nil, 0, err
		}
		done := s.Nodes == 0
		for k, v := range s.Gauges {
			if which(k) && v != 0 {
				done = false
			}
		}
		if done || time.Since(start) > timeout {
			return s.Gauges, round3(time.Since(start).Seconds()), nil
		}
		if err := sleep(ctx, time.Second); err != nil {
			return nil, 0, err
		}
	}
}

func lastSample(smp *churnSampler) (ChurnSample, bool) {
	smp.mu.Lock()
	defer smp.mu.Unlock()
	if len(smp.out) == 0 {
		return ChurnSample{}, false
	}
	return smp.out[len(smp.out)-1], true
}

// compareHash orders strings by an FNV hash: a fixed shuffle.
func compareHash(a, b string) int {
	h := func(s string) uint32 {
		x := uint32(2166136261)
		for i := range len(s) {
			x = (x ^ uint32(s[i])) * 16777619
		}
		return x
	}
	ha, hb := h(a), h(b)
	switch {
	case ha < hb:
		return -1
	case ha > hb:
		return 1
	}
	return 0
}
