// Package tagging is the tagging controller (upstream's "tagging"): it sets
// the --tags on each Node's EC2 instance when the Node appears, marks the
// Node with a label holding the tags' checksum, and removes the tags when
// the Node is deleted. Unlike upstream it batches by default: the IDs of
// many nodes share one CreateTags or DeleteTags call.
package tagging

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
)

// Names, as upstream has them.
const (
	ControllerName = "tagging"
	ClientName     = "tagging-controller"
	// LabelTagsChecksum marks a Node whose instance carries the current
	// tags: the MD5 of the sorted key=value pairs joined by commas, the same
	// value upstream writes, so nodes upstream tagged are not tagged again.
	LabelTagsChecksum = "k8s.io/cloud-provider-aws"
)

const (
	maxRetries = 9 // as upstream: then the item is dropped with an error
	// newNodeGrace: an instance a new Node names may not be visible to
	// EC2's API yet; NotFound is retried for this long after creation.
	newNodeGrace = 5 * time.Minute
	backoffBase  = 100 * time.Millisecond
	backoffMax   = 5 * time.Minute
)

type action string

const (
	actionTag   action = "tag"
	actionUntag action = "untag"
)

type item struct {
	node, instanceID string
	action           action
}

// EC2 is what the controller needs of pkg/ec2.
type EC2 interface {
	CreateTags(ctx context.Context, ids []string, tags map[string]string) (map[string]string, error)
	DeleteTags(ctx context.Context, ids []string, tags map[string]string) (map[string]string, error)
	NewTagBatcher(ctx context.Context, tags map[string]string, create bool, window time.Duration) *ec2.TagBatcher
}

var _ EC2 = (*ec2.Client)(nil)

// Controller is the tagging controller.
type Controller struct {
	client   kubernetes.Interface
	lister   corelisters.NodeLister
	synced   cache.InformerSynced
	cloud    EC2
	opts     Options
	checksum string
	queue    workqueue.TypedRateLimitingInterface[item]
	limited  bool
	now      func() time.Time

	mu      sync.Mutex
	results map[item]error // outcomes of batched calls, read by the next pass
}

// New builds the controller; opts must have passed Validate.
func New(client kubernetes.Interface, nodes coreinformers.NodeInformer, cloud EC2, opts Options) (*Controller, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("tagging controller: %w", err)
	}
	RegisterMetrics()
	limiter := workqueue.NewTypedItemExponentialFailureRateLimiter[item](backoffBase, backoffMax)
	limited := opts.RateLimit > 0 && opts.BurstLimit > 0
	if limited {
		limiter = workqueue.NewTypedMaxOfRateLimiter(limiter,
			&workqueue.TypedBucketRateLimiter[item]{Limiter: rate.NewLimiter(rate.Limit(opts.RateLimit), opts.BurstLimit)})
	}
	c := &Controller{
		client:   client,
		lister:   nodes.Lister(),
		cloud:    cloud,
		opts:     opts,
		checksum: Checksum(opts.Tags),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(limiter,
			workqueue.TypedRateLimitingQueueConfig[item]{Name: ClientName}),
		limited: limited,
		now:     time.Now,
		results: map[item]error{},
	}
	reg, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.nodeChanged(obj) },
		UpdateFunc: func(_, obj any) { c.nodeChanged(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*v1.Node); ok {
				if id := instanceOf(n); id != "" {
					c.add(item{node: n.Name, instanceID: id, action: actionUntag})
				}
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("tagging controller: add event handler: %w", err)
	}
	c.synced = reg.HasSynced
	return c, nil
}

// Checksum is the label value for a set of tags (upstream's rule).
func Checksum(tags map[string]string) string {
	pairs := make([]string, 0, len(tags))
	for k, v := range tags {
		pairs = append(pairs, k+"="+v)
	}
	slices.Sort(pairs)
	return fmt.Sprintf("%x", md5.Sum([]byte(strings.Join(pairs, ","))))
}

// instanceOf returns the EC2 instance ID of a Node's providerID, or "" when
// it has none or it names something other than an instance.
func instanceOf(n *v1.Node) string {
	id, err := providerid.Parse(n.Spec.ProviderID)
	if err != nil || !strings.HasPrefix(id.InstanceID, "i-") {
		return ""
	}
	return id.InstanceID
}

func (c *Controller) nodeChanged(obj any) {
	n, ok := obj.(*v1.Node)
	if !ok || !c.opts.tagsInstances() || n.DeletionTimestamp != nil || n.Labels[LabelTagsChecksum] == c.checksum {
		return
	}
	if id := instanceOf(n); id != "" {
		c.add(item{node: n.Name, instanceID: id, action: actionTag})
	}
}

func (c *Controller) add(it item) {
	if c.limited {
		c.queue.AddRateLimited(it)
	} else {
		c.queue.Add(it)
	}
}

// Run starts the workers and blocks until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	if !cache.WaitForNamedCacheSync(ControllerName, ctx.Done(), c.synced) {
		return
	}
	var tag, untag *ec2.TagBatcher
	if c.opts.Batching {
		tag = c.cloud.NewTagBatcher(ctx, c.opts.Tags, true, c.opts.BatchWindow)
		untag = c.cloud.NewTagBatcher(ctx, c.opts.Tags, false, c.opts.BatchWindow)
	}
	klog.InfoS("Starting tagging controller", "tags", c.opts.Tags, "workers", c.opts.Workers,
		"batching", c.opts.Batching, "batchWindow", c.opts.BatchWindow)
	for range c.opts.Workers {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for c.next(ctx, tag, untag) {
			}
		}, time.Second)
	}
	<-ctx.Done()
}

// next handles one item. A first pass hands the instance to the batcher and
// leaves the item in processing; the batcher's answer requeues it and the
// second pass acts on the outcome (label the Node, retry or give up).
func (c *Controller) next(ctx context.Context, tag, untag *ec2.TagBatcher) bool {
	it, quit := c.queue.Get()
	if quit {
		return false
	}
	c.mu.Lock()
	res, answered := c.results[it]
	delete(c.results, it)
	c.mu.Unlock()
	if !answered {
		if it.action == actionTag && !c.stillWanted(it) {
			c.queue.Forget(it)
			c.queue.Done(it)
			return true
		}
		b := tag
		if it.action == actionUntag {
			b = untag
		}
		if b != nil {
			b.Add(it.instanceID, func(err error) {
				c.mu.Lock()
				c.results[it] = err
				c.mu.Unlock()
				c.queue.Done(it)
				c.queue.Add(it)
			})
			return true
		}
		res = c.callOne(ctx, it)
	}
	c.finish(ctx, it, res)
	c.queue.Done(it)
	return true
}

// stillWanted reports whether the Node of a tag item still exists with the
// same instance and without the current checksum.
func (c *Controller) stillWanted(it item) bool {
	n, err := c.lister.Get(it.node)
	return err == nil && instanceOf(n) == it.instanceID && n.Labels[LabelTagsChecksum] != c.checksum
}

// callOne is the unbatched path: one call for one instance.
func (c *Controller) callOne(ctx context.Context, it item) error {
	call := c.cloud.CreateTags
	if it.action == actionUntag {
		call = c.cloud.DeleteTags
	}
	bad, err := call(ctx, []string{it.instanceID}, c.opts.Tags)
	if code := bad[it.instanceID]; code != "" {
		return &ec2.TagError{ID: it.instanceID, Code: code}
	}
	return err
}

// finish acts on the outcome of a call and settles the item.
func (c *Controller) finish(ctx context.Context, it item, res error) {
	logger := klog.FromContext(ctx).WithValues("node", it.node, "instanceID", it.instanceID, "action", it.action)
	var tagErr *ec2.TagError
	if errors.As(res, &tagErr) {
		if it.action == actionTag && errors.Is(res, ec2.ErrInstanceNotFound) && c.withinGrace(it.node) {
			res = fmt.Errorf("instance not visible to EC2 yet: %w", res)
		} else {
			logger.Info("Skipping instance EC2 does not know", "code", tagErr.Code)
			workItems.WithLabelValues(string(it.action), "skipped").Inc()
			c.queue.Forget(it)
			return
		}
	}
	if res == nil && it.action == actionTag {
		res = c.label(ctx, it)
	}
	if res == nil {
		logger.V(2).Info("Done")
		workItems.WithLabelValues(string(it.action), "ok").Inc()
		c.queue.Forget(it)
		return
	}
	if n := c.queue.NumRequeues(it); n < maxRetries {
		logger.Info("Retrying", "err", res, "retries", n)
		workItems.WithLabelValues(string(it.action), "retry").Inc()
		c.queue.AddRateLimited(it)
		return
	}
	logger.Error(res, "Giving up after retries")
	workItems.WithLabelValues(string(it.action), "failed").Inc()
	c.queue.Forget(it)
}

func (c *Controller) withinGrace(name string) bool {
	n, err := c.lister.Get(name)
	return err == nil && c.now().Sub(n.CreationTimestamp.Time) < newNodeGrace
}

// label writes the checksum label with a merge patch; a Node gone or
// moved to another instance meanwhile is left alone.
func (c *Controller) label(ctx context.Context, it item) error {
	n, err := c.lister.Get(it.node)
	if apierrors.IsNotFound(err) || err == nil && instanceOf(n) != it.instanceID {
		return nil
	}
	if err != nil {
		return err
	}
	if n.Labels[LabelTagsChecksum] == c.checksum {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels": map[string]string{LabelTagsChecksum: c.checksum},
	}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, it.node, types.MergePatchType, patch, metav1PatchOptions)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("label node %s: %w", it.node, err)
	}
	return nil
}

// Tags returns a copy of the tags the controller sets.
func (c *Controller) Tags() map[string]string { return maps.Clone(c.opts.Tags) }
