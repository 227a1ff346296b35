package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Results is one run of the benchmark at one N, stored as
// docs/benchmarks/results-n<N>.json and rendered into docs/benchmarks.md.
type Results struct {
	N          int       `json:"n"`
	Date       time.Time `json:"date"`
	Commit     string    `json:"commit"`
	CCMVersion string    `json:"ccmVersion"`
	Machine    Machine   `json:"machine"`
	// KubeAPIQPS and KubeAPIBurst are the CCM's client limits (shipped flags or
	// the framework defaults); the API-write bound uses them.
	KubeAPIQPS   float64 `json:"kubeAPIQPS"`
	KubeAPIBurst int     `json:"kubeAPIBurst"`
	// APF: the API server ran with API Priority and Fairness (and the
	// default in-flight limits). NodeImages is the number of images each
	// Node's status lists (0: Nodes carried no kubelet status but Ready).
	APF        bool       `json:"apf"`
	NodeImages int        `json:"nodeImages"`
	Scenarios  []Scenario `json:"scenarios"`
	// Seconds is the whole run, worlds included.
	Seconds float64 `json:"seconds"`
}

// Machine is where the run happened.
type Machine struct {
	CPUs  int     `json:"cpus"`
	Model string  `json:"model"`
	MemGB float64 `json:"memGiB"`
	// Load is /proc/loadavg when each scenario started: the machine is shared.
	Load []string `json:"load"`
}

// Scenario is the measurement of one scenario.
type Scenario struct {
	ID    string `json:"id"` // a, b or c
	Title string `json:"title"`
	Nodes int    `json:"nodes"`
	// Complete is false when the run timed out before every node was initialized.
	Complete bool `json:"complete"`
	// WallSeconds: bursts, from the first Create to the last node initialized
	// with its podCIDR; steady state, the measured window.
	WallSeconds float64 `json:"wallSeconds"`
	// CreateSeconds is how long creating the N Nodes took (bursts).
	CreateSeconds float64 `json:"createSeconds,omitempty"`
	// Latency is creation → taint removed, per node (bursts).
	Latency *Percentiles `json:"latency,omitempty"`
	// EC2 is ec2sim's count: action → outcome ("success", "throttled", or an
	// error code) → calls.
	EC2 map[string]map[string]int `json:"ec2"`
	// APIWrites is the CCM's rest_client_requests_total by verb, writes only.
	APIWrites map[string]float64 `json:"apiWrites"`
	// RSSPeakMiB is the CCM's VmHWM at the end; CPUSeconds its utime+stime
	// over the scenario.
	RSSPeakMiB float64 `json:"rssPeakMiB"`
	// RSSAnonMiB and RSSFileMiB split the CCM's RSS at the end: anonymous
	// memory (Go's heap, stacks and runtime) and pages of the binary's file
	// mapping (shared, reclaimable page cache).
	RSSAnonMiB float64 `json:"rssAnonMiB,omitempty"`
	RSSFileMiB float64 `json:"rssFileMiB,omitempty"`
	CPUSeconds float64 `json:"cpuSeconds"`
	// Bound is the lower bound the environment sets on WallSeconds.
	Bound *Bound `json:"bound,omitempty"`
	// Steady holds the steady-state figures (scenario c).
	Steady *Steady `json:"steady,omitempty"`
	// Run says where a scenario kept from an earlier run came from (see
	// merge); empty when it comes from the run the Results describe.
	Run string `json:"run,omitempty"`
	// Problems lists nodes that broke an invariant (podCIDR not the ENI's
	// /80, first address not the ENI's IPv6, more than one prefix).
	Problems []string `json:"problems,omitempty"`
	// Curve is the number of nodes initialized over time (seconds since the
	// first Create), one point per node; Latencies are sorted seconds.
	Curve     []float64 `json:"curve,omitempty"`
	Latencies []float64 `json:"latencies,omitempty"`
}

// Percentiles of per-node latency, in seconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Bound is a lower bound on the wall time.
type Bound struct {
	What    string  `json:"what"`
	Formula string  `json:"formula"`
	Seconds float64 `json:"seconds"`
	// Start is how many nodes the bucket's initial tokens cover at once.
	Start float64 `json:"start"`
}

// Steady is the steady-state measurement.
type Steady struct {
	// PeriodSeconds is the shortened --node-status-update-frequency;
	// ShippedPeriodSeconds the default it stands in for.
	PeriodSeconds        float64 `json:"periodSeconds"`
	ShippedPeriodSeconds float64 `json:"shippedPeriodSeconds"`
	Periods              int     `json:"periods"`
	// EC2PerNodeHour is the rate measured at the shortened period;
	// EC2PerNodeHourShipped scales it to the shipped period.
	EC2PerNodeHour        float64 `json:"ec2PerNodeHour"`
	EC2PerNodeHourShipped float64 `json:"ec2PerNodeHourShipped"`
	APIWritesPerNodeHour  float64 `json:"apiWritesPerNodeHour"`
}

// percentiles computes nearest-rank percentiles of xs (sorted in place).
func percentiles(xs []float64) *Percentiles {
	if len(xs) == 0 {
		return nil
	}
	sort.Float64s(xs)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(xs)))) - 1
		return xs[max(0, min(i, len(xs)-1))]
	}
	return &Percentiles{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: xs[len(xs)-1]}
}

// total sums an action's calls over outcomes ("" sums every action).
func total(ec2 map[string]map[string]int, action string) int {
	n := 0
	for a, m := range ec2 {
		if action != "" && a != action {
			continue
		}
		for _, c := range m {
			n += c
		}
	}
	return n
}

// outcome sums one outcome over every action.
func outcome(ec2 map[string]map[string]int, o string) int {
	n := 0
	for _, m := range ec2 {
		n += m[o]
	}
	return n
}

// writes sums the write verbs.
func writes(w map[string]float64) float64 {
	s := 0.0
	for _, v := range w {
		s += v
	}
	return s
}

func (s *Scenario) ratio() float64 {
	if s.Bound == nil || s.Bound.Seconds <= 0 {
		return 0
	}
	return s.WallSeconds / s.Bound.Seconds
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// resultsPath is where the results of one N are stored.
func resultsPath(dir string, n int) string {
	return filepath.Join(dir, fmt.Sprintf("results-n%d.json", n))
}

// merge keeps the scenarios of old that r did not run (make bench with
// -scenarios), marked with the run they came from.
func (r *Results) merge(old *Results) {
	for _, sc := range old.Scenarios {
		if r.scenario(sc.ID) != nil {
			continue
		}
		if sc.Run == "" {
			sc.Run = fmt.Sprintf("%s, commit %s, CCM %s; %s", old.Date.Format("2006-01-02 15:04 UTC"), old.Commit, old.CCMVersion, old.settings())
		}
		r.Scenarios = append(r.Scenarios, sc)
		for _, l := range old.Machine.Load {
			if strings.HasPrefix(l, sc.ID+":") {
				r.Machine.Load = append(r.Machine.Load, l+" (earlier run)")
			}
		}
	}
	slices.SortFunc(r.Scenarios, func(x, y Scenario) int { return strings.Compare(x.ID, y.ID) })
}

// settings describes what the run measured with: the CCM's client limits,
// APF, and the Nodes' size.
func (r *Results) settings() string {
	apf := "API Priority and Fairness off (max-inflight 1000 + 500)"
	if r.APF {
		apf = "API Priority and Fairness on (default FlowSchemas, 400 + 200 seats)"
	}
	nodes := "Nodes without kubelet's status (no images)"
	if r.NodeImages > 0 {
		nodes = fmt.Sprintf("Nodes with kubelet's status and %d images", r.NodeImages)
	}
	return fmt.Sprintf("client QPS %g, burst %d; %s; %s", r.KubeAPIQPS, r.KubeAPIBurst, apf, nodes)
}

// save writes r, keeping the scenarios of a stored run of the same N that r
// did not run.
func (r *Results) save(dir string) error {
	if b, err := os.ReadFile(resultsPath(dir, r.N)); err == nil {
		var old Results
		if err := json.Unmarshal(b, &old); err != nil {
			return fmt.Errorf("%s: %w", resultsPath(dir, r.N), err)
		}
		r.merge(&old)
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(resultsPath(dir, r.N), append(b, '\n'), 0o644)
}

// loadAll reads every results-n*.json in dir, ordered by N.
func loadAll(dir string) ([]*Results, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "results-n*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Results
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r Results
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, &r)
	}
	slices.SortFunc(out, func(a, b *Results) int { return a.N - b.N })
	return out, nil
}

func (r *Results) scenario(id string) *Scenario {
	for i := range r.Scenarios {
		if r.Scenarios[i].ID == id {
			return &r.Scenarios[i]
		}
	}
	return nil
}
