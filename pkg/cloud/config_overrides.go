package cloud

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// ServiceOverride is one [ServiceOverride "N"] section.
type ServiceOverride struct {
	Name          string
	Service       string
	Region        string
	URL           string
	SigningRegion string
	SigningMethod string
	SigningName   string
}

// parseOverrides validates [ServiceOverride "N"] sections as upstream does:
// Service, Region, URL and SigningRegion are required, and a service may be
// overridden once per region.
func (cfg *Config) parseOverrides(f *fileConfig) []error {
	var errs []error
	seen := map[string]string{}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range f.ServiceOverride {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		o := f.ServiceOverride[n]
		so := ServiceOverride{
			Name:          n,
			Service:       strings.TrimSpace(o.Service),
			Region:        strings.TrimSpace(o.Region),
			URL:           strings.TrimSpace(o.URL),
			SigningRegion: strings.TrimSpace(o.SigningRegion),
			SigningMethod: strings.TrimSpace(o.SigningMethod),
			SigningName:   strings.TrimSpace(o.SigningName),
		}
		bad := func(key, format string, args ...any) {
			errs = append(errs, fmt.Errorf("cloud config: ServiceOverride %q: %s: "+format, append([]any{n, key}, args...)...))
		}
		for key, v := range map[string]string{"Service": so.Service, "Region": so.Region, "URL": so.URL, "SigningRegion": so.SigningRegion} {
			if v == "" {
				bad(key, "missing")
			}
		}
		if so.URL != "" {
			if u, err := url.Parse(so.URL); err != nil || u.Scheme == "" || u.Host == "" {
				bad("URL", "invalid value %q (want an absolute URL)", so.URL)
			}
		}
		sig := strings.ToLower(so.Service) + "_" + so.Region
		if prev, ok := seen[sig]; ok && so.Service != "" && so.Region != "" {
			bad("Service", "duplicates override %q for %s in %s", prev, so.Service, so.Region)
		}
		seen[sig] = n
		cfg.ServiceOverrides = append(cfg.ServiceOverrides, so)
	}
	return errs
}

// EC2Override returns the EC2 override for region, if any (Service "ec2",
// any case).
func (cfg *Config) EC2Override(region string) (ServiceOverride, bool) {
	return cfg.override(region, "ec2")
}

// ELBOverride returns the [ServiceOverride] for Elastic Load Balancing in
// region (Service "elasticloadbalancing", as upstream names it, or the
// SDK's "elasticloadbalancingv2"), if any.
func (cfg *Config) ELBOverride(region string) (ServiceOverride, bool) {
	return cfg.override(region, "elasticloadbalancing", "elasticloadbalancingv2")
}

func (cfg *Config) override(region string, services ...string) (ServiceOverride, bool) {
	for _, o := range cfg.ServiceOverrides {
		if o.Region == region && slices.ContainsFunc(services, func(s string) bool { return strings.EqualFold(o.Service, s) }) {
			return o, true
		}
	}
	return ServiceOverride{}, false
}

// IMDSEndpoint returns the URL of an IMDS override (Service "ec2imds" as the
// SDK names it, or "imds"), or "".
func (cfg *Config) IMDSEndpoint() string {
	for _, o := range cfg.ServiceOverrides {
		if strings.EqualFold(o.Service, "ec2imds") || strings.EqualFold(o.Service, "imds") {
			return o.URL
		}
	}
	return ""
}
