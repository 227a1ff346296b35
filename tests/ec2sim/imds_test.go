package ec2sim

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

func readMetadata(t *testing.T, c *imds.Client, path string) string {
	t.Helper()
	out, err := c.GetMetadata(t.Context(), &imds.GetMetadataInput{Path: path})
	if err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func checkIMDS(t *testing.T, c *imds.Client) {
	t.Helper()
	region, err := c.GetRegion(t.Context(), &imds.GetRegionInput{})
	if err != nil {
		t.Fatalf("get region: %v", err)
	}
	if region.Region != "us-east-1" {
		t.Errorf("region = %q", region.Region)
	}
	mac := "02:00:00:00:00:01"
	want := map[string]string{
		"instance-id":                    idPre,
		"placement/availability-zone":    "us-east-1a",
		"placement/availability-zone-id": "use1-az1",
		"placement/region":               "us-east-1",
		"local-hostname":                 "ip-10-0-1-10.ec2.internal",
		"local-ipv4":                     "10.0.1.10",
		"mac":                            mac,
		"network/interfaces/macs/":       mac + "/",
		"network/interfaces/macs/" + mac + "/vpc-id":                  "vpc-0a1b2c3d4e5f60708",
		"network/interfaces/macs/" + mac + "/subnet-id":               "subnet-0aaaaaaaaaaaaaaa1",
		"network/interfaces/macs/" + mac + "/ipv6s":                   "2600:1f18:4000:a901::10",
		"network/interfaces/macs/" + mac + "/ipv6-prefix":             "2600:1f18:4000:a901:1234::/80",
		"network/interfaces/macs/" + mac + "/interface-id":            eniPre,
		"network/interfaces/macs/" + mac + "/device-number":           "0",
		"network/interfaces/macs/" + mac + "/subnet-ipv6-cidr-blocks": "2600:1f18:4000:a901::/64",
	}
	for path, w := range want {
		if got := readMetadata(t, c, path); got != w {
			t.Errorf("%s = %q, want %q", path, got, w)
		}
	}
	doc, err := c.GetInstanceIdentityDocument(t.Context(), &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		t.Fatalf("identity document: %v", err)
	}
	if doc.InstanceID != idPre || doc.AvailabilityZone != "us-east-1a" || doc.PrivateIP != "10.0.1.10" {
		t.Errorf("identity document = %+v", doc.InstanceIdentityDocument)
	}
}

func TestIMDSIPv4(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	checkIMDS(t, imds.New(imds.Options{Endpoint: sim.Endpoint()}))
}

func TestIMDSIPv6Endpoint(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	if !strings.HasPrefix(sim.EndpointIPv6(), "http://[::1]:") {
		t.Fatalf("ipv6 endpoint = %s", sim.EndpointIPv6())
	}
	checkIMDS(t, imds.New(imds.Options{Endpoint: sim.EndpointIPv6()}))
}

func TestIMDSIPv6EndpointModeFromEnv(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", sim.EndpointIPv6())
	t.Setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
	cfg, err := config.LoadDefaultConfig(t.Context(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	checkIMDS(t, imds.NewFromConfig(cfg))
	c := imds.New(imds.Options{EndpointMode: imds.EndpointModeStateIPv6})
	checkIMDS(t, c)
}

func TestIMDSTokenRules(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	do := func(method, path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, sim.Endpoint()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	for _, ttl := range []string{"", "0", "21601", "x"} {
		if resp, _ := do("PUT", "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": ttl}); resp.StatusCode != 400 {
			t.Errorf("ttl %q: status %d, want 400", ttl, resp.StatusCode)
		}
	}
	resp, tok := do("PUT", "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "300"})
	if resp.StatusCode != 200 || resp.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") != "300" || tok == "" {
		t.Fatalf("token reply %d %q ttl=%q", resp.StatusCode, tok, resp.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
	}
	if resp, _ := do("GET", "/latest/meta-data/instance-id", nil); resp.StatusCode != 401 {
		t.Errorf("no token: status %d, want 401", resp.StatusCode)
	}
	if resp, _ := do("GET", "/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": "bogus"}); resp.StatusCode != 401 {
		t.Errorf("bad token: status %d, want 401", resp.StatusCode)
	}
	auth := map[string]string{"X-aws-ec2-metadata-token": tok}
	if resp, body := do("GET", "/latest/meta-data/instance-id", auth); resp.StatusCode != 200 || body != idPre {
		t.Errorf("instance-id: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do("GET", "/latest/meta-data/no-such-thing", auth); resp.StatusCode != 404 {
		t.Errorf("unknown path: status %d, want 404", resp.StatusCode)
	}
	if resp, body := do("GET", "/latest/meta-data/placement/", auth); resp.StatusCode != 200 ||
		body != "availability-zone\navailability-zone-id\nregion" {
		t.Errorf("placement listing: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do("PUT", "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "300", "X-Forwarded-For": "1.2.3.4"}); resp.StatusCode != 403 {
		t.Errorf("X-Forwarded-For: status %d, want 403", resp.StatusCode)
	}
	sim.SetIMDSInstance(idBare)
	if _, body := do("GET", "/latest/meta-data/instance-id", auth); body != idBare {
		t.Errorf("after SetIMDSInstance: %q", body)
	}
}
