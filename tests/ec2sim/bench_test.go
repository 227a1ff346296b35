package ec2sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// BenchmarkDescribeInstances drives DescribeInstances through the real SDK
// over HTTP against 5,000 instances and reports requests per second.
func BenchmarkDescribeInstances(b *testing.B) {
	sim, err := Start(Options{Scenario: GenerateScenario(Generate{Instances: 5000, IPv6Subnet: true, PrePrefixed: true})})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	st := sim.State()
	cfg := sim.AWSConfig()
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	c := ec2.NewFromConfig(cfg)
	run := func(b *testing.B, in func(i int) *ec2.DescribeInstancesInput, want int) {
		var n atomic.Int64
		b.SetParallelism(4) // overlap the SDK's client-side work with I/O
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(n.Add(1))
				out, err := c.DescribeInstances(b.Context(), in(i))
				if err != nil {
					b.Error(err)
					return
				}
				if got := len(out.Reservations); got != want {
					b.Errorf("got %d reservations, want %d", got, want)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	}
	b.Run("ByID", func(b *testing.B) {
		run(b, func(i int) *ec2.DescribeInstancesInput {
			return &ec2.DescribeInstancesInput{InstanceIds: []string{st.Instances[i%5000].ID}}
		}, 1)
	})
	b.Run("ByDNSName20", func(b *testing.B) {
		run(b, func(i int) *ec2.DescribeInstancesInput {
			names := make([]string, 20)
			for k := range names {
				names[k] = st.Instances[(i*20+k)%5000].PrivateDNSName
			}
			return &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("private-dns-name"), Values: names}}}
		}, 20)
	})
	b.Run("Page1000", func(b *testing.B) {
		run(b, func(i int) *ec2.DescribeInstancesInput {
			return &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000),
				Filters: []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}}
		}, 1000)
	})
}

// BenchmarkServeDescribeInstances measures the server alone: signed
// requests by instance ID through ServeHTTP, no SDK client and no sockets.
func BenchmarkServeDescribeInstances(b *testing.B) {
	sim, err := Start(Options{Scenario: GenerateScenario(Generate{Instances: 5000, IPv6Subnet: true, PrePrefixed: true})})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	st := sim.State()
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := st.Instances[int(n.Add(1))%5000].ID
			body := "Action=DescribeInstances&InstanceId.1=" + id + "&Version=2016-11-15"
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			signRequest(b, req, body)
			rec := httptest.NewRecorder()
			sim.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
