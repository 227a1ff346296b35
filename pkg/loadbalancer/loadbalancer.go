package loadbalancer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
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
		if !lb.owns(tags[l.ARN], owner) {
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
			if lb.owns(tags[arn], owner) {
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
