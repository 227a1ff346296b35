package ec2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go"
)

// Environment variables of the AWS SDK that the access settings below fall
// back to when the cloud config leaves them unset.
const (
	EnvIMDSEndpointMode = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"
	EnvIMDSEndpoint     = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
	EnvUseDualStack     = "AWS_USE_DUALSTACK_ENDPOINT"
)

// Default IMDS endpoints per mode, as the SDK uses them.
const (
	IMDSEndpointIPv4 = "http://169.254.169.254"
	IMDSEndpointIPv6 = "http://[fd00:ec2::254]"
)

// Access is how the process reaches AWS: one set of settings for every
// client it builds (EC2, STS, the credential chain's IMDS client and the
// IMDS client for the instance's identity), so that an IPv6-only instance
// reaches none of them over IPv4.
type Access struct {
	// Region, when set, is the region of the AWS config.
	Region string
	// IMDSEndpointMode is "", "IPv4" or "IPv6"; "" leaves it to
	// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE, else IPv4.
	IMDSEndpointMode string
	// IMDSEndpoint overrides the IMDS URL; "" leaves it to
	// AWS_EC2_METADATA_SERVICE_ENDPOINT, else the mode's default.
	IMDSEndpoint string
	// DualStack selects dual-stack endpoints (<service>.<region>.api.aws)
	// for every AWS API client; false leaves it to AWS_USE_DUALSTACK_ENDPOINT.
	DualStack bool
}

// imdsMode parses an endpoint mode as the SDK spells it.
func imdsMode(mode string) (imds.EndpointModeState, error) {
	switch {
	case mode == "":
		return imds.EndpointModeStateUnset, nil
	case strings.EqualFold(mode, IMDSEndpointModeIPv4):
		return imds.EndpointModeStateIPv4, nil
	case strings.EqualFold(mode, IMDSEndpointModeIPv6):
		return imds.EndpointModeStateIPv6, nil
	}
	return imds.EndpointModeStateUnset, fmt.Errorf("imds endpoint mode %q: want IPv4 or IPv6", mode)
}

// LoadAWSConfig loads the SDK's default configuration chain (environment,
// shared config, web identity, IMDS role credentials) with a's settings
// applied to every client built from it, the credential chain's IMDS client
// included.
func LoadAWSConfig(ctx context.Context, a Access) (aws.Config, error) {
	return loadAWSConfig(ctx, a)
}

// loadAWSConfig is LoadAWSConfig with extra load options (tests add an
// HTTP client).
func loadAWSConfig(ctx context.Context, a Access, extra ...func(*config.LoadOptions) error) (aws.Config, error) {
	mode, err := imdsMode(a.IMDSEndpointMode)
	if err != nil {
		return aws.Config{}, err
	}
	var opts []func(*config.LoadOptions) error
	if a.Region != "" {
		opts = append(opts, config.WithRegion(a.Region))
	}
	if mode != imds.EndpointModeStateUnset {
		opts = append(opts, config.WithEC2IMDSEndpointMode(mode))
	}
	if a.IMDSEndpoint != "" {
		opts = append(opts, config.WithEC2IMDSEndpoint(a.IMDSEndpoint))
	}
	if a.DualStack {
		opts = append(opts, config.WithUseDualStackEndpoint(aws.DualStackEndpointStateEnabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(opts, extra...)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config: %w", err)
	}
	return cfg, nil
}

// IMDSTarget describes the IMDS endpoint a's settings select and the
// setting that selected it, for error messages.
func (a Access) IMDSTarget() string {
	switch {
	case a.IMDSEndpoint != "":
		return fmt.Sprintf("%s (%s, from a ServiceOverride for ec2imds)", a.IMDSEndpoint, family(a.IMDSEndpoint))
	case os.Getenv(EnvIMDSEndpoint) != "":
		v := os.Getenv(EnvIMDSEndpoint)
		return fmt.Sprintf("%s (%s, from %s)", v, family(v), EnvIMDSEndpoint)
	}
	mode, src := a.IMDSEndpointMode, "IMDSEndpointMode"
	if mode == "" {
		mode, src = os.Getenv(EnvIMDSEndpointMode), EnvIMDSEndpointMode
	}
	if strings.EqualFold(mode, IMDSEndpointModeIPv6) {
		return fmt.Sprintf("%s (IPv6, from %s = IPv6)", IMDSEndpointIPv6, src)
	}
	return fmt.Sprintf("%s (IPv4, the default: on an instance without IPv4 set IMDSEndpointMode = IPv6 in [Global] or %s=IPv6)",
		IMDSEndpointIPv4, EnvIMDSEndpointMode)
}

// family names the address family of a URL's host, or "hostname".
func family(rawURL string) string {
	host := rawURL
	if _, rest, ok := strings.Cut(rawURL, "://"); ok {
		host = rest
	}
	host, _, _ = strings.Cut(host, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	switch {
	case ip == nil:
		return "hostname"
	case ip.To4() != nil:
		return "IPv4"
	}
	return "IPv6"
}

// UnreachableHint explains a failed EC2 or STS call whose request never got
// an answer from AWS (a network error rather than an API error): which
// settings choose the endpoint and its address family. It returns "" for API
// errors and for nil.
func UnreachableHint(err error) string {
	var apiErr smithy.APIError
	if err == nil || errors.As(err, &apiErr) {
		return ""
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "ec2imds") || strings.Contains(msg, "EC2 IMDS"):
		return "the credential chain could not reach IMDS: on an instance without IPv4 set IMDSEndpointMode = IPv6 in [Global] or " +
			EnvIMDSEndpointMode + "=IPv6"
	case strings.Contains(msg, "dial ") || strings.Contains(msg, "no such host") || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "unreachable"):
		return "AWS API endpoint unreachable: EC2DualStackEndpoint = true (or " + EnvUseDualStack +
			"=true) selects the dual-stack endpoints <service>.<region>.api.aws, which IPv6-only instances need; " +
			"a ServiceOverride or AWS_ENDPOINT_URL_EC2 sets the URL"
	}
	return ""
}

// WithHint returns err with UnreachableHint appended when there is one.
func WithHint(err error) error {
	if h := UnreachableHint(err); h != "" {
		return fmt.Errorf("%w (%s)", err, h)
	}
	return err
}
