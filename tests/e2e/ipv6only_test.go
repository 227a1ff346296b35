package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// inNetnsEnv marks the re-executed test binary running inside the
// IPv6-only network namespace.
const inNetnsEnv = "AWS_IPV6_CCM_IN_IPV6ONLY_NETNS"

// imdsIPv6 is where AWS serves IMDS over IPv6.
const imdsIPv6 = "fd00:ec2::254"

// ipv6OnlyScenario: an IPv6-only subnet (kOps' private IPv6 nodes) and a
// dual-stack one. The control plane, whose IMDS the CCM reads and whose
// instance role signs its EC2 calls, is IPv6-only.
const ipv6OnlyScenario = `
region: eu-west-1
seed: 6
instanceRole: ccm-control-plane
zones:
- {name: eu-west-1a, id: euw1-az1}
- {name: eu-west-1b, id: euw1-az2}
vpcs:
- cidr: 10.30.0.0/16
  ipv6CIDR: "2a05:d018:6600:5600::/56"
subnets:
- id: subnet-06000000000000a01
  zone: eu-west-1a
  ipv6Native: true
  ipv6CIDR: "2a05:d018:6600:5601::/64"
- id: subnet-0d000000000000b01
  zone: eu-west-1b
  cidr: 10.30.2.0/24
  ipv6CIDR: "2a05:d018:6600:5602::/64"
instances:
- id: i-06000000000000c01
  subnet: subnet-06000000000000a01
  tags: {Name: control-plane, kubernetes.io/cluster/ipv6only.k8s.local: owned}
- id: i-06000000000000a01
  subnet: subnet-06000000000000a01
- id: i-06000000000000a02
  subnet: subnet-06000000000000a01
- id: i-06000000000000a03
  subnet: subnet-06000000000000a01
- id: i-0d000000000000b01
  subnet: subnet-0d000000000000b01
- id: i-0d000000000000b02
  subnet: subnet-0d000000000000b01
  privateDnsNameOptions: {hostnameType: resource-name, enableResourceNameDnsAAAARecord: true}
imdsInstance: i-06000000000000c01
`

// TestIPv6OnlyWorld runs the whole test world (etcd, kube-apiserver, ec2sim
// with IMDS at [fd00:ec2::254], the CCM binary with the shipped DaemonSet's
// args, host-local) inside a network namespace that has no IPv4 address at
// all. The CCM gets IMDSEndpointMode = IPv6 from the cloud config only and
// instance-role credentials from IMDS only. A negative control shows the
// same world without IMDSEndpointMode fails fast, naming the cause.
//
// The test re-executes its own binary under `unshare --net`; it needs root
// (CI runs as root). Outside CI, without root or unshare, it skips saying
// why; in CI (CI=true) it fails instead.
func TestIPv6OnlyWorld(t *testing.T) {
	if os.Getenv(inNetnsEnv) != "" {
		ipv6OnlyWorld(t)
		return
	}
	requireE2E(t)
	unshare, err := exec.LookPath("unshare")
	if err == nil && os.Geteuid() != 0 {
		err = errors.New("not root: unshare --net needs CAP_SYS_ADMIN")
	}
	if err == nil {
		_, err = exec.LookPath("ip")
	}
	if err != nil {
		if ciMode() {
			t.Fatalf("the IPv6-only world cannot run in CI: %v", err)
		}
		t.Skipf("IPv6-only world needs root, unshare and ip: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "--net", "--", os.Args[0],
		"-test.run=^TestIPv6OnlyWorld$", "-test.v", "-test.count=1", "-test.timeout=8m")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside the IPv6-only namespace:\n%s", out)
	if err != nil {
		t.Fatalf("TestIPv6OnlyWorld in the namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestIPv6OnlyWorld") || strings.Contains(string(out), "--- SKIP") {
		t.Fatal("the namespaced run did not pass (skipped or no result)")
	}
}

// setUpIPv6OnlyNamespace brings lo up, removes 127.0.0.1 and adds IMDS's
// IPv6 address, then checks that no IPv4 is left.
func setUpIPv6OnlyNamespace(t *testing.T) {
	t.Helper()
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "del", "127.0.0.1/8", "dev", "lo"},
		{"addr", "add", imdsIPv6 + "/128", "dev", "lo", "nodad"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ifaces, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ifaces {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			t.Fatalf("namespace still has IPv4 address %s", a)
		}
	}
	if l, err := net.Listen("tcp4", "127.0.0.1:0"); err == nil {
		l.Close()
		t.Fatal("127.0.0.1 can still be bound: this is not an IPv6-only namespace")
	}
}

func ipv6OnlyWorld(t *testing.T) {
	setUpIPv6OnlyNamespace(t)
	sc, err := ec2sim.ParseScenario([]byte(ipv6OnlyScenario))
	if err != nil {
		t.Fatal(err)
	}
	w, err := harness.Start(t.Context(), harness.Options{
		Scenario: sc, IPv6Only: true, IMDSAddr: net.JoinHostPort(imdsIPv6, "80"), Log: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	ctx := t.Context()
	shipped, err := w.ShippedCloudConfig()
	if err != nil {
		t.Fatal(err)
	}

	// Negative control first: the shipped cloud config alone reaches for
	// IMDS at 169.254.169.254, which an IPv6-only instance has no route to.
	start := time.Now()
	_, err = w.StartCCM(ctx, harness.CCMOptions{CloudConfig: shipped})
	took := time.Since(start)
	if err == nil {
		t.Fatal("the CCM started without IMDSEndpointMode on an IPv6-only instance")
	}
	for _, want := range []string{"169.254.169.254", "IPv4", "IMDSEndpointMode = IPv6"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start-up failure does not name %q:\n%s", want, tail(err.Error(), 3000))
		}
	}
	if took > 30*time.Second {
		t.Errorf("the CCM took %s to fail; want a prompt failure", took)
	}
	fatal := err.Error()
	if i := strings.Index(fatal, "Cloud provider could not be initialized"); i >= 0 {
		fatal, _, _ = strings.Cut(fatal[i:], "\n")
	}
	t.Logf("negative control: the CCM exited after %s: %s", took.Round(100*time.Millisecond), fatal)

	cc := strings.Replace(shipped, "[Global]", "[Global]\nIMDSEndpointMode = IPv6\nEC2DualStackEndpoint = true", 1)
	if cc == shipped {
		t.Fatalf("shipped cloud config has no [Global] section:\n%s", shipped)
	}
	ccm := startCCM(t, w, harness.CCMOptions{CloudConfig: cc})

	type nodeCase struct{ id, name, providerID string }
	res := func(id string) string { return id + ".eu-west-1.compute.internal" }
	var cases []nodeCase
	for _, c := range []nodeCase{
		{"i-06000000000000c01", res("i-06000000000000c01"), ""},                                      // resource name
		{"i-06000000000000a01", res("i-06000000000000a01"), ""},                                      // resource name
		{"i-06000000000000a02", "i-06000000000000a02", ""},                                           // bare instance ID
		{"i-06000000000000a03", res("i-06000000000000a03"), "aws:///eu-west-1a/i-06000000000000a03"}, // with providerID
		{"i-0d000000000000b01", instanceByID(w, "i-0d000000000000b01").PrivateDNSName, ""},           // dual-stack, IP name
		{"i-0d000000000000b02", res("i-0d000000000000b02"), ""},                                      // dual-stack, resource name
	} {
		if _, err := w.CreateNode(ctx, harness.NodeSpec{Name: c.name, ProviderID: c.providerID, Ready: true}); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	var names []string
	for _, c := range cases {
		names = append(names, c.name)
	}
	nodes := waitNodes(ctx, t, w, names, 2*time.Minute, func(n *corev1.Node) bool { return initialized(n) && n.Spec.PodCIDR != "" })

	for _, c := range cases {
		n, in := nodes[c.name], instanceByID(w, c.id)
		eni := primaryENI(in)
		ipv6Only := in.PrivateIP == ""
		if strings.HasPrefix(c.id, "i-06") != ipv6Only {
			t.Fatalf("%s: world is wrong: privateIP %q", c.id, in.PrivateIP)
		}
		if len(eni.IPv6) != 1 || len(eni.IPv6Prefixes) != 1 {
			t.Errorf("%s: primary ENI holds %v and %v, want one address and one /80", c.name, eni.IPv6, eni.IPv6Prefixes)
			continue
		}
		want := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: eni.IPv6[0].Address}}
		if !ipv6Only {
			want = append(want, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: in.PrivateIP})
		}
		want = append(want,
			corev1.NodeAddress{Type: corev1.NodeInternalDNS, Address: in.PrivateDNSName},
			corev1.NodeAddress{Type: corev1.NodeHostName, Address: in.PrivateDNSName})
		if fmt.Sprint(n.Status.Addresses) != fmt.Sprint(want) {
			t.Errorf("%s: addresses\n got %v\nwant %v", c.name, n.Status.Addresses, want)
		}
		if strings.HasPrefix(c.name, "i-") && in.PrivateDNSName != res(c.id) {
			t.Errorf("%s: ec2sim names the instance %q, want the resource name", c.name, in.PrivateDNSName)
		}
		if n.Spec.PodCIDR != eni.IPv6Prefixes[0] || len(n.Spec.PodCIDRs) != 1 {
			t.Errorf("%s: podCIDR %q podCIDRs %v, want the ENI's /80 %s", c.name, n.Spec.PodCIDR, n.Spec.PodCIDRs, eni.IPv6Prefixes[0])
		}
		if want := providerid.Format(in.Zone, c.id); n.Spec.ProviderID != want {
			t.Errorf("%s: providerID %q, want %q", c.name, n.Spec.ProviderID, want)
		}
		cidr := netip.MustParsePrefix(n.Spec.PodCIDR)
		ip, err := w.AllocatePodIP(ctx, harness.HostLocal{Network: "pods-" + c.id, Subnet: n.Spec.PodCIDR, ContainerID: "sandbox-0"})
		if err != nil {
			t.Errorf("%s: host-local: %v", c.name, err)
		} else if !cidr.Contains(ip) || !ip.Is6() {
			t.Errorf("%s: host-local gave %s, outside %s", c.name, ip, cidr)
		}
	}

	// The CCM read its region and cluster ID from IMDS and the instance's
	// tags, and signed every EC2 call with the instance role's credentials:
	// it had no other credentials.
	log := ccm.Log()
	for _, want := range []string{`region="eu-west-1"`, `clusterID="ipv6only.k8s.local"`} {
		if !strings.Contains(log, want) {
			t.Errorf("CCM log lacks %s", want)
		}
	}
	if ccm.Exited() {
		t.Fatalf("CCM exited:\n%s", tail(log, 4000))
	}
	noForbidden(t, ccm)
}
