package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// writeVerbs are the HTTP methods that change state in the API server.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// scrapeWrites reads the CCM's /metrics with a bearer token and returns
// rest_client_requests_total summed by method, write verbs only. The CCM
// authenticates the token with a TokenReview and authorizes it with a
// SubjectAccessReview (its authorization kubeconfig), so an admin
// (system:masters) token may read it.
func scrapeWrites(ctx context.Context, url, token string) (map[string]float64, error) {
	var out map[string]float64
	err := scrape(ctx, url, token, func(r io.Reader) (err error) {
		out, err = parseWrites(r)
		return err
	})
	return out, err
}

// scrapeSamples reads the CCM's /metrics and returns the samples of the
// named metric families.
func scrapeSamples(ctx context.Context, url, token string, names ...string) ([]metricSample, error) {
	var out []metricSample
	err := scrape(ctx, url, token, func(r io.Reader) (err error) {
		out, err = parseSamples(r, names...)
		return err
	})
	return out, err
}

func scrape(ctx context.Context, url, token string, parse func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("scrape %s: %s: %s", url, resp.Status, b)
	}
	return parse(resp.Body)
}

// parseWrites sums rest_client_requests_total by its method label, keeping
// write verbs, from Prometheus text exposition.
func parseWrites(r io.Reader) (map[string]float64, error) {
	samples, err := parseSamples(r, "rest_client_requests_total")
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, s := range samples {
		if m := s.Labels["method"]; writeVerbs[m] {
			out[m] += s.Value
		}
	}
	return out, nil
}

// metricSample is one line of Prometheus text exposition.
type metricSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// parseSamples returns the samples of the named metric families from
// Prometheus text exposition (comments and other families skipped).
func parseSamples(r io.Reader, names ...string) ([]metricSample, error) {
	var out []metricSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if !slices.Contains(names, name) {
			continue
		}
		s := metricSample{Name: name, Labels: map[string]string{}}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("malformed sample %q", line)
			}
			s.Labels = parseLabels(rest[1:end])
			rest = rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("malformed sample %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("malformed sample %q: %w", line, err)
		}
		s.Value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseLabels splits `a="x",b="y"` (values may hold escaped quotes and commas).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			break
		}
		key := strings.TrimSpace(s[:eq])
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			val.WriteByte(s[i])
		}
		out[key] = val.String()
		s = strings.TrimPrefix(s[min(i+1, len(s)):], ",")
	}
	return out
}

// diffWrites returns after - before per verb.
func diffWrites(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// diffCounts returns after - before per action and outcome.
func diffCounts(before, after map[string]map[string]int) map[string]map[string]int {
	out := map[string]map[string]int{}
	for a, m := range after {
		for o, n := range m {
			if d := n - before[a][o]; d != 0 {
				if out[a] == nil {
					out[a] = map[string]int{}
				}
				out[a][o] = d
			}
		}
	}
	return out
}

// clockTicks is USER_HZ, fixed at 100 in the Linux user ABI.
const clockTicks = 100

// cpuSeconds returns utime+stime of pid from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields start after ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q %q", pid, f[11], f[12])
	}
	return (ut + st) / clockTicks, nil
}

// peakRSSMiB returns VmHWM of pid in MiB.
func peakRSSMiB(pid int) (float64, error) {
	v, err := procStatusKB(fmt.Sprintf("/proc/%d/status", pid), "VmHWM:")
	return v / 1024, err
}

// rssSplitMiB returns RssAnon and RssFile of pid in MiB.
func rssSplitMiB(pid int) (anon, file float64, err error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	if anon, err = procStatusKB(path, "RssAnon:"); err != nil {
		return 0, 0, err
	}
	file, err = procStatusKB(path, "RssFile:")
	return round3(anon / 1024), round3(file / 1024), err
}

// procStatusKB reads a "Key:   123 kB" line of a /proc status-like file.
func procStatusKB(path, key string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseFloat(f[0], 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// machine describes this host.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				m.Model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	if kb, err := procStatusKB("/proc/meminfo", "MemTotal:"); err == nil {
		m.MemGB = round3(kb / 1024 / 1024)
	}
	return m
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// currentRSSMiB returns VmRSS of pid in MiB.
func currentRSSMiB(pid int) (float64, error) {
	v, err := procStatusKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	return v / 1024, err
}

// ccmEnv is the -ccm-env flag: extra environment for the CCM.
var ccmEnv string

// profileDir is the -profile-dir flag: where saveProfile writes.
var profileDir string

// saveProfile writes the CCM's heap profile (from --profiling's
// /debug/pprof) and a copy of its log into dir, named after name.
func saveProfile(w *world, dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	save := func(url, file string) error {
		return scrape(context.Background(), url, w.AdminCfg.BearerToken, func(r io.Reader) error {
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, name+file), b, 0o644)
		})
	}
	if err := save(strings.TrimSuffix(w.ccm.MetricsURL, "/metrics")+"/debug/pprof/heap", "-heap.pprof"); err != nil {
		return err
	}
	if err := save(w.ccm.MetricsURL, "-metrics.txt"); err != nil {
		return err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.ccm.Cmd.Process.Pid))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-status.txt"), status, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+"-ccm.log"), []byte(w.ccm.Log()), 0o644)
}
