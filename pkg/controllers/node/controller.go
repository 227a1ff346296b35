// Package node is the IPv6-aware cloud node controller. It replaces
// k8s.io/cloud-provider's cloud-node controller: it initializes Nodes that
// carry the uninitialized taint, ensures one IPv6 address and one /80 prefix
// on each node's primary ENI, publishes addresses in family order, sets the
// pod CIDR from the prefix, and only then removes the taint.
package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/nodemeta"
)

// ControllerName is the name the controller is registered under, the same as
// the framework's node controller it replaces.
const ControllerName = "cloud-node"

// Mode says what the controller does about IPv6; the one mode type, shared
// with the cloud config.
type Mode = nodemeta.Mode

// Modes.
const (
	ModeOff    = nodemeta.ModeOff
	ModeAdopt  = nodemeta.ModeAdopt
	ModeAssign = nodemeta.ModeAssign
)

// Defaults for Options.
const (
	DefaultWorkers       = 64
	DefaultRefreshPeriod = 5 * time.Minute
	DefaultAssignSettle  = 2 * time.Minute
)

// Options configures a Controller.
type Options struct {
	// Mode selects IPv6 behaviour; empty means ModeOff.
	Mode Mode
	// Families orders node addresses. Default: [IPv4] in ModeOff, else [IPv6, IPv4].
	Families []v1.IPFamily
	// Workers is the number of concurrent node syncs. Many workers let
	// instance lookups batch.
	Workers int
	// RefreshPeriod is how often addresses of initialized nodes are refreshed.
	RefreshPeriod time.Duration
	// Region is the region label value.
	Region string
	// ClusterID is the cluster's tag value (informational).
	ClusterID string
	// AssignSettle is how long after a recorded but unconfirmed assignment the
	// controller waits for EC2 to show it before assigning again.
	AssignSettle time.Duration
	// IPv4Pool, when valid, gives each node an IPv4 pod range of
	// IPv4MaskBits from it beside the /80 (dual-stack spec.podCIDRs; the
	// cloud config's IPv4PodCIDRSource = cluster-cidr). Needs ModeAdopt or
	// ModeAssign.
	IPv4Pool     netip.Prefix
	IPv4MaskBits int
	// IPv4First puts the IPv4 range first in spec.podCIDRs (and in
	// spec.podCIDR): the cluster's primary family.
	IPv4First bool
	// EnablePrimaryIPv6 marks the IPv6 address of each node's primary ENI
	// primary (ModifyNetworkInterfaceAttribute EnablePrimaryIpv6), which
	// IPv6 target groups of instance targets need; AWS cannot undo it.
	EnablePrimaryIPv6 bool
}

// EC2 is what the controller needs from EC2; *ec2.Client satisfies it.
type EC2 interface {
	InstanceByID(ctx context.Context, id string) (*ec2.Instance, error)
	InstanceByPrivateDNSNameFresh(ctx context.Context, name string, maxAge time.Duration) (*ec2.Instance, error)
	Instances(ctx context.Context, ids []string) (map[string]*ec2.Instance, error)
	SubnetIPv6CIDR(ctx context.Context, subnetID string) (netip.Prefix, error)
	AssignIPv6Explicit(ctx context.Context, eniID string, addr netip.Addr, prefix netip.Prefix) (ec2.Assigned, error)
	ReserveAssign(ctx context.Context, eniID string, calls int) error
	ReleaseAssign(eniID string)
	NetworkNodes(ctx context.Context, id, instanceType string) ([]string, error)
	EnablePrimaryIPv6(ctx context.Context, eniID string) error
	Expect(key, id, privateDNSName string)
	Unexpect(key string)
	Forget(id string)
}

var _ EC2 = (*ec2.Client)(nil)

// Controller is the IPv6-aware cloud node controller.
type Controller struct {
	v4       *ipv4Ranges // nil without dual-stack pod CIDRs
	client   kubernetes.Interface
	lister   corelisters.NodeLister
	synced   cache.InformerSynced
	cloud    EC2
	opts     Options
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	bcast    record.EventBroadcaster
	now      func() time.Time

	// memoMu guards the per-node state below. Every map is keyed by node
	// name, and its entry is removed when the node is deleted (forgetNode)
	// or no longer needs it, so that the maps never grow with history; their
	// sizes are exported as cloudprovider_aws_node_controller_state_entries.
	memoMu sync.Mutex
	// memo holds what this process assigned on a node's primary ENI, until
	// the node is initialized.
	memo map[string]*assignMemo
	// done holds nodes this process just initialized, until the informer
	// shows the write: a stale cached copy must not be initialized again.
	done map[string]expectation
	// gone holds, for initialized nodes, when a describe first failed to show
	// the IPv6 address the Node publishes first (see keepIPv6).
	gone map[string]time.Time
	// status holds the addresses this process wrote to a node not yet
	// initialized, so a retry does not write them again while the informer
	// lags.
	status map[string]statusWrite
}

// expectation is a node write the informer cache may not show yet.
type expectation struct {
	uid types.UID
	at  time.Time
}

// expectationTTL bounds how long a stale cached node is ignored.
const expectationTTL = 30 * time.Second

// backoff bounds for the per-node exponential requeue.
var (
	backoffBase = 500 * time.Millisecond
	backoffMax  = 5 * time.Minute
)

// New builds a Controller watching nodes through the shared informer.
func New(client kubernetes.Interface, nodes coreinformers.NodeInformer, cloud EC2, opts Options) (*Controller, error) {
	if client == nil || nodes == nil || cloud == nil {
		return nil, errors.New("node controller: client, informer and cloud are required")
	}
	if err := opts.defaults(); err != nil {
		return nil, fmt.Errorf("node controller: %w", err)
	}
	registerMetrics()
	bcast := record.NewBroadcaster()
	c := &Controller{
		client:   client,
		lister:   nodes.Lister(),
		cloud:    cloud,
		opts:     opts,
		bcast:    bcast,
		recorder: bcast.NewRecorder(scheme.Scheme, v1.EventSource{Component: ControllerName}),
		now:      time.Now,
		memo:     map[string]*assignMemo{},
		done:     map[string]expectation{},
		gone:     map[string]time.Time{},
		status:   map[string]statusWrite{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](backoffBase, backoffMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: ControllerName},
		),
	}
	if opts.IPv4Pool.IsValid() {
		if opts.Mode != ModeAdopt && opts.Mode != ModeAssign {
			return nil, fmt.Errorf("node controller: IPv4 pod ranges pair with the IPv6 /80 and need mode adopt or assign, not %q", opts.Mode)
		}
		v4, err := newIPv4Ranges(opts.IPv4Pool, opts.IPv4MaskBits)
		if err != nil {
			return nil, fmt.Errorf("node controller: IPv4 pod ranges: %w", err)
		}
		c.v4 = v4
	}
	reg, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.nodeChanged(obj) },
		UpdateFunc: func(_, obj any) { c.nodeChanged(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*v1.Node); ok {
				c.forgetNode(n.Name)
				c.cloud.Unexpect(n.Name)
				c.cloud.Unexpect(nodemeta.LifecycleKey(n.Name))
				if c.v4 != nil {
					// Its range is free now: nodes refused for want of one go again.
					for _, w := range c.v4.forget(n.Name) {
						c.queue.Add(w)
					}
					c.recordV4Sizes()
				}
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("node controller: add event handler: %w", err)
	}
	// Workers start once the handler has seen every node of the initial
	// list, so all queued nodes' lookups are announced before the first
	// describe.
	c.synced = reg.HasSynced
	return c, nil
}

// nodeChanged queues a node that needs a sync. Its instance lookup is
// announced to the EC2 layer while it waits, so that the lookups of a burst
// of nodes, reached one by one as API writes allow, share a few describes.
func (c *Controller) nodeChanged(obj any) {
	n, ok := obj.(*v1.Node)
	if !ok {
		return
	}
	if c.v4 != nil {
		c.v4.observe(n)
		c.recordV4Sizes()
	}
	// The lifecycle controller looks NotReady nodes up afresh, one at a
	// time: announced, they ride along in each other's describes. (Expect
	// with neither ID nor name withdraws.)
	id, name := lookupOf(n)
	if nodemeta.Ready(n) {
		c.cloud.Unexpect(nodemeta.LifecycleKey(n.Name))
	} else {
		c.cloud.Expect(nodemeta.LifecycleKey(n.Name), id, name)
	}
	if !c.needsSync(n) {
		c.settled(n.Name)
		c.cloud.Unexpect(n.Name)
		return
	}
	c.cloud.Expect(n.Name, id, name)
	c.queue.Add(n.Name)
}

func (o *Options) defaults() error {
	switch o.Mode {
	case "":
		o.Mode = ModeOff
	case ModeOff, ModeAdopt, ModeAssign:
	default:
		return fmt.Errorf("unknown mode %q (want off, adopt or assign)", o.Mode)
	}
	if len(o.Families) == 0 {
		o.Families = []v1.IPFamily{v1.IPv4Protocol}
		if o.Mode != ModeOff {
			o.Families = []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}
		}
	}
	for _, f := range o.Families {
		if f != v1.IPv4Protocol && f != v1.IPv6Protocol {
			return fmt.Errorf("unknown IP family %q", f)
		}
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.RefreshPeriod <= 0 {
		o.RefreshPeriod = DefaultRefreshPeriod
	}
	if o.AssignSettle <= 0 {
		o.AssignSettle = DefaultAssignSettle
	}
	return nil
}

func (c *Controller) ipv6() bool { return c.opts.Mode.IPv6() }

// needsSync says whether an informer event calls for a sync: uninitialized
// nodes, IPv6-mode nodes without podCIDR, and nodes whose labels need
// reconciling.
func (c *Controller) needsSync(n *v1.Node) bool {
	return hasCloudTaint(n) || (c.ipv6() && n.Spec.PodCIDR == "") || len(betaToGALabels(n)) > 0
}

// Run starts the workers and the periodic address refresh, and blocks until
// ctx is done.
func (c *Controller) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	c.bcast.StartStructuredLogging(3)
	c.bcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.bcast.Shutdown()

	logger := klog.FromContext(ctx)
	logger.Info("Starting node controller", "mode", c.opts.Mode, "families", c.opts.Families, "workers", c.opts.Workers)
	defer logger.Info("Shutting down node controller")
	if !cache.WaitForNamedCacheSync(ControllerName, ctx.Done(), c.synced) {
		return
	}
	// Refresh the initialized nodes once before the workers start, so the
	// start-up refresh is one batched describe that never races the
	// workers' first lookups; then every RefreshPeriod.
	c.refresh(ctx)
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.worker, time.Second) })
	}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.opts.RefreshPeriod):
				c.refresh(ctx)
			}
		}
	})
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
}

func (c *Controller) worker(ctx context.Context) {
	for c.next(ctx) {
	}
}

func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	after, err := c.sync(ctx, key)
	// A node deleted while it was synced: the delete handler may have run
	// before the sync recorded anything (a memo, an expectation); drop it.
	if _, gerr := c.lister.Get(key); apierrors.IsNotFound(gerr) {
		c.forgetNode(key)
		c.queue.Forget(key)
		return true
	}
	switch {
	case err != nil:
		if node, gerr := c.lister.Get(key); gerr == nil {
			c.report(node, err)
		} else {
			klog.FromContext(ctx).V(2).Info("Node sync failed, requeueing", "node", key, "err", err.Error())
		}
		if ne := (*nodeError)(nil); errors.As(err, &ne) && ne.retry > 0 {
			c.queue.Forget(key)
			c.queue.AddAfter(key, ne.retry)
		} else {
			c.queue.AddRateLimited(key)
		}
	case after > 0:
		c.queue.Forget(key)
		c.queue.AddAfter(key, after)
	default:
		c.queue.Forget(key)
	}
	return true
}
