package node

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cloudproviderapi "k8s.io/cloud-provider/api"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/nodemeta"
)

// LabelZoneID is the zone-ID label upstream's AWS provider sets.
const LabelZoneID = nodemeta.LabelZoneID

// patchStatus replaces the node's addresses with a JSON merge patch: lists
// are replaced whole, so two InternalIPs of different families survive
// (a strategic merge keyed by type would collapse them).
func (c *Controller) patchStatus(ctx context.Context, node *v1.Node, addrs []v1.NodeAddress) (*v1.Node, error) {
	body, err := json.Marshal(map[string]any{"status": map[string]any{"addresses": addrs}})
	if err != nil {
		return nil, fmt.Errorf("encode status patch: %w", err)
	}
	out, err := c.client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, fmt.Errorf("patch status of node %s: %w", node.Name, err)
	}
	apiWrites.WithLabelValues("status").Inc()
	return out, nil
}

// patchIntent records the assignment intent annotation.
func (c *Controller) patchIntent(ctx context.Context, node *v1.Node, in intent) (*v1.Node, error) {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{AnnotationAssignStarted: in.String()},
	}})
	if err != nil {
		return nil, fmt.Errorf("encode intent patch: %w", err)
	}
	out, err := c.client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, body, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("patch intent of node %s: %w", node.Name, err)
	}
	apiWrites.WithLabelValues("intent").Inc()
	return out, nil
}

// patchSpec writes providerID, labels, podCIDR and removes the taint and the
// intent annotation in one JSON merge patch carrying the node's
// resourceVersion, so a concurrent change conflicts instead of being
// overwritten. podCIDR is only ever set from empty.
func (c *Controller) patchSpec(ctx context.Context, node *v1.Node, p *plan) (*v1.Node, error) {
	spec := map[string]any{}
	if node.Spec.ProviderID == "" {
		spec["providerID"] = nodemeta.ProviderID(p.inst)
	}
	if p.prefix.IsValid() && node.Spec.PodCIDR == "" {
		cidrs := orderPodCIDRs(p.prefix, p.v4, c.opts.IPv4First)
		spec["podCIDR"] = cidrs[0]
		spec["podCIDRs"] = cidrs
	}
	if hasCloudTaint(node) {
		taints := []v1.Taint{}
		for _, t := range node.Spec.Taints {
			if t.Key != cloudproviderapi.TaintExternalCloudProvider {
				taints = append(taints, t)
			}
		}
		spec["taints"] = taints
	}
	meta := map[string]any{}
	if l := c.labelChanges(node, p.inst); len(l) > 0 {
		meta["labels"] = l
	}
	if len(spec) == 0 && len(meta) == 0 && node.Annotations[AnnotationAssignStarted] == "" {
		return node, nil
	}
	if p.eniID != "" {
		// Also when the cached node does not show it yet: deleting an absent key is a no-op.
		meta["annotations"] = map[string]any{AnnotationAssignStarted: nil}
	}
	if node.ResourceVersion != "" {
		meta["resourceVersion"] = node.ResourceVersion
	}
	body, err := json.Marshal(map[string]any{"metadata": meta, "spec": spec})
	if err != nil {
		return nil, fmt.Errorf("encode spec patch: %w", err)
	}
	out, err := c.client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, body, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("patch spec of node %s: %w", node.Name, err)
	}
	apiWrites.WithLabelValues("spec").Inc()
	return out, nil
}

// patchLabels sets labels with a JSON merge patch (refresh path).
func (c *Controller) patchLabels(ctx context.Context, node *v1.Node, labels map[string]string) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return fmt.Errorf("encode label patch: %w", err)
	}
	if _, err := c.client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch labels of node %s: %w", node.Name, err)
	}
	apiWrites.WithLabelValues("labels").Inc()
	return nil
}

// labelChanges returns the wanted labels whose value differs on the node.
func (c *Controller) labelChanges(node *v1.Node, inst *ec2.Instance) map[string]string {
	want := nodemeta.Labels(node, inst, c.opts.Region)
	maps.DeleteFunc(want, func(k, v string) bool {
		cur, ok := node.Labels[k]
		return ok && cur == v
	})
	return want
}

// betaToGALabels is upstream's label reconciliation for initialized nodes:
// a beta label whose GA twin is missing or different is copied over.
func betaToGALabels(node *v1.Node) map[string]string {
	out := map[string]string{}
	for beta, ga := range map[string]string{
		v1.LabelFailureDomainBetaZone:   v1.LabelTopologyZone,
		v1.LabelFailureDomainBetaRegion: v1.LabelTopologyRegion,
		v1.LabelInstanceType:            v1.LabelInstanceTypeStable,
	} {
		if v, ok := node.Labels[beta]; ok && node.Labels[ga] != v {
			out[ga] = v
		}
	}
	return out
}

// reconcileBetaLabels applies betaToGALabels to an initialized node.
func (c *Controller) reconcileBetaLabels(ctx context.Context, node *v1.Node) error {
	l := betaToGALabels(node)
	if len(l) == 0 {
		return nil
	}
	if err := c.patchLabels(ctx, node, l); err != nil {
		return failure(ReasonAPIWriteFailed, err, "%v", err)
	}
	return nil
}
