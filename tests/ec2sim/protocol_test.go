package ec2sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// rawCall posts a form body with a SigV4-shaped Authorization header.
func rawCall(t *testing.T, sim *Sim, contentType, body string, auth bool) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sim.Endpoint()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if auth {
		signRequest(t, req, body)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

type errorReply struct {
	XMLName   xml.Name `xml:"Response"`
	Code      string   `xml:"Errors>Error>Code"`
	Message   string   `xml:"Errors>Error>Message"`
	RequestID string   `xml:"RequestID"`
}

func TestProtocolErrors(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name, ctype, body string
		auth              bool
		status            int
		code              string
	}{
		{"no auth", form, "Action=DescribeInstances&Version=2016-11-15", false, 401, "AuthFailure"},
		{"bad version", form, "Action=DescribeInstances&Version=2014-01-01", true, 400, "NoSuchVersion"},
		{"no version", form, "Action=DescribeInstances", true, 400, "MissingParameter"},
		{"no action", form, "Version=2016-11-15", true, 400, "MissingAction"},
		{"unknown action", form, "Action=RunInstances&Version=2016-11-15", true, 400, "InvalidAction"},
		{"unknown parameter", form, "Action=DescribeInstances&Version=2016-11-15&Foo=1", true, 400, "UnknownParameter"},
		{"member list style", form, "Action=DescribeInstances&Version=2016-11-15&InstanceId.member.1=i-00000000000000a01", true, 400, "UnknownParameter"},
		{"zero index", form, "Action=DescribeInstances&Version=2016-11-15&InstanceId.0=i-00000000000000a01", true, 400, "UnknownParameter"},
		{"repeated key", form, "Action=DescribeInstances&Version=2016-11-15&MaxResults=5&MaxResults=6", true, 400, "InvalidParameterValue"},
		{"filter without name", form, "Action=DescribeInstances&Version=2016-11-15&Filter.1.Value.1=x", true, 400, "MissingParameter"},
		{"filter without values", form, "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=instance-id", true, 400, "InvalidParameterValue"},
		{"bad dry run", form, "Action=DescribeInstances&Version=2016-11-15&DryRun=yes", true, 400, "InvalidParameterValue"},
		{"json body", "application/json", "{}", true, 400, "InvalidHttpRequest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawCall(t, sim, tc.ctype, tc.body, tc.auth)
			var er errorReply
			if err := xml.Unmarshal([]byte(body), &er); err != nil {
				t.Fatalf("error body %q: %v", body, err)
			}
			if resp.StatusCode != tc.status || er.Code != tc.code || er.Message == "" || er.RequestID == "" {
				t.Errorf("got %d %+v, want %d %s", resp.StatusCode, er, tc.status, tc.code)
			}
			if resp.Header.Get("Content-Type") != "text/xml;charset=UTF-8" || resp.Header.Get("Server") != "AmazonEC2" {
				t.Errorf("headers = %v", resp.Header)
			}
		})
	}
}

func TestProtocolSuccessShape(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	resp, body := rawCall(t, sim, "application/x-www-form-urlencoded; charset=utf-8",
		"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-00000000000000a01", true)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var reply struct {
		XMLName   xml.Name
		RequestID string   `xml:"requestId"`
		IDs       []string `xml:"reservationSet>item>instancesSet>item>instanceId"`
	}
	if err := xml.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if reply.XMLName.Local != "DescribeInstancesResponse" || reply.XMLName.Space != xmlns || reply.RequestID == "" {
		t.Errorf("root = %v, requestId = %q", reply.XMLName, reply.RequestID)
	}
	if len(reply.IDs) != 1 || reply.IDs[0] != idPre {
		t.Errorf("ids = %v", reply.IDs)
	}
}

func TestAuthScope(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	cfg := sim.AWSConfig()
	cfg.Region = "us-west-2"
	_, err := ec2.NewFromConfig(cfg).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	wantCode(t, err, "AuthFailure")
	c := ec2.NewFromConfig(sim.AWSConfig(), ec2.WithSigV4SigningName("ec2x"))
	_, err = c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	wantCode(t, err, "AuthFailure")
	if n := sim.Counts()["DescribeInstances"]["AuthFailure"]; n != 2 {
		t.Errorf("AuthFailure count = %d, want 2", n)
	}
}

func TestDryRun(t *testing.T) {
	_, c := newTestSim(t, Options{})
	_, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{DryRun: aws.Bool(true)})
	wantCode(t, err, "DryRunOperation")
	_, err = c.CreateTags(t.Context(), &ec2.CreateTagsInput{DryRun: aws.Bool(true), Resources: []string{idPre},
		Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantCode(t, err, "DryRunOperation")
}

func TestSignature(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	body := "Action=DescribeVpcs&Version=2016-11-15"
	send := func(req *http.Request) (int, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var er errorReply
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			if err := xml.Unmarshal(b, &er); err != nil {
				t.Fatalf("error body: %v", err)
			}
		}
		return resp.StatusCode, er.Code
	}
	newReq := func(b string) *http.Request {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sim.Endpoint()+"/", strings.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	req := newReq(body)
	signRequest(t, req, body)
	if code, c := send(req); code != 200 {
		t.Fatalf("signed request: %d %s", code, c)
	}
	// Body changed after signing.
	req = newReq(body + "&DryRun=true")
	signRequest(t, req, body)
	if code, c := send(req); code != 403 || c != "SignatureDoesNotMatch" {
		t.Errorf("tampered body: %d %s", code, c)
	}
	// Wrong secret.
	req = newReq(body)
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: "wrong"}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "ec2", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if code, c := send(req); code != 403 || c != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %d %s", code, c)
	}
	// Unknown access key.
	req = newReq(body)
	creds = aws.Credentials{AccessKeyID: "AKIAUNKNOWN000000000", SecretAccessKey: SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "ec2", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if code, c := send(req); code != 401 || c != "AuthFailure" {
		t.Errorf("unknown key: %d %s", code, c)
	}
	// Too old.
	req = newReq(body)
	if err := v4.NewSigner().SignHTTP(t.Context(), aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}, req,
		hex.EncodeToString(sum[:]), "ec2", "us-east-1", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if code, c := send(req); code != 400 || c != "RequestExpired" {
		t.Errorf("old request: %d %s", code, c)
	}
}
