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
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4", DefaultLoadBalancerType: LoadBalancerTypeClassic},
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
				NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4", DefaultLoadBalancerType: LoadBalancerTypeClassic,
			},
		},
		{
			name: "NodeIPFamilies is a repeated key and keeps its order",
			file: "[Global]\nNodeIPFamilies = ipv6\nNodeIPFamilies = ipv4\n",
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4", DefaultLoadBalancerType: LoadBalancerTypeClassic},
		},
		{
			name: "dual-stack pod CIDRs from the cluster CIDR",
			file: "[Global]\nNodeIPFamilies = ipv6\nNodeIPFamilies = ipv4\nIPv6PrefixDelegation = assign\nIPv4PodCIDRSource = Cluster-CIDR\n",
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationAssign,
				IPv4PodCIDRSource: PodCIDRSourceClusterCIDR, IMDSEndpointMode: "IPv4", DefaultLoadBalancerType: LoadBalancerTypeClassic},
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
				NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4", DefaultLoadBalancerType: LoadBalancerTypeClassic,
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
			want:    &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4", DefaultLoadBalancerType: LoadBalancerTypeClassic},
			ignored: []string{"ClusterServiceLoadBalancerHealthProbeMode", "ClusterServiceSharedLoadBalancerHealthProbePort", "DisableSecurityGroupIngress", "ElbSecurityGroup", "NLBSecurityGroupMode", "RouteTableID"},
		},
		{
			name: "our keys",
			file: "[Global]\nNodeIPFamilies=ipv6\nIPv6PrefixDelegation = assign\nIMDSEndpointMode = ipv6\nEC2DualStackEndpoint = true\nDefaultLoadBalancerType = NLB\nEnablePrimaryIPv6 = true\n",
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv6Protocol}, IPv6PrefixDelegation: DelegationAssign, IMDSEndpointMode: "IPv6", EC2DualStackEndpoint: true,
				DefaultLoadBalancerType: LoadBalancerTypeNLB, EnablePrimaryIPv6: true},
		},
		{
			name: "not repeats: multi-valued key, comments, same key in two sections, subsection names differ in case",
			file: `[Global]
NodeIPFamilies = ipv6 ; NodeIPFamilies = ipv6
; Region = us-west-2
# Region = us-west-2
Region = us-east-1
NodeIPFamilies = ipv4
[ServiceOverride "a"]
Service = ec2
Region = us-east-1
URL = https://a.example
SigningRegion = us-east-1
[ServiceOverride "A"]
Service = s3
Region = us-east-1
URL = https://b.example
SigningRegion = us-east-1
`,
			want: &Config{
				Region: "us-east-1", NodeIPFamilies: []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4", DefaultLoadBalancerType: LoadBalancerTypeClassic,
				ServiceOverrides: []ServiceOverride{
					{Name: "A", Service: "s3", Region: "us-east-1", URL: "https://b.example", SigningRegion: "us-east-1"},
					{Name: "a", Service: "ec2", Region: "us-east-1", URL: "https://a.example", SigningRegion: "us-east-1"},
				},
			},
		},
		{
			name: "SDK environment supplies defaults",
			env:  map[string]string{EnvIMDSEndpointMode: "IPv6", EnvUseDualStack: "true"},
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv6", EC2DualStackEndpoint: true, DefaultLoadBalancerType: LoadBalancerTypeClassic},
		},
		{
			name: "the file wins over the environment",
			file: "[Global]\nIMDSEndpointMode = IPv4\nEC2DualStackEndpoint = false\n",
			env:  map[string]string{EnvIMDSEndpointMode: "IPv6", EnvUseDualStack: "true"},
			want: &Config{NodeIPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPv6PrefixDelegation: DelegationOff, IMDSEndpointMode: "IPv4", DefaultLoadBalancerType: LoadBalancerTypeClassic},
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
		{"IPv4 pod range needs an IPv6 mode", "[Global]\nIPv4PodCIDRSource = cluster-cidr\n", nil, []string{"IPv4PodCIDRSource", "IPv6PrefixDelegation"}},
		{"IPv4 pod range source unknown", "[Global]\nNodeIPFamilies = ipv6\nIPv6PrefixDelegation = assign\nIPv4PodCIDRSource = dhcp\n", nil, []string{"IPv4PodCIDRSource", "dhcp"}},
		{"load balancer type unknown", "[Global]\nDefaultLoadBalancerType = alb\n", nil, []string{"DefaultLoadBalancerType", "alb"}},
		{"primary IPv6 needs the IPv6 family", "[Global]\nEnablePrimaryIPv6 = true\n", nil, []string{"EnablePrimaryIPv6", "NodeIPFamilies"}},
		{"primary IPv6 not a boolean", "[Global]\nNodeIPFamilies = ipv6\nEnablePrimaryIPv6 = sure\n", nil, []string{"EnablePrimaryIPv6", "sure"}},
		{"IPv4 pod range from ENI prefixes not built", "[Global]\nNodeIPFamilies = ipv6\nIPv6PrefixDelegation = assign\nIPv4PodCIDRSource = eni-prefix\n", nil, []string{"IPv4PodCIDRSource", "not supported"}},
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

// TestParseConfigRepeats checks that what gcfg would merge silently is
// refused by name: a repeated section or subsection, and a single-valued key
// set more than once, even to the same value.
func TestParseConfigRepeats(t *testing.T) {
	const once = "; a single-valued key may be set only once"
	tests := []struct {
		name string
		file string
		// exact, when set, is every line of the error; else the error
		// mentions each of contains.
		exact, contains []string
	}{
		{
			name: "issue 13: [Global] twice, IPv6PrefixDelegation assign then off",
			file: "[Global]\nNodeIPFamilies = ipv6\nIPv6PrefixDelegation=assign\n\n[Global]\nIPv6PrefixDelegation=off\n",
			exact: []string{
				"cloud config: section [Global] written twice, on lines 1 and 5: a section may appear only once",
				`cloud config: IPv6PrefixDelegation: set twice: "assign" on line 3, "off" on line 6` + once,
			},
		},
		{
			name:  "repeated [Global] without keys, any case",
			file:  "[Global]\n[global]\n# again\n[GLOBAL]\n",
			exact: []string{"cloud config: section [Global] written 3 times, on lines 1, 2 and 4: a section may appear only once"},
		},
		{
			name:  "key set twice to the same value",
			file:  "[Global]\nZone = a\nZone = a\n",
			exact: []string{`cloud config: Zone: set twice: "a" on line 2, "a" on line 3` + once},
		},
		{
			name:  "key set twice in any case, quoted or not",
			file:  "[Global]\nregion = us-east-1\nRegion = \"us-west-2\"\n",
			exact: []string{`cloud config: Region: set twice: "us-east-1" on line 2, "us-west-2" on line 3` + once},
		},
		{
			name:  "key set three times; a continuation line counts as a line",
			file:  "[Global]\nVPC = vpc-1\\\n2\nVPC = vpc-3 ; comment\nVPC = \"vpc 4\"\n",
			exact: []string{`cloud config: VPC: set 3 times: "vpc-12" on line 2, "vpc-3" on line 4, "vpc 4" on line 5` + once},
		},
		{
			name: "repeated ServiceOverride subsection; its keys are merged across the repeats",
			file: `[ServiceOverride "1"]
Service = ec2
Region = r
URL = https://a
SigningRegion = r
[ServiceOverride "2"]
Service = s3
Region = r
URL = https://s3
SigningRegion = r
[ServiceOverride "1"]
URL = https://b
`,
			exact: []string{
				`cloud config: section [ServiceOverride "1"] written twice, on lines 1 and 11: a section may appear only once`,
				`cloud config: ServiceOverride "1": URL: set twice: "https://a" on line 4, "https://b" on line 12` + once,
			},
		},
		{
			name:  "quoted subsection name with an escape",
			file:  "[ServiceOverride \"a\\\"b\"]\nService = ec2\nRegion = r\nURL = https://a\nSigningRegion = r\n[ServiceOverride \"a\\\"b\"]\n",
			exact: []string{`cloud config: section [ServiceOverride "a\"b"] written twice, on lines 1 and 6: a section may appear only once`},
		},
		{
			name:  "a multi-valued key may repeat, the section may not",
			file:  "[Global]\nNodeIPFamilies = ipv6\n[Global]\nNodeIPFamilies = ipv4\n",
			exact: []string{"cloud config: section [Global] written twice, on lines 1 and 3: a section may appear only once"},
		},
		{
			name: "value errors are still reported",
			file: "[Global]\nIPv6PrefixDelegation = sometimes\nIPv6PrefixDelegation = never\n",
			exact: []string{
				`cloud config: IPv6PrefixDelegation: set twice: "sometimes" on line 2, "never" on line 3` + once,
				`cloud config: IPv6PrefixDelegation: invalid value "never" (want off, adopt or assign)`,
			},
		},
		{
			name:     "with an unknown key",
			file:     "[Global]\nZone = a\nFrobnicate = 1\nzone = b\n",
			contains: []string{`Zone: set twice: "a" on line 2, "b" on line 4`, `"Frobnicate"`},
		},
		{
			name:     "with a blank value",
			file:     "[Global]\nZone\nZone = a\n",
			contains: []string{`Zone: set twice: (no value) on line 2, "a" on line 3`, "blank value"},
		},
		{
			name:     "before a syntax error",
			file:     "[Global]\nZone = a\nZone = b\n[Global\n",
			contains: []string{`Zone: set twice`, "expected subsection name or right bracket"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := ParseConfig(strings.NewReader(tc.file), env(nil))
			if err == nil {
				t.Fatalf("ParseConfig accepted it: %+v", cfg)
			}
			if tc.exact != nil && !reflect.DeepEqual(strings.Split(err.Error(), "\n"), tc.exact) {
				t.Errorf("error:\n%s\nwant:\n%s", err, strings.Join(tc.exact, "\n"))
			}
			for _, w := range tc.contains {
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
		"[Global]\nNodeIPFamilies=ipv6\nIPv6PrefixDelegation=assign\n[Global]\nIPv6PrefixDelegation=off\n",
		"[Global]\nZone = a\nzone = \"a\" ; again\n", "[Global]\nZone\nZone = a\\\n b\n", "[global]\n# [Global]\n",
		"[ServiceOverride \"a\\\"b\"]\nURL=https://x\n[ServiceOverride \"a\\\"b\"]\nurl=https://y\n",
		"[ServiceOverride \"a\"]\n[ServiceOverride \"A\"]\n[Global \"x\"]\nZone=a\nZone=b\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, ignored, err := ParseConfig(strings.NewReader(s), env(nil))
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "cloud config:") {
					t.Fatalf("error line %q does not start with \"cloud config:\"", line)
				}
			}
			return
		}
		// The file written twice repeats every section and key in it, so it
		// is refused, unless there is nothing to repeat (comments, blanks).
		if again, _, err := ParseConfig(strings.NewReader(s+"\n"+s), env(nil)); err == nil {
			empty, _, _ := ParseConfig(nil, env(nil))
			if !reflect.DeepEqual(cfg, empty) || ignored != nil || !reflect.DeepEqual(again, empty) {
				t.Fatalf("file written twice accepted: %+v", again)
			}
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
