package ec2

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"k8s.io/klog/v2"
)

// DefaultTopologyPattern matches the instance types DescribeInstanceTopology
// may answer for (upstream's default of SupportedTopologyInstanceTypePattern:
// the hpc, trn and p families). Other types are never asked about.
var DefaultTopologyPattern = regexp.MustCompile(`^(hpc|trn|p)[0-9]+[a-z]*(-[a-z0-9]+)?(\.[0-9a-z]*)$`)

// maxTopologyIDs is AWS's limit of InstanceId.N per DescribeInstanceTopology.
const maxTopologyIDs = 100

// topology batches DescribeInstanceTopology: lookups arriving within the
// batch window share calls of up to 100 instance IDs.
type topology struct {
	mu          sync.Mutex
	pattern     *regexp.Regexp
	unsupported bool // the region or the policy refuses the call: stop asking
	pending     map[string][]chan topoResult
	scheduled   bool
}

type topoResult struct {
	nodes []string
	err   error
}

// SetTopologyPattern replaces DefaultTopologyPattern for this client (the
// cloud config's SupportedTopologyInstanceTypePattern).
func (c *Client) SetTopologyPattern(re *regexp.Regexp) {
	c.topo.mu.Lock()
	defer c.topo.mu.Unlock()
	c.topo.pattern = re
}

// NetworkNodes returns the network nodes of an instance, top layer first,
// from a batched DescribeInstanceTopology; nil for an instance type outside
// the topology pattern, for an instance EC2 lists no topology for, and once
// EC2 answered UnsupportedOperation or UnauthorizedOperation.
func (c *Client) NetworkNodes(ctx context.Context, id, instanceType string) ([]string, error) {
	t := &c.topo
	t.mu.Lock()
	pattern := t.pattern
	if pattern == nil {
		pattern = DefaultTopologyPattern
	}
	if t.unsupported || instanceType == "" || !pattern.MatchString(instanceType) {
		t.mu.Unlock()
		return nil, nil
	}
	ch := make(chan topoResult, 1)
	if t.pending == nil {
		t.pending = map[string][]chan topoResult{}
	}
	t.pending[id] = append(t.pending[id], ch)
	if !t.scheduled {
		t.scheduled = true
		time.AfterFunc(c.cfg.BatchWindow, func() { c.flushTopology(context.WithoutCancel(ctx)) })
	}
	t.mu.Unlock()
	select {
	case r := <-ch:
		return r.nodes, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Client) flushTopology(ctx context.Context) {
	t := &c.topo
	t.mu.Lock()
	batch := t.pending
	t.pending, t.scheduled = nil, false
	t.mu.Unlock()
	ids := slices.Sorted(maps.Keys(batch))
	found := map[string][]string{}
	var err error
	for chunk := range slices.Chunk(ids, maxTopologyIDs) {
		if err = c.describeTopology(ctx, chunk, found); err != nil {
			break
		}
	}
	if code := ErrorCode(err); code == "UnsupportedOperation" || code == "UnauthorizedOperation" {
		klog.InfoS("DescribeInstanceTopology is not available; no network topology labels", "code", code)
		t.mu.Lock()
		t.unsupported = true
		t.mu.Unlock()
		err = nil
	}
	for id, chs := range batch {
		for _, ch := range chs {
			ch <- topoResult{nodes: found[id], err: err}
		}
	}
}

func (c *Client) describeTopology(ctx context.Context, ids []string, found map[string][]string) error {
	in := &ec2.DescribeInstanceTopologyInput{InstanceIds: ids}
	for {
		if err := c.wait(ctx, c.describeRL, "describe"); err != nil {
			return err
		}
		callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		out, err := c.api.DescribeInstanceTopology(callCtx, in)
		cancel()
		if err != nil {
			return fmt.Errorf("describe instance topology of %d instances: %w", len(ids), err)
		}
		for _, it := range out.Instances {
			if id := aws.ToString(it.InstanceId); id != "" && len(it.NetworkNodes) > 0 {
				found[id] = slices.Clone(it.NetworkNodes)
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return nil
		}
		in.NextToken = out.NextToken
	}
}
