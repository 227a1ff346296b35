package cloud

import (
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestParseConfigUpstreamCompat feeds files written for
// kubernetes/cloud-provider-aws and checks what they mean here.
func TestParseConfigUpstreamCompat(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		want    *Config
		ignored []string
	}{
		{
			name: "empty file gets upstream defaults",
			file: "",
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4"},
		},
		{
			name: "upstream global keys, any case, quoted and unquoted",
			file: `[Global]
Zone = us-east-1a
region = us-east-1
vpc = vpc-abc1234567
SubnetID = subnet-1
RoleARN = arn:aws:iam::123456789012:role/ccm
SourceARN = "arn:aws:eks:us-east-1:123456789012:cluster/c1"
KubernetesClusterTag = c1
KubernetesClusterID = c1
`,
			want: &Config{
				Zone: "us-east-1a", Region: "us-east-1", VPC: "vpc-abc1234567", SubnetID: "subnet-1",
				RoleARN: "arn:aws:iam::123456789012:role/ccm", SourceARN: "arn:aws:eks:us-east-1:123456789012:cluster/c1",
				KubernetesClusterTag: "c1", KubernetesClusterID: "c1",
				NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4",
			},
		},
		{
			name: "NodeIPFamilies is a repeated key and keeps its order",
			file: "[Global]\nNodeIPFamilies = ipv6\nNodeIPFamilies = ipv4\n",
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4"},
		},
		{
			name: "service overrides as upstream writes them, sorted by section name",
			file: `[Global]
[ServiceOverride "2"]
  Service=ec2
  Region=sregion2
  URL=https://ec2.foo.bar
  SigningRegion=sregion2
  SigningMethod = v4
[ServiceOverride "1"]
  Service = "s3      "
  Region = sregion1
  URL = https://s3.foo.bar
  SigningRegion = sregion1
  SigningName = s3
`,
			want: &Config{
				NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4",
				ServiceOverrides: []ServiceOverride{
					{Name: "1", Service: "s3", Region: "sregion1", URL: "https://s3.foo.bar", SigningRegion: "sregion1", SigningName: "s3"},
					{Name: "2", Service: "ec2", Region: "sregion2", URL: "https://ec2.foo.bar", SigningRegion: "sregion2", SigningMethod: "v4"},
				},
			},
		},
		{
			name: "load balancer keys are accepted and reported as ignored",
			file: `[Global]
DisableSecurityGroupIngress = true
ElbSecurityGroup = sg-1
RouteTableID = rtb-1
ClusterServiceLoadBalancerHealthProbeMode = Shared
ClusterServiceSharedLoadBalancerHealthProbePort = 10256
NLBSecurityGroupMode = Managed
`,
			want:    &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4"},
			ignored: []string{"ClusterServiceLoadBalancerHealthProbeMode", "ClusterServiceSharedLoadBalancerHealthProbePort", "DisableSecurityGroupIngress", "ElbSecurityGroup", "NLBSecurityGroupMode", "RouteTableID"},
		},
		{
			name: "our keys",
			file: "[Global]\nNodeIPFamilies=ipv6\nIPv6PrefixDelegation = assign\nIMDSEndpointMode = ipv6\nEC2DualStackEndpoint = true\n",
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv6Protocol}, IPv6PrefixDelegation: DelegationAssign, IMDSEndpointMode: "IPv6", EC2DualStackEndpoint: true},
		},
		{
			name: "SDK environment supplies defaults",
			env:  map[string]string{EnvIMDSEndpointMode: "IPv6", EnvUseDualStack: "true"},
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv6", EC2DualStackEndpoint: true},
		},
		{
			name: "the file wins over the environment",
			file: "[Global]\nIMDSEndpointMode = IPv4\nEC2DualStackEndpoint = false\n",
			env:  map[string]string{EnvIMDSEndpointMode: "IPv6", EnvUseDualStack: "true"},
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ignored, err := ParseConfig(strings.NewReader(tc.file), env(tc.env))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("config:\n got  %+v\n want %+v", got, tc.want)
			}
			if !reflect.DeepEqual(ignored, tc.ignored) {
				t.Errorf("ignored keys = %v, want %v", ignored, tc.ignored)
			}
		})
	}
}

// TestParseConfigErrors checks that every problem is reported and each names
// its key.
func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		want []string
	}{
		{"unknown key", "[Global]\nZone = a\nFrobnicate = 1\nAlsoUnknown = 2\n", nil, []string{`"Frobnicate"`, `"AlsoUnknown"`}},
		{"unknown section", "[Globl]\nZone = a\n", nil, []string{`"Globl"`}},
		{"syntax", "[Global\n", nil, []string{"cloud config"}},
		{"every bad value at once", `[Global]
NodeIPFamilies = ipv5
IPv6PrefixDelegation = sometimes
IMDSEndpointMode = IPv7
EC2DualStackEndpoint = maybe
`, nil, []string{"NodeIPFamilies", "IPv6PrefixDelegation", "IMDSEndpointMode", "EC2DualStackEndpoint"}},
		{"bad environment names the variable", "", map[string]string{EnvIMDSEndpointMode: "v6", EnvUseDualStack: "yes please"},
			[]string{EnvIMDSEndpointMode, EnvUseDualStack}},
		{"delegation needs ipv6", "[Global]\nIPv6PrefixDelegation = adopt\n", nil, []string{"IPv6PrefixDelegation", "ipv6"}},
		{"duplicate family", "[Global]\nNodeIPFamilies = ipv6\nNodeIPFamilies = IPv6\n", nil, []string{"NodeIPFamilies"}},
		{"cluster IDs disagree", "[Global]\nKubernetesClusterTag = a\nKubernetesClusterID = b\n", nil, []string{"KubernetesClusterID"}},
		{"override missing fields", "[ServiceOverride \"1\"]\nService = ec2\n", nil, []string{`"1"`, "Region", "URL", "SigningRegion"}},
		{"override bad URL", "[ServiceOverride \"1\"]\nService = ec2\nRegion = r\nURL = not a url\nSigningRegion = r\n", nil, []string{"URL"}},
		{"override duplicate", "[ServiceOverride \"1\"]\nService = ec2\nRegion = r\nURL = https://a\nSigningRegion = r\n[ServiceOverride \"2\"]\nService = EC2\nRegion = r\nURL = https://b\nSigningRegion = r\n", nil, []string{"duplicates"}},
		{"bad upstream bool", "[Global]\nDisableSecurityGroupIngress = perhaps\n", nil, []string{"DisableSecurityGroupIngress"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := ParseConfig(strings.NewReader(tc.file), env(tc.env))
			if err == nil {
				t.Fatalf("ParseConfig accepted it: %+v", cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestConfigLookups(t *testing.T) {
	cfg, _, err := ParseConfig(strings.NewReader(`[ServiceOverride "a"]
Service = EC2
Region = us-west-2
URL = https://ec2.example
SigningRegion = us-west-2
SigningName = ec2
[ServiceOverride "b"]
Service = ec2imds
Region = any
URL = http://[::1]:1234
SigningRegion = any
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := cfg.EC2Override("us-west-2"); !ok || o.URL != "https://ec2.example" {
		t.Errorf("EC2Override(us-west-2) = %+v, %v", o, ok)
	}
	if _, ok := cfg.EC2Override("eu-west-1"); ok {
		t.Error("EC2Override matched another region")
	}
	if got := cfg.IMDSEndpoint(); got != "http://[::1]:1234" {
		t.Errorf("IMDSEndpoint = %q", got)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"", "[Global]\nZone = a\n", "[Global]\nNodeIPFamilies=ipv6\nNodeIPFamilies=ipv4\nIPv6PrefixDelegation=assign\n",
		"[ServiceOverride \"1\"]\nService=ec2\nRegion=r\nURL=https://x\nSigningRegion=r\n", "[Global\n", "[Global]\nx=\"\\q\"\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, _, err := ParseConfig(strings.NewReader(s), env(nil))
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		if len(cfg.NodeIPFamilies) == 0 {
			t.Fatal("valid config without node IP families")
		}
		switch cfg.IPv6PrefixDelegation {
		case DelegationOff, DelegationAdopt, DelegationAssign:
		default:
			t.Fatalf("delegation %q", cfg.IPv6PrefixDelegation)
		}
		if cfg.IMDSEndpointMode != "IPv4" && cfg.IMDSEndpointMode != "IPv6" {
			t.Fatalf("imds mode %q", cfg.IMDSEndpointMode)
		}
	})
}
