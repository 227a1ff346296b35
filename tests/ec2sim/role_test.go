package ec2sim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestInstanceRoleCredentials(t *testing.T) {
	sim, _ := newIPv6OnlySim(t, "us-east-1", Options{})
	md := imds.New(imds.Options{Endpoint: sim.Endpoint()})

	if got := readMetadata(t, md, "iam/security-credentials/"); got != roleName {
		t.Errorf("security-credentials listing = %q, want %q", got, roleName)
	}
	var info struct{ Code, LastUpdated, InstanceProfileArn, InstanceProfileId string }
	if err := json.Unmarshal([]byte(readMetadata(t, md, "iam/info")), &info); err != nil {
		t.Fatalf("iam/info: %v", err)
	}
	if info.Code != "Success" || info.InstanceProfileArn != "arn:aws:iam::111122223333:instance-profile/"+roleName ||
		!strings.HasPrefix(info.InstanceProfileId, "AIPA") || info.LastUpdated == "" {
		t.Errorf("iam/info = %+v", info)
	}
	var raw struct{ Code, LastUpdated, Type, AccessKeyId, SecretAccessKey, Token, Expiration string }
	if err := json.Unmarshal([]byte(readMetadata(t, md, "iam/security-credentials/"+roleName)), &raw); err != nil {
		t.Fatalf("security-credentials: %v", err)
	}
	exp, err := time.Parse(time.RFC3339, raw.Expiration)
	if err != nil {
		t.Fatalf("Expiration %q: %v", raw.Expiration, err)
	}
	if left := time.Until(exp); left < 5*time.Hour+50*time.Minute || left > 6*time.Hour {
		t.Errorf("credentials expire in %v, want about 6h", left)
	}
	if raw.Code != "Success" || raw.Type != "AWS-HMAC" || !strings.HasPrefix(raw.AccessKeyId, "ASIA") || len(raw.AccessKeyId) != 20 ||
		raw.SecretAccessKey == "" || raw.Token == "" {
		t.Errorf("security-credentials = %+v", raw)
	}

	// The SDK's instance-role provider, as the default chain uses it.
	prov := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = md })
	creds, err := prov.Retrieve(t.Context())
	if err != nil {
		t.Fatalf("ec2rolecreds: %v", err)
	}
	akid, secret, token := sim.RoleCredentials()
	if creds.AccessKeyID != akid || creds.SecretAccessKey != secret || creds.SessionToken != token || !creds.CanExpire {
		t.Errorf("ec2rolecreds got %s/%v, want the sim's role credentials %s", creds.AccessKeyID, creds.CanExpire, akid)
	}

	cfg := sim.AWSConfig()
	cfg.Credentials = aws.NewCredentialsCache(prov)
	c := ec2.NewFromConfig(cfg)
	if _, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{idV6Fixed}}); err != nil {
		t.Fatalf("DescribeInstances with role credentials: %v", err)
	}

	bad := map[string]aws.CredentialsProvider{
		"wrong token":  credentials.NewStaticCredentialsProvider(akid, secret, token+"x"),
		"no token":     credentials.NewStaticCredentialsProvider(akid, secret, ""),
		"unknown ASIA": credentials.NewStaticCredentialsProvider("ASIAAAAAAAAAAAAAAAAA", secret, token),
	}
	for name, p := range bad {
		cfg.Credentials = p
		_, err := ec2.NewFromConfig(cfg).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
		wantCode(t, err, "AuthFailure")
		if httpStatus(err) != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, httpStatus(err))
		}
	}
	// Right token, wrong secret: the signature check catches it.
	cfg.Credentials = credentials.NewStaticCredentialsProvider(akid, SecretAccessKey, token)
	_, err = ec2.NewFromConfig(cfg).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	wantCode(t, err, "SignatureDoesNotMatch")
	// The static keys keep working.
	if _, err := ec2.NewFromConfig(sim.AWSConfig()).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("static keys: %v", err)
	}
}

func TestNoInstanceRole(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	md := imds.New(imds.Options{Endpoint: sim.Endpoint()})
	if _, err := md.GetMetadata(t.Context(), &imds.GetMetadataInput{Path: "iam/security-credentials/"}); httpStatus(err) != 404 {
		t.Errorf("iam without a role: %v, want 404", err)
	}
	if a, s, tok := sim.RoleCredentials(); a != "" || s != "" || tok != "" {
		t.Errorf("RoleCredentials without a role = %q %q %q", a, s, tok)
	}
}

func TestIPv6OnlyListeners(t *testing.T) {
	sim, c := newIPv6OnlySim(t, "us-east-1", Options{Addr: "[::1]:0", IMDSAddr: "[::1]:0"})
	if len(sim.listeners) != 1 || !strings.HasPrefix(sim.Endpoint(), "http://[::1]:") || sim.EndpointIPv6() != sim.Endpoint() {
		t.Fatalf("listeners=%d endpoint=%s ipv6=%s", len(sim.listeners), sim.Endpoint(), sim.EndpointIPv6())
	}
	if !strings.HasPrefix(sim.IMDSEndpoint(), "http://[::1]:") || sim.IMDSEndpoint() == sim.Endpoint() {
		t.Fatalf("imds endpoint = %s (main %s)", sim.IMDSEndpoint(), sim.Endpoint())
	}
	if _, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{idV6Auto}}); err != nil {
		t.Errorf("EC2 on the IPv6 listener: %v", err)
	}
	md := imds.New(imds.Options{Endpoint: sim.IMDSEndpoint()})
	if got := readMetadata(t, md, "instance-id"); got != idV6Fixed {
		t.Errorf("instance-id on the IMDS listener = %q", got)
	}
	creds, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = md }).Retrieve(t.Context())
	if err != nil || !strings.HasPrefix(creds.AccessKeyID, "ASIA") {
		t.Errorf("role credentials on the IMDS listener: %v %s", err, creds.AccessKeyID)
	}
	// EC2 and admin are not served on the IMDS listener.
	cfg := sim.AWSConfig()
	cfg.BaseEndpoint = aws.String(sim.IMDSEndpoint())
	_, err = ec2.NewFromConfig(cfg).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	if httpStatus(err) != http.StatusNotFound {
		t.Errorf("EC2 on the IMDS listener: %v, want 404", err)
	}
	resp, err := http.Get(sim.IMDSEndpoint() + "/_ec2sim/state")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin on the IMDS listener: %d, want 404", resp.StatusCode)
	}
	env := strings.Join(sim.EnvWithoutKeys(), " ")
	if !strings.Contains(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+sim.IMDSEndpoint()) || strings.Contains(env, "AWS_ACCESS_KEY_ID") {
		t.Errorf("EnvWithoutKeys = %s", env)
	}
}
