package ec2sim

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

func TestThrottlingRetriedBySDK(t *testing.T) {
	sim, _ := newTestSim(t, Options{Throttling: true})
	sim.SetBucket("DescribeInstances"+UnfilteredSuffix, 2, 50)
	// The standard retryer, with room for unlucky jitter: 8 callers race
	// for 2 tokens, and a retry with near-zero backoff can lose again.
	c := ec2.NewFromConfig(sim.AWSConfig(), func(o *ec2.Options) {
		o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 10)
	})
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			wantCode(t, err, "RequestLimitExceeded")
		}
	}
	counts := sim.Counts()["DescribeInstances"]
	if counts["throttled"] == 0 {
		t.Fatalf("no throttled calls: %v", counts)
	}
	// Every call succeeded, so each throttled attempt was retried. (The SDK
	// occasionally re-sends after a 200 whose body read it aborted itself,
	// so successes may exceed n.)
	if failed > 0 || counts["success"] < n || sim.Calls("DescribeInstances") != counts["success"]+counts["throttled"] {
		t.Errorf("counts %v with %d failed calls: the SDK did not retry", counts, failed)
	}
	// A filtered describe draws from the other (untouched) bucket.
	if _, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{idPre}}}}); err != nil {
		t.Errorf("filtered describe: %v", err)
	}
}

func TestDefaultBuckets(t *testing.T) {
	p := func(body string) *params {
		ps, err := parseForm(body)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	tests := []struct {
		action, body string
		want         [2]float64
	}{
		{"DescribeInstances", "", [2]float64{50, 10}},
		{"DescribeInstances", "InstanceId.1=i-12345678", [2]float64{50, 10}},
		{"DescribeInstances", "Filter.1.Name=a&Filter.1.Value.1=b", [2]float64{100, 20}},
		{"DescribeInstances", "MaxResults=5", [2]float64{100, 20}},
		{"DescribeNetworkInterfaces", "", [2]float64{50, 10}},
		{"DescribeSubnets", "", [2]float64{100, 20}},
		{"AssignIpv6Addresses", "", [2]float64{100, 5}},
		{"UnassignIpv6Addresses", "", [2]float64{50, 5}},
		{"CreateTags", "", [2]float64{100, 10}},
	}
	for _, tc := range tests {
		if got := defaultBucket(bucketKey(tc.action, p(tc.body))); got != tc.want {
			t.Errorf("%s %q: bucket %v, want %v", tc.action, tc.body, got, tc.want)
		}
	}
}

func TestFaultErrorRate(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	sim.SetFault("DescribeSubnets", Fault{ErrorRate: 1})
	_, err := c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{})
	wantCode(t, err, "InternalError")
	if n := sim.Counts()["DescribeSubnets"]["InternalError"]; n != 3 {
		t.Errorf("InternalError attempts = %d, want 3 (SDK retries 500s)", n)
	}
	sim.SetFault("*", Fault{ErrorRate: 1, Code: "InvalidInstanceID.NotFound"})
	_, err = c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	wantCode(t, err, "InvalidInstanceID.NotFound")
	if n := sim.Calls("DescribeInstances"); n != 1 {
		t.Errorf("DescribeInstances calls = %d, want 1 (400s are not retried)", n)
	}
	sim.ClearFaults()
	if _, err := c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{}); err != nil {
		t.Errorf("after ClearFaults: %v", err)
	}
}

func TestFaultLatency(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	sim.SetFault("DescribeVpcs", Fault{Latency: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}, func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
	if err == nil {
		t.Fatal("call with a 100ms deadline succeeded despite 300ms latency")
	}
	start := time.Now()
	if _, err := c.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatalf("describe: %v", err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("call took %v, want >= 300ms", el)
	}
}

func TestConsistencyLag(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	sim.SetFault("DescribeInstances", Fault{ConsistencyLag: time.Hour})
	id, err := sim.AddInstance(Instance{Subnet: "subnet-0aaaaaaaaaaaaaaa1", Tags: map[string]string{"Name": "new"}})
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	_, err = c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
	out, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(primaryENIOf(t, sim, idBare)), Ipv6PrefixCount: aws.Int32(1)})
	if err != nil || len(out.AssignedIpv6Prefixes) != 1 {
		t.Fatalf("assign: %v %+v", err, out)
	}
	d, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{idBare}})
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if n := len(d.Reservations[0].Instances[0].NetworkInterfaces[0].Ipv6Prefixes); n != 0 {
		t.Errorf("lagging describe shows %d prefixes, want 0", n)
	}
	sim.ClearFaults()
	d, err = c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{idBare, id}})
	if err != nil {
		t.Fatalf("describe after lag: %v", err)
	}
	if len(d.Reservations) != 2 || len(d.Reservations[0].Instances[0].NetworkInterfaces[0].Ipv6Prefixes) != 1 {
		t.Errorf("after the lag: %d reservations, prefixes %v", len(d.Reservations), d.Reservations[0].Instances[0].NetworkInterfaces[0].Ipv6Prefixes)
	}
}

func TestTerminationAndStates(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	eni := primaryENIOf(t, sim, idBare)
	sim.ScheduleTermination(idBare, 10*time.Millisecond)
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		st, _ := sim.State().Instance(idBare)
		return st.State == "terminated", nil
	})
	if err != nil {
		t.Fatalf("instance not terminated: %v", err)
	}
	d, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{idBare}})
	if err != nil {
		t.Fatalf("describe terminated: %v", err)
	}
	in := d.Reservations[0].Instances[0]
	if in.State.Name != types.InstanceStateNameTerminated || aws.ToInt32(in.State.Code) != 48 ||
		len(in.NetworkInterfaces) != 0 || aws.ToString(in.PrivateDnsName) != "" {
		t.Errorf("terminated instance = state %v, %d ENIs, dns %q", in.State.Name, len(in.NetworkInterfaces), aws.ToString(in.PrivateDnsName))
	}
	_, err = c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(eni), Ipv6PrefixCount: aws.Int32(1)})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	if err := sim.SetInstanceState(idBare, "running"); err == nil {
		t.Error("a terminated instance was restarted")
	}
	if err := sim.SetInstanceState(idPre, "stopped"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	d, err = c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"stopped"}}}})
	if err != nil {
		t.Fatalf("describe stopped: %v", err)
	}
	if got := ids(d); len(got) != 2 {
		t.Errorf("stopped instances = %v, want 2", got)
	}
}

func TestPolicy(t *testing.T) {
	pol := []byte(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"},
	  {"Effect":"Allow","Action":["ec2:AssignIpv6Addresses","ec2:CreateTags"],"Resource":"arn:aws:ec2:*:*:network-interface/*"},
	  {"Effect":"Deny","Action":"ec2:DescribeVpcs","Resource":"*"}]}`)
	sim, c := newTestSim(t, Options{Policy: pol})
	if _, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("allowed describe: %v", err)
	}
	_, err := c.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
	wantCode(t, err, "UnauthorizedOperation")
	_, err = c.UnassignIpv6Addresses(t.Context(), &ec2.UnassignIpv6AddressesInput{NetworkInterfaceId: aws.String(eniPre), Ipv6Prefixes: []string{"2600:1f18:4000:a901:1234::/80"}})
	wantCode(t, err, "UnauthorizedOperation")
	if _, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(primaryENIOf(t, sim, idBare)), Ipv6PrefixCount: aws.Int32(1)}); err != nil {
		t.Errorf("allowed assign: %v", err)
	}
	_, err = c.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{idPre}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
	wantCode(t, err, "UnauthorizedOperation")
	if n := sim.Counts()["DescribeVpcs"]["UnauthorizedOperation"]; n != 1 {
		t.Errorf("UnauthorizedOperation count = %d", n)
	}
	for _, bad := range []string{`{}`, `{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"a":"b"}}}}`} {
		if _, err := parsePolicy([]byte(bad)); err == nil {
			t.Errorf("policy %s accepted", bad)
		}
	}
}

func TestSingleStatementPolicy(t *testing.T) {
	pol, err := parsePolicy([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}}`))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if !pol.allows("DescribeInstances", []string{"*"}) || pol.allows("DescribeSubnets", []string{"*"}) {
		t.Error("single-statement policy evaluated wrongly")
	}
}

// TestShippedPolicy checks the project's IAM policy against the emulator.
func TestShippedPolicy(t *testing.T) {
	data, err := os.ReadFile("../../manifests/iam/policy.json")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no manifests/iam/policy.json")
	}
	if err != nil {
		t.Fatal(err)
	}
	pol, err := parsePolicy(data)
	if err != nil {
		t.Fatalf("shipped policy: %v", err)
	}
	if !pol.allows("DescribeInstances", []string{"*"}) ||
		!pol.allows("AssignIpv6Addresses", []string{"arn:aws:ec2:us-east-1:111122223333:network-interface/eni-0123456789abcdef0"}) {
		t.Error("shipped policy does not allow DescribeInstances and AssignIpv6Addresses")
	}
}

// TestLostReply: a lost reply takes effect and answers 500 InternalError, so
// a caller cannot tell it from a call that did nothing.
func TestLostReply(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	sim.SetFault("AssignIpv6Addresses", Fault{LostReplyRate: 1})
	eni := primaryENIOf(t, sim, idBare)
	_, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6PrefixCount: aws.Int32(1)},
		func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
	wantCode(t, err, "InternalError")
	var prefixes []string
	for _, in := range sim.State().Instances {
		for _, e := range in.ENIs {
			if e.ID == eni {
				prefixes = e.IPv6Prefixes
			}
		}
	}
	if len(prefixes) != 1 {
		t.Errorf("ENI prefixes %v after a lost reply, want the one the call assigned", prefixes)
	}
	if got := sim.Counts()["AssignIpv6Addresses"]["InternalError"]; got != 1 {
		t.Errorf("counted %d InternalError, want 1", got)
	}
}

// TestReplyLatency: the call takes effect before its delayed answer, so a
// client that gives up meanwhile has changed the world without knowing it.
func TestReplyLatency(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	sim.SetFault("AssignIpv6Addresses", Fault{ReplyLatency: time.Hour})
	eni := primaryENIOf(t, sim, idBare)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := c.AssignIpv6Addresses(ctx, &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6PrefixCount: aws.Int32(1)},
		func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
	if err == nil {
		t.Fatal("the delayed answer arrived")
	}
	for _, in := range sim.State().Instances {
		for _, e := range in.ENIs {
			if e.ID == eni && len(e.IPv6Prefixes) != 1 {
				t.Errorf("ENI prefixes %v, want the one the unanswered call assigned", e.IPv6Prefixes)
			}
		}
	}
}
