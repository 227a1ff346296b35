package ec2sim

import (
	"maps"
	"slices"
	"time"
)

// ELBv2State is a JSON-able snapshot of the account's ELBv2 resources
// (admin route GET /_ec2sim/elbv2).
type ELBv2State struct {
	LoadBalancers []LoadBalancer `json:"loadBalancers"`
	// TargetGroups are all target groups, attached or not.
	TargetGroups []TargetGroup `json:"targetGroups"`
}

// LoadBalancer is one Network Load Balancer with its listeners and the
// target groups they forward to.
type LoadBalancer struct {
	ARN                   string `json:"arn"`
	Name                  string `json:"name"`
	DNSName               string `json:"dnsName"`
	CanonicalHostedZoneID string `json:"canonicalHostedZoneID"`
	Type                  string `json:"type"`   // always "network"
	Scheme                string `json:"scheme"` // internet-facing or internal
	IPAddressType         string `json:"ipAddressType"`
	// EnablePrefixForIPv6SourceNAT is "on", "off" or "" (not dualstack).
	EnablePrefixForIPv6SourceNAT string            `json:"enablePrefixForIPv6SourceNAT,omitempty"`
	VPC                          string            `json:"vpc"`
	State                        string            `json:"state"`   // provisioning or active
	Subnets                      []string          `json:"subnets"` // in the order given
	Zones                        []string          `json:"zones"`   // zone of each subnet
	SecurityGroups               []string          `json:"securityGroups,omitempty"`
	Created                      time.Time         `json:"created"`
	Tags                         map[string]string `json:"tags"`
	Attributes                   map[string]string `json:"attributes"`
	Listeners                    []Listener        `json:"listeners"`
	// TargetGroups are the groups its listeners forward to, with targets.
	TargetGroups []TargetGroup `json:"targetGroups"`
}

// Listener is one listener and the target group its forward action uses.
type Listener struct {
	ARN             string            `json:"arn"`
	LoadBalancerARN string            `json:"loadBalancerARN"`
	Port            int               `json:"port"`
	Protocol        string            `json:"protocol"`
	TargetGroupARN  string            `json:"targetGroupARN"`
	Certificates    []string          `json:"certificates,omitempty"`
	SSLPolicy       string            `json:"sslPolicy,omitempty"`
	Tags            map[string]string `json:"tags"`
}

// TargetGroup is one target group with its registered (and draining)
// targets.
type TargetGroup struct {
	ARN              string            `json:"arn"`
	Name             string            `json:"name"`
	Protocol         string            `json:"protocol"`
	Port             int               `json:"port"`
	VPC              string            `json:"vpc"`
	TargetType       string            `json:"targetType"`    // instance or ip
	IPAddressType    string            `json:"ipAddressType"` // ipv4 or ipv6
	LoadBalancerARNs []string          `json:"loadBalancerARNs"`
	HealthCheck      HealthCheck       `json:"healthCheck"`
	Attributes       map[string]string `json:"attributes"`
	Tags             map[string]string `json:"tags"`
	Targets          []Target          `json:"targets"`
}

// HealthCheck is a target group's health check settings.
type HealthCheck struct {
	Enabled            bool   `json:"enabled"`
	Protocol           string `json:"protocol"`
	Port               string `json:"port"` // "traffic-port" or a number
	Path               string `json:"path,omitempty"`
	Matcher            string `json:"matcher,omitempty"`
	IntervalSeconds    int    `json:"intervalSeconds"`
	TimeoutSeconds     int    `json:"timeoutSeconds"`
	HealthyThreshold   int    `json:"healthyThreshold"`
	UnhealthyThreshold int    `json:"unhealthyThreshold"`
}

// Target is one registered target with its health as DescribeTargetHealth
// reports it now.
type Target struct {
	ID               string `json:"id"`
	Port             int    `json:"port"`
	AvailabilityZone string `json:"availabilityZone"`
	State            string `json:"state"` // initial, healthy, unhealthy, unused, draining
	Reason           string `json:"reason,omitempty"`
}

// ELBv2 returns a snapshot of every load balancer and target group.
func (s *Sim) ELBv2() ELBv2State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, now := s.w.elbv2(), time.Now()
	st.prune(now)
	out := ELBv2State{LoadBalancers: []LoadBalancer{}, TargetGroups: []TargetGroup{}}
	for _, lb := range st.lbs {
		out.LoadBalancers = append(out.LoadBalancers, s.exportLB(lb, now))
	}
	for _, tg := range st.tgs {
		out.TargetGroups = append(out.TargetGroups, s.exportTG(tg, now))
	}
	return out
}

// LoadBalancers returns every load balancer with its listeners, target
// groups, targets and tags.
func (s *Sim) LoadBalancers() []LoadBalancer { return s.ELBv2().LoadBalancers }

// TargetGroups returns every target group, attached or not.
func (s *Sim) TargetGroups() []TargetGroup { return s.ELBv2().TargetGroups }

// LoadBalancer returns the load balancer with this name or ARN.
func (s *Sim) LoadBalancer(nameOrARN string) (LoadBalancer, bool) {
	for _, lb := range s.LoadBalancers() {
		if lb.Name == nameOrARN || lb.ARN == nameOrARN {
			return lb, true
		}
	}
	return LoadBalancer{}, false
}

// ELBv2TaggedWith returns the ARNs of the load balancers, target groups and
// listeners that carry the tag key (any value), e.g. to check that nothing
// tagged kubernetes.io/cluster/<name> is left.
func (s *Sim) ELBv2TaggedWith(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.w.elbv2()
	var out []string
	for _, lb := range st.lbs {
		if _, ok := lb.tags[key]; ok {
			out = append(out, lb.arn)
		}
		for _, l := range lb.listeners {
			if _, ok := l.tags[key]; ok {
				out = append(out, l.arn)
			}
		}
	}
	for _, tg := range st.tgs {
		if _, ok := tg.tags[key]; ok {
			out = append(out, tg.arn)
		}
	}
	return out
}

// SetELBv2Timing sets how long ELBv2 state transitions take.
func (s *Sim) SetELBv2Timing(t ELBv2Timing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w.elbv2().timing = t
}

func (s *Sim) exportLB(lb *elbLB, now time.Time) LoadBalancer {
	st := s.w.elbv2()
	out := LoadBalancer{ARN: lb.arn, Name: lb.name, DNSName: lb.dnsName(s.w), CanonicalHostedZoneID: s.w.nlbHostedZone(),
		Type: "network", Scheme: lb.scheme, IPAddressType: lb.ipType, EnablePrefixForIPv6SourceNAT: lb.natIPv6,
		VPC: lb.vpc.id, State: lb.state(st, now), Subnets: mappingIDs(lb.mappings), Zones: lb.zones(),
		SecurityGroups: slices.Clone(lb.sgs), Created: lb.created, Tags: maps.Clone(lb.tags), Attributes: maps.Clone(lb.attrs),
		Listeners: []Listener{}, TargetGroups: []TargetGroup{}}
	for _, l := range lb.listeners {
		out.Listeners = append(out.Listeners, Listener{ARN: l.arn, LoadBalancerARN: lb.arn, Port: l.port, Protocol: l.protocol,
			TargetGroupARN: l.forward.tg.arn, Certificates: slices.Clone(l.certs), SSLPolicy: l.sslPolicy, Tags: maps.Clone(l.tags)})
	}
	for _, tg := range st.tgsOf(lb) {
		out.TargetGroups = append(out.TargetGroups, s.exportTG(tg, now))
	}
	return out
}

func (s *Sim) exportTG(tg *elbTG, now time.Time) TargetGroup {
	st := s.w.elbv2()
	h := tg.health
	out := TargetGroup{ARN: tg.arn, Name: tg.name, Protocol: tg.protocol, Port: tg.port, VPC: tg.vpc.id, TargetType: tg.targetType,
		IPAddressType: tg.ipType, LoadBalancerARNs: []string{},
		HealthCheck: HealthCheck{Enabled: h.enabled, Protocol: h.protocol, Port: h.port, Path: h.path, Matcher: h.matcher,
			IntervalSeconds: h.interval, TimeoutSeconds: h.timeout, HealthyThreshold: h.healthy, UnhealthyThreshold: h.unheal},
		Attributes: maps.Clone(tg.attrs), Tags: maps.Clone(tg.tags), Targets: []Target{}}
	for _, lb := range st.lbsOf(tg) {
		out.LoadBalancerARNs = append(out.LoadBalancerARNs, lb.arn)
	}
	for _, t := range tg.targets {
		state, reason, _ := st.targetHealth(s.w, tg, t, now)
		out.Targets = append(out.Targets, Target{ID: t.id, Port: t.port, AvailabilityZone: t.az, State: state, Reason: reason})
	}
	return out
}
