package cloud_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cloudprovider "k8s.io/cloud-provider"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/cloud"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/upstream"
)

func instanceID(n int) string { return fmt.Sprintf("i-0%016x", n+1) }
func dnsName(n int) string    { return fmt.Sprintf("ip-10-0-0-%d.ec2.internal", n+1) }

func startSim(t *testing.T, n int) *ec2sim.Sim {
	t.Helper()
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: n, PrePrefixed: true, IPv6Subnet: true, Zones: 1})
	for i := range sc.Instances {
		sc.Instances[i].ID = instanceID(i)
		sc.Instances[i].PrivateDNSName = dnsName(i)
		sc.Instances[i].Tags = map[string]string{"kubernetes.io/cluster/test-cluster": "owned"}
	}
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		t.Fatalf("start ec2sim: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// newCloud builds the provider the way the binary does, from a cloud config
// whose ServiceOverrides point EC2 and IMDS at ec2sim.
func newCloud(t *testing.T, sim *ec2sim.Sim, extra string) *cloud.Cloud {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", ec2sim.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", ec2sim.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	file := fmt.Sprintf(`[Global]
%s
[ServiceOverride "ec2"]
Service = ec2
Region = %[2]s
URL = %[3]s
SigningRegion = %[2]s
[ServiceOverride "imds"]
Service = ec2imds
Region = %[2]s
URL = %[3]s
SigningRegion = %[2]s
`, extra, sim.Region(), sim.Endpoint())
	iface, err := cloudprovider.GetCloudProvider(cloud.ProviderName, strings.NewReader(file))
	if err != nil {
		t.Fatalf("GetCloudProvider: %v", err)
	}
	c, ok := iface.(*cloud.Cloud)
	if !ok {
		t.Fatalf("provider is %T", iface)
	}
	return c
}

func node(name, providerID string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.NodeSpec{ProviderID: providerID}}
}

func TestProviderDiscoversFromIMDS(t *testing.T) {
	sim := startSim(t, 2)
	c := newCloud(t, sim, "")
	if c.Region() != sim.Region() || !c.HasClusterID() || c.ClusterID() != "test-cluster" || !strings.HasPrefix(c.VPC(), "vpc-") {
		t.Errorf("region %q, cluster %q, vpc %q", c.Region(), c.ClusterID(), c.VPC())
	}
	z, err := c.GetZone(t.Context())
	if err != nil || z.Region != sim.Region() || !strings.HasPrefix(z.FailureDomain, sim.Region()) {
		t.Errorf("GetZone = %+v, %v", z, err)
	}
	if _, ok := c.Instances(); ok {
		t.Error("Instances() offered")
	}
	if _, ok := c.LoadBalancer(); !ok {
		t.Error("LoadBalancer() not offered")
	}
	if _, ok := c.Routes(); ok {
		t.Error("Routes() offered")
	}
	if c.Config().IPv6PrefixDelegation != cloud.DelegationOff || c.EC2() == nil {
		t.Error("accessors")
	}
}

func TestConfiguredRegionSkipsIMDS(t *testing.T) {
	sim := startSim(t, 1)
	c := newCloud(t, sim, fmt.Sprintf("Region = %s\nZone = %sa\nVPC = vpc-1\nKubernetesClusterID = cfg-cluster\n", sim.Region(), sim.Region()))
	if c.ClusterID() != "cfg-cluster" || c.VPC() != "vpc-1" {
		t.Errorf("cluster %q vpc %q", c.ClusterID(), c.VPC())
	}
	if n := sim.Calls("DescribeInstances"); n != 0 {
		t.Errorf("%d DescribeInstances at startup with everything configured", n)
	}
}

func TestInstancesV2States(t *testing.T) {
	states := []string{ec2.StatePending, ec2.StateRunning, ec2.StateStopping, ec2.StateStopped, ec2.StateShuttingDown, ec2.StateTerminated}
	sim := startSim(t, len(states))
	c := newCloud(t, sim, "NodeIPFamilies = ipv6\nNodeIPFamilies = ipv4\nIPv6PrefixDelegation = adopt\n")
	for i, st := range states {
		if st != ec2.StateRunning {
			if err := sim.SetInstanceState(instanceID(i), st); err != nil {
				t.Fatal(err)
			}
		}
	}
	// As upstream: only terminated (or unknown) means gone; only stopped means shut down.
	wantExists := map[string]bool{ec2.StatePending: true, ec2.StateRunning: true, ec2.StateStopping: true, ec2.StateStopped: true, ec2.StateShuttingDown: true}
	wantShutdown := map[string]bool{ec2.StateStopped: true}
	for i, st := range states {
		for _, n := range []*v1.Node{
			node("by-provider-id", "aws:///"+sim.Region()+"a/"+instanceID(i)),
			node("by-bare-id", instanceID(i)),
			node(instanceID(i)+"."+sim.Region()+".compute.internal", ""),
			node(dnsName(i), ""),
		} {
			// A terminated instance is "not exists" whether described by ID or,
			// since DNS-name lookups skip terminated instances, unknown by name.
			exists, err := c.InstanceExists(t.Context(), n)
			if err != nil || exists != wantExists[st] {
				t.Errorf("%s node %s: InstanceExists = %v, %v", st, n.Name, exists, err)
			}
			down, err := c.InstanceShutdown(t.Context(), n)
			if err != nil || down != wantShutdown[st] {
				t.Errorf("%s node %s: InstanceShutdown = %v, %v", st, n.Name, down, err)
			}
		}
	}

	md, err := c.InstanceMetadata(t.Context(), node(dnsName(1), ""))
	if err != nil {
		t.Fatalf("InstanceMetadata: %v", err)
	}
	// Expected values from ec2sim's state and tests/upstream's model.
	in, _ := sim.State().Instance(instanceID(1))
	wantPID := upstream.ProviderID(in)
	if md.ProviderID != wantPID || md.InstanceType != in.Type || md.Zone != in.Zone || md.Region != sim.Region() ||
		!maps.Equal(md.AdditionalLabels, map[string]string{cloud.LabelZoneID: in.ZoneID}) {
		t.Errorf("metadata %+v, want providerID %s, type %s, zone %s (%s)", md, wantPID, in.Type, in.Zone, in.ZoneID)
	}
	// NodeIPFamilies ipv6, ipv4: each ENI's primary IPv6 address, then upstream's IPv4 list.
	var want []v1.NodeAddress
	for _, e := range in.ENIs {
		for _, a := range e.IPv6 {
			if a.Primary || len(e.IPv6) == 1 {
				want = append(want, v1.NodeAddress{Type: v1.NodeInternalIP, Address: a.Address})
			}
		}
	}
	if want = append(want, upstream.IPv4Addresses(in)...); !slices.Equal(md.NodeAddresses, want) {
		t.Errorf("addresses\n got  %v\n want %v", md.NodeAddresses, want)
	}
	labelled := node("x", wantPID)
	labelled.Labels = map[string]string{cloud.LabelZoneID: "already"}
	if md, err := c.InstanceMetadata(t.Context(), labelled); err != nil || md.ProviderID != wantPID || md.AdditionalLabels != nil {
		t.Errorf("existing providerID and label: %+v, %v", md, err)
	}

	unknown := node("gone", "aws:///"+sim.Region()+"a/i-0fffffffffffffff0")
	if exists, err := c.InstanceExists(t.Context(), unknown); err != nil || exists {
		t.Errorf("unknown instance: exists %v, %v", exists, err)
	}
	if down, err := c.InstanceShutdown(t.Context(), unknown); err != nil || down {
		t.Errorf("unknown instance: shutdown %v, %v", down, err)
	}
	if _, err := c.InstanceMetadata(t.Context(), unknown); !errors.Is(err, cloudprovider.InstanceNotFound) {
		t.Errorf("unknown instance metadata: %v, want InstanceNotFound", err)
	}
	for _, pid := range []string{"gce://p/z/i", "aws:///z/not-an-id"} {
		if _, err := c.InstanceExists(t.Context(), node("bad", pid)); err == nil {
			t.Errorf("providerID %q accepted", pid)
		}
	}
	z, err := c.GetZoneByProviderID(t.Context(), wantPID)
	if err != nil || z.FailureDomain != md.Zone {
		t.Errorf("GetZoneByProviderID = %+v, %v", z, err)
	}
	z, err = c.GetZoneByNodeName(t.Context(), "ip-10-0-0-2.ec2.internal")
	if err != nil || z.FailureDomain != md.Zone {
		t.Errorf("GetZoneByNodeName = %+v, %v", z, err)
	}
}

func TestConcurrentInstanceMetadataBatches(t *testing.T) {
	const n = 500
	sim := startSim(t, n)
	c := newCloud(t, sim, fmt.Sprintf("Region = %s\nZone = %sa\nVPC = vpc-1\nKubernetesClusterID = c\n", sim.Region(), sim.Region()))
	before := sim.Calls("DescribeInstances")
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			md, err := c.InstanceMetadata(t.Context(), node(dnsName(i), "aws:///"+sim.Region()+"a/"+instanceID(i)))
			if err == nil && !strings.HasSuffix(md.ProviderID, instanceID(i)) {
				err = fmt.Errorf("node %d got %s", i, md.ProviderID)
			}
			errs <- err
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := sim.Calls("DescribeInstances") - before; got > 2 {
		t.Errorf("%d concurrent InstanceMetadata cost %d DescribeInstances, want ≤ 2", n, got)
	}
	t.Logf("%d InstanceMetadata in %v", n, time.Since(t0))
}

// The lifecycle controller asks about NotReady nodes: their answers come
// from EC2, not from the 30 s instance cache, and InstanceExists followed by
// InstanceShutdown costs one describe. A Ready node may be answered from the
// cache.
func TestLifecycleLookupsOfNotReadyNodesAreFresh(t *testing.T) {
	sim := startSim(t, 2)
	c := newCloud(t, sim, "")
	byID := node("by-id", "aws:///"+sim.Region()+"a/"+instanceID(0))
	byName := node(dnsName(1), "")
	readyNode := node("ready", "aws:///"+sim.Region()+"a/"+instanceID(0))
	readyNode.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
	for _, n := range []*v1.Node{byID, byName} {
		if exists, err := c.InstanceExists(t.Context(), n); err != nil || !exists {
			t.Fatalf("node %s: exists %v, %v", n.Name, exists, err)
		}
	}
	if err := sim.SetInstanceState(instanceID(0), ec2.StateStopped); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetInstanceState(instanceID(1), ec2.StateTerminated); err != nil {
		t.Fatal(err)
	}
	sim.ResetCounts()
	if down, err := c.InstanceShutdown(t.Context(), readyNode); err != nil || down {
		t.Errorf("Ready node: shutdown %v, %v; want the cached running state", down, err)
	}
	if got := sim.Calls("DescribeInstances"); got != 0 {
		t.Errorf("a Ready node's lookup cost %d describes, want 0 (cached)", got)
	}
	time.Sleep(cloud.LifecycleMaxAge + 100*time.Millisecond) // past the lifecycle lookups' max age
	if exists, err := c.InstanceExists(t.Context(), byID); err != nil || !exists {
		t.Errorf("stopped instance: exists %v, %v", exists, err)
	}
	if down, err := c.InstanceShutdown(t.Context(), byID); err != nil || !down {
		t.Errorf("NotReady node of a stopped instance: shutdown %v, %v; want true at once", down, err)
	}
	if got := sim.Calls("DescribeInstances"); got != 1 {
		t.Errorf("InstanceExists then InstanceShutdown cost %d describes, want 1", got)
	}
	if exists, err := c.InstanceExists(t.Context(), byName); err != nil || exists {
		t.Errorf("NotReady node of a terminated instance (by name): exists %v, %v; want false at once", exists, err)
	}
}

// The lifecycle controller walks NotReady nodes one at a time, every
// monitor period. After its first pass has announced them, a later pass
// costs one describe per kind of lookup (IDs, names), not one per node,
// and every answer is still fresh: a state change made just before the
// pass is seen by it. A node that turns Ready is withdrawn.
func TestLifecyclePassOverNotReadyNodesBatches(t *testing.T) {
	const n = 40
	sim := startSim(t, n)
	c := newCloud(t, sim, "")
	var nodes []*v1.Node
	for i := range n {
		if i%4 == 0 {
			nodes = append(nodes, node(dnsName(i), "")) // found by private DNS name
		} else {
			nodes = append(nodes, node(fmt.Sprintf("n%d", i), "aws:///"+sim.Region()+"a/"+instanceID(i)))
		}
	}
	pass := func() map[string]bool {
		down := map[string]bool{}
		for _, nd := range nodes {
			if _, err := c.InstanceExists(t.Context(), nd); err != nil {
				t.Fatalf("%s: %v", nd.Name, err)
			}
			d, err := c.InstanceShutdown(t.Context(), nd)
			if err != nil {
				t.Fatalf("%s: %v", nd.Name, err)
			}
			down[nd.Name] = d
		}
		return down
	}
	pass()
	time.Sleep(cloud.LifecycleMaxAge + 100*time.Millisecond) // past the lifecycle lookups' max age
	for _, i := range []int{4, 5} {                          // one found by name, one by ID
		if err := sim.SetInstanceState(instanceID(i), ec2.StateStopped); err != nil {
			t.Fatal(err)
		}
	}
	sim.ResetCounts()
	down := pass()
	if got := sim.Calls("DescribeInstances"); got != 2 {
		t.Errorf("second pass over %d NotReady nodes cost %d describes, want 2 (one by ID, one by name)", n, got)
	}
	for i, nd := range nodes {
		if want := i == 4 || i == 5; down[nd.Name] != want {
			t.Errorf("%s: shutdown %v, want %v", nd.Name, down[nd.Name], want)
		}
	}
	nodes[1].Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
	if _, err := c.InstanceExists(t.Context(), nodes[1]); err != nil {
		t.Fatal(err)
	}
	if got, want := c.EC2().StateSizes()["expectations"], n-1; got != want {
		t.Errorf("%d expectations after one node turned Ready, want %d", got, want)
	}
}
