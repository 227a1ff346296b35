package ec2

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// redirect records the host the IMDS client chose and sends the request to
// target instead, so the default IPv6 endpoint is exercised on loopback.
type redirect struct {
	target string
	mu     sync.Mutex
	hosts  map[string]bool
}

func (r *redirect) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.hosts[req.URL.Host] = true
	r.mu.Unlock()
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = "http", strings.TrimPrefix(r.target, "http://")
	req.Host = ""
	return http.DefaultTransport.RoundTrip(req)
}

func TestGetMetadataOverIPv6(t *testing.T) {
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: 1, IPv6Subnet: true})
	sc.Instances[0].ID = "i-0123456789abcdef0"
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	if !strings.HasPrefix(sim.EndpointIPv6(), "http://[::1]:") {
		t.Fatalf("ec2sim IPv6 endpoint %q", sim.EndpointIPv6())
	}
	check := func(md *Metadata, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("GetMetadata: %v", err)
		}
		if md.InstanceID != "i-0123456789abcdef0" || md.Region != sim.Region() || !strings.HasPrefix(md.Zone, sim.Region()) ||
			md.ZoneID == "" || md.MAC == "" || !strings.HasPrefix(md.VPCID, "vpc-") {
			t.Errorf("metadata %+v", md)
		}
	}

	// IPv6 mode with an explicit [::1] endpoint, as a ServiceOverride gives.
	check(GetMetadata(t.Context(), Access{IMDSEndpointMode: "IPv6", IMDSEndpoint: sim.EndpointIPv6()}))

	// IPv6 mode alone targets [fd00:ec2::254]; the transport carries it to [::1].
	rd := &redirect{target: sim.EndpointIPv6(), hosts: map[string]bool{}}
	check(getMetadata(t.Context(), imds.New(imds.Options{EndpointMode: imds.EndpointModeStateIPv6, HTTPClient: &http.Client{Transport: rd}})))
	if len(rd.hosts) != 1 || !rd.hosts["[fd00:ec2::254]"] {
		t.Errorf("IMDS hosts = %v, want only [fd00:ec2::254]", rd.hosts)
	}

	if _, err := GetMetadata(t.Context(), Access{IMDSEndpointMode: "IPv5", IMDSEndpoint: sim.EndpointIPv6()}); err == nil {
		t.Error("bad endpoint mode accepted")
	}
}
