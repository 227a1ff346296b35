package cloud

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/gcfg.v1"
	"gopkg.in/warnings.v0"
	v1 "k8s.io/api/core/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/nodemeta"
)

// PrefixDelegation says what the node controller does about IPv6 /80
// prefixes: the node controller's mode, one type shared by both.
type PrefixDelegation = nodemeta.Mode

// Prefix delegation modes, as written in the cloud config.
const (
	// DelegationOff leaves pod CIDRs alone (upstream behaviour).
	DelegationOff = nodemeta.ModeOff
	// DelegationAdopt uses a /80 already on the primary ENI, never assigns one.
	DelegationAdopt = nodemeta.ModeAdopt
	// DelegationAssign assigns the IPv6 address and /80 when missing.
	DelegationAssign = nodemeta.ModeAssign
)

// Environment variables the config falls back to, as the AWS SDK names them.
const (
	EnvIMDSEndpointMode = ec2.EnvIMDSEndpointMode
	EnvUseDualStack     = ec2.EnvUseDualStack
)

// Config is the validated cloud config.
type Config struct {
	Zone                 string
	Region               string
	VPC                  string
	SubnetID             string
	RoleARN              string
	SourceARN            string
	KubernetesClusterTag string
	KubernetesClusterID  string
	// NodeIPFamilies orders node addresses; default [IPv4] as upstream.
	NodeIPFamilies []v1.IPFamily
	// IPv6PrefixDelegation defaults to off.
	IPv6PrefixDelegation PrefixDelegation
	// IPv4PodCIDRSource gives each node an IPv4 pod range beside its IPv6
	// /80 (dual-stack spec.podCIDRs): PodCIDRSourceClusterCIDR carves it
	// from the IPv4 CIDR of --cluster-cidr; "" (none) writes the /80 alone.
	IPv4PodCIDRSource string
	// IMDSEndpointMode is "IPv4" or "IPv6".
	IMDSEndpointMode string
	// EC2DualStackEndpoint selects ec2.<region>.api.aws.
	EC2DualStackEndpoint bool
	// TopologyPattern (SupportedTopologyInstanceTypePattern) selects the
	// instance types asked for network topology labels; nil means
	// ec2.DefaultTopologyPattern.
	TopologyPattern *regexp.Regexp
	// ServiceOverrides holds the [ServiceOverride "N"] sections, sorted by N.
	ServiceOverrides []ServiceOverride
	// DefaultLoadBalancerType is the load balancer of a Service of type
	// LoadBalancer without the aws-load-balancer-type annotation:
	// LoadBalancerTypeClassic (left to upstream's controller, with a
	// Warning event) or LoadBalancerTypeNLB.
	DefaultLoadBalancerType string
	// EnablePrimaryIPv6 has the node controller mark each node's IPv6
	// address primary on its network interface, which instance targets of
	// IPv6 target groups need. AWS cannot undo it.
	EnablePrimaryIPv6 bool
}

// DefaultLoadBalancerType values.
const (
	LoadBalancerTypeClassic = "classic"
	LoadBalancerTypeNLB     = "nlb"
)

// IPv4PodCIDRSource values.
const (
	PodCIDRSourceNone        = "none"
	PodCIDRSourceClusterCIDR = "cluster-cidr"
	PodCIDRSourceENIPrefix   = "eni-prefix"
)

// fileConfig mirrors upstream's INI layout. Keys upstream reads for load
// balancers and routes are accepted, so upstream files parse unchanged, and
// ignored (see ignoredKeys).
type fileConfig struct {
	Global struct {
		Zone                                            string
		Region                                          string
		VPC                                             string
		SubnetID                                        string
		RouteTableID                                    string
		RoleARN                                         string
		SourceARN                                       string
		KubernetesClusterTag                            string
		KubernetesClusterID                             string
		DisableSecurityGroupIngress                     string
		ElbSecurityGroup                                string
		NodeIPFamilies                                  []string
		ClusterServiceLoadBalancerHealthProbeMode       string
		ClusterServiceSharedLoadBalancerHealthProbePort string
		ClusterServiceSharedLoadBalancerHealthProbePath string
		SupportedTopologyInstanceTypePattern            string
		NLBSecurityGroupMode                            string

		IPv6PrefixDelegation string
		IPv4PodCIDRSource    string
		IMDSEndpointMode     string
		EC2DualStackEndpoint string

		DefaultLoadBalancerType string
		EnablePrimaryIPv6       string
	}
	ServiceOverride map[string]*struct {
		Service       string
		Region        string
		URL           string
		SigningRegion string
		SigningMethod string
		SigningName   string
	}
}

// IgnoredKeys returns the [Global] keys set in the file that only upstream's
// load-balancer and route code reads; this provider ignores them.
func (f *fileConfig) ignoredKeys() []string {
	g := &f.Global
	var out []string
	for k, v := range map[string]string{
		"RouteTableID": g.RouteTableID, "DisableSecurityGroupIngress": g.DisableSecurityGroupIngress,
		"ElbSecurityGroup": g.ElbSecurityGroup, "ClusterServiceLoadBalancerHealthProbeMode": g.ClusterServiceLoadBalancerHealthProbeMode,
		"ClusterServiceSharedLoadBalancerHealthProbePort": g.ClusterServiceSharedLoadBalancerHealthProbePort,
		"ClusterServiceSharedLoadBalancerHealthProbePath": g.ClusterServiceSharedLoadBalancerHealthProbePath,
		"NLBSecurityGroupMode":                            g.NLBSecurityGroupMode,
	} {
		if v != "" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// ReadConfig parses a cloud config (nil means empty) with defaults from the
// process environment.
func ReadConfig(r io.Reader) (*Config, []string, error) {
	return ParseConfig(r, os.Getenv)
}

// ParseConfig parses and validates a cloud config in upstream's INI format.
// getenv supplies the SDK environment defaults. It reports every problem at
// once, each naming its key. The second result lists keys accepted for
// upstream compatibility but ignored.
func ParseConfig(r io.Reader, getenv func(string) string) (*Config, []string, error) {
	var f fileConfig
	var errs []error
	if r != nil {
		src, err := io.ReadAll(r)
		if err != nil {
			return nil, nil, fmt.Errorf("cloud config: %w", err)
		}
		// gcfg merges repeated sections and lets the last of a repeated
		// single-valued key win, silently; refuse both first.
		errs = repeats(src)
		if err := gcfg.ReadInto(&f, bytes.NewReader(src)); err != nil {
			return nil, nil, errors.Join(append(errs, gcfgError(err))...)
		}
	}
	g := &f.Global
	cfg := &Config{
		Zone:                 strings.TrimSpace(g.Zone),
		Region:               strings.TrimSpace(g.Region),
		VPC:                  strings.TrimSpace(g.VPC),
		SubnetID:             strings.TrimSpace(g.SubnetID),
		RoleARN:              strings.TrimSpace(g.RoleARN),
		SourceARN:            strings.TrimSpace(g.SourceARN),
		KubernetesClusterTag: strings.TrimSpace(g.KubernetesClusterTag),
		KubernetesClusterID:  strings.TrimSpace(g.KubernetesClusterID),
	}
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("cloud config: %s: "+format, append([]any{key}, args...)...))
	}

	for _, fam := range g.NodeIPFamilies {
		var f v1.IPFamily
		switch strings.ToLower(strings.TrimSpace(fam)) {
		case "ipv4":
			f = v1.IPv4Protocol
		case "ipv6":
			f = v1.IPv6Protocol
		default:
			bad("NodeIPFamilies", "invalid value %q (want ipv4 or ipv6)", fam)
			continue
		}
		if slices.Contains(cfg.NodeIPFamilies, f) {
			bad("NodeIPFamilies", "%q listed twice", fam)
			continue
		}
		cfg.NodeIPFamilies = append(cfg.NodeIPFamilies, f)
	}
	if len(cfg.NodeIPFamilies) == 0 && len(g.NodeIPFamilies) == 0 {
		cfg.NodeIPFamilies = []v1.IPFamily{v1.IPv4Protocol}
	}

	if m, err := nodemeta.ParseMode(g.IPv6PrefixDelegation); err != nil {
		bad("IPv6PrefixDelegation", "%v", err)
	} else {
		cfg.IPv6PrefixDelegation = m
	}
	if cfg.IPv6PrefixDelegation != "" && cfg.IPv6PrefixDelegation != DelegationOff && !slices.Contains(cfg.NodeIPFamilies, v1.IPv6Protocol) {
		bad("IPv6PrefixDelegation", "%q needs ipv6 in NodeIPFamilies", cfg.IPv6PrefixDelegation)
	}
	switch src := strings.ToLower(strings.TrimSpace(g.IPv4PodCIDRSource)); src {
	case "", PodCIDRSourceNone:
	case PodCIDRSourceClusterCIDR:
		if cfg.IPv6PrefixDelegation != DelegationAdopt && cfg.IPv6PrefixDelegation != DelegationAssign {
			bad("IPv4PodCIDRSource", "%q pairs an IPv4 range with each node's IPv6 /80: it needs IPv6PrefixDelegation = adopt or assign", src)
		} else {
			cfg.IPv4PodCIDRSource = src
		}
	case PodCIDRSourceENIPrefix:
		bad("IPv4PodCIDRSource", "%q is not supported by this version; use %q", src, PodCIDRSourceClusterCIDR)
	default:
		bad("IPv4PodCIDRSource", "invalid value %q (want %s or %s)", g.IPv4PodCIDRSource, PodCIDRSourceNone, PodCIDRSourceClusterCIDR)
	}

	switch t := strings.ToLower(strings.TrimSpace(g.DefaultLoadBalancerType)); t {
	case "", LoadBalancerTypeClassic:
		cfg.DefaultLoadBalancerType = LoadBalancerTypeClassic
	case LoadBalancerTypeNLB:
		cfg.DefaultLoadBalancerType = t
	default:
		bad("DefaultLoadBalancerType", "invalid value %q (want %s or %s)", g.DefaultLoadBalancerType, LoadBalancerTypeClassic, LoadBalancerTypeNLB)
	}
	if v := strings.TrimSpace(g.EnablePrimaryIPv6); v != "" {
		b, err := strconv.ParseBool(v)
		switch {
		case err != nil:
			bad("EnablePrimaryIPv6", "invalid value %q (want true or false)", v)
		case b && !slices.Contains(cfg.NodeIPFamilies, v1.IPv6Protocol):
			bad("EnablePrimaryIPv6", "marks each node's IPv6 address primary: it needs ipv6 in NodeIPFamilies")
		default:
			cfg.EnablePrimaryIPv6 = b
		}
	}

	mode, key := strings.TrimSpace(g.IMDSEndpointMode), "IMDSEndpointMode"
	if mode == "" {
		mode, key = strings.TrimSpace(getenv(EnvIMDSEndpointMode)), EnvIMDSEndpointMode
	}
	switch {
	case mode == "" || strings.EqualFold(mode, ec2.IMDSEndpointModeIPv4):
		cfg.IMDSEndpointMode = ec2.IMDSEndpointModeIPv4
	case strings.EqualFold(mode, ec2.IMDSEndpointModeIPv6):
		cfg.IMDSEndpointMode = ec2.IMDSEndpointModeIPv6
	default:
		bad(key, "invalid value %q (want IPv4 or IPv6)", mode)
	}

	ds, key := strings.TrimSpace(g.EC2DualStackEndpoint), "EC2DualStackEndpoint"
	if ds == "" {
		ds, key = strings.TrimSpace(getenv(EnvUseDualStack)), EnvUseDualStack
	}
	if ds != "" {
		b, err := strconv.ParseBool(ds)
		if err != nil {
			bad(key, "invalid value %q (want true or false)", ds)
		}
		cfg.EC2DualStackEndpoint = b
	}

	if cfg.KubernetesClusterTag != "" && cfg.KubernetesClusterID != "" && cfg.KubernetesClusterTag != cfg.KubernetesClusterID {
		bad("KubernetesClusterID", "%q does not match KubernetesClusterTag %q", cfg.KubernetesClusterID, cfg.KubernetesClusterTag)
	}
	if g.ClusterServiceSharedLoadBalancerHealthProbePort != "" {
		if _, err := strconv.ParseInt(strings.TrimSpace(g.ClusterServiceSharedLoadBalancerHealthProbePort), 10, 32); err != nil {
			bad("ClusterServiceSharedLoadBalancerHealthProbePort", "invalid value %q", g.ClusterServiceSharedLoadBalancerHealthProbePort)
		}
	}
	if v := g.DisableSecurityGroupIngress; v != "" {
		if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			bad("DisableSecurityGroupIngress", "invalid value %q", v)
		}
	}

	if v := strings.TrimSpace(g.SupportedTopologyInstanceTypePattern); v != "" {
		if re, err := regexp.Compile(v); err != nil {
			bad("SupportedTopologyInstanceTypePattern", "invalid regular expression %q: %v", v, err)
		} else {
			cfg.TopologyPattern = re
		}
	}

	errs = append(errs, cfg.parseOverrides(&f)...)
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return cfg, f.ignoredKeys(), nil
}

// ClusterID returns the configured cluster ID, legacy tag first as upstream.
func (cfg *Config) ClusterID() string {
	if cfg.KubernetesClusterTag != "" {
		return cfg.KubernetesClusterTag
	}
	return cfg.KubernetesClusterID
}

// gcfgError turns gcfg's errors into ones that name the key: gcfg reports an
// unknown key or section as "can't store data at section …, variable …".
func gcfgError(err error) error {
	var list []error
	var wl warnings.List
	if errors.As(err, &wl) {
		list = append(list, wl.Warnings...)
		if wl.Fatal != nil {
			list = append(list, wl.Fatal)
		}
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	seen := map[string]bool{}
	for _, e := range list {
		if seen[e.Error()] {
			continue
		}
		seen[e.Error()] = true
		if rest, ok := strings.CutPrefix(e.Error(), "can't store data at "); ok {
			out = append(out, fmt.Errorf("cloud config: unknown key or section: %s", rest))
		} else {
			out = append(out, fmt.Errorf("cloud config: %w", e))
		}
	}
	return errors.Join(out...)
}
