package loadbalancer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	cloudproviderapi "k8s.io/cloud-provider/api"
)

// instances returns the running instances of the nodes the spec targets, by ID.
func (lb *LoadBalancers) instances(ctx context.Context, svc *v1.Service, s *Spec, nodes []*v1.Node) (map[string]*ec2.Instance, error) {
	var ids []string
	for _, n := range nodes {
		if !s.TargetLabels.Matches(labels.Set(n.Labels)) {
			continue
		}
		id, err := providerid.Parse(n.Spec.ProviderID)
		if err != nil {
			lb.recorder.Eventf(svc, v1.EventTypeWarning, ReasonTargetSkipped, "Node %s is not a target: %v", n.Name, err)
			continue
		}
		ids = append(ids, id.InstanceID)
	}
	if len(ids) == 0 {
		return map[string]*ec2.Instance{}, nil
	}
	found, err := lb.ec2.InstancesCached(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("look up the instances of %d nodes: %w", len(ids), err)
	}
	out := make(map[string]*ec2.Instance, len(found))
	for id, in := range found {
		if in != nil && in.State == ec2.StateRunning {
			out[id] = in
		}
	}
	return out, nil
}

func (lb *LoadBalancers) vpc(insts map[string]*ec2.Instance) string {
	if lb.cfg.VPCID != "" {
		return lb.cfg.VPCID
	}
	for _, id := range slices.Sorted(maps.Keys(insts)) {
		if v := insts[id].VPCID; v != "" {
			return v
		}
	}
	return ""
}

// syncTargets registers every instance the group should hold (on the port's
// NodePort) and deregisters the rest. An IPv6 group takes instances only at
// their primary IPv6 address: nodes without one are skipped, with an event,
// or, while their node is not initialized yet (the node controller marks
// the address primary when it initializes it), added to waiting.
func (lb *LoadBalancers) syncTargets(ctx context.Context, svc *v1.Service, tg *ec2.TargetGroup, p Port, family string,
	insts map[string]*ec2.Instance, initializing map[string]string, waiting map[string]bool) error {
	var want []ec2.Target
	var skipped []string
	for _, id := range slices.Sorted(maps.Keys(insts)) {
		if family == "ipv6" && !hasPrimaryIPv6(insts[id]) {
			if node, ok := initializing[id]; ok {
				waiting[node] = true
			} else {
				skipped = append(skipped, id)
			}
			continue
		}
		want = append(want, ec2.Target{ID: id, Port: p.NodePort})
	}
	if len(skipped) > 0 {
		lb.recorder.Eventf(svc, v1.EventTypeWarning, ReasonTargetSkipped,
			"%d instances are not in IPv6 target group %s: their primary network interface has no primary IPv6 address (set EnablePrimaryIPv6 in the cloud config): %s",
			len(skipped), tg.Name, strings.Join(firstN(skipped, 5), ", "))
	}
	have, err := lb.elb.Targets(ctx, tg.ARN)
	if err != nil {
		return err
	}
	add, remove := DiffTargets(have, want)
	if len(add) > 0 {
		if err := lb.elb.RegisterTargets(ctx, tg.ARN, add); err != nil {
			return err
		}
	}
	if len(remove) > 0 {
		if err := lb.elb.DeregisterTargets(ctx, tg.ARN, remove); err != nil {
			return err
		}
	}
	return nil
}

// initializingNodes maps the instance IDs of nodes that still carry the
// cloud provider's uninitialized taint to their names.
func initializingNodes(nodes []*v1.Node) map[string]string {
	out := map[string]string{}
	for _, n := range nodes {
		if !slices.ContainsFunc(n.Spec.Taints, func(t v1.Taint) bool { return t.Key == cloudproviderapi.TaintExternalCloudProvider }) {
			continue
		}
		if id, err := providerid.Parse(n.Spec.ProviderID); err == nil {
			out[id.InstanceID] = n.Name
		}
	}
	return out
}

// waitingError asks the service controller to sync the Service again when
// IPv6 targets wait for their nodes' initialization. It must: a node's
// initialization changes nothing the controller watches (only a node's
// addition, removal, providerID or exclusion label make it sync), so a
// node registered with its providerID, synced before the node controller
// marked its IPv6 address primary, would otherwise never become a target.
func waitingError(waiting map[string]bool) error {
	if len(waiting) == 0 {
		return nil
	}
	return fmt.Errorf("IPv6 targets wait for the initialization of nodes %s (their IPv6 address is not primary yet); retrying",
		strings.Join(firstN(slices.Sorted(maps.Keys(waiting)), 5), ", "))
}

func hasPrimaryIPv6(in *ec2.Instance) bool {
	eni := in.PrimaryENI()
	return eni != nil && slices.ContainsFunc(eni.IPv6, func(a ec2.IPv6Address) bool { return a.Primary })
}

// DiffTargets returns the targets to register and deregister.
func DiffTargets(have, want []ec2.Target) (add, remove []ec2.Target) {
	in := func(ts []ec2.Target, t ec2.Target) bool { return slices.Contains(ts, t) }
	for _, t := range want {
		if !in(have, t) {
			add = append(add, t)
		}
	}
	for _, t := range have {
		if !in(want, t) {
			remove = append(remove, t)
		}
	}
	return add, remove
}
