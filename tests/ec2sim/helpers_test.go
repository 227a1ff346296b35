package ec2sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

const testScenarioYAML = `
region: us-east-1
seed: 7
zones:
- {name: us-east-1a, id: use1-az1}
- {name: us-east-1b, id: use1-az2}
vpcs:
- id: vpc-0a1b2c3d4e5f60708
  cidr: 10.0.0.0/16
  ipv6CIDR: 2600:1f18:4000:a900::/56
subnets:
- {id: subnet-0aaaaaaaaaaaaaaa1, zone: us-east-1a, cidr: 10.0.1.0/24, ipv6CIDR: "2600:1f18:4000:a901::/64"}
- {id: subnet-0bbbbbbbbbbbbbbb2, zone: us-east-1b, cidr: 10.0.2.0/24, ipv6CIDR: "2600:1f18:4000:a902::/64"}
- {id: subnet-0ccccccccccccccc3, zone: us-east-1a, cidr: 10.0.3.0/24}
instances:
- id: i-00000000000000a01
  type: m5.large
  subnet: subnet-0aaaaaaaaaaaaaaa1
  publicIP: 3.4.5.6
  tags: {Name: pre, KubernetesCluster: demo}
  enis:
  - id: eni-00000000000000a01
    deviceIndex: 0
    privateIPs: [10.0.1.10]
    ipv6: [{address: "2600:1f18:4000:a901::10", primary: true}]
    ipv6Prefixes: ["2600:1f18:4000:a901:1234::/80"]
    mac: "02:00:00:00:00:01"
- id: i-00000000000000b02
  type: t3.micro
  subnet: subnet-0aaaaaaaaaaaaaaa1
  tags: {Name: bare, KubernetesCluster: demo}
- id: i-00000000000000c03
  type: m5.large
  subnet: subnet-0bbbbbbbbbbbbbbb2
  tags: {Name: multi}
  enis:
  - {id: eni-00000000000000c01, deviceIndex: 1, ipv6AddressCount: 1}
  - {id: eni-00000000000000c00, deviceIndex: 0}
- id: i-00000000000000d04
  subnet: subnet-0ccccccccccccccc3
  tags: {Name: nov6}
- id: i-00000000000000e05
  state: stopped
  subnet: subnet-0bbbbbbbbbbbbbbb2
imdsInstance: i-00000000000000a01
`

// The scenario's IDs used by the tests.
const (
	idPre     = "i-00000000000000a01"
	idBare    = "i-00000000000000b02"
	idMulti   = "i-00000000000000c03"
	idNoV6    = "i-00000000000000d04"
	idStopped = "i-00000000000000e05"
	eniPre    = "eni-00000000000000a01"
)

func newTestSim(t *testing.T, opts Options) (*Sim, *ec2.Client) {
	t.Helper()
	if opts.Scenario == nil {
		sc, err := ParseScenario([]byte(testScenarioYAML))
		if err != nil {
			t.Fatalf("parse scenario: %v", err)
		}
		opts.Scenario = sc
	}
	opts.VerifySignatures = true
	sim, err := Start(opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim, ec2.NewFromConfig(sim.AWSConfig())
}

// apiCode returns the EC2 error code of err, failing the test if err is
// not an API error.
func apiCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae.ErrorCode()
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %s, got success", code)
	}
	if got := apiCode(t, err); got != code {
		t.Fatalf("want error %s, got %s (%v)", code, got, err)
	}
}

// signRequest signs req (with body) like the SDK does, for raw HTTP tests.
func signRequest(tb testing.TB, req *http.Request, body string) {
	tb.Helper()
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ec2", "us-east-1", time.Now()); err != nil {
		tb.Fatalf("sign: %v", err)
	}
}
