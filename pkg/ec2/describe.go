package ec2

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/klog/v2"
)

// This file is describe-with-bisect: DescribeInstances by ID and by private
// DNS name, with AWS's per-call limits, paging and the describe rate limit.
// It keeps no state.

// AWS's limits for one DescribeInstances call.
const (
	maxIDsPerCall          = 1000
	maxFilterValuesPerCall = 200
)

// aliveStates excludes terminated instances from private-DNS-name lookups, as
// upstream does: EC2 reuses private IPs, and with them DNS names.
var aliveStates = []string{StatePending, StateRunning, StateShuttingDown, StateStopping, StateStopped}

// describeIDs describes ids (≤1000). IDs EC2 reports as unknown or malformed
// are dropped and the rest described again, so one bad ID never fails the
// others; bad maps each dropped ID to the AWS error code.
func (c *Client) describeIDs(ctx context.Context, ids []string) (found map[string]*Instance, bad map[string]string, err error) {
	found = map[string]*Instance{}
	bad = map[string]string{}
	work := [][]string{ids}
	for len(work) > 0 {
		set := work[len(work)-1]
		work = work[:len(work)-1]
		insts, err := c.describe(ctx, &ec2.DescribeInstancesInput{InstanceIds: set})
		if err == nil {
			for _, inst := range insts {
				found[inst.ID] = inst
			}
			continue
		}
		code := ErrorCode(err)
		if code != codeInstanceNotFound && code != codeInstanceMalformed {
			return nil, nil, err
		}
		named := namedIDs(err, set)
		switch {
		case len(named) > 0:
			for _, id := range named {
				bad[id] = code
			}
			rest := slices.DeleteFunc(slices.Clone(set), func(id string) bool { return bad[id] != "" })
			if len(rest) > 0 {
				work = append(work, rest)
			}
		case len(set) == 1:
			bad[set[0]] = code
		default:
			// The message named none of our IDs: bisect.
			half := len(set) / 2
			work = append(work, set[:half], set[half:])
		}
		klog.V(4).InfoS("Dropping unknown instance IDs from batch", "code", code, "named", len(named), "batch", len(set))
	}
	return found, bad, nil
}

// namedIDs returns the IDs of set that an InvalidInstanceID error message
// names, e.g. "The instance IDs 'i-1, i-2' do not exist" or
// `Invalid id: "ma1"`.
func namedIDs(err error, set []string) []string {
	msg := err.Error()
	var apiErr interface{ ErrorMessage() string }
	if errors.As(err, &apiErr) {
		msg = apiErr.ErrorMessage()
	}
	tokens := map[string]bool{}
	for _, tok := range strings.FieldsFunc(msg, func(r rune) bool {
		return r == '\'' || r == '"' || r == ',' || r == ' ' || r == '\t' || r == '(' || r == ')' || r == '[' || r == ']'
	}) {
		tokens[tok] = true
	}
	var named []string
	for _, id := range set {
		if tokens[id] {
			named = append(named, id)
		}
	}
	return named
}

// describeNames looks instances up by private DNS name (≤200 names),
// ignoring terminated instances. When two live instances share a name, the
// running or more recently launched one wins.
func (c *Client) describeNames(ctx context.Context, names []string) (map[string]*Instance, error) {
	insts, err := c.describe(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("private-dns-name"), Values: names},
		{Name: aws.String("instance-state-name"), Values: aliveStates},
	}})
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]*Instance{}
	for _, inst := range insts {
		if !want[inst.PrivateDNSName] || inst.State == StateTerminated {
			continue
		}
		if prev, ok := out[inst.PrivateDNSName]; ok && !better(inst, prev) {
			continue
		}
		out[inst.PrivateDNSName] = inst
	}
	return out, nil
}

func better(a, b *Instance) bool {
	if (a.State == StateRunning) != (b.State == StateRunning) {
		return a.State == StateRunning
	}
	return a.LaunchTime.After(b.LaunchTime)
}

// describe runs DescribeInstances through every page, each page taking a
// describe token and bounded by CallTimeout.
func (c *Client) describe(ctx context.Context, in *ec2.DescribeInstancesInput) ([]*Instance, error) {
	var out []*Instance
	p := ec2.NewDescribeInstancesPaginator(describeInstancesFunc(c.api.DescribeInstances), in)
	for p.HasMorePages() {
		if err := c.wait(ctx, c.describeRL, "describe"); err != nil {
			return nil, err
		}
		callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		page, err := p.NextPage(callCtx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, rsv := range page.Reservations {
			for i := range rsv.Instances {
				if rsv.Instances[i].InstanceId == nil {
					continue
				}
				out = append(out, fromSDK(&rsv.Instances[i]))
			}
		}
	}
	return out, nil
}
