package loadbalancer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/record"
	cloudprovider "k8s.io/cloud-provider"
	cloudproviderapi "k8s.io/cloud-provider/api"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
)

// EC2 is what the package needs from EC2; *ec2.Client has it.
type EC2 interface {
	InstancesCached(ctx context.Context, ids []string) (map[string]*ec2.Instance, error)
	VPCSubnets(ctx context.Context, vpcID string) ([]ec2.Subnet, error)
	TaggedSecurityGroups(ctx context.Context, vpcID, tagKey string) ([]ec2.SecurityGroup, error)
	AuthorizeIngress(ctx context.Context, groupID string, rules []ec2.IngressRule) error
	RevokeIngress(ctx context.Context, groupID string, rules []ec2.IngressRule) error
}

// ELB is what the package needs from Elastic Load Balancing; *ec2.ELB has it.
type ELB interface {
	LoadBalancerByName(ctx context.Context, name string) (*ec2.LoadBalancer, error)
	CreateLoadBalancer(ctx context.Context, s ec2.LoadBalancerSpec) (*ec2.LoadBalancer, error)
	SetIPAddressType(ctx context.Context, lbARN, t string) error
	SetSubnets(ctx context.Context, lbARN string, subnets []string) error
	DeleteLoadBalancer(ctx context.Context, lbARN string) error
	LoadBalancerAttributes(ctx context.Context, lbARN string) (map[string]string, error)
	ModifyLoadBalancerAttributes(ctx context.Context, lbARN string, attrs map[string]string) error
	TargetGroups(ctx context.Context, lbARN string) ([]ec2.TargetGroup, error)
	TargetGroupByName(ctx context.Context, name string) (*ec2.TargetGroup, error)
	CreateTargetGroup(ctx context.Context, s ec2.TargetGroupSpec) (*ec2.TargetGroup, error)
	ModifyHealthCheck(ctx context.Context, tgARN string, hc ec2.HealthCheck) error
	DeleteTargetGroup(ctx context.Context, tgARN string) error
	Targets(ctx context.Context, tgARN string) ([]ec2.Target, error)
	RegisterTargets(ctx context.Context, tgARN string, ts []ec2.Target) error
	DeregisterTargets(ctx context.Context, tgARN string, ts []ec2.Target) error
	Listeners(ctx context.Context, lbARN string) ([]ec2.Listener, error)
	CreateListener(ctx context.Context, lbARN, protocol string, port int32, tgARN string, tags map[string]string) (*ec2.Listener, error)
	ForwardListener(ctx context.Context, listenerARN, tgARN string) error
	DeleteListener(ctx context.Context, listenerARN string) error
	Tags(ctx context.Context, arns []string) (map[string]map[string]string, error)
}

var (
	_ EC2 = (*ec2.Client)(nil)
	_ ELB = (*ec2.ELB)(nil)
)

// Config configures the load balancers.
type Config struct {
	ClusterID string
	// VPCID is the cluster's VPC; empty means the VPC of the Service's nodes.
	VPCID string
	// DefaultNLB makes Services without the type annotation NLBs.
	DefaultNLB bool
}

// LoadBalancers implements cloudprovider.LoadBalancer.
type LoadBalancers struct {
	ec2      EC2
	elb      ELB
	cfg      Config
	recorder record.EventRecorder
}

var _ cloudprovider.LoadBalancer = (*LoadBalancers)(nil)

// New returns the load balancer implementation. Events go to recorder, which
// may be set later with SetRecorder (the provider gets its client after
// construction).
func New(e EC2, l ELB, cfg Config) *LoadBalancers {
	return &LoadBalancers{ec2: e, elb: l, cfg: cfg, recorder: &record.FakeRecorder{}}
}

// SetClusterID sets the cluster ID once the provider knows it.
func (lb *LoadBalancers) SetClusterID(id string) { lb.cfg.ClusterID = id }

// SetRecorder sets where Service events go.
func (lb *LoadBalancers) SetRecorder(r record.EventRecorder) { lb.recorder = r }

// Event reasons on Services.
const (
	ReasonNotNLB                = "UnsupportedLoadBalancerType"
	ReasonUnsupportedAnnotation = "UnsupportedAnnotation"
	ReasonTargetSkipped         = "TargetSkipped"
)

// GetLoadBalancerName is upstream's name for the Service's load balancer.
func (lb *LoadBalancers) GetLoadBalancerName(_ context.Context, _ string, svc *v1.Service) string {
	return Name(svc)
}

// GetLoadBalancer reports whether the Service's NLB exists, and its status.
func (lb *LoadBalancers) GetLoadBalancer(ctx context.Context, _ string, svc *v1.Service) (*v1.LoadBalancerStatus, bool, error) {
	if _, err := ParseSpec(svc, lb.cfg.ClusterID, lb.cfg.DefaultNLB); errors.As(err, new(ErrNotNLB)) {
		return nil, false, nil
	}
	l, err := lb.elb.LoadBalancerByName(ctx, Name(svc))
	if err != nil || l == nil {
		return nil, false, err
	}
	return status(l), true, nil
}

func status(l *ec2.LoadBalancer) *v1.LoadBalancerStatus {
	return &v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{{Hostname: l.DNSName}}}
}

// spec parses the Service, reporting once per call what it cannot honour.
// A Service that is not an NLB's yields cloudprovider.ImplementedElsewhere,
// which the service controller takes as "leave it alone".
func (lb *LoadBalancers) spec(svc *v1.Service) (*Spec, error) {
	s, err := ParseSpec(svc, lb.cfg.ClusterID, lb.cfg.DefaultNLB)
	var notNLB ErrNotNLB
	if errors.As(err, &notNLB) {
		if notNLB.Type != TypeExternal {
			lb.recorder.Event(svc, v1.EventTypeWarning, ReasonNotNLB, err.Error())
		}
		return nil, cloudprovider.ImplementedElsewhere
	}
	if err != nil {
		return nil, err
	}
	for _, a := range s.Ignored {
		lb.recorder.Eventf(svc, v1.EventTypeWarning, ReasonUnsupportedAnnotation, "Annotation %s is not supported by this CCM and has no effect", a)
	}
	return s, nil
}

// EnsureLoadBalancer creates or updates the Service's NLB and returns its status.
func (lb *LoadBalancers) EnsureLoadBalancer(ctx context.Context, clusterName string, svc *v1.Service, nodes []*v1.Node) (*v1.LoadBalancerStatus, error) {
	s, err := lb.spec(svc)
	if errors.Is(err, cloudprovider.ImplementedElsewhere) {
		// The Service no longer asks for an NLB (its annotation was
		// removed or changed): the one made for it goes.
		if l, lerr := lb.elb.LoadBalancerByName(ctx, Name(svc)); lerr != nil {
			return nil, lerr
		} else if l != nil {
			klog.InfoS("Service no longer asks for a Network Load Balancer; deleting its load balancer", "service", klog.KObj(svc), "name", l.Name)
			if err := lb.EnsureLoadBalancerDeleted(ctx, clusterName, svc); err != nil {
				return nil, err
			}
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	l, err := lb.ensure(ctx, svc, s, nodes)
	if err != nil {
		return nil, err
	}
	return status(l), nil
}

// UpdateLoadBalancer follows a change of the node set: targets and node
// security group rules.
func (lb *LoadBalancers) UpdateLoadBalancer(ctx context.Context, _ string, svc *v1.Service, nodes []*v1.Node) error {
	s, err := lb.spec(svc)
	if err != nil {
		return err
	}
	l, err := lb.elb.LoadBalancerByName(ctx, s.Name)
	if err != nil {
		return err
	}
	if l == nil {
		_, err := lb.ensure(ctx, svc, s, nodes)
		return err
	}
	tgs, err := lb.elb.TargetGroups(ctx, l.ARN)
	if err != nil {
		return err
	}
	insts, err := lb.instances(ctx, svc, s, nodes)
	if err != nil {
		return err
	}
	initializing := initializingNodes(nodes)
	waiting := map[string]bool{}
	for _, p := range s.Ports {
		name := TargetGroupName(svc, lb.cfg.ClusterID, p, s.TargetFamily, s.HealthCheck)
		i := slices.IndexFunc(tgs, func(tg ec2.TargetGroup) bool { return tg.Name == name })
		if i < 0 {
			// The ports changed under us: a full ensure puts it right.
			_, err := lb.ensure(ctx, svc, s, nodes)
			return err
		}
		if err := lb.syncTargets(ctx, svc, &tgs[i], p, s.TargetFamily, insts, initializing, waiting); err != nil {
			return err
		}
	}
	subnets, err := lb.subnetsOf(ctx, l, insts)
	if err != nil {
		return err
	}
	if err := lb.syncRules(ctx, s, l.VPCID, insts, IngressRules(s, subnets)); err != nil {
		return err
	}
	return waitingError(waiting)
}

// ensure makes the AWS objects match the spec, adopting what exists under
// the Service's names and tags; every step is idempotent, so a crash
// anywhere is repaired by the next call.
func (lb *LoadBalancers) ensure(ctx context.Context, svc *v1.Service, s *Spec, nodes []*v1.Node) (*ec2.LoadBalancer, error) {
	insts, err := lb.instances(ctx, svc, s, nodes)
	if err != nil {
		return nil, err
	}
	vpcID := lb.vpc(insts)
	if vpcID == "" {
		return nil, fmt.Errorf("no VPC: set VPC in the cloud config or give the Service a node with an instance")
	}
	vpcSubnets, err := lb.ec2.VPCSubnets(ctx, vpcID)
	if err != nil {
		return nil, err
	}
	subnets, err := ChooseSubnets(s, vpcSubnets, lb.cfg.ClusterID)
	if err != nil {
		return nil, err
	}
	subnetIDs := make([]string, len(subnets))
	for i, sn := range subnets {
		subnetIDs[i] = sn.ID
	}
	l, err := lb.elb.LoadBalancerByName(ctx, s.Name)
	if err != nil {
		return nil, err
	}
	if l != nil {
		if err := lb.checkOwned(ctx, l.ARN, s); err != nil {
			return nil, err
		}
		if l.Scheme != s.Scheme {
			// The scheme cannot change in place: make it anew.
			klog.InfoS("Replacing load balancer for a scheme change", "service", klog.KObj(svc), "name", s.Name, "from", l.Scheme, "to", s.Scheme)
			if err := lb.deleteLB(ctx, l); err != nil {
				return nil, err
			}
			l = nil
		}
	}
	if l == nil {
		if l, err = lb.elb.CreateLoadBalancer(ctx, ec2.LoadBalancerSpec{
			Name: s.Name, Scheme: s.Scheme, IPAddressType: s.IPAddressType, Subnets: subnetIDs, Tags: s.Tags,
			// UDP listeners on a dualstack NLB need an IPv6 source NAT
			// prefix per subnet, chosen at creation.
			SourceNATIPv6: s.IPAddressType == IPAddressTypeDualStack && slices.ContainsFunc(s.Ports, func(p Port) bool { return p.Protocol == "UDP" }),
		}); err != nil {
			return nil, err
		}
		klog.InfoS("Created load balancer", "service", klog.KObj(svc), "name", s.Name, "ipAddressType", s.IPAddressType, "scheme", s.Scheme)
	}
	if l.IPAddressType != s.IPAddressType && s.IPAddressType == IPAddressTypeDualStack {
		if err := lb.elb.SetIPAddressType(ctx, l.ARN, s.IPAddressType); err != nil {
			return nil, err
		}
	}
	if !slices.Equal(l.Subnets, subnetIDs) {
		if err := lb.elb.SetSubnets(ctx, l.ARN, subnetIDs); err != nil {
			return nil, err
		}
	}
	if s.CrossZone != nil {
		attrs, err := lb.elb.LoadBalancerAttributes(ctx, l.ARN)
		if err != nil {
			return nil, err
		}
		if want := fmt.Sprint(*s.CrossZone); attrs[crossZoneAttribute] != want {
			if err := lb.elb.ModifyLoadBalancerAttributes(ctx, l.ARN, map[string]string{crossZoneAttribute: want}); err != nil {
				return nil, err
			}
		}
	}
	attached, err := lb.elb.TargetGroups(ctx, l.ARN)
	if err != nil {
		return nil, err
	}
	listeners, err := lb.elb.Listeners(ctx, l.ARN)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	initializing := initializingNodes(nodes)
	waiting := map[string]bool{}
	for _, p := range s.Ports {
		tg, err := lb.targetGroup(ctx, svc, s, p, vpcID, attached)
		if err != nil {
			return nil, err
		}
		keep[tg.ARN] = true
		if err := lb.listener(ctx, l, s, p, tg, listeners); err != nil {
			return nil, err
		}
		if err := lb.syncTargets(ctx, svc, tg, p, s.TargetFamily, insts, initializing, waiting); err != nil {
			return nil, err
		}
	}
	for _, ls := range listeners {
		if !slices.ContainsFunc(s.Ports, func(p Port) bool { return p.Port == ls.Port }) {
			if err := lb.elb.DeleteListener(ctx, ls.ARN); err != nil {
				return nil, err
			}
		}
	}
	if err := lb.deleteOwnedGroups(ctx, s, attached, keep); err != nil {
		return nil, err
	}
	if l.IPAddressType != s.IPAddressType && s.IPAddressType == IPAddressTypeIPv4 {
		// Only now that no IPv6 target group is attached.
		if err := lb.elb.SetIPAddressType(ctx, l.ARN, s.IPAddressType); err != nil {
			return nil, err
		}
	}
	if err := lb.syncRules(ctx, s, vpcID, insts, IngressRules(s, subnets)); err != nil {
		return nil, err
	}
	if err := waitingError(waiting); err != nil {
		return nil, err
	}
	return l, nil
}

// checkOwned refuses to touch a load balancer that this cluster did not
// make for this Service.
func (lb *LoadBalancers) checkOwned(ctx context.Context, arn string, s *Spec) error {
	tags, err := lb.elb.Tags(ctx, []string{arn})
	if err != nil {
		return err
	}
	t := tags[arn]
	if t[TagClusterPrefix+lb.cfg.ClusterID] != "owned" || t[TagServiceName] != s.Tags[TagServiceName] {
		return fmt.Errorf("load balancer %s exists but is not tagged as this cluster's (%s%s=owned) for Service %s; refusing to adopt it",
			s.Name, TagClusterPrefix, lb.cfg.ClusterID, s.Tags[TagServiceName])
	}
	return nil
}

// targetGroup returns the port's target group: attached, or found by name
// (made before a crash), or new; its health check follows the spec.
func (lb *LoadBalancers) targetGroup(ctx context.Context, svc *v1.Service, s *Spec, p Port, vpcID string, attached []ec2.TargetGroup) (*ec2.TargetGroup, error) {
	name := TargetGroupName(svc, lb.cfg.ClusterID, p, s.TargetFamily, s.HealthCheck)
	var tg *ec2.TargetGroup
	if i := slices.IndexFunc(attached, func(t ec2.TargetGroup) bool { return t.Name == name }); i >= 0 {
		tg = &attached[i]
	} else {
		var err error
		if tg, err = lb.elb.TargetGroupByName(ctx, name); err != nil {
			return nil, err
		}
	}
	hc := ec2.HealthCheck(s.HealthCheck)
	if tg == nil {
		return lb.elb.CreateTargetGroup(ctx, ec2.TargetGroupSpec{
			Name: name, Protocol: p.Protocol, Port: p.NodePort, IPAddressType: s.TargetFamily, VPCID: vpcID, HealthCheck: hc, Tags: s.Tags,
		})
	}
	if !healthCheckMatches(tg.HealthCheck, hc) {
		if err := lb.elb.ModifyHealthCheck(ctx, tg.ARN, hc); err != nil {
			return nil, err
		}
	}
	return tg, nil
}

// healthCheckMatches compares the fields the spec sets (zero = AWS default).
func healthCheckMatches(have, want ec2.HealthCheck) bool {
	eq := func(h, w int32) bool { return w == 0 || h == w }
	return have.Protocol == want.Protocol && have.Port == want.Port && (want.Path == "" || have.Path == want.Path) &&
		eq(have.IntervalSeconds, want.IntervalSeconds) && eq(have.TimeoutSeconds, want.TimeoutSeconds) &&
		eq(have.HealthyThreshold, want.HealthyThreshold) && eq(have.UnhealthyThreshold, want.UnhealthyThreshold)
}

// listener makes the port's listener forward to tg: kept, repointed, or
// replaced when its protocol changed.
func (lb *LoadBalancers) listener(ctx context.Context, l *ec2.LoadBalancer, s *Spec, p Port, tg *ec2.TargetGroup, existing []ec2.Listener) error {
	i := slices.IndexFunc(existing, func(ls ec2.Listener) bool { return ls.Port == p.Port })
	if i >= 0 && existing[i].Protocol != p.Protocol {
		if err := lb.elb.DeleteListener(ctx, existing[i].ARN); err != nil {
			return err
		}
		i = -1
	}
	if i < 0 {
		_, err := lb.elb.CreateListener(ctx, l.ARN, p.Protocol, p.Port, tg.ARN, s.Tags)
		return err
	}
	if existing[i].TargetGroupARN != tg.ARN {
		return lb.elb.ForwardListener(ctx, existing[i].ARN, tg.ARN)
	}
	return nil
}

// deleteOwnedGroups deletes target groups attached before this ensure that
// no port uses now, if they carry the Service's tags.
func (lb *LoadBalancers) deleteOwnedGroups(ctx context.Context, s *Spec, attached []ec2.TargetGroup, keep map[string]bool) error {
	var stale []string
	for _, tg := range attached {
		if !keep[tg.ARN] {
			stale = append(stale, tg.ARN)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	tags, err := lb.elb.Tags(ctx, stale)
	if err != nil {
		return err
	}
	for _, arn := range stale {
		if tags[arn][TagServiceName] == s.Tags[TagServiceName] && tags[arn][TagClusterPrefix+lb.cfg.ClusterID] == "owned" {
			if err := lb.elb.DeleteTargetGroup(ctx, arn); err != nil {
				return err
			}
		}
	}
	return nil
}

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

// subnetsOf returns the load balancer's subnets (for health check rules).
func (lb *LoadBalancers) subnetsOf(ctx context.Context, l *ec2.LoadBalancer, insts map[string]*ec2.Instance) ([]ec2.Subnet, error) {
	vpc := l.VPCID
	if vpc == "" {
		vpc = lb.vpc(insts)
	}
	all, err := lb.ec2.VPCSubnets(ctx, vpc)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(sn ec2.Subnet) bool { return !slices.Contains(l.Subnets, sn.ID) }), nil
}

// syncRules makes the rules for the load balancer on each node security
// group (a cluster-tagged group on a target's primary network interface)
// exactly want, and removes them from cluster-tagged groups no target uses.
func (lb *LoadBalancers) syncRules(ctx context.Context, s *Spec, vpcID string, insts map[string]*ec2.Instance, want []ec2.IngressRule) error {
	sgs, err := lb.ec2.TaggedSecurityGroups(ctx, vpcID, TagClusterPrefix+lb.cfg.ClusterID)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, in := range insts {
		if eni := in.PrimaryENI(); eni != nil {
			for _, g := range eni.SecurityGroups {
				used[g] = true
			}
		}
	}
	for _, sg := range sgs {
		w := want
		if !used[sg.ID] {
			w = nil
		}
		add, remove := DiffRules(sg.Ingress, w, s.Name)
		if err := lb.ec2.AuthorizeIngress(ctx, sg.ID, add); err != nil {
			return err
		}
		if err := lb.ec2.RevokeIngress(ctx, sg.ID, remove); err != nil {
			return err
		}
	}
	return nil
}

// EnsureLoadBalancerDeleted removes the Service's NLB, its target groups and
// its node security group rules; objects without the Service's tags are
// left alone. It also runs for Services that are not (or no longer) NLBs,
// so that removing the annotation cannot leak what was made.
func (lb *LoadBalancers) EnsureLoadBalancerDeleted(ctx context.Context, _ string, svc *v1.Service) error {
	name := Name(svc)
	owner := svc.Namespace + "/" + svc.Name
	l, err := lb.elb.LoadBalancerByName(ctx, name)
	if err != nil {
		return err
	}
	vpcID := lb.cfg.VPCID
	var groups []ec2.TargetGroup
	if l != nil {
		tags, err := lb.elb.Tags(ctx, []string{l.ARN})
		if err != nil {
			return err
		}
		if t := tags[l.ARN]; t[TagClusterPrefix+lb.cfg.ClusterID] != "owned" || t[TagServiceName] != owner {
			klog.InfoS("Load balancer of the Service's name is not this cluster's; leaving it", "service", klog.KObj(svc), "name", name)
			return nil
		}
		vpcID = l.VPCID
		if groups, err = lb.elb.TargetGroups(ctx, l.ARN); err != nil {
			return err
		}
		if err := lb.deleteLB(ctx, l); err != nil {
			return err
		}
	}
	// Target groups made before a crash, never attached, have the names the
	// spec gives them.
	if s, err := ParseSpec(svc, lb.cfg.ClusterID, true); err == nil {
		for _, p := range s.Ports {
			n := TargetGroupName(svc, lb.cfg.ClusterID, p, s.TargetFamily, s.HealthCheck)
			if slices.ContainsFunc(groups, func(tg ec2.TargetGroup) bool { return tg.Name == n }) {
				continue
			}
			tg, err := lb.elb.TargetGroupByName(ctx, n)
			if err != nil {
				return err
			}
			if tg != nil {
				groups = append(groups, *tg)
			}
		}
	}
	if len(groups) > 0 {
		arns := make([]string, len(groups))
		for i, tg := range groups {
			arns[i] = tg.ARN
			if vpcID == "" {
				vpcID = tg.VPCID
			}
		}
		tags, err := lb.elb.Tags(ctx, arns)
		if err != nil {
			return err
		}
		for _, arn := range arns {
			if tags[arn][TagServiceName] == owner && tags[arn][TagClusterPrefix+lb.cfg.ClusterID] == "owned" {
				if err := lb.elb.DeleteTargetGroup(ctx, arn); err != nil {
					return err
				}
			}
		}
	}
	if vpcID == "" {
		return nil
	}
	return lb.syncRules(ctx, &Spec{Name: name}, vpcID, nil, nil)
}

func (lb *LoadBalancers) deleteLB(ctx context.Context, l *ec2.LoadBalancer) error {
	if err := lb.elb.DeleteLoadBalancer(ctx, l.ARN); err != nil {
		return err
	}
	klog.InfoS("Deleted load balancer", "name", l.Name, "arn", l.ARN)
	return nil
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}
