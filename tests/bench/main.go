// Command bench is `make bench`: it measures how fast the CCM initializes a
// burst of N nodes and what that costs in EC2 calls, API writes, memory and
// CPU, on the test world (real kube-apiserver and etcd, ec2sim with AWS's
// default throttling, the CCM binary with the shipped DaemonSet's flags).
//
// Scenarios: (a) a burst of N pre-prefixed instances, (b) a burst of N bare
// instances, (c) N initialized nodes over several shortened address-refresh
// periods. Results go to docs/benchmarks/results-n<N>.json; docs/benchmarks.md
// and the PNG plots are rendered from every results file present.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		n          = flag.Int("n", 1000, "number of nodes")
		scenarios  = flag.String("scenarios", "a,b,c,e,f", "scenarios to run: a (burst, pre-prefixed), b (burst, bare), c (steady state), d (churn; -n is ignored), e (a with dual-stack pod CIDRs), f (load balancers; -n is ignored)")
		lbServices = flag.Int("lb-services", 20, "Services in scenario f")
		lbNodes    = flag.Int("lb-nodes", 200, "nodes in scenario f")
		lbSteady   = flag.Duration("lb-steady", 3*time.Minute, "steady-state window in scenario f")
		waves      = flag.Int("churn-waves", 20, "waves in scenario d")
		waveSize   = flag.Int("churn-wave-size", 1000, "Nodes created and deleted per wave in scenario d")
		period     = flag.Duration("steady-period", 20*time.Second, "--node-status-update-frequency in scenario c")
		periods    = flag.Int("steady-periods", 4, "refresh periods measured in scenario c")
		renderOnly = flag.Bool("render-only", false, "only render docs/benchmarks.md and the plots from the stored results")
		dry        = flag.Bool("dry", false, "measure and log, but store and render nothing (for diagnosis)")
		ready      = flag.Bool("register-ready", false, "register nodes Ready=True (diagnosis: keeps the lifecycle controller from looking them up)")
	)
	flag.StringVar(&ccmEnv, "ccm-env", "", "diagnosis: extra environment for the CCM, comma-separated (e.g. GOGC=50,GOMEMLIMIT=80MiB)")
	flag.StringVar(&profileDir, "profile-dir", "", "diagnosis: save the CCM's heap profile after each scenario and its log, with GC traces, into this directory")
	flag.Parse()
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "docs", "benchmarks")
	if !*renderOnly {
		list := strings.Split(*scenarios, ",")
		var churn *ChurnResults
		if slices.Contains(list, "d") {
			list = slices.DeleteFunc(list, func(s string) bool { return s == "d" })
			if churn, err = measureChurn(root, *waves, *waveSize); err != nil {
				return err
			}
		}
		var lb *LBResults
		if slices.Contains(list, "f") {
			list = slices.DeleteFunc(list, func(s string) bool { return s == "f" })
			if lb, err = measureLB(root, *lbServices, *lbNodes, *lbSteady); err != nil {
				return err
			}
		}
		var res *Results
		if len(list) > 0 {
			if res, err = measure(root, *n, *ready, list, *period, *periods); err != nil {
				return err
			}
		}
		if *dry || *ready {
			return nil
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if res != nil {
			if err := res.save(dir); err != nil {
				return err
			}
		}
		if churn != nil {
			if err := churn.save(dir); err != nil {
				return err
			}
		}
		if lb != nil {
			if err := lb.save(dir); err != nil {
				return err
			}
		}
	}
	return render(filepath.Join(root, "docs"), dir)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func measure(root string, n int, ready bool, scenarios []string, period time.Duration, periods int) (*Results, error) {
	if n < 1 || periods < 1 || period <= 0 {
		return nil, fmt.Errorf("need -n, -steady-periods and -steady-period above zero")
	}
	for _, s := range scenarios {
		if s != "a" && s != "b" && s != "c" && s != "e" {
			return nil, fmt.Errorf("unknown scenario %q", s)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := &Results{N: n, Date: time.Now().UTC().Truncate(time.Second), Commit: commit(root),
		CCMVersion: ccmVersion(root), Machine: machine(), APF: true, NodeImages: imagesPerNode}
	b := &bench{n: n, ready: ready, steadyPeriod: period, steadyPeriods: periods, logf: logf, res: res}
	start := time.Now()
	has := func(id string) bool { return slices.Contains(scenarios, id) }
	if has("a") || has("c") {
		// (c) runs on the nodes (a) initialized.
		sc, w, err := b.burst(ctx, "a", true)
		if err != nil {
			return nil, fmt.Errorf("scenario a: %w", err)
		}
		if has("a") {
			res.Scenarios = append(res.Scenarios, sc)
		}
		if has("c") && sc.Complete {
			sc, err = b.steady(ctx, w)
			if err != nil {
				w.Close()
				return nil, fmt.Errorf("scenario c: %w", err)
			}
			res.Scenarios = append(res.Scenarios, sc)
		}
		w.Close()
	}
	// (b) bare instances; (e) pre-prefixed with dual-stack pod CIDRs.
	for _, id := range []string{"b", "e"} {
		if !has(id) {
			continue
		}
		sc, w, err := b.burst(ctx, id, id == "e")
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", id, err)
		}
		w.Close()
		res.Scenarios = append(res.Scenarios, sc)
	}
	slices.SortFunc(res.Scenarios, func(x, y Scenario) int { return strings.Compare(x.ID, y.ID) })
	res.Seconds = round3(time.Since(start).Seconds())
	logf("all scenarios done in %s", time.Since(start).Round(time.Second))
	return res, nil
}

// measureChurn runs scenario (d).
func measureChurn(root string, waves, size int) (*ChurnResults, error) {
	if waves < 1 || size < 100 {
		return nil, fmt.Errorf("need -churn-waves of at least 1 and -churn-wave-size of at least 100")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := &Results{Commit: commit(root), CCMVersion: ccmVersion(root), Machine: machine()}
	b := &bench{logf: logf, res: res}
	return b.churn(ctx, waves, size)
}

// commit is HEAD, marked when the code the CCM is built from (cmd, pkg) has
// uncommitted changes. The tree is shared, so other files do not count.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if exec.Command("git", "-C", root, "diff", "--quiet", "HEAD", "--", "cmd", "pkg", "go.mod").Run() != nil {
		c += " (with uncommitted changes in cmd/ or pkg/)"
	}
	return c
}

// ccmVersion is the measured binary's --version.
func ccmVersion(root string) string {
	out, err := exec.Command(filepath.Join(root, "_output", "bin", "aws-cloud-controller-manager"), "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
