// Command demo shows the CCM at work on this machine: it starts the test
// world (etcd, kube-apiserver, ec2sim with tests/ec2sim/testdata/demo.yaml,
// and the CCM binary configured from manifests/base), registers the
// scenario's instances as Nodes the way kubelet does, waits until the CCM
// has initialized them, and prints the Nodes with a pod address the
// host-local CNI plugin allocated from each podCIDR, the Warning events and
// the EC2 calls it cost. `make demo` runs it; with -keep (`make demo KEEP=1`)
// the world keeps running until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

const (
	uninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized"
	controlPlaneLabel  = "node-role.kubernetes.io/control-plane"
)

// mutating are the EC2 actions that change state (ec2sim.Sim.MutatingCalls counts these).
var mutating = map[string]bool{"AssignIpv6Addresses": true, "UnassignIpv6Addresses": true, "CreateTags": true, "DeleteTags": true}

type options struct {
	keep    bool
	verbose bool
	timeout time.Duration
}

func main() {
	var o options
	flag.BoolVar(&o.keep, "keep", false, "leave the world running until SIGINT/SIGTERM and print a kubeconfig for kubectl")
	flag.BoolVar(&o.verbose, "v", false, "log the harness's progress to stderr")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "how long to wait for the CCM to initialize the nodes")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop, o); err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		stop()
		os.Exit(1)
	}
}

// demo is one run: the world, the CCM, and when the run started.
type demo struct {
	w     *harness.World
	sc    *ec2sim.Scenario
	ccm   *harness.CCM
	start time.Time
	out   io.Writer
}

// step prints a progress line with the time since the start.
func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.out, "[%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, stopSignals func(), o options) (err error) {
	d := &demo{start: time.Now(), out: os.Stdout}
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	scenarioPath := filepath.Join(root, "tests", "ec2sim", "testdata", "demo.yaml")
	if d.sc, err = ec2sim.LoadScenario(scenarioPath); err != nil {
		return err
	}
	hopts := harness.Options{Scenario: d.sc, Throttling: true}
	if o.verbose {
		hopts.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "  [harness] "+format+"\n", args...) }
	}
	d.step("starting etcd, kube-apiserver and ec2sim (%s, AWS throttling on)", rel(root, scenarioPath))
	if d.w, err = harness.Start(ctx, hopts); err != nil {
		return err
	}
	defer func() {
		d.step("tearing down")
		d.w.Close()
		d.step("done")
	}()

	cc, err := d.w.ShippedCloudConfig()
	if err != nil {
		return err
	}
	d.step("starting aws-cloud-controller-manager: args of manifests/base/daemonset.yaml, cloud config %s",
		strings.Join(strings.Fields(strings.ReplaceAll(cc, "[Global]", "")), " "))
	if d.ccm, err = d.w.StartCCM(ctx, harness.CCMOptions{}); err != nil {
		return err
	}

	expectInit, expectWarn, err := d.registerNodes(ctx)
	if err != nil {
		return err
	}
	if err := d.waitNodes(ctx, expectInit, expectWarn, o.timeout); err != nil {
		fmt.Fprintf(os.Stderr, "CCM log (tail, %s):\n%s\n", d.ccm.LogPath, tail(d.ccm.Log(), 4000))
		return err
	}
	if err := d.printNodes(ctx); err != nil {
		return err
	}
	if err := d.printEvents(ctx); err != nil {
		return err
	}
	d.printCalls()
	if d.ccm.Exited() {
		return fmt.Errorf("the CCM exited; log %s:\n%s", d.ccm.LogPath, tail(d.ccm.Log(), 4000))
	}
	if !o.keep {
		return nil
	}
	kc, err := d.w.AdminKubeconfig()
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nThe world keeps running (KEEP=1). Try:\n  %s --kubeconfig %s get nodes -o wide\n",
		rel(root, filepath.Join(d.w.Bin, "kubectl")), kc)
	fmt.Fprintf(d.out, "CCM log: %s\nPress Ctrl-C to tear it down.\n", d.ccm.LogPath)
	<-ctx.Done()
	// A second Ctrl-C during teardown ends the demo at once (its processes die with it).
	stopSignals()
	fmt.Fprintln(d.out)
	return nil
}

// registerNodes creates a Node for every instance of the scenario, as
// kubelet --cloud-provider=external does: named by private DNS name, with
// the uninitialized taint, Ready. The instance IMDS answers for is the
// control plane, registered with --provider-id. It returns the nodes the
// CCM should initialize and those it cannot (no IPv6 in their subnet).
func (d *demo) registerNodes(ctx context.Context) (expectInit, expectWarn []string, err error) {
	st := d.w.Sim.State()
	v6 := map[string]bool{}
	for _, s := range st.Subnets {
		v6[s.ID] = s.IPv6CIDR != ""
	}
	// ec2sim answers IMDS for the scenario's imdsInstance (default the first): the CCM's own.
	cp := d.sc.IMDSInstance
	if cp == "" && len(st.Instances) > 0 {
		cp = st.Instances[0].ID
	}
	for _, in := range st.Instances {
		spec := harness.NodeSpec{Name: in.PrivateDNSName, Ready: true}
		if in.ID == cp {
			spec.ProviderID = providerid.Format(in.Zone, in.ID)
		}
		if _, err := d.w.CreateNode(ctx, spec); err != nil {
			return nil, nil, err
		}
		if in.ID == cp {
			patch := []byte(`{"metadata":{"labels":{"` + controlPlaneLabel + `":""}}}`)
			if _, err := d.w.Admin.CoreV1().Nodes().Patch(ctx, spec.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				return nil, nil, err
			}
		}
		if v6[in.Subnet] {
			expectInit = append(expectInit, spec.Name)
		} else {
			expectWarn = append(expectWarn, spec.Name)
		}
	}
	d.step("registered %d Nodes as kubelet does (uninitialized taint); %d in a subnet without IPv6 should get a Warning",
		len(st.Instances), len(expectWarn))
	return expectInit, expectWarn, nil
}

// waitNodes waits until the nodes in expectInit are initialized and those in
// expectWarn have a Warning event, printing progress when it changes.
func (d *demo) waitNodes(ctx context.Context, expectInit, expectWarn []string, timeout time.Duration) error {
	last := ""
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if d.ccm.Exited() {
			return false, errors.New("the CCM exited")
		}
		nodes, err := d.w.Admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		initialized := map[string]bool{}
		for _, n := range nodes.Items {
			initialized[n.Name] = n.Spec.PodCIDR != "" && !slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == uninitializedTaint })
		}
		done := 0
		for _, n := range expectInit {
			if initialized[n] {
				done++
			}
		}
		warned := 0
		for _, n := range expectWarn {
			evs, err := d.w.Admin.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "type=Warning,involvedObject.name=" + n})
			if err == nil && len(evs.Items) > 0 {
				warned++
			}
		}
		msg := fmt.Sprintf("%d/%d nodes initialized, %d/%d Warning events", done, len(expectInit), warned, len(expectWarn))
		if msg != last {
			d.step("%s", msg)
			last = msg
		}
		return done == len(expectInit) && warned == len(expectWarn), nil
	})
}

// printNodes prints the Nodes like `kubectl get nodes -o wide`, with the
// providerID, zone, podCIDR and a pod address host-local allocated from it.
func (d *demo) printNodes(ctx context.Context) error {
	nodes, err := d.w.Admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintln(d.out)
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tROLES\tINTERNAL-IP\tEXTERNAL-IP\tPROVIDER-ID\tZONE\tPODCIDR\tPOD-IP (host-local)")
	for _, n := range nodes.Items {
		podIP := "<none>"
		if n.Spec.PodCIDR != "" {
			ip, err := d.w.AllocatePodIP(ctx, harness.HostLocal{
				Network: "k8s-pod-network", Subnet: n.Spec.PodCIDR, ContainerID: "demo-pod",
				DataDir: filepath.Join(d.w.Dir, "cni", n.Name), // each node has its own /var/lib/cni
			})
			if err != nil {
				return err
			}
			podIP = ip.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, status(&n), roles(&n),
			address(&n, corev1.NodeInternalIP), address(&n, corev1.NodeExternalIP),
			none(n.Spec.ProviderID), none(n.Labels["topology.kubernetes.io/zone"]), none(n.Spec.PodCIDR), podIP)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Nodes on IPv6-only subnets: their whole address list, which has no IPv4.
	for _, n := range nodes.Items {
		if len(n.Status.Addresses) == 0 || slices.ContainsFunc(n.Status.Addresses, func(a corev1.NodeAddress) bool {
			ip, err := netip.ParseAddr(a.Address)
			return err == nil && ip.Is4()
		}) {
			continue
		}
		var parts []string
		for _, a := range n.Status.Addresses {
			parts = append(parts, string(a.Type)+"="+a.Address)
		}
		fmt.Fprintf(d.out, "\nnode/%s has no IPv4 (IPv6-only subnet, resource-based name); addresses:\n  %s\n", n.Name, strings.Join(parts, "\n  "))
	}
	return nil
}

// printEvents prints the Warning events recorded on Nodes, one line per
// node and reason with the latest message. The AWS SDK's wrapping (operation,
// status, request ID) is elided from messages for readability.
func (d *demo) printEvents(ctx context.Context) error {
	evs, err := d.w.Admin.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "type=Warning,involvedObject.kind=Node"})
	if err != nil {
		return err
	}
	type key struct{ node, reason string }
	count := map[key]int32{}
	latest := map[key]corev1.Event{}
	for _, e := range evs.Items {
		k := key{e.InvolvedObject.Name, e.Reason}
		count[k] += max(e.Count, 1)
		if l, ok := latest[k]; !ok || e.LastTimestamp.After(l.LastTimestamp.Time) {
			latest[k] = e
		}
	}
	fmt.Fprintf(d.out, "\nWarning events on Nodes (%d):\n", len(evs.Items))
	keys := slices.SortedFunc(maps.Keys(latest), func(a, b key) int {
		return strings.Compare(a.node+" "+a.reason, b.node+" "+b.reason)
	})
	for _, k := range keys {
		msg := latest[k].Message
		if i := strings.Index(msg, "api error "); i >= 0 {
			first, _, _ := strings.Cut(msg, ": ")
			msg = first + ": … " + msg[i+len("api error "):]
		}
		fmt.Fprintf(d.out, "  node/%s  %s (x%d)\n    %s\n", k.node, k.reason, count[k], msg)
	}
	return nil
}

// printCalls prints ec2sim's call counts, mutating and read-only.
func (d *demo) printCalls() {
	counts := d.w.Sim.Counts()
	var mut, ro int
	for a, outcomes := range counts {
		for _, n := range outcomes {
			if mutating[a] {
				mut += n
			} else {
				ro += n
			}
		}
	}
	fmt.Fprintf(d.out, "\nEC2 API calls answered by ec2sim: %d mutating, %d read-only\n", mut, ro)
	if m := d.w.Sim.MutatingCalls(); m != mut {
		fmt.Fprintf(d.out, "  (ec2sim counts %d mutating calls: its list of mutating actions differs from the demo's)\n", m)
	}
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	for _, a := range slices.Sorted(maps.Keys(counts)) {
		kind := "read-only"
		if mutating[a] {
			kind = "mutating"
		}
		var parts []string
		for _, outcome := range slices.Sorted(maps.Keys(counts[a])) {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a][outcome], outcome))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", a, kind, strings.Join(parts, ", "))
	}
	_ = tw.Flush()
}

func status(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return "Ready"
			}
			return "NotReady"
		}
	}
	return "Unknown"
}

func roles(n *corev1.Node) string {
	var out []string
	for k := range n.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return "<none>"
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// address returns the first address of type t, as kubectl's wide output does.
func address(n *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}

func none(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
