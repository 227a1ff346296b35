package ec2

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// cleanAWSEnv unsets every environment variable that could give the SDK
// credentials or an endpoint other than the test's.
func cleanAWSEnv(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		EnvIMDSEndpoint, EnvIMDSEndpointMode, EnvUseDualStack, "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_STS",
		"AWS_EC2_METADATA_DISABLED", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

func startRoleSim(t *testing.T) *ec2sim.Sim {
	t.Helper()
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: 1, IPv6Subnet: true})
	sc.Instances[0].ID = "i-0123456789abcdef0"
	sc.InstanceRole = "ccm-node-role"
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// TestCredentialChainFollowsIMDSMode: the credential chain's IMDS client
// takes the mode from Access or from the environment, as the identity
// client does; instance-role credentials then come from [fd00:ec2::254]
// only, and sign EC2 calls that ec2sim accepts.
func TestCredentialChainFollowsIMDSMode(t *testing.T) {
	sim := startRoleSim(t)
	akid, secret, token := sim.RoleCredentials()
	cases := []struct {
		name   string
		access Access
		env    map[string]string
	}{
		{"cloud config", Access{Region: sim.Region(), IMDSEndpointMode: "IPv6"}, nil},
		{"environment", Access{Region: sim.Region()}, map[string]string{EnvIMDSEndpointMode: "IPv6"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanAWSEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			rd := &redirect{target: sim.IMDSEndpoint(), hosts: map[string]bool{}}
			cfg, err := loadAWSConfig(t.Context(), tc.access, config.WithHTTPClient(&http.Client{Transport: rd}))
			if err != nil {
				t.Fatal(err)
			}
			creds, err := cfg.Credentials.Retrieve(t.Context())
			if err != nil {
				t.Fatalf("retrieve credentials: %v", err)
			}
			if creds.AccessKeyID != akid || creds.SecretAccessKey != secret || creds.SessionToken != token {
				t.Errorf("credentials %s/%s, want the instance role's %s", creds.AccessKeyID, creds.Source, akid)
			}
			if len(rd.hosts) != 1 || !rd.hosts["[fd00:ec2::254]"] {
				t.Errorf("IMDS hosts = %v, want only [fd00:ec2::254]", rd.hosts)
			}
		})
	}

	t.Run("override URL, then EC2 signed with role credentials", func(t *testing.T) {
		cleanAWSEnv(t)
		t.Setenv("AWS_ENDPOINT_URL_EC2", sim.Endpoint())
		c, err := New(t.Context(), Config{Region: sim.Region(), Access: Access{IMDSEndpointMode: "IPv6", IMDSEndpoint: sim.IMDSEndpoint()}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.InstanceByID(t.Context(), "i-0123456789abcdef0"); err != nil {
			t.Fatalf("InstanceByID with role credentials: %v", err)
		}
		if n := sim.Counts()["DescribeInstances"]["success"]; n != 1 {
			t.Errorf("DescribeInstances successes = %d, want 1", n)
		}
	})
}

// stsRecorder answers every request with a canned AssumeRole reply and
// records hosts and headers.
type stsRecorder struct {
	mu      sync.Mutex
	hosts   []string
	headers []http.Header
}

const assumeRoleReply = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>` +
	`<Credentials><AccessKeyId>ASIAASSUMEDEXAMPLE01</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>` +
	`<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>` +
	`<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/ccm/x</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>` +
	`</AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>`

func (r *stsRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.hosts = append(r.hosts, req.URL.Host)
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/xml"}},
		Body: io.NopCloser(strings.NewReader(assumeRoleReply)), Request: req}, nil
}

// TestAssumeRoleEndpoint: RoleARN's STS client follows DualStack (cloud
// config or environment) to sts.<region>.api.aws, yields to an STS endpoint
// URL, and sends x-amz-source-account and x-amz-source-arn.
func TestAssumeRoleEndpoint(t *testing.T) {
	const role = "arn:aws:iam::123456789012:role/ccm"
	const source = "arn:aws:eks:eu-west-1:123456789012:cluster/c"
	cases := []struct {
		name     string
		access   Access
		env      map[string]string
		wantHost string
	}{
		{"regional", Access{Region: "eu-west-1"}, nil, "sts.eu-west-1.amazonaws.com"},
		{"dual-stack from the cloud config", Access{Region: "eu-west-1", DualStack: true}, nil, "sts.eu-west-1.api.aws"},
		{"dual-stack from the environment", Access{Region: "eu-west-1"}, map[string]string{EnvUseDualStack: "true"}, "sts.eu-west-1.api.aws"},
		{"endpoint URL wins over dual-stack", Access{Region: "eu-west-1", DualStack: true},
			map[string]string{"AWS_ENDPOINT_URL_STS": "https://sts.internal.example:8443"}, "sts.internal.example:8443"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanAWSEnv(t)
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIABASEEXAMPLE00001")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "base-secret")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			rec := &stsRecorder{}
			cfg, err := loadAWSConfig(t.Context(), tc.access, config.WithHTTPClient(&http.Client{Transport: rec}))
			if err != nil {
				t.Fatal(err)
			}
			p, err := assumeRoleProvider(cfg, Config{RoleARN: role, SourceARN: source})
			if err != nil {
				t.Fatal(err)
			}
			creds, err := p.Retrieve(t.Context())
			if err != nil {
				t.Fatalf("assume role: %v", err)
			}
			if creds.AccessKeyID != "ASIAASSUMEDEXAMPLE01" {
				t.Errorf("credentials %s", creds.AccessKeyID)
			}
			if len(rec.hosts) != 1 || rec.hosts[0] != tc.wantHost {
				t.Fatalf("STS hosts %v, want [%s]", rec.hosts, tc.wantHost)
			}
			h := rec.headers[0]
			if h.Get("x-amz-source-account") != "123456789012" || h.Get("x-amz-source-arn") != source {
				t.Errorf("source headers %q %q", h.Get("x-amz-source-account"), h.Get("x-amz-source-arn"))
			}
		})
	}
}

// TestIMDSTarget: the start-up error names the endpoint, its family and the
// setting that chose it.
func TestIMDSTarget(t *testing.T) {
	cleanAWSEnv(t)
	for _, tc := range []struct {
		a    Access
		env  string
		want []string
	}{
		{Access{}, "", []string{IMDSEndpointIPv4, "IPv4", "IMDSEndpointMode = IPv6"}},
		{Access{IMDSEndpointMode: "IPv4"}, "", []string{IMDSEndpointIPv4, "IPv4", "IMDSEndpointMode = IPv6"}},
		{Access{IMDSEndpointMode: "IPv6"}, "", []string{IMDSEndpointIPv6, "IPv6", "IMDSEndpointMode"}},
		{Access{IMDSEndpoint: "http://[::1]:1234"}, "", []string{"http://[::1]:1234", "IPv6", "ServiceOverride"}},
		{Access{}, "http://127.0.0.1:9", []string{"http://127.0.0.1:9", "IPv4", EnvIMDSEndpoint}},
	} {
		t.Setenv(EnvIMDSEndpoint, tc.env)
		got := tc.a.IMDSTarget()
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("IMDSTarget(%+v, env %q) = %q, missing %q", tc.a, tc.env, got, w)
			}
		}
	}
}
