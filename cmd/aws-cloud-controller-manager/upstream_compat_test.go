package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/names"
	genericcontrollermanager "k8s.io/controller-manager/app"
)

const upstreamFacts = "testdata/upstream-v1.37.1"

// readFacts returns the non-comment lines of a testdata file.
func readFacts(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(upstreamFacts, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUpstreamFlagsDeclared: every flag upstream v1.37.1's --help lists is
// one of ours, with the type --help shows.
func TestUpstreamFlagsDeclared(t *testing.T) {
	cmd, err := newCommand()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range readFacts(t, "flags.txt") {
		name, typ, _ := strings.Cut(l, " ")
		f := cmd.Flags().Lookup(name)
		if f == nil {
			t.Errorf("upstream flag --%s is not accepted", name)
			continue
		}
		got, _ := pflag.UnquoteUsage(f)
		got, _, _ = strings.Cut(got, "=") // "pattern=N,..." → "pattern"
		if got == "" {
			got = "bool"
		}
		if got != typ {
			t.Errorf("--%s: type %q, upstream %q", name, got, typ)
		}
	}
}

// TestUpstreamControllerNames: every controller name and alias upstream
// accepts in --controllers passes our validation, and each one we do not
// implement starts as "accepted, not running" instead of failing.
func TestUpstreamControllerNames(t *testing.T) {
	m := controllerInitializers(nil, &nodeIPAMOptions{maskSizeIPv4: defaultNodeCIDRMaskSizeIPv4})
	aliases := names.CCMControllerAliases()
	aliases["tagging"] = "tagging"
	for _, name := range readFacts(t, "controllers.txt") {
		canonical := name
		if a, ok := aliases[name]; ok {
			canonical = a
		}
		c, ok := m[canonical]
		if !ok {
			t.Errorf("controller %q (%q) unknown", name, canonical)
			continue
		}
		if why, ok := notImplemented[canonical]; ok {
			_, started, err := c.Constructor(c.InitContext, nil, nil)(context.Background(), genericcontrollermanager.ControllerContext{})
			if err != nil || started || why == "" {
				t.Errorf("%s: started %v, err %v; want accepted with a reason and not started", name, started, err)
			}
		}
	}
	if !app.ControllersDisabledByDefault.Has("tagging") {
		t.Error("tagging is enabled by default; upstream has it off")
	}
}

// sampleValue is the value the command line test gives a flag: its default
// spelled so that it parses again, or a valid sample where the default is
// an empty list.
func sampleValue(f *pflag.Flag, dir string) (string, bool) {
	switch f.Name {
	case "help", "version":
		return "", false // they print and exit; TestHelpAndVersion runs them
	case "controllers":
		return "*,tagging", true
	case "tags":
		return "team=ipv6,env=test", true
	case "resources":
		return "instance", true
	case "kubeconfig":
		return filepath.Join(dir, "kubeconfig"), true
	case "cloud-config":
		return filepath.Join(dir, "cloud.conf"), true
	case "secure-port":
		return "0", true // serve nothing
	case "cert-dir":
		return dir, true
	case "feature-gates":
		return "AllAlpha=false", true
	case "tls-cipher-suites", "webhook-tls-cipher-suites":
		return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", true
	case "tls-curve-preferences", "webhook-tls-curve-preferences":
		return "23", true
	case "requestheader-allowed-names":
		return "front-proxy-client", true
	case "requestheader-uid-headers":
		return "X-Remote-Uid", true
	case "tls-sni-cert-key", "webhook-tls-sni-cert-key":
		return "", false // needs real certificate files
	}
	v := f.DefValue
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		v = strings.Trim(v, "[]")
		if v == "" {
			return "", false
		}
	}
	return v, true
}

// TestUpstreamCommandLineStarts runs the binary with every upstream flag
// set and --controllers=*,tagging: flag parsing and validation pass, the
// flags without effect here are each named in a warning, and start-up gets
// as far as the cloud provider (which, with no EC2 here, is where it stops).
func TestUpstreamCommandLineStarts(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	// A cloud config with every upstream key; the load balancer and route keys
	// are accepted and reported as ignored.
	cloudConf := `[Global]
Zone = eu-west-1a
Region = eu-west-1
VPC = vpc-0123456789abcdef0
SubnetID = subnet-0123456789abcdef0
RouteTableID = rtb-0123456789abcdef0
RoleARN = arn:aws:iam::123456789012:role/ccm
SourceARN = arn:aws:eks:eu-west-1:123456789012:cluster/test
KubernetesClusterTag = test
KubernetesClusterID = test
DisableSecurityGroupIngress = false
ElbSecurityGroup = sg-0123456789abcdef0
NodeIPFamilies = ipv4
ClusterServiceLoadBalancerHealthProbeMode = Shared
ClusterServiceSharedLoadBalancerHealthProbePort = 10256
ClusterServiceSharedLoadBalancerHealthProbePath = /healthz
SupportedTopologyInstanceTypePattern = "^p5\\..*$"
NLBSecurityGroupMode = Managed
[ServiceOverride "1"]
Service = ec2
Region = eu-west-1
URL = https://127.0.0.1:1
SigningRegion = eu-west-1
SigningMethod = v4
SigningName = ec2
`
	for _, k := range readFacts(t, "cloud-config-keys.txt") {
		_, key, _ := strings.Cut(k, ".")
		if !strings.Contains(cloudConf, "\n"+key+" = ") {
			t.Errorf("the test's cloud config lacks upstream's key %s", k)
		}
	}
	for name, body := range map[string]string{"kubeconfig": kubeconfig, "cloud.conf": cloudConf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd, err := newCommand()
	if err != nil {
		t.Fatal(err)
	}
	var args, skipped []string
	for _, l := range readFacts(t, "flags.txt") {
		name, _, _ := strings.Cut(l, " ")
		f := cmd.Flags().Lookup(name)
		if f == nil {
			t.Fatalf("--%s missing (see TestUpstreamFlagsDeclared)", name)
		}
		v, ok := sampleValue(f, dir)
		if !ok {
			skipped = append(skipped, name)
			continue
		}
		args = append(args, "--"+name+"="+v)
	}
	t.Logf("not given (print-and-exit, or need files): %v", skipped)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	run := exec.CommandContext(ctx, os.Args[0], args...)
	run.Env = append(os.Environ(), "ACCM_TEST_RUN_MAIN=1", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	// Start-up is over once the command line, the cloud config and the
	// provider are accepted and the binary waits for its leader lease (the
	// kubeconfig points nowhere): stop it there.
	const reached = "Attempting to acquire leader lease"
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	run.Stdout, run.Stderr = pw, pw
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var b strings.Builder
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), reached) {
			cancel()
		}
	}
	_ = run.Wait() // killed by cancel, or exited on its own
	log := b.String()
	if !strings.Contains(log, reached) {
		t.Errorf("start-up did not reach leader election")
	}
	for _, bad := range []string{"unknown flag", "invalid argument", "not in the list of known controllers", "unknown controller"} {
		if strings.Contains(log, bad) {
			t.Errorf("start-up refused the upstream command line (%q):\n%s", bad, log)
		}
	}
	for name := range noEffectFlags {
		if !strings.Contains(log, "Flag --"+name+" is accepted for compatibility") {
			t.Errorf("no start-up warning for --%s", name)
		}
	}
	if !strings.Contains(log, "Ignoring cloud config keys") {
		t.Errorf("no log line for the ignored cloud config keys")
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", log)
	}
}
