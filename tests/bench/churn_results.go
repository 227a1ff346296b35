package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// ChurnResults is one run of scenario (d), stored as
// docs/benchmarks/results-churn.json.
type ChurnResults struct {
	Date         time.Time `json:"date"`
	Commit       string    `json:"commit"`
	CCMVersion   string    `json:"ccmVersion"`
	Machine      Machine   `json:"machine"`
	KubeAPIQPS   float64   `json:"kubeAPIQPS"`
	KubeAPIBurst int       `json:"kubeAPIBurst"`
	Waves        int       `json:"waves"`
	WaveSize     int       `json:"waveSize"`
	Mix          ChurnMix  `json:"mix"`
	// Created and Deleted count Nodes over the run.
	Created int `json:"created"`
	Deleted int `json:"deleted"`
	// Start is the first sample, before any wave.
	Start     ChurnSample `json:"start"`
	WaveStats []ChurnWave `json:"waveStats"`
	// Final holds the gauges once the last wave is gone and the cache has
	// had time to empty; FinalDrainSeconds how long that took.
	Final             map[string]float64        `json:"final"`
	FinalDrainSeconds float64                   `json:"finalDrainSeconds"`
	EC2               map[string]map[string]int `json:"ec2"`
	APIWrites         map[string]float64        `json:"apiWrites"`
	// SyncErrors is the CCM's cloudprovider_aws_node_sync_errors_total over
	// the run, by reason.
	SyncErrors map[string]float64 `json:"syncErrors"`
	RSSPeakMiB float64            `json:"rssPeakMiB"`
	CPUSeconds float64            `json:"cpuSeconds"`
	Seconds    float64            `json:"seconds"`
	Problems   []string           `json:"problems,omitempty"`
	Samples    []ChurnSample      `json:"samples"`
}

// ChurnMix is the make-up of one wave.
type ChurnMix struct {
	// Good instances are pre-prefixed; Bare ones get their address and
	// prefix from the CCM. Both are initialized, then deleted.
	Good int `json:"good"`
	Bare int `json:"bare"`
	// BadProviderID Nodes carry a malformed providerID; UnknownInstance
	// ones a well-formed one naming no instance.
	BadProviderID   int `json:"badProviderID"`
	UnknownInstance int `json:"unknownInstance"`
	// IPv4Only instances sit in a subnet without IPv6: assignment fails.
	IPv4Only int `json:"ipv4Only"`
	// DeletedEarly Nodes are deleted (and their instances terminated) right
	// after they are created, before the CCM initializes them.
	DeletedEarly int `json:"deletedEarly"`
}

func (m ChurnMix) total() int {
	return m.Good + m.Bare + m.BadProviderID + m.UnknownInstance + m.IPv4Only + m.DeletedEarly
}

// ChurnWave is one wave: created, initialized, deleted, settled.
type ChurnWave struct {
	Wave int `json:"wave"`
	// Start is seconds since sampling began.
	Start       float64 `json:"start"`
	Created     int     `json:"created"`
	Deleted     int     `json:"deleted"`
	Expected    int     `json:"expected"`
	Initialized int     `json:"initialized"`
	// InitSeconds: from the first Create to the last expected node
	// initialized; SettleSeconds: from the deletions to the floor.
	InitSeconds   float64 `json:"initSeconds"`
	SettleSeconds float64 `json:"settleSeconds"`
	// AtFloor are the gauges once the wave is gone; RSSMiB the CCM's VmRSS then.
	AtFloor map[string]float64 `json:"atFloor"`
	RSSMiB  float64            `json:"rssMiB"`
	// HeapInuseMiB is go_memstats_heap_inuse_bytes then (0: not scraped).
	HeapInuseMiB float64 `json:"heapInuseMiB,omitempty"`
}

// ChurnSample is one sample over time.
type ChurnSample struct {
	T      float64 `json:"t"` // seconds since sampling began
	RSSMiB float64 `json:"rssMiB"`
	// HeapInuseMiB is the CCM's go_memstats_heap_inuse_bytes (0: not scraped).
	HeapInuseMiB float64            `json:"heapInuseMiB,omitempty"`
	Nodes        int                `json:"nodes"` // Nodes in the API
	Gauges       map[string]float64 `json:"gauges"`
}

// check lists what breaks the scenario's goals: a wave not fully
// initialized, a zero-floor gauge not back at zero after a wave, any gauge
// not at zero at the end, RSS growing.
func (r *ChurnResults) check() []string {
	var out []string
	for _, wv := range r.WaveStats {
		if wv.Initialized != wv.Expected {
			out = append(out, fmt.Sprintf("wave %d: %d of %d nodes initialized", wv.Wave, wv.Initialized, wv.Expected))
		}
		for _, k := range slices.Sorted(maps.Keys(wv.AtFloor)) {
			if zeroFloor(k) && wv.AtFloor[k] != 0 {
				out = append(out, fmt.Sprintf("wave %d: %s = %g after the wave", wv.Wave, k, wv.AtFloor[k]))
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Final)) {
		if r.Final[k] != 0 {
			out = append(out, fmt.Sprintf("%s = %g at the end", k, r.Final[k]))
		}
	}
	if len(r.Final) == 0 {
		out = append(out, "no gauges scraped at the end")
	}
	if g := r.rssGrowth(); g > rssGrowthLimit {
		out = append(out, fmt.Sprintf("RSS after the waves grew by %.1f MiB", g))
	}
	return out
}

// rssGrowthLimit is how much the post-wave RSS may grow between the second
// and the last quarter of the waves (the first quarter warms up the heap).
const rssGrowthLimit = 8.0

// rssGrowth is the mean post-wave RSS of the last quarter of the waves
// minus that of the second quarter, in MiB (0 with fewer than 4 waves).
func (r *ChurnResults) rssGrowth() float64 {
	n := len(r.WaveStats)
	if n < 4 {
		return 0
	}
	mean := func(ws []ChurnWave) float64 {
		s := 0.0
		for _, w := range ws {
			s += w.RSSMiB
		}
		return s / float64(len(ws))
	}
	q := n / 4
	return mean(r.WaveStats[n-q:]) - mean(r.WaveStats[q:2*q])
}

// rssSlope is the least-squares slope of post-wave RSS, in MiB per 1,000
// Nodes churned, over the waves after the first quarter.
func (r *ChurnResults) rssSlope() float64 {
	ws := r.WaveStats[len(r.WaveStats)/4:]
	if len(ws) < 2 || r.WaveSize == 0 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for _, w := range ws {
		x := float64(w.Wave*r.WaveSize) / 1000
		sx, sy, sxx, sxy = sx+x, sy+w.RSSMiB, sxx+x*x, sxy+x*w.RSSMiB
	}
	n := float64(len(ws))
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func churnPath(dir string) string { return filepath.Join(dir, "results-churn.json") }

func (r *ChurnResults) save(dir string) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(churnPath(dir), append(b, '\n'), 0o644)
}

// loadChurn reads the stored churn run; nil when there is none.
func loadChurn(dir string) (*ChurnResults, error) {
	b, err := os.ReadFile(churnPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r ChurnResults
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", churnPath(dir), err)
	}
	return &r, nil
}
