package ec2sim

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// FuzzParseForm sends arbitrary form bodies through the whole EC2 request
// path: parsing, filters, paging and the handlers. Every reply must be
// well-formed XML with an AWS status, and nothing may panic.
func FuzzParseForm(f *testing.F) {
	seeds := []string{
		"Action=DescribeInstances&Version=2016-11-15",
		"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=a*b&Filter.2.Name=instance-state-name&Filter.2.Value.1=running",
		"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-00000000000000a01&InstanceId.2=i-12345678",
		"Action=DescribeInstances&Version=2016-11-15&MaxResults=5&NextToken=djEuMy54",
		"Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=attachment.instance-id&Filter.1.Value.1=i-00000000000000a01",
		"Action=AssignIpv6Addresses&Version=2016-11-15&NetworkInterfaceId=eni-00000000000000a01&Ipv6PrefixCount=1",
		"Action=AssignIpv6Addresses&Version=2016-11-15&NetworkInterfaceId=eni-00000000000000a01&Ipv6Addresses.1=2600%3A1f18%3A4000%3Aa901%3A%3A99",
		"Action=UnassignIpv6Addresses&Version=2016-11-15&NetworkInterfaceId=eni-00000000000000a01&Ipv6Prefix.1=2600%3A1f18%3A4000%3Aa901%3A1234%3A%3A%2F80",
		"Action=CreateTags&Version=2016-11-15&ResourceId.1=i-00000000000000a01&Tag.1.Key=k&Tag.1.Value=%3C%26%3E",
		"Action=DescribeSubnets&Version=2016-11-15&SubnetId.1=subnet-0aaaaaaaaaaaaaaa1",
		"Action=DescribeAvailabilityZones&Version=2016-11-15&ZoneName.1=us-east-1a",
		"Action=DescribeInstanceTypes&Version=2016-11-15&MaxResults=5",
		"Action=DescribeVpcs&Version=2016-11-15&Filter.01.Name=x",
		"%zz&&==;",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	sc, err := ParseScenario([]byte(testScenarioYAML))
	if err != nil {
		f.Fatal(err)
	}
	sim, err := Start(Options{Scenario: sc, VerifySignatures: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(sim.Close)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		signRequest(t, req, body)
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 401, 403, 412, 413, 500, 503:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		dec := xml.NewDecoder(rec.Body)
		root := ""
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("reply to %q is not XML: %v", body, err)
			}
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
			}
		}
		okSuccess := rec.Code == 200 && root != "Response" && strings.HasSuffix(root, "Response")
		okError := rec.Code != 200 && root == "Response"
		if !okSuccess && !okError {
			t.Fatalf("status %d with root %q for %q", rec.Code, root, body)
		}
	})
}

// globRegexp is a reference implementation of EC2 filter wildcards.
func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s)`)
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '\\':
			if i+1 < len(pattern) {
				i++
				b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
			} else {
				b.WriteString(`\\`)
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][2]string{{"a*", "abc"}, {"*b?", "abc"}, {`a\*`, "a*"}, {"", ""}, {"**", "x"}, {"a?c", "ac"}, {`x\`, `x\`}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		for _, c := range pattern + s {
			if c >= 0x80 {
				t.Skip("ASCII only: ? matches one byte")
			}
		}
		if got, want := globMatch(pattern, s), globRegexp(pattern).MatchString(s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}
