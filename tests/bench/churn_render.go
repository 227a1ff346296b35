package main

import (
	"fmt"
	"image/color"
	"maps"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// churnLabels are the plotted gauges, in legend order, with short names.
var churnLabels = []struct{ key, label string }{
	{metricCacheEntries, "instance cache entries"},
	{metricCacheIndex + "{private_dns_name}", "cache index: private DNS name"},
	{metricCacheIndex + "{eni}", "cache index: ENI"},
	{metricCacheIndex + "{forget_fence}", "cache index: forget fence"},
	{metricExpectations, "instance expectations"},
	{metricLookupsPending, "instance lookups pending"},
	{metricAssignCredit, "assign credit ENIs"},
	{metricStateEntries + "{memo}", "node controller: memo"},
	{metricStateEntries + "{done}", "node controller: done"},
	{metricStateEntries + "{gone}", "node controller: gone"},
}

// churnKeys returns every gauge key seen, known ones first.
func churnKeys(r *ChurnResults) []string {
	seen := map[string]bool{}
	for _, s := range r.Samples {
		for k := range s.Gauges {
			seen[k] = true
		}
	}
	var out []string
	for _, l := range churnLabels {
		if seen[l.key] {
			out = append(out, l.key)
			delete(seen, l.key)
		}
	}
	return append(out, slices.Sorted(maps.Keys(seen))...)
}

func churnLabel(key string) string {
	for _, l := range churnLabels {
		if l.key == key {
			return l.label
		}
	}
	return key
}

var churnPalette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff}, color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
	color.RGBA{R: 0xbc, G: 0xbd, B: 0x22, A: 0xff}, color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
}

// plotChurnMaps draws the Nodes in the API and every map-size gauge over
// time.
func plotChurnMaps(r *ChurnResults, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Churn: %d waves of %d Nodes, CCM map sizes", r.Waves, r.WaveSize)
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "entries (Nodes for the grey area)"
	p.Legend.Top = true
	p.Legend.XOffs = -vg.Millimeter * 2
	nodes := make(plotter.XYs, 0, len(r.Samples))
	for _, s := range r.Samples {
		nodes = append(nodes, plotter.XY{X: s.T, Y: float64(s.Nodes)})
	}
	if len(nodes) > 0 {
		l, err := plotter.NewLine(nodes)
		if err != nil {
			return err
		}
		l.Color, l.Width = color.Gray{Y: 0x99}, vg.Points(0.5)
		l.FillColor = color.Gray{Y: 0xe4}
		p.Add(l)
		p.Legend.Add("Nodes in the API", l)
	}
	for i, k := range churnKeys(r) {
		pts := make(plotter.XYs, 0, len(r.Samples))
		for _, s := range r.Samples {
			pts = append(pts, plotter.XY{X: s.T, Y: s.Gauges[k]})
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color, l.Width = churnPalette[i%len(churnPalette)], vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(churnLabel(k), l)
	}
	p.Add(plotter.NewGrid())
	return p.Save(11*vg.Inch, 5.5*vg.Inch, path)
}

// plotChurnRSS draws the CCM's RSS over time, and its value after each wave.
func plotChurnRSS(r *ChurnResults, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Churn: CCM resident memory, %d waves of %d Nodes", r.Waves, r.WaveSize)
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "VmRSS, MiB"
	p.Legend.Top, p.Legend.Left = false, false
	p.Y.Min = 0
	pts := make(plotter.XYs, 0, len(r.Samples))
	for _, s := range r.Samples {
		pts = append(pts, plotter.XY{X: s.T, Y: s.RSSMiB})
	}
	if len(pts) > 0 {
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color, l.Width = churnPalette[0], vg.Points(1.2)
		p.Add(l)
		p.Legend.Add("RSS", l)
	}
	var heap plotter.XYs
	for _, s := range r.Samples {
		if s.HeapInuseMiB > 0 {
			heap = append(heap, plotter.XY{X: s.T, Y: s.HeapInuseMiB})
		}
	}
	if len(heap) > 0 {
		l, err := plotter.NewLine(heap)
		if err != nil {
			return err
		}
		l.Color, l.Width = churnPalette[2], vg.Points(1)
		p.Add(l)
		p.Legend.Add("Go heap in use", l)
	}
	var after plotter.XYs
	for _, w := range r.WaveStats {
		after = append(after, plotter.XY{X: w.Start + w.InitSeconds + w.SettleSeconds, Y: w.RSSMiB})
	}
	if len(after) > 0 {
		sc, err := plotter.NewScatter(after)
		if err != nil {
			return err
		}
		sc.Color = churnPalette[3]
		p.Add(sc)
		p.Legend.Add("after each wave (at the floor)", sc)
	}
	p.Add(plotter.NewGrid())
	return p.Save(9*vg.Inch, 4.5*vg.Inch, path)
}

func churnSection(b *strings.Builder, r *ChurnResults) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	m := r.Mix
	p("## Churn (d)\n\n")
	p("`make bench` runs a, b, c and e; the churn runs with `cd tests/bench && go run . -scenarios d` (flags\n")
	p("`-churn-waves`, default 20, and `-churn-wave-size`, default 1000).\n\n")
	p("Run %s on %d × %s, %.1f GiB RAM; commit `%s`; CCM `%s`; CCM client QPS %g, burst %d; API Priority and\n",
		r.Date.Format("2006-01-02 15:04 UTC"), r.Machine.CPUs, r.Machine.Model, r.Machine.MemGB, r.Commit, r.CCMVersion, r.KubeAPIQPS, r.KubeAPIBurst)
	p("Fairness on; the run took %.1f min. Load average at its start: %s.\n\n", r.Seconds/60, strings.Join(r.Machine.Load, "; "))
	p("%d waves of %d Nodes (%d created and deleted in all). Each wave adds its instances to ec2sim, creates its\n", r.Waves, m.total(), r.Created)
	p("Nodes at once (as kubelet registers them, in a shuffled order), waits until the ones that can be initialized are,\n")
	p("then terminates every instance and deletes every Node, as a scale-down does, and waits for the CCM's per-node\n")
	p("maps to be back at zero. Per wave:\n\n")
	p("| kind | Nodes | expected outcome |\n|---|---|---|\n")
	p("| pre-prefixed instance | %d | initialized, then deleted |\n", m.Good)
	p("| bare instance (the CCM assigns address and prefix) | %d | initialized, then deleted |\n", m.Bare)
	p("| malformed providerID | %d | an error event and retries until deleted |\n", m.BadProviderID)
	p("| providerID naming no instance | %d | retries until deleted (the lifecycle controller may delete it first) |\n", m.UnknownInstance)
	p("| instance in an IPv4-only subnet | %d | assignment fails: an event and retries until deleted |\n", m.IPv4Only)
	p("| deleted (instance terminated) right after its creation | %d | dropped before it is initialized |\n\n", m.DeletedEarly)
	p("Gauges are scraped from the CCM's `/metrics` every 2 s, RSS (VmRSS) read from `/proc` with them.\n")
	p("The node controller's maps, the expectations, pending lookups, assign credits and the cache's forget\n")
	p("fence must be zero after every wave; the instance cache and its name and ENI indexes hold what was\n")
	p("described in the last 30 s (TTL; swept by 45 s), so they must be zero once lookups stop, after the last wave.\n\n")
	initMax, settleMax, inited, expected := 0.0, 0.0, 0, 0
	for _, w := range r.WaveStats {
		initMax, settleMax = max(initMax, w.InitSeconds), max(settleMax, w.SettleSeconds)
		inited, expected = inited+w.Initialized, expected+w.Expected
	}
	rssMin, rssMax := 0.0, 0.0
	for i, w := range r.WaveStats {
		if i == 0 || w.RSSMiB < rssMin {
			rssMin = w.RSSMiB
		}
		rssMax = max(rssMax, w.RSSMiB)
	}
	zeroAfter := true
	for _, w := range r.WaveStats {
		for k, v := range w.AtFloor {
			if zeroFloor(k) && v != 0 {
				zeroAfter = false
			}
		}
	}
	finalZero := len(r.Final) > 0
	for _, v := range r.Final {
		if v != 0 {
			finalZero = false
		}
	}
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	p("| goal | result |\n|---|---|\n")
	p("| every initializable Node initialized in every wave | %d of %d (slowest wave %.1f s): %s |\n", inited, expected, initMax, met(inited == expected))
	p("| per-node maps, expectations, pending lookups, credits, forget fence at zero after every wave | slowest wave back in %.1f s: %s |\n", settleMax, met(zeroAfter))
	p("| every gauge, the instance cache included, at zero after the last wave | in %.1f s: %s |\n", r.FinalDrainSeconds, met(finalZero))
	p("| RSS flat: post-wave RSS of the last quarter of waves within %.0f MiB of the second quarter's | %+.1f MiB (slope %+.2f MiB per 1,000 Nodes churned; post-wave RSS %.0f–%.0f MiB): %s |\n\n",
		rssGrowthLimit, r.rssGrowth(), r.rssSlope(), rssMin, rssMax, met(r.rssGrowth() <= rssGrowthLimit))
	p("CCM peak RSS (VmHWM) %.0f MiB; CPU %.1f s. EC2 calls: %s; throttled %d. CCM API writes: %s.\n",
		r.RSSPeakMiB, r.CPUSeconds, counts(r.EC2), outcome(r.EC2, "throttled"), perVerb(r.APIWrites, 1))
	if len(r.SyncErrors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.SyncErrors)) {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, r.SyncErrors[k]))
		}
		p("Node sync errors by reason (`cloudprovider_aws_node_sync_errors_total`): %s.\n", strings.Join(parts, ", "))
	}
	if len(r.Problems) > 0 {
		p("\n**Problems:** %s\n", strings.Join(r.Problems, "; "))
	}
	p("\n![CCM map sizes over time, churn](benchmarks/churn-maps.png)\n")
	p("![CCM RSS over time, churn](benchmarks/churn-rss.png)\n\n")
}
