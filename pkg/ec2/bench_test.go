package ec2_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

func benchSim(b *testing.B, n int) *ec2sim.Sim {
	b.Helper()
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: n, PrePrefixed: true, IPv6Subnet: true})
	for i := range sc.Instances {
		sc.Instances[i].ID = instanceID(i)
		sc.Instances[i].PrivateDNSName = fmt.Sprintf("ip-node-%d.ec2.internal", i)
	}
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sim.Close)
	return sim
}

func benchClient(b *testing.B, sim *ec2sim.Sim, cfg ec2.Config) *ec2.Client {
	b.Helper()
	cfg.DescribeQPS, cfg.DescribeBurst = 1e6, 1e6
	c, err := ec2.NewFromAWSConfig(fastRetries(sim.AWSConfig()), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkCachedLookup measures the cache-hit path under parallel callers:
// lookups by ID and by name, all answered from the cache.
func BenchmarkCachedLookup(b *testing.B) {
	const n = 1000
	sim := benchSim(b, n)
	c := benchClient(b, sim, ec2.Config{CacheTTL: time.Hour, BatchWindow: time.Millisecond})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = instanceID(i)
	}
	if _, err := c.Instances(b.Context(), ids); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	next := 0
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		i := next
		next += 7919
		mu.Unlock()
		for pb.Next() {
			i++
			var err error
			if i%2 == 0 {
				_, err = c.InstanceByID(b.Context(), ids[i%n])
			} else {
				_, err = c.InstanceByPrivateDNSName(b.Context(), fmt.Sprintf("ip-node-%d.ec2.internal", i%n))
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkConcurrentMisses measures one burst of 300 concurrent uncached
// lookups (by ID) on a fresh client: batching, one describe, answering.
func BenchmarkConcurrentMisses(b *testing.B) {
	const n = 300
	sim := benchSim(b, n)
	b.ResetTimer()
	for range b.N {
		c := benchClient(b, sim, ec2.Config{CacheTTL: time.Hour, BatchWindow: time.Millisecond})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.InstanceByID(b.Context(), instanceID(i)); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
}

// BenchmarkRideAlong measures sequential lookups of 1000 announced
// instances: the first describes them all, the rest are cache hits.
func BenchmarkRideAlong(b *testing.B) {
	const n = 1000
	sim := benchSim(b, n)
	b.ResetTimer()
	for range b.N {
		c := benchClient(b, sim, ec2.Config{CacheTTL: time.Hour, BatchWindow: time.Millisecond})
		for i := range n {
			c.Expect(instanceID(i), instanceID(i), "")
		}
		for i := range n {
			if _, err := c.InstanceByID(b.Context(), instanceID(i)); err != nil {
				b.Fatal(err)
			}
			c.Unexpect(instanceID(i))
		}
	}
}
