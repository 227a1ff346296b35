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
		"| CCM peak RSS under 150 MiB at 5,000 nodes | 160 MiB: **missed** |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("benchmarks.md lacks %q", want)
		}
	}
	for _, png := range []string{"nodes-initialized-n5000.png", "latency-cdf-n5000.png"} {
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
