// Package loadbalancer implements cloudprovider.LoadBalancer with Network
// Load Balancers: dual-stack NLBs whose IPv6 target groups hold instance
// targets reached at each node's primary IPv6 address. It reads upstream
// cloud-provider-aws's Service annotations and makes the objects upstream
// makes (names, tags, node security group rules); it talks to AWS only
// through pkg/ec2.
package loadbalancer

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Service annotations read here: upstream's names, and the AWS Load
// Balancer Controller's for the IP address type.
const (
	AnnotationPrefix         = "service.beta.kubernetes.io/aws-load-balancer-"
	AnnotationType           = AnnotationPrefix + "type"
	AnnotationIPAddressType  = AnnotationPrefix + "ip-address-type"
	AnnotationInternal       = AnnotationPrefix + "internal"
	AnnotationSubnets        = AnnotationPrefix + "subnets"
	AnnotationExtraTags      = AnnotationPrefix + "additional-resource-tags"
	AnnotationTargetLabels   = AnnotationPrefix + "target-node-labels"
	AnnotationCrossZone      = AnnotationPrefix + "cross-zone-load-balancing-enabled"
	AnnotationHCProtocol     = AnnotationPrefix + "healthcheck-protocol"
	AnnotationHCPort         = AnnotationPrefix + "healthcheck-port"
	AnnotationHCPath         = AnnotationPrefix + "healthcheck-path"
	AnnotationHCInterval     = AnnotationPrefix + "healthcheck-interval"
	AnnotationHCTimeout      = AnnotationPrefix + "healthcheck-timeout"
	AnnotationHCHealthy      = AnnotationPrefix + "healthcheck-healthy-threshold"
	AnnotationHCUnhealthy    = AnnotationPrefix + "healthcheck-unhealthy-threshold"
	AnnotationSourceRanges   = "service.beta.kubernetes.io/load-balancer-source-ranges"
	TypeNLB                  = "nlb"
	TypeExternal             = "external"
	IPAddressTypeIPv4        = "ipv4"
	IPAddressTypeDualStack   = "dualstack"
	SchemeInternal           = "internal"
	SchemeInternetFacing     = "internet-facing"
	crossZoneAttribute       = "load_balancing.cross_zone.enabled"
	defaultHCIntervalCluster = 30
	defaultHCIntervalLocal   = 10
)

// supported are the annotations under AnnotationPrefix this package reads;
// any other one on a Service gets a Warning event naming it.
var supported = map[string]bool{
	AnnotationType: true, AnnotationIPAddressType: true, AnnotationInternal: true, AnnotationSubnets: true,
	AnnotationExtraTags: true, AnnotationTargetLabels: true, AnnotationCrossZone: true,
	AnnotationHCProtocol: true, AnnotationHCPort: true, AnnotationHCPath: true, AnnotationHCInterval: true,
	AnnotationHCTimeout: true, AnnotationHCHealthy: true, AnnotationHCUnhealthy: true,
}

// Spec is what a Service asks for, read from its spec and annotations.
type Spec struct {
	// Name is the load balancer's name: "a" + the Service UID without
	// hyphens, 32 characters, as upstream.
	Name string
	// Scheme is internal or internet-facing; IPAddressType ipv4 or dualstack.
	Scheme, IPAddressType string
	// TargetFamily is the IP address type of the target groups: "ipv6" for
	// a dual-stack load balancer of a Service whose primary family is IPv6,
	// else "ipv4".
	TargetFamily string
	// Subnets are the annotation's subnet IDs or Name tags, or empty for
	// discovery by role tags.
	Subnets []string
	// Tags go on every object made for the Service, with the ownership tags.
	Tags map[string]string
	// TargetLabels select the nodes registered as targets.
	TargetLabels labels.Selector
	// CrossZone is the cross-zone attribute when the annotation sets it.
	CrossZone *bool
	Ports     []Port
	// SourceRanges are the client CIDRs let in to the NodePorts.
	SourceRanges []netip.Prefix
	// HealthCheck applies to every target group.
	HealthCheck HealthCheck
	// Ignored are annotations present that this package does not support.
	Ignored []string
}

// Port is one Service port: a listener and its target group.
type Port struct {
	Protocol string // TCP or UDP
	Port     int32  // listener port
	NodePort int32  // target port
}

// HealthCheck mirrors ec2.HealthCheck.
type HealthCheck struct {
	Protocol, Port, Path                                                  string
	IntervalSeconds, TimeoutSeconds, HealthyThreshold, UnhealthyThreshold int32
}

// Ownership tags, as upstream.
const (
	TagServiceName   = "kubernetes.io/service-name"
	TagClusterPrefix = "kubernetes.io/cluster/"
)

// ErrNotNLB marks a Service this package does not serve: no NLB type
// annotation (upstream would make a classic ELB) or type external (the AWS
// Load Balancer Controller's).
type ErrNotNLB struct{ Type string }

func (e ErrNotNLB) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("no %s annotation: upstream would make a classic ELB, which this CCM does not; set it to %q for a Network Load Balancer", AnnotationType, TypeNLB)
	}
	return fmt.Sprintf("%s is %q: this CCM makes only %q load balancers", AnnotationType, e.Type, TypeNLB)
}

// ParseSpec reads what svc asks for. defaultNLB makes Services without the
// type annotation NLBs. Errors name the annotation or field at fault.
func ParseSpec(svc *v1.Service, clusterID string, defaultNLB bool) (*Spec, error) {
	a := svc.Annotations
	switch t := a[AnnotationType]; {
	case t == TypeNLB:
	case t == "" && defaultNLB:
	default:
		return nil, ErrNotNLB{Type: t}
	}
	s := &Spec{Name: Name(svc), Scheme: SchemeInternetFacing, TargetLabels: labels.Everything()}
	for k := range a {
		if strings.HasPrefix(k, AnnotationPrefix) && !supported[k] {
			s.Ignored = append(s.Ignored, k)
		}
	}
	slices.Sort(s.Ignored)
	if v, ok := a[AnnotationInternal]; ok {
		// Upstream treats any value but "false" as internal (old manifests
		// carry "0.0.0.0/0").
		if strings.TrimSpace(strings.ToLower(v)) != "false" {
			s.Scheme = SchemeInternal
		}
	}
	families := svc.Spec.IPFamilies
	hasIPv6 := slices.Contains(families, v1.IPv6Protocol)
	hasIPv4 := len(families) == 0 || slices.Contains(families, v1.IPv4Protocol)
	switch v := a[AnnotationIPAddressType]; v {
	case "":
		s.IPAddressType = IPAddressTypeIPv4
		if hasIPv6 {
			s.IPAddressType = IPAddressTypeDualStack
		}
	case IPAddressTypeIPv4:
		if !hasIPv4 {
			return nil, fmt.Errorf("%s is ipv4 but the Service has no IPv4 family (ipFamilies %v): its NodePorts take only IPv6", AnnotationIPAddressType, families)
		}
		s.IPAddressType = v
	case IPAddressTypeDualStack:
		s.IPAddressType = v
	default:
		return nil, fmt.Errorf("%s: %q is neither %q nor %q", AnnotationIPAddressType, v, IPAddressTypeIPv4, IPAddressTypeDualStack)
	}
	s.TargetFamily = "ipv4"
	if s.IPAddressType == IPAddressTypeDualStack && len(families) > 0 && families[0] == v1.IPv6Protocol {
		s.TargetFamily = "ipv6"
	}
	if v := strings.TrimSpace(a[AnnotationSubnets]); v != "" {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				s.Subnets = append(s.Subnets, f)
			}
		}
	}
	tags, err := parseTags(a[AnnotationExtraTags])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", AnnotationExtraTags, err)
	}
	for k := range tags {
		if k == TagServiceName || strings.HasPrefix(k, TagClusterPrefix) {
			return nil, fmt.Errorf("%s: tag %q is the CCM's own", AnnotationExtraTags, k)
		}
	}
	tags[TagServiceName] = svc.Namespace + "/" + svc.Name
	tags[TagClusterPrefix+clusterID] = "owned"
	s.Tags = tags
	if v := strings.TrimSpace(a[AnnotationTargetLabels]); v != "" {
		sel, err := parseLabelList(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", AnnotationTargetLabels, err)
		}
		s.TargetLabels = sel
	}
	if v, ok := a[AnnotationCrossZone]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a boolean", AnnotationCrossZone, v)
		}
		s.CrossZone = &b
	}
	if s.Ports, err = ports(svc); err != nil {
		return nil, err
	}
	if s.SourceRanges, err = sourceRanges(svc, s.IPAddressType); err != nil {
		return nil, err
	}
	if s.HealthCheck, err = healthCheck(svc); err != nil {
		return nil, err
	}
	return s, nil
}

func ports(svc *v1.Service) ([]Port, error) {
	if len(svc.Spec.Ports) == 0 {
		return nil, fmt.Errorf("the Service has no ports")
	}
	var out []Port
	seen := map[int32]bool{}
	for _, p := range svc.Spec.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(v1.ProtocolTCP)
		}
		if proto != string(v1.ProtocolTCP) && proto != string(v1.ProtocolUDP) {
			return nil, fmt.Errorf("port %d: protocol %s is not supported by Network Load Balancers here (TCP or UDP)", p.Port, proto)
		}
		if seen[p.Port] {
			return nil, fmt.Errorf("port %d is listed twice (TCP and UDP on one port is not supported)", p.Port)
		}
		seen[p.Port] = true
		if p.NodePort == 0 {
			return nil, fmt.Errorf("port %d has no node port yet", p.Port)
		}
		out = append(out, Port{Protocol: proto, Port: p.Port, NodePort: p.NodePort})
	}
	slices.SortFunc(out, func(a, b Port) int { return int(a.Port) - int(b.Port) })
	return out, nil
}

// sourceRanges returns the client CIDRs: spec.loadBalancerSourceRanges, else
// the annotation, else everyone in the load balancer's families.
func sourceRanges(svc *v1.Service, ipType string) ([]netip.Prefix, error) {
	raw, field := svc.Spec.LoadBalancerSourceRanges, "spec.loadBalancerSourceRanges"
	if len(raw) == 0 {
		if v := strings.TrimSpace(svc.Annotations[AnnotationSourceRanges]); v != "" {
			raw, field = strings.Split(v, ","), AnnotationSourceRanges
		}
	}
	var out []netip.Prefix
	for _, r := range raw {
		p, err := netip.ParsePrefix(strings.TrimSpace(r))
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a CIDR", field, r)
		}
		if p.Addr().Is6() && ipType != IPAddressTypeDualStack {
			return nil, fmt.Errorf("%s: %s is IPv6 but the load balancer is IPv4 only", field, p)
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		out = append(out, netip.MustParsePrefix("0.0.0.0/0"))
		if ipType == IPAddressTypeDualStack {
			out = append(out, netip.MustParsePrefix("::/0"))
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out), nil
}

// healthCheck is upstream's: TCP on the traffic port every 30 s, or with
// externalTrafficPolicy Local, HTTP /healthz on the health check node port
// every 10 s; each part overridable by annotation, within AWS's bounds.
func healthCheck(svc *v1.Service) (HealthCheck, error) {
	hc := HealthCheck{Protocol: "TCP", Port: "traffic-port", IntervalSeconds: defaultHCIntervalCluster, HealthyThreshold: 3, UnhealthyThreshold: 3}
	if svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal && svc.Spec.HealthCheckNodePort != 0 {
		hc = HealthCheck{Protocol: "HTTP", Port: strconv.Itoa(int(svc.Spec.HealthCheckNodePort)), Path: "/healthz",
			IntervalSeconds: defaultHCIntervalLocal, HealthyThreshold: 2, UnhealthyThreshold: 2}
	}
	a := svc.Annotations
	if v, ok := a[AnnotationHCProtocol]; ok {
		switch p := strings.ToUpper(strings.TrimSpace(v)); p {
		case "TCP", "HTTP", "HTTPS":
			if p != hc.Protocol {
				hc.Protocol = p
				hc.Path = ""
				if p != "TCP" {
					hc.Path = "/"
				}
			}
		default:
			return hc, fmt.Errorf("%s: %q is not TCP, HTTP or HTTPS", AnnotationHCProtocol, v)
		}
	}
	if v, ok := a[AnnotationHCPort]; ok {
		v = strings.TrimSpace(v)
		if n, err := strconv.Atoi(v); (err != nil || n < 1 || n > 65535) && v != "traffic-port" {
			return hc, fmt.Errorf("%s: %q is not a port or \"traffic-port\"", AnnotationHCPort, v)
		}
		hc.Port = v
	}
	if v, ok := a[AnnotationHCPath]; ok {
		if hc.Protocol == "TCP" {
			return hc, fmt.Errorf("%s is set but the health check protocol is TCP", AnnotationHCPath)
		}
		if !strings.HasPrefix(v, "/") {
			return hc, fmt.Errorf("%s: %q does not start with /", AnnotationHCPath, v)
		}
		hc.Path = v
	}
	for _, f := range []struct {
		key      string
		dst      *int32
		min, max int32
	}{
		{AnnotationHCInterval, &hc.IntervalSeconds, 5, 300},
		{AnnotationHCTimeout, &hc.TimeoutSeconds, 2, 120},
		{AnnotationHCHealthy, &hc.HealthyThreshold, 2, 10},
		{AnnotationHCUnhealthy, &hc.UnhealthyThreshold, 2, 10},
	} {
		v, ok := a[f.key]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || int32(n) < f.min || int32(n) > f.max {
			return hc, fmt.Errorf("%s: %q is not a number from %d to %d", f.key, v, f.min, f.max)
		}
		*f.dst = int32(n)
	}
	return hc, nil
}

// parseTags reads "k=v,k2=v2" (a key alone has an empty value).
func parseTags(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" || len(k) > 128 || len(v) > 256 {
			return nil, fmt.Errorf("tag %q: keys are 1-128 characters, values at most 256", kv)
		}
		if prev, dup := out[k]; dup && prev != v {
			return nil, fmt.Errorf("tag %q is given twice with different values", k)
		}
		out[k] = v
	}
	return out, nil
}

// parseLabelList reads "k=v,k2" as upstream: each key must be present, with
// the value when one is given.
func parseLabelList(s string) (labels.Selector, error) {
	sel := labels.NewSelector()
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, hasValue := strings.Cut(kv, "=")
		var req *labels.Requirement
		var err error
		if hasValue {
			req, err = labels.NewRequirement(strings.TrimSpace(k), "=", []string{strings.TrimSpace(v)})
		} else {
			req, err = labels.NewRequirement(strings.TrimSpace(k), "exists", nil)
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %w", kv, err)
		}
		sel = sel.Add(*req)
	}
	return sel, nil
}
