package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseWrites(t *testing.T) {
	const text = `# HELP rest_client_requests_total Number of HTTP requests
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="GET"} 41
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="PATCH"} 2000
rest_client_requests_total{code="409",host="127.0.0.1:6443",method="PATCH"} 3
rest_client_requests_total{code="201",host="a\"b,c",method="POST"} 1e3
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="PUT"} 7
rest_client_request_duration_seconds_bucket{host="x",verb="PATCH",le="1"} 99
`
	got, err := parseWrites(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"PATCH": 2003, "POST": 1000, "PUT": 7}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
	if _, err := parseWrites(strings.NewReader(`rest_client_requests_total{method="PUT"} x`)); err == nil {
		t.Error("a malformed value was accepted")
	}
}

func TestPercentiles(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i) // 100..1, unsorted
	}
	p := percentiles(xs)
	if p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 {
		t.Errorf("got %+v", *p)
	}
	if percentiles(nil) != nil {
		t.Error("percentiles of nothing should be nil")
	}
}

func TestDiffCounts(t *testing.T) {
	a := map[string]map[string]int{"DescribeInstances": {"success": 2}}
	z := map[string]map[string]int{"DescribeInstances": {"success": 5, "throttled": 1}, "AssignIpv6Addresses": {"success": 4}}
	d := diffCounts(a, z)
	if d["DescribeInstances"]["success"] != 3 || d["DescribeInstances"]["throttled"] != 1 || d["AssignIpv6Addresses"]["success"] != 4 {
		t.Errorf("got %v", d)
	}
	if total(d, "") != 8 || total(d, "DescribeInstances") != 4 || outcome(d, "throttled") != 1 {
		t.Errorf("totals of %v wrong", d)
	}
}

// TestRender renders stored results to a temp dir: goals are judged from
// the numbers, and both plots are written.
func TestRender(t *testing.T) {
	dir := t.TempDir()
	bench := filepath.Join(dir, "benchmarks")
	if err := os.Mkdir(bench, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Results{N: 5000, KubeAPIQPS: 20, KubeAPIBurst: 30, Scenarios: []Scenario{
		{ID: "a", Nodes: 5000, Complete: true, WallSeconds: 590, Bound: &Bound{Seconds: 498.5, Start: 15},
			EC2:       map[string]map[string]int{"DescribeInstances": {"success": 100}},
			Curve:     []float64{1, 2, 3},
			Latencies: []float64{0.5, 1, 2}, Latency: &Percentiles{P50: 1, P90: 2, P99: 2, Max: 2}, RSSPeakMiB: 120},
		{ID: "c", Nodes: 5000, Complete: true, Steady: &Steady{EC2PerNodeHourShipped: 0.012}, RSSPeakMiB: 160},
	}}
	if err := r.save(bench); err != nil {
		t.Fatal(err)
	}
	churn := &ChurnResults{Waves: 4, WaveSize: 500, Mix: churnMix(500), Created: 2000, Deleted: 2000,
		Final: map[string]float64{metricCacheEntries: 0, metricStateEntries + "{memo}": 0}, FinalDrainSeconds: 40,
		SyncErrors: map[string]float64{"SubnetWithoutIPv6": 40}}
	for i := range 4 {
		wv := ChurnWave{Wave: i + 1, Start: float64(i * 20), Created: 500, Deleted: 500, Expected: 475, Initialized: 475,
			InitSeconds: 12, SettleSeconds: 3, RSSMiB: 90,
			AtFloor: map[string]float64{metricCacheEntries: 480, metricStateEntries + "{memo}": 0}}
		if i == 2 {
			wv.AtFloor[metricStateEntries+"{memo}"] = 1
		}
		churn.WaveStats = append(churn.WaveStats, wv)
		churn.Samples = append(churn.Samples, ChurnSample{T: float64(i * 20), RSSMiB: 90, Nodes: 500, Gauges: wv.AtFloor})
	}
	churn.Problems = churn.check()
	if len(churn.Problems) != 1 || !strings.Contains(churn.Problems[0], "wave 3: "+metricStateEntries+"{memo} = 1") {
		t.Errorf("churn problems %q", churn.Problems)
	}
	if err := churn.save(bench); err != nil {
		t.Fatal(err)
	}
	if err := render(dir, bench); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| (a) wall time within 1.2× of the API-write bound | 1.18×: met |",
		"| (a) at most 0.01 DescribeInstances per node | 0.0200: **missed** |",
		"| (b) zero RequestLimitExceeded | not measured |",
		"| (c) at most 0.05 EC2 calls per node-hour at 5,000 nodes (shipped period) | 0.0120: met |",
		"| CCM peak RSS under 120 MiB at 5,000 nodes, every scenario | 160 MiB: **missed** |",
		"| (a) all initialized (schedulable) within 30 s at 1,000 nodes | 590.0 s (reference) |",
		"## Churn (d)",
		"| every initializable Node initialized in every wave | 1900 of 1900 (slowest wave 12.0 s): met |",
		"| per-node maps, expectations, pending lookups, credits, forget fence at zero after every wave | slowest wave back in 3.0 s: **missed** |",
		"| every gauge, the instance cache included, at zero after the last wave | in 40.0 s: met |",
		"| RSS flat: post-wave RSS of the last quarter of waves within 8 MiB of the second quarter's | +0.0 MiB",
		"Node sync errors by reason (`cloudprovider_aws_node_sync_errors_total`): SubnetWithoutIPv6 40.",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("benchmarks.md lacks %q", want)
		}
	}
	for _, png := range []string{"nodes-initialized-n5000.png", "latency-cdf-n5000.png", "churn-maps.png", "churn-rss.png"} {
		if fi, err := os.Stat(filepath.Join(bench, png)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", png, err)
		}
	}
}

// TestSaveMerges keeps scenarios a partial run did not measure, marked
// with the run they came from.
func TestSaveMerges(t *testing.T) {
	dir := t.TempDir()
	old := &Results{N: 10, Commit: "old", Machine: Machine{Load: []string{"a: 1", "b: 2"}},
		Scenarios: []Scenario{{ID: "a", WallSeconds: 1}, {ID: "b", WallSeconds: 2}}}
	if err := old.save(dir); err != nil {
		t.Fatal(err)
	}
	cur := &Results{N: 10, Commit: "new", Machine: Machine{Load: []string{"a: 3"}}, Scenarios: []Scenario{{ID: "a", WallSeconds: 3}}}
	if err := cur.save(dir); err != nil {
		t.Fatal(err)
	}
	all, err := loadAll(dir)
	if err != nil || len(all) != 1 {
		t.Fatalf("loadAll: %v, %d results", err, len(all))
	}
	r := all[0]
	if a, b := r.scenario("a"), r.scenario("b"); a == nil || a.WallSeconds != 3 || a.Run != "" ||
		b == nil || b.WallSeconds != 2 || !strings.Contains(b.Run, "commit old") {
		t.Errorf("merged scenarios %+v", r.Scenarios)
	}
	if strings.Join(r.Machine.Load, ";") != "a: 3;b: 2 (earlier run)" {
		t.Errorf("load %v", r.Machine.Load)
	}
}

// TestKubeletNode: Nodes carry what kubelet reports, 50 distinct images
// each, and differ from node to node.
func TestKubeletNode(t *testing.T) {
	a := kubeletNodeWithID("ip-10-0-0-1.ec2.internal", "aws:///us-east-1a/i-0123456789abcdef0", "us-east-1a", 1, false)
	b := kubeletNodeWithID("ip-10-0-0-2.ec2.internal", "aws:///us-east-1a/i-0123456789abcdef1", "us-east-1a", 2, false)
	if len(a.Status.Images) != imagesPerNode || len(a.Status.Conditions) != 4 || a.Status.NodeInfo.KubeletVersion == "" ||
		a.Status.DaemonEndpoints.KubeletEndpoint.Port != 10250 || a.Status.Allocatable.Cpu().IsZero() {
		t.Fatalf("status %+v", a.Status)
	}
	names := map[string]bool{}
	for _, im := range a.Status.Images {
		if len(im.Names) != 2 || !strings.Contains(im.Names[0], "@sha256:") || im.SizeBytes <= 0 || names[im.Names[0]] {
			t.Errorf("image %+v (duplicate: %v)", im, names[im.Names[0]])
		}
		names[im.Names[0]] = true
	}
	same := 0
	for i := range a.Status.Images {
		if a.Status.Images[i].Names[0] == b.Status.Images[i].Names[0] {
			same++
		}
	}
	if same == imagesPerNode {
		t.Error("two nodes hold the same images")
	}
}

func TestParseSamples(t *testing.T) {
	const text = `# HELP x
cloudprovider_aws_node_controller_state_entries{map="memo"} 3
cloudprovider_aws_node_controller_state_entries{map="done"} 0
cloudprovider_aws_instance_cache_entries 1234
cloudprovider_aws_instance_cache_entries_other 9
`
	got, err := parseSamples(strings.NewReader(text), metricStateEntries, metricCacheEntries)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]float64{}
	for _, s := range got {
		keys[gaugeKey(s)] = s.Value
	}
	if len(keys) != 3 || keys[metricStateEntries+"{memo}"] != 3 || keys[metricCacheEntries] != 1234 {
		t.Errorf("got %v", keys)
	}
}
