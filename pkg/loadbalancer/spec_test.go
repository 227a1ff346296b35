package loadbalancer

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
)

func service(annotations map[string]string, families ...v1.IPFamily) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "front", UID: "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", Annotations: annotations},
		Spec: v1.ServiceSpec{
			Type:       v1.ServiceTypeLoadBalancer,
			IPFamilies: families,
			Ports: []v1.ServicePort{
				{Name: "https", Protocol: v1.ProtocolTCP, Port: 443, NodePort: 30443},
				{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, NodePort: 30080},
			},
		},
	}
}

func nlb(extra map[string]string) map[string]string {
	m := map[string]string{AnnotationType: TypeNLB}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestParseSpec(t *testing.T) {
	v4, v6 := v1.IPv4Protocol, v1.IPv6Protocol
	tests := []struct {
		name       string
		svc        *v1.Service
		defaultNLB bool
		check      func(t *testing.T, s *Spec)
		wantErr    []string
	}{
		{name: "no type annotation: upstream's classic ELB, not ours", svc: service(nil, v4), wantErr: []string{AnnotationType, "classic"}},
		{name: "type external belongs to the AWS Load Balancer Controller", svc: service(map[string]string{AnnotationType: "external"}, v4), wantErr: []string{"external"}},
		{name: "no annotation with NLB the configured default", svc: service(nil, v4), defaultNLB: true, check: func(t *testing.T, s *Spec) {
			if s.IPAddressType != "ipv4" || s.Scheme != SchemeInternetFacing {
				t.Errorf("%+v", s)
			}
		}},
		{name: "IPv4 Service: ipv4 load balancer, IPv4 targets, open to 0.0.0.0/0", svc: service(nlb(nil), v4), check: func(t *testing.T, s *Spec) {
			if s.Name != "a6f1e2d3c4b5a49688776a5b4c3d2e1f" || len(s.Name) != 32 {
				t.Errorf("name %q", s.Name)
			}
			if s.IPAddressType != "ipv4" || s.TargetFamily != "ipv4" {
				t.Errorf("types %s/%s", s.IPAddressType, s.TargetFamily)
			}
			if !slices.Equal(s.SourceRanges, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}) {
				t.Errorf("sources %v", s.SourceRanges)
			}
			if s.Ports[0].Port != 80 || s.Ports[1].Port != 443 {
				t.Errorf("ports not sorted: %+v", s.Ports)
			}
			if s.Tags[TagServiceName] != "web/front" || s.Tags["kubernetes.io/cluster/c1"] != "owned" || len(s.Tags) != 2 {
				t.Errorf("tags %v", s.Tags)
			}
			if s.HealthCheck != (HealthCheck{Protocol: "TCP", Port: "traffic-port", IntervalSeconds: 30, HealthyThreshold: 3, UnhealthyThreshold: 3}) {
				t.Errorf("health check %+v", s.HealthCheck)
			}
		}},
		{name: "dual-stack Service, IPv6 first: dualstack load balancer, IPv6 targets, both families open", svc: service(nlb(nil), v6, v4), check: func(t *testing.T, s *Spec) {
			if s.IPAddressType != "dualstack" || s.TargetFamily != "ipv6" || len(s.SourceRanges) != 2 {
				t.Errorf("%s/%s %v", s.IPAddressType, s.TargetFamily, s.SourceRanges)
			}
		}},
		{name: "dual-stack Service, IPv4 first: IPv4 targets behind a dualstack load balancer", svc: service(nlb(nil), v4, v6), check: func(t *testing.T, s *Spec) {
			if s.IPAddressType != "dualstack" || s.TargetFamily != "ipv4" {
				t.Errorf("%s/%s", s.IPAddressType, s.TargetFamily)
			}
		}},
		{name: "annotation makes an IPv4 Service's load balancer dualstack", svc: service(nlb(map[string]string{AnnotationIPAddressType: "dualstack"}), v4), check: func(t *testing.T, s *Spec) {
			if s.IPAddressType != "dualstack" || s.TargetFamily != "ipv4" {
				t.Errorf("%s/%s", s.IPAddressType, s.TargetFamily)
			}
		}},
		{name: "ipv4 load balancer for an IPv6-only Service is refused", svc: service(nlb(map[string]string{AnnotationIPAddressType: "ipv4"}), v6), wantErr: []string{AnnotationIPAddressType, "IPv4"}},
		{name: "unknown IP address type", svc: service(nlb(map[string]string{AnnotationIPAddressType: "ipv6"}), v6), wantErr: []string{AnnotationIPAddressType, `"ipv6"`}},
		{name: "internal, upstream's legacy value too", svc: service(nlb(map[string]string{AnnotationInternal: "0.0.0.0/0"}), v4), check: func(t *testing.T, s *Spec) {
			if s.Scheme != SchemeInternal {
				t.Error(s.Scheme)
			}
		}},
		{name: "internal false", svc: service(nlb(map[string]string{AnnotationInternal: "false"}), v4), check: func(t *testing.T, s *Spec) {
			if s.Scheme != SchemeInternetFacing {
				t.Error(s.Scheme)
			}
		}},
		{name: "extra tags, subnets, target labels, cross-zone", svc: service(nlb(map[string]string{
			AnnotationExtraTags: "team=web, cost-center=42", AnnotationSubnets: "subnet-a, public-b",
			AnnotationTargetLabels: "role=edge,gpu", AnnotationCrossZone: "true",
		}), v4), check: func(t *testing.T, s *Spec) {
			if s.Tags["team"] != "web" || s.Tags["cost-center"] != "42" {
				t.Errorf("tags %v", s.Tags)
			}
			if !slices.Equal(s.Subnets, []string{"subnet-a", "public-b"}) {
				t.Errorf("subnets %v", s.Subnets)
			}
			if !s.TargetLabels.Matches(labels.Set{"role": "edge", "gpu": ""}) || s.TargetLabels.Matches(labels.Set{"role": "edge"}) {
				t.Errorf("selector %v", s.TargetLabels)
			}
			if s.CrossZone == nil || !*s.CrossZone {
				t.Error("cross zone")
			}
		}},
		{name: "extra tags cannot claim ownership", svc: service(nlb(map[string]string{AnnotationExtraTags: "kubernetes.io/cluster/other=owned"}), v4), wantErr: []string{AnnotationExtraTags}},
		{name: "extra tag twice with different values", svc: service(nlb(map[string]string{AnnotationExtraTags: "a=1,a=2"}), v4), wantErr: []string{AnnotationExtraTags, `"a"`}},
		{name: "cross-zone not a boolean", svc: service(nlb(map[string]string{AnnotationCrossZone: "yes"}), v4), wantErr: []string{AnnotationCrossZone}},
		{name: "externalTrafficPolicy Local: HTTP /healthz on the health check node port", svc: func() *v1.Service {
			s := service(nlb(nil), v6, v4)
			s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = v1.ServiceExternalTrafficPolicyLocal, 32100
			return s
		}(), check: func(t *testing.T, s *Spec) {
			if s.HealthCheck != (HealthCheck{Protocol: "HTTP", Port: "32100", Path: "/healthz", IntervalSeconds: 10, HealthyThreshold: 2, UnhealthyThreshold: 2}) {
				t.Errorf("%+v", s.HealthCheck)
			}
		}},
		{name: "health check annotations", svc: service(nlb(map[string]string{
			AnnotationHCProtocol: "http", AnnotationHCPath: "/ready", AnnotationHCPort: "8080", AnnotationHCInterval: "15",
			AnnotationHCTimeout: "6", AnnotationHCHealthy: "4", AnnotationHCUnhealthy: "5",
		}), v4), check: func(t *testing.T, s *Spec) {
			if s.HealthCheck != (HealthCheck{Protocol: "HTTP", Port: "8080", Path: "/ready", IntervalSeconds: 15, TimeoutSeconds: 6, HealthyThreshold: 4, UnhealthyThreshold: 5}) {
				t.Errorf("%+v", s.HealthCheck)
			}
		}},
		{name: "health check interval out of AWS's range", svc: service(nlb(map[string]string{AnnotationHCInterval: "3"}), v4), wantErr: []string{AnnotationHCInterval, "5 to 300"}},
		{name: "health check path with TCP", svc: service(nlb(map[string]string{AnnotationHCPath: "/x"}), v4), wantErr: []string{AnnotationHCPath, "TCP"}},
		{name: "health check protocol unknown", svc: service(nlb(map[string]string{AnnotationHCProtocol: "UDP"}), v4), wantErr: []string{AnnotationHCProtocol}},
		{name: "source ranges from the spec, IPv6 refused on an ipv4 load balancer", svc: func() *v1.Service {
			s := service(nlb(nil), v4)
			s.Spec.LoadBalancerSourceRanges = []string{"2001:db8::/32"}
			return s
		}(), wantErr: []string{"spec.loadBalancerSourceRanges", "IPv4 only"}},
		{name: "source ranges from the annotation", svc: service(nlb(map[string]string{AnnotationSourceRanges: "10.0.0.0/8, 192.168.1.7/32"}), v4), check: func(t *testing.T, s *Spec) {
			if !slices.Equal(s.SourceRanges, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}) {
				t.Errorf("%v", s.SourceRanges)
			}
		}},
		{name: "bad source range", svc: service(nlb(map[string]string{AnnotationSourceRanges: "10.0.0.0/33"}), v4), wantErr: []string{AnnotationSourceRanges, "10.0.0.0/33"}},
		{name: "unsupported annotations are listed, sorted", svc: service(nlb(map[string]string{
			AnnotationPrefix + "ssl-cert": "arn:x", AnnotationPrefix + "proxy-protocol": "*",
		}), v4), check: func(t *testing.T, s *Spec) {
			if !slices.Equal(s.Ignored, []string{AnnotationPrefix + "proxy-protocol", AnnotationPrefix + "ssl-cert"}) {
				t.Errorf("%v", s.Ignored)
			}
		}},
		{name: "SCTP port", svc: func() *v1.Service {
			s := service(nlb(nil), v4)
			s.Spec.Ports[0].Protocol = v1.ProtocolSCTP
			return s
		}(), wantErr: []string{"SCTP"}},
		{name: "TCP and UDP on one port", svc: func() *v1.Service {
			s := service(nlb(nil), v4)
			s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Protocol: v1.ProtocolUDP, Port: 80, NodePort: 30081})
			return s
		}(), wantErr: []string{"port 80"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSpec(tc.svc, "c1", tc.defaultNLB)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("accepted: %+v", s)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
	var notNLB ErrNotNLB
	if _, err := ParseSpec(service(nil, v4), "c1", false); !errors.As(err, &notNLB) {
		t.Errorf("no annotation: %v, want ErrNotNLB", err)
	}
}

func TestTargetGroupName(t *testing.T) {
	svc := service(nlb(nil), v1.IPv4Protocol)
	svc.Namespace, svc.Name = "kube-system", "my.ingress-gateway"
	p := Port{Protocol: "TCP", Port: 80, NodePort: 30080}
	hc := HealthCheck{Protocol: "TCP"}
	n := TargetGroupName(svc, "c1", p, "ipv4", hc)
	if !strings.HasPrefix(n, "k8s-kubesyst-myingres-") || len(n) != 32 {
		t.Errorf("name %q", n)
	}
	if TargetGroupName(svc, "c1", p, "ipv4", hc) != n {
		t.Error("not deterministic")
	}
	for what, other := range map[string]string{
		"family":    TargetGroupName(svc, "c1", p, "ipv6", hc),
		"node port": TargetGroupName(svc, "c1", Port{Protocol: "TCP", Port: 80, NodePort: 30081}, "ipv4", hc),
		"protocol":  TargetGroupName(svc, "c1", Port{Protocol: "UDP", Port: 80, NodePort: 30080}, "ipv4", hc),
		"cluster":   TargetGroupName(svc, "c2", p, "ipv4", hc),
		"hc":        TargetGroupName(svc, "c1", p, "ipv4", HealthCheck{Protocol: "HTTP"}),
	} {
		if other == n {
			t.Errorf("a change of %s keeps the name", what)
		}
	}
}

func subnet(id, zone, v4, v6 string, tags map[string]string) ec2.Subnet {
	s := ec2.Subnet{ID: id, Zone: zone, VPCID: "vpc-1", IPv4CIDR: netip.MustParsePrefix(v4), Tags: tags}
	if v6 != "" {
		s.IPv6CIDR = netip.MustParsePrefix(v6)
	}
	return s
}

func TestChooseSubnets(t *testing.T) {
	elb := map[string]string{TagRoleELB: "1"}
	elbCluster := map[string]string{TagRoleELB: "1", "kubernetes.io/cluster/c1": "shared"}
	internal := map[string]string{TagRoleInternalELB: "1", "Name": "private-a"}
	vpc := []ec2.Subnet{
		subnet("subnet-a2", "z-a", "10.0.2.0/24", "2600:1f18::/64", elb),
		subnet("subnet-a1", "z-a", "10.0.1.0/24", "2600:1f18:0:1::/64", elb),
		subnet("subnet-b1", "z-b", "10.0.3.0/24", "", elb),
		subnet("subnet-b2", "z-b", "10.0.4.0/24", "2600:1f18:0:4::/64", elbCluster),
		subnet("subnet-c1", "z-c", "10.0.5.0/24", "2600:1f18:0:5::/64", nil),
		subnet("subnet-p1", "z-a", "10.0.6.0/24", "2600:1f18:0:6::/64", internal),
	}
	ids := func(ss []ec2.Subnet) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	tests := []struct {
		name    string
		spec    Spec
		want    []string
		wantErr string
	}{
		{"ipv4: one per zone, cluster tag first, then lowest ID; untagged never", Spec{Scheme: SchemeInternetFacing, IPAddressType: "ipv4"}, []string{"subnet-a1", "subnet-b2"}, ""},
		{"dualstack skips subnets without IPv6", Spec{Scheme: SchemeInternetFacing, IPAddressType: "dualstack"}, []string{"subnet-a1", "subnet-b2"}, ""},
		{"internal uses the internal role", Spec{Scheme: SchemeInternal, IPAddressType: "ipv4"}, []string{"subnet-p1"}, ""},
		{"named by ID and Name tag", Spec{IPAddressType: "ipv4", Subnets: []string{"private-a", "subnet-b1"}}, []string{"subnet-p1", "subnet-b1"}, ""},
		{"named subnet unknown", Spec{IPAddressType: "ipv4", Subnets: []string{"subnet-zz"}}, nil, `"subnet-zz"`},
		{"named subnets share a zone", Spec{IPAddressType: "ipv4", Subnets: []string{"subnet-a1", "subnet-a2"}}, nil, "z-a"},
		{"named subnet without IPv6 for dualstack", Spec{IPAddressType: "dualstack", Subnets: []string{"subnet-b1"}}, nil, "no IPv6 CIDR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ChooseSubnets(&tc.spec, vpc, "c1")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(ids(got), tc.want) {
				t.Errorf("got %v, %v; want %v", ids(got), err, tc.want)
			}
		})
	}
	if _, err := ChooseSubnets(&Spec{Scheme: SchemeInternetFacing, IPAddressType: "dualstack"}, vpc[4:5], "c1"); err == nil || !strings.Contains(err.Error(), TagRoleELB) {
		t.Errorf("no tagged subnet: %v", err)
	}
}

func TestIngressRulesAndDiff(t *testing.T) {
	s := &Spec{Name: "lb1", IPAddressType: "dualstack", Ports: []Port{{"TCP", 80, 30080}, {"UDP", 53, 30053}},
		SourceRanges: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		HealthCheck:  HealthCheck{Port: "traffic-port"}}
	subnets := []ec2.Subnet{subnet("subnet-1", "z", "10.0.1.0/24", "2600:1f18::/64", nil)}
	rules := IngressRules(s, subnets)
	var got []string
	for _, r := range rules {
		got = append(got, ruleKey(r))
	}
	// The TCP port's health checks come in through its client rules; the
	// UDP port is health-checked over TCP, which no client rule covers.
	want := []string{
		"tcp/30053-30053/10.0.1.0/24/kubernetes.io/rule/nlb/health=lb1",
		"tcp/30053-30053/2600:1f18::/64/kubernetes.io/rule/nlb/health=lb1",
		"tcp/30080-30080/0.0.0.0/0/kubernetes.io/rule/nlb/client=lb1",
		"tcp/30080-30080/::/0/kubernetes.io/rule/nlb/client=lb1",
		"udp/30053-30053/0.0.0.0/0/kubernetes.io/rule/nlb/client=lb1",
		"udp/30053-30053/::/0/kubernetes.io/rule/nlb/client=lb1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	foreign := ec2.IngressRule{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0"), Description: "ssh"}
	otherLB := rules[0]
	otherLB.Description = "kubernetes.io/rule/nlb/client=lb2"
	stale := rules[2]
	stale.FromPort, stale.ToPort = 31000, 31000
	have := append([]ec2.IngressRule{foreign, otherLB, stale}, rules[1:]...)
	add, remove := DiffRules(have, rules, "lb1")
	if len(add) != 1 || ruleKey(add[0]) != ruleKey(rules[0]) {
		t.Errorf("add %v", add)
	}
	if len(remove) != 1 || ruleKey(remove[0]) != ruleKey(stale) {
		t.Errorf("remove %v (foreign and other load balancers' rules must stay)", remove)
	}
	if add, remove := DiffRules(have, nil, "lb1"); len(add) != 0 || len(remove) != len(rules) {
		t.Errorf("delete: add %d remove %d, want 0 and %d", len(add), len(remove), len(rules))
	}

	// Restricted clients do not cover the health checker: its rules stay.
	s.SourceRanges = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	s.IPAddressType = "ipv4"
	got = nil
	for _, r := range IngressRules(s, subnets) {
		got = append(got, ruleKey(r))
	}
	want = []string{
		"tcp/30053-30053/10.0.1.0/24/kubernetes.io/rule/nlb/health=lb1",
		"tcp/30080-30080/10.0.1.0/24/kubernetes.io/rule/nlb/health=lb1",
		"tcp/30080-30080/203.0.113.0/24/kubernetes.io/rule/nlb/client=lb1",
		"udp/30053-30053/203.0.113.0/24/kubernetes.io/rule/nlb/client=lb1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("restricted clients:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDiffTargets(t *testing.T) {
	have := []ec2.Target{{ID: "i-1", Port: 30080}, {ID: "i-2", Port: 30080}, {ID: "i-3", Port: 30000}}
	want := []ec2.Target{{ID: "i-2", Port: 30080}, {ID: "i-3", Port: 30080}, {ID: "i-4", Port: 30080}}
	add, remove := DiffTargets(have, want)
	if !slices.Equal(add, []ec2.Target{{ID: "i-3", Port: 30080}, {ID: "i-4", Port: 30080}}) {
		t.Errorf("add %v", add)
	}
	if !slices.Equal(remove, []ec2.Target{{ID: "i-1", Port: 30080}, {ID: "i-3", Port: 30000}}) {
		t.Errorf("remove %v", remove)
	}
	if add, remove := DiffTargets(want, want); add != nil || remove != nil {
		t.Errorf("steady state: %v %v", add, remove)
	}
}
