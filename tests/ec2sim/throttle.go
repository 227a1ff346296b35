package ec2sim

import (
	"strings"
	"time"
)

// bucket is a token bucket refilled continuously at rate tokens per second.
type bucket struct {
	capacity, rate, tokens float64
	last                   time.Time
}

func (b *bucket) take(now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.capacity, b.tokens+el*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// unfilteredBucketActions get the smaller bucket when called with no filter
// and no paging (notes §4).
var unfilteredBucketActions = map[string]bool{
	"DescribeInstances": true, "DescribeInstanceStatus": true, "DescribeNetworkInterfaces": true,
	"DescribeSecurityGroups": true, "DescribeSnapshots": true, "DescribeSpotInstanceRequests": true, "DescribeVolumes": true,
}

// namedBuckets are the per-API defaults AWS lists (capacity, refill/s).
var namedBuckets = map[string][2]float64{
	"AssignIpv6Addresses":        {100, 5},
	"AssignPrivateIpAddresses":   {100, 5},
	"UnassignPrivateIpAddresses": {100, 5},
	"CreateTags":                 {100, 10},
	"DeleteTags":                 {100, 10},
	"DescribeInstanceTopology":   {1, 1},
	"CreateNetworkInterface":     {100, 5},
	"DeleteNetworkInterface":     {100, 5},
	// ModifyNetworkInterfaceAttribute is an uncategorized action; the
	// security-group rule actions are "resource-intensive" (their own
	// buckets, same size as other mutating actions).
	"ModifyNetworkInterfaceAttribute": {100, 5},
	"AuthorizeSecurityGroupIngress":   {50, 5},
	"RevokeSecurityGroupIngress":      {50, 5},
}

// UnfilteredSuffix names the small bucket of an unfiltered, unpaginated
// describe in SetBucket, e.g. "DescribeInstances/unfiltered".
const UnfilteredSuffix = "/unfiltered"

// bucketKey picks the bucket a request draws from. Instance or ENI IDs are
// neither a filter nor paging, so an ID-only describe uses the small bucket
// (strict reading of AWS's text).
func bucketKey(action string, p *params) string {
	if !unfilteredBucketActions[action] {
		return action
	}
	if p.has("MaxResults") || p.has("NextToken") {
		return action
	}
	for k := range p.v {
		if strings.HasPrefix(k, "Filter.") {
			return action
		}
	}
	return action + UnfilteredSuffix
}

func defaultBucket(key string) [2]float64 {
	if c, ok := namedBuckets[key]; ok {
		return c
	}
	if strings.HasSuffix(key, UnfilteredSuffix) {
		return [2]float64{50, 10}
	}
	for _, pre := range []string{"Describe", "List", "Search", "Get"} {
		if strings.HasPrefix(key, pre) {
			return [2]float64{100, 20}
		}
	}
	return [2]float64{50, 5}
}

func (s *Sim) takeToken(action string, p *params, now time.Time) bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if !s.throttle {
		return true
	}
	key := bucketKey(action, p)
	b := s.buckets[key]
	if b == nil {
		c, ok := s.bucketCfg[key]
		if !ok {
			c = defaultBucket(key)
		}
		b = &bucket{capacity: c[0], rate: c[1], tokens: c[0], last: now}
		s.buckets[key] = b
	}
	return b.take(now)
}

// SetThrottling switches token-bucket throttling on or off; switching
// refills every bucket.
func (s *Sim) SetThrottling(on bool) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.throttle = on
	clear(s.buckets)
}

// SetBucket overrides one action's bucket (full at once). Use the action
// name plus UnfilteredSuffix for the unfiltered-describe bucket.
func (s *Sim) SetBucket(action string, capacity, refillPerSecond float64) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.bucketCfg[action] = [2]float64{capacity, refillPerSecond}
	delete(s.buckets, action)
}
