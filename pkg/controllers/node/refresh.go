package node

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/addresses"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
)

// refresh updates addresses and labels of all initialized nodes from one
// batched describe: EC2 calls grow with batches, not with nodes. A node's
// status is patched only when its whole ordered address list differs.
func (c *Controller) refresh(ctx context.Context) {
	logger := klog.FromContext(ctx)
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		logger.Error(err, "List nodes for address refresh")
		return
	}
	byID := map[string][]*v1.Node{}
	var ids []string
	for _, n := range nodes {
		if hasCloudTaint(n) || n.Spec.ProviderID == "" {
			continue
		}
		id, err := providerid.Parse(n.Spec.ProviderID)
		if err != nil {
			continue
		}
		if _, seen := byID[id.InstanceID]; !seen {
			ids = append(ids, id.InstanceID)
		}
		byID[id.InstanceID] = append(byID[id.InstanceID], n)
	}
	if len(ids) == 0 {
		return
	}
	insts, err := c.cloud.Instances(ctx, ids)
	if err != nil {
		syncErrors.WithLabelValues(ReasonRefreshFailed).Inc()
		logger.Error(err, "Describe instances for address refresh", "instances", len(ids))
		return
	}
	for id, ns := range byID {
		inst, ok := insts[id]
		if !ok {
			continue // the lifecycle controller deals with vanished instances
		}
		for _, n := range ns {
			if ctx.Err() != nil {
				return
			}
			c.refreshNode(ctx, n, inst)
		}
	}
}

func (c *Controller) refreshNode(ctx context.Context, n *v1.Node, inst *ec2.Instance) {
	addrs, err := c.addressesFor(n, inst)
	if err != nil {
		return // reported by addressesFor
	}
	if len(addrs) > 0 && !addresses.Equal(n.Status.Addresses, addrs) {
		if _, err := c.patchStatus(ctx, n, addrs); err != nil {
			_ = c.fail(n, ReasonAPIWriteFailed, err, "%v", err)
			return
		}
		klog.FromContext(ctx).Info("Node addresses updated", "node", n.Name, "instanceID", inst.ID)
	}
	if l := c.labelChanges(n, inst); len(l) > 0 {
		if err := c.patchLabels(ctx, n, l); err != nil {
			_ = c.fail(n, ReasonAPIWriteFailed, err, "%v", err)
		}
	}
}
