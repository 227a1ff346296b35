package ec2sim

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

func TestDescribeInstancesErrors(t *testing.T) {
	_, c := newTestSim(t, Options{})
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("i-%017x", i)
	}
	vals := make([]string, 201)
	for i := range vals {
		vals[i] = fmt.Sprintf("v%d", i)
	}
	tests := []struct {
		name string
		in   ec2.DescribeInstancesInput
		code string
		msg  string
	}{
		{"one unknown", ec2.DescribeInstancesInput{InstanceIds: []string{idPre, "i-0123456789abcdef0"}},
			"InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"},
		{"two unknown", ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0", "i-0123456789abcdef1"}},
			"InvalidInstanceID.NotFound", "The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist"},
		{"short unknown", ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123abcd"}}, "InvalidInstanceID.NotFound", "i-0123abcd"},
		{"malformed", ec2.DescribeInstancesInput{InstanceIds: []string{"i-xyz"}}, "InvalidInstanceID.Malformed", `"i-xyz"`},
		{"malformed length", ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789"}}, "InvalidInstanceID.Malformed", ""},
		{"ids with max", ec2.DescribeInstancesInput{InstanceIds: []string{idPre}, MaxResults: aws.Int32(5)},
			"InvalidParameterCombination", "cannot be used with the parameter maxResults"},
		{"max too small", ec2.DescribeInstancesInput{MaxResults: aws.Int32(4)}, "InvalidParameterValue", "maxResults"},
		{"max too big", ec2.DescribeInstancesInput{MaxResults: aws.Int32(1001)}, "InvalidParameterValue", "maxResults"},
		{"bad token", ec2.DescribeInstancesInput{NextToken: aws.String("garbage")}, "InvalidNextToken", ""},
		{"unknown filter", ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("owner-alias"), Values: []string{"x"}}}},
			"InvalidParameterValue", "owner-alias"},
		{"too many values", ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: vals}}},
			"InvalidParameterValue", "too many filter values"},
		{"too many ids", ec2.DescribeInstancesInput{InstanceIds: many}, "InvalidParameterValue", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.DescribeInstances(t.Context(), &tc.in)
			wantCode(t, err, tc.code)
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("not an API error: %v", err)
			}
			if !strings.Contains(ae.ErrorMessage(), tc.msg) {
				t.Errorf("message %q does not contain %q", ae.ErrorMessage(), tc.msg)
			}
		})
	}
}

func TestPagingTokenBoundToQuery(t *testing.T) {
	_, c := newTestSim(t, Options{Scenario: GenerateScenario(Generate{Instances: 12, IPv6Subnet: true})})
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if out.NextToken == nil {
		t.Fatal("no next token")
	}
	_, err = c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5), NextToken: out.NextToken,
		Filters: []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}})
	wantCode(t, err, "InvalidNextToken")
}

func TestPaging(t *testing.T) {
	_, c := newTestSim(t, Options{Scenario: GenerateScenario(Generate{Instances: 12, IPv6Subnet: true, PrePrefixed: true})})
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	seen := map[string]bool{}
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		for _, id := range ids(out) {
			if seen[id] {
				t.Errorf("instance %s on two pages", id)
			}
			seen[id] = true
		}
	}
	if pages != 3 || len(seen) != 12 {
		t.Errorf("pages = %d, instances = %d; want 3, 12", pages, len(seen))
	}
	np := ec2.NewDescribeNetworkInterfacesPaginator(c, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(5)})
	enis := 0
	for np.HasMorePages() {
		out, err := np.NextPage(t.Context())
		if err != nil {
			t.Fatalf("eni page: %v", err)
		}
		for _, e := range out.NetworkInterfaces {
			enis++
			if len(e.Ipv6Prefixes) != 1 || len(e.Ipv6Addresses) != 1 {
				t.Errorf("pre-prefixed ENI %s has %d prefixes, %d addresses", aws.ToString(e.NetworkInterfaceId), len(e.Ipv6Prefixes), len(e.Ipv6Addresses))
			}
		}
	}
	if enis != 12 {
		t.Errorf("enis = %d, want 12", enis)
	}
}
