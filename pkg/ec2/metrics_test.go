package ec2_test

import (
	"testing"

	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// metricValue returns the value of the counter (or the sample count of the
// histogram) name with exactly the given labels, 0 when absent.
func metricValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// TestMetricsCountCallsAndAttempts scrapes the registry the CCM serves on
// /metrics: one throttled call is one request, three attempts and three
// throttles; a successful call is one ok request with a latency sample.
func TestMetricsCountCallsAndAttempts(t *testing.T) {
	sim := startSim(t, 1, false)
	c := newClient(t, sim, ec2.Config{})
	op := map[string]string{"operation": "DescribeInstances"}
	throttled := map[string]string{"operation": "DescribeInstances", "code": "RequestLimitExceeded"}
	ok := map[string]string{"operation": "DescribeInstances", "code": "ok"}
	before := map[string]float64{
		"req": metricValue(t, "cloudprovider_aws_api_requests_total", throttled),
		"att": metricValue(t, "cloudprovider_aws_api_attempts_total", throttled),
		"thr": metricValue(t, "cloudprovider_aws_api_throttled_requests_total", op),
		"ok":  metricValue(t, "cloudprovider_aws_api_requests_total", ok),
		"dur": metricValue(t, "cloudprovider_aws_api_request_duration_seconds", op),
		"bat": metricValue(t, "cloudprovider_aws_instance_batch_size", nil),
	}

	sim.SetFault("DescribeInstances", ec2sim.Fault{ErrorRate: 1, Code: "RequestLimitExceeded"})
	if _, err := c.InstanceByID(t.Context(), instanceID(0)); !ec2.IsThrottle(err) {
		t.Fatalf("err = %v, want a throttle", err)
	}
	sim.ClearFaults()
	if _, err := c.InstanceByID(t.Context(), instanceID(0)); err != nil {
		t.Fatal(err)
	}

	for key, want := range map[string]struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		"req": {"cloudprovider_aws_api_requests_total", throttled, 1},
		"att": {"cloudprovider_aws_api_attempts_total", throttled, 3},
		"thr": {"cloudprovider_aws_api_throttled_requests_total", op, 3},
		"ok":  {"cloudprovider_aws_api_requests_total", ok, 1},
		"dur": {"cloudprovider_aws_api_request_duration_seconds", op, 2},
		"bat": {"cloudprovider_aws_instance_batch_size", nil, 2},
	} {
		if got := metricValue(t, want.name, want.labels) - before[key]; got != want.delta {
			t.Errorf("%s%v grew by %v, want %v", want.name, want.labels, got, want.delta)
		}
	}
}
